"""The graph walk: accumulation, shared subexpressions, freeing, no_grad, deep chains, errors."""
import numpy as np
import pytest

import tinypix as tp
from tinypix.autograd import Function
from tinypix.testing import GradcheckError, gradcheck


def test_gradients_accumulate_over_two_backward_calls():
    x = tp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([1, 2, 3]) + 3)


def test_diamond_graph_adds_both_paths():
    x = tp.tensor(1.5, dtype=tp.float64, requires_grad=True)
    a = x * 2.0          # shared subexpression used by two branches
    y = a.exp() + a * a
    y.backward()
    expected = 2 * np.exp(3.0) + 2 * 3.0 * 2
    assert x.grad.item() == pytest.approx(expected)


def test_node_used_directly_and_through_another_path():
    # a feeds the root twice: directly and through b = a * 2. The walk must finish every
    # consumer of a before a's own backward runs.
    x = tp.tensor([1.0, 2.0], dtype=tp.float64, requires_grad=True)
    a = x.exp()
    b = a * 2.0
    (a + b * a).sum().backward()
    expected = np.exp([1.0, 2.0]) * (1 + 4 * np.exp([1.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_second_backward_through_freed_graph_is_an_error():
    x = tp.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tp.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)


def test_no_grad_records_nothing_and_works_as_decorator():
    x = tp.ones(3, requires_grad=True)
    with tp.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @tp.no_grad()
    def double(t):
        return t * 2
    assert not double(x).requires_grad
    assert (x * 2).requires_grad  # switched back on afterwards


def test_chain_of_10000_ops_does_not_recurse():
    x = tp.tensor([1.0], dtype=tp.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-9)


def test_detach_and_retain_grad():
    x = tp.tensor([2.0], requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    (h.detach() * h).sum().backward()  # the detached factor is a constant
    assert h.grad.item() == pytest.approx(6.0)
    assert x.grad.item() == pytest.approx(18.0)


def test_branch_that_does_not_reach_the_root_is_skipped():
    x = tp.tensor([1.0, 2.0], requires_grad=True)
    values, _ = x.max(0), None
    pair = x * 2
    pair.sum().backward()
    assert values.values.grad is None
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


class Cube(Function):
    """A student's custom op: y = x^3, dy/dx = 3 x^2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return 3 * x * x * dy


class WrongCube(Cube):
    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return 2 * x * x * dy


def test_custom_function_passes_gradcheck_and_a_wrong_one_fails_with_details():
    x = tp.randn(2, 3, dtype=tp.float64, requires_grad=True)
    assert gradcheck(Cube.apply, (x,))
    with pytest.raises(GradcheckError, match=r"(?s)worst Jacobian entry.*analytic.*numeric"):
        gradcheck(WrongCube.apply, (x,))
    big = tp.randn(40, 40, dtype=tp.float64, requires_grad=True)  # the directional path
    assert gradcheck(Cube.apply, (big,))
    with pytest.raises(GradcheckError, match="directional derivative"):
        gradcheck(WrongCube.apply, (big,))


def test_needs_input_grad_is_passed_to_backward():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, dy):
            seen.append(ctx.needs_input_grad)
            return None, dy

    a, b = tp.ones(2), tp.ones(2, requires_grad=True)
    Probe.apply(a, b).sum().backward()
    assert seen == [(False, True)]


# -- errors ----------------------------------------------------------------------------------
def test_backward_on_non_scalar_without_gradient_says_so():
    y = tp.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"single-element.*\(2, 3\).*gradient="):
        y.backward()


def test_gradient_dtype_and_shape_mismatch_say_so():
    y = tp.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="dtype float64.*float32"):
        y.backward(tp.ones(2, dtype=tp.float64))
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*\(2,\)"):
        y.backward(tp.ones(3))


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating-point.*int64"):
        tp.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        tp.arange(3).requires_grad_()


def test_backward_without_graph_says_why():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tp.ones(1).backward()


@pytest.mark.parametrize("make, pattern", [
    (lambda: tp.ones(2, 3) + tp.ones(4), r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
    (lambda: tp.ones(2, 3) @ tp.ones(4, 5), r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"),
    (lambda: tp.ones(2, 3).reshape(4), r"reshape: cannot reshape .*\(2, 3\) \(6 elements\) into \(4,\)"),
    (lambda: tp.cat([tp.ones(2, 3), tp.ones(2, 4)]), r"cat: shapes \(2, 3\) and \(2, 4\)"),
    (lambda: tp.stack([tp.ones(2), tp.ones(3)]), r"stack: .*\(2,\) and \(3,\)"),
    (lambda: tp.ones(2).sum(dim=3), r"sum: dim 3 is out of range .*\(2,\)"),
    (lambda: tp.ones(2, 3).expand(4, 3), r"expand: cannot expand shape \(2, 3\)"),
])
def test_shape_errors_name_the_op_and_both_shapes(make, pattern):
    with pytest.raises((ValueError, IndexError), match=pattern):
        make()


def test_mixed_devices_name_both_devices_and_the_fix():
    from tinypix.tensor import check_same_device

    class Fake:
        def __init__(self, device):
            self.device = device
    with pytest.raises(RuntimeError, match=r"mul: .*'cpu' and 'cuda'.*\.to\('cuda'\)"):
        check_same_device("mul", [Fake("cpu"), Fake("cuda")])


def test_cuda_without_cupy_or_gpu_explains_what_is_missing():
    if tp.is_cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match=r"CuPy|GPU"):
        tp.zeros(2, device="cuda")
    with pytest.raises(ValueError, match="unknown device"):
        tp.zeros(2, device="tpu")


def test_grad_mode_is_per_thread_and_per_call_of_a_decorated_function():
    """As in PyTorch: no_grad on one thread leaves another's graph alone, and calls of a
    @no_grad() function that overlap (on two threads, or recursive) each restore their own mode."""
    import threading
    entered, other_done, seen = threading.Event(), threading.Event(), {}

    @tp.no_grad()
    def decorated(wait):
        if wait:
            entered.set()
            other_done.wait(10)
        return tp.is_grad_enabled()

    def first():  # grad on here, and on again once the call returns
        seen["inside"] = decorated(True)
        seen["after"] = tp.is_grad_enabled()

    def second():
        entered.wait(10)
        with tp.no_grad():
            decorated(False)
        x = tp.ones(2, requires_grad=True)
        seen["records"] = (x * 2).requires_grad
        other_done.set()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"inside": False, "after": True, "records": True}

    @tp.no_grad()
    def recursive(k):
        return recursive(k - 1) if k else tp.is_grad_enabled()
    assert recursive(2) is False and tp.is_grad_enabled()
