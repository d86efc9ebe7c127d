"""In-place ops (``add_``, ``relu_``, ``x += y``, ``F.relu(x, inplace=True)``, ...) follow PyTorch's
rules: refused on a leaf that requires grad while recording; in a graph, values and gradients
are PyTorch's; outside recording, written into the array, so views see them. The one documented
difference: views of a graph tensor do not see an in-place change.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
import tinypix.nn.functional as F
from tinypix.testing import gradcheck
from tinypix.testing.strategies import shapes

seeds = st.integers(0, 2**32 - 1)

# (name, fn(lib, y, b) applying one in-place op to y, with b another tensor that needs a gradient)
OPS = [
    ("add_", lambda m, y, b: y.add_(b)),
    ("add_ alpha", lambda m, y, b: y.add_(b, alpha=-0.5)),
    ("sub_", lambda m, y, b: y.sub_(b * 2)),
    ("mul_", lambda m, y, b: y.mul_(b)),
    ("div_", lambda m, y, b: y.div_(b.abs() + 1)),
    ("pow_", lambda m, y, b: y.pow_(2)),
    ("neg_", lambda m, y, b: y.neg_()),
    ("exp_", lambda m, y, b: y.mul_(0.3).exp_()),
    ("abs_ sqrt_", lambda m, y, b: y.abs_().add_(0.5).sqrt_()),
    ("relu_", lambda m, y, b: y.relu_()),
    ("sigmoid_", lambda m, y, b: y.sigmoid_()),
    ("tanh_", lambda m, y, b: y.tanh_()),
    ("clamp_", lambda m, y, b: y.clamp_(-0.5, 0.7)),
    ("clamp_min_", lambda m, y, b: y.clamp_min_(0.1)),
    ("masked_fill_", lambda m, y, b: y.masked_fill_(b > 0, 1.5)),
    ("masked_fill_ tensor", lambda m, y, b: y.masked_fill_(b > 0, b.sum())),
    ("zero_", lambda m, y, b: y.zero_().add_(b)),
    ("fill_", lambda m, y, b: y.fill_(b.mean())),
    ("copy_", lambda m, y, b: y.copy_(b * 3)),
    ("+=", lambda m, y, b: _iadd(y, b)),
    ("*= -= /=", lambda m, y, b: _imul_isub_idiv(y, b)),
    ("F.relu inplace", lambda m, y, b: m.nn.functional.relu(y, inplace=True)),
    ("F.leaky_relu inplace", lambda m, y, b: m.nn.functional.leaky_relu(y, 0.2, True)),
]


def _iadd(y, b):
    y += b
    return y


def _imul_isub_idiv(y, b):
    y *= b
    y -= 1.5
    y /= 2
    return y


def _inputs(seed, shape):
    """x and b away from 0 (relu, abs, clamp kinks) and from each other's kinks."""
    rng = np.random.default_rng(seed)
    x, b = rng.standard_normal((2,) + shape)
    return np.where(x >= 0, x + 0.1, x - 0.1), np.where(b >= 0, b + 0.1, b - 0.1)


def _chain(m, x, b, picks):
    """Homework-style code: a non-leaf y changed in place by the picked ops, then used."""
    y = x * 1.0
    kept = y * 2.0  # a node that used y before the in-place ops
    for i in picks:
        out = OPS[i][1](m, y, b)
        assert out is y  # in-place ops return the tensor itself
    return (y * b + kept).sum() + y.sum()


def _compare_chain(picks, shape, seed, refused_ok):
    torch = pytest.importorskip("torch")
    x_np, b_np = _inputs(seed, shape)
    x, b = (tinypix.tensor(a, requires_grad=True) for a in (x_np, b_np))
    tx, tb = (torch.tensor(a, requires_grad=True) for a in (x_np, b_np))
    out, tout = _chain(tinypix, x, b, picks), _chain(torch, tx, tb, picks)
    np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-9, atol=1e-12)
    out.backward()
    try:
        tout.backward()
    except RuntimeError as e:  # PyTorch refuses when a value saved for backward was overwritten
        assert refused_ok and "modified by an inplace operation" in str(e)
        return
    for ours, theirs in ((x, tx), (b, tb)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [name for name, _ in OPS])
@given(shapes(max_dims=3), seeds)
def test_each_inplace_op_gives_pytorchs_values_and_gradients(name, shape, seed):
    _compare_chain([[n for n, _ in OPS].index(name)], shape, seed, refused_ok=False)


@given(st.lists(st.integers(0, len(OPS) - 1), min_size=2, max_size=4), shapes(max_dims=3), seeds)
def test_inplace_chains_give_pytorchs_values_and_gradients(picks, shape, seed):
    """Where PyTorch computes the gradient of a chain, tinypix's is the same (where PyTorch refuses,
    because an op saved a value a later one overwrote, tinypix's is that of the values used)."""
    _compare_chain(picks, shape, seed, refused_ok=True)


@given(st.lists(st.integers(0, len(OPS) - 1), min_size=1, max_size=3), shapes(max_dims=2, max_side=3), seeds)
def test_inplace_chains_gradcheck(picks, shape, seed):
    x_np, b_np = _inputs(seed, shape)
    gradcheck(lambda x, b: _chain(tinypix, x, b, picks),
              (tinypix.tensor(x_np, requires_grad=True), tinypix.tensor(b_np, requires_grad=True)))


@pytest.mark.parametrize("name", [name for name, _ in OPS])
def test_a_leaf_that_requires_grad_is_refused_as_in_pytorch(name):
    torch = pytest.importorskip("torch")
    fn = dict(OPS)[name]
    message = "a leaf Variable that requires grad is being used in an in-place operation."
    with pytest.raises(RuntimeError, match=message):
        fn(torch, torch.ones(3, requires_grad=True), torch.ones(3))
    with pytest.raises(RuntimeError, match=message + ".*no_grad"):
        fn(tinypix, tinypix.ones(3, requires_grad=True), tinypix.ones(3))


def test_without_recording_values_are_written_so_views_see_them():
    """Under no_grad (a hand-written SGD step) or when nothing requires grad, the array itself
    changes: a view taken before sees it, and the Tensor stays a leaf."""
    w = tinypix.tensor([1.0, 2.0, 3.0], requires_grad=True)
    view = w[:2]
    (w * w).sum().backward()
    with tinypix.no_grad():
        w -= 0.1 * w.grad
        w.grad.zero_()
    assert w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.detach().numpy(), [0.8, 1.6, 2.4], rtol=1e-6)
    np.testing.assert_allclose(view.detach().numpy(), [0.8, 1.6], rtol=1e-6)
    assert w.grad.tolist() == [0.0, 0.0, 0.0]
    a = tinypix.zeros(2, 3)
    row = a[1]
    alias = a
    alias += 1
    a[0].fill_(5.0)
    a.view(-1)[-1].add_(2)
    assert a.tolist() == [[5.0] * 3, [1.0, 1.0, 3.0]] and row.tolist() == [1.0, 1.0, 3.0]


def test_in_a_graph_the_tensor_is_rebound_and_views_keep_the_old_values():
    """The documented difference: a view of a graph tensor taken before an in-place op keeps the
    old values (PyTorch's view would see the new ones); nodes that saved the old value use it."""
    x = tinypix.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * 2.0
    view = y[:2]
    before = y.grad_fn
    y.add_(10.0)
    assert y.grad_fn is not before and y.tolist() == [12.0, 6.0, 16.0]
    assert view.tolist() == [2.0, -4.0]
    w = tinypix.tensor([1.0, 1.0, 1.0], requires_grad=True)
    s = (y * w).sum()  # saves y = [12, 6, 16] for dw
    y.mul_(0.0)  # PyTorch would refuse the backward below; tinypix computes what was written
    (s + y.sum()).backward()
    assert w.grad.tolist() == [12.0, 6.0, 16.0] and x.grad.tolist() == [2.0, 2.0, 2.0]


def test_a_constant_updated_from_a_weight_joins_the_graph():
    """A leaf that does not require grad (an accumulator, a buffer) becomes a node, as in PyTorch."""
    torch = pytest.importorskip("torch")
    for m in (tinypix, torch):
        w = m.tensor([1.0, 2.0], requires_grad=True)
        acc = m.zeros(2)
        for k in range(3):
            acc += w * k
        acc.copy_(acc * 2)
        (acc * acc).sum().backward()
        assert not acc.is_leaf and acc.requires_grad
        np.testing.assert_allclose(w.grad.numpy(), [72.0, 144.0])


def test_the_result_keeps_shape_and_dtype():
    with pytest.raises(RuntimeError, match="add_: output with shape \\(3,\\) doesn't match the broadcast shape \\(2, 3\\)"):
        tinypix.ones(3).add_(tinypix.ones(2, 3))
    with pytest.raises(RuntimeError, match="result type float32 can't be cast to the desired output type int64"):
        tinypix.tensor([1, 2]).add_(1.5)
    with pytest.raises(RuntimeError, match="result type int64 can't be cast to the desired output type bool"):
        tinypix.tensor([True]).add_(1)
    x = tinypix.ones(2)
    x += tinypix.ones(2, dtype=tinypix.float64)  # a wider float is cast back, as in PyTorch
    n = tinypix.tensor([7, -7])
    n //= 2
    n %= 3
    assert x.dtype == np.float32 and x.tolist() == [2.0, 2.0] and n.tolist() == [0, 2]
    with pytest.raises(RuntimeError, match="expand"):
        tinypix.ones(3).expand(2, 3).add_(1)


def test_relu_inplace_under_no_grad_writes_into_the_input():
    x = tinypix.tensor([-1.0, 2.0])
    view = x[:]
    assert F.relu(x, inplace=True) is x and view.tolist() == [0.0, 2.0]
    assert F.leaky_relu(tinypix.tensor([-1.0]), 0.5, inplace=True).tolist() == [-0.5]
    assert F.relu(x).tolist() == [0.0, 2.0] and F.relu(x) is not x


def test_scatter_and_masked_fill_in_place_return_self():
    x = tinypix.zeros(2, 3)
    assert x.scatter_(1, tinypix.tensor([[2], [0]]), 1.0) is x
    assert x.masked_fill_(tinypix.tensor([True, False, False]), 7.0) is x
    assert x.scatter_add_(0, tinypix.tensor([[1, 1, 1]]), tinypix.ones(1, 3)) is x
    assert x.tolist() == [[7.0, 0.0, 1.0], [8.0, 1.0, 1.0]]


def test_a_long_chain_of_inplace_ops_backpropagates_without_recursion():
    x = tinypix.tensor([1.0], dtype=tinypix.float64, requires_grad=True)
    y = x * 1.0
    for _ in range(10_000):
        y.mul_(1.0001)
    y.sum().backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-9)


def test_retain_grad_follows_the_latest_version():
    torch = pytest.importorskip("torch")
    grads = []
    for m in (tinypix, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3.0
        y.retain_grad()
        y.mul_(2.0)
        (y * y).sum().backward()
        grads.append((y.grad.numpy().tolist(), x.grad.numpy().tolist()))
    assert grads[0] == grads[1]
