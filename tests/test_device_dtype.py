"""``tinypix.device``, PyTorch's dtype names, ``.to()`` / ``.type()``, and the grad-mode switches
(``no_grad``, ``enable_grad``, ``set_grad_enabled``) in all the forms PyTorch code uses them."""
import builtins
import pickle
import sys
import threading

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinypix
from tinypix.backend import normalize_device

DTYPES = {"long": "int64", "int": "int32", "float": "float32", "double": "float64", "half": "float16",
          "bool": "bool", "short": "int16", "int8": "int8", "int16": "int16", "int32": "int32",
          "int64": "int64", "uint8": "uint8", "float16": "float16", "float32": "float32",
          "float64": "float64"}


# -- devices ---------------------------------------------------------------------------------
def test_device_is_like_torch_device():
    d = tinypix.device("cuda:0")
    assert (d.type, d.index, str(d), repr(d)) == ("cuda", 0, "cuda:0", "device(type='cuda', index=0)")
    assert (tinypix.device("cuda", 0) == d and tinypix.device("cuda").index is None
            and repr(tinypix.device("cpu")) == "device(type='cpu')")
    assert d == "cuda" and d == "cuda:0" and d == tinypix.device("cuda") and d != "cpu"
    assert tinypix.device("cpu") == "cpu" and tinypix.device(tinypix.device("cpu")) == "cpu"
    assert len({tinypix.device("cuda"), tinypix.device("cuda:0"), "cuda"}) == 1
    assert {tinypix.device("cpu"): 1}["cpu"] == 1
    assert pickle.loads(pickle.dumps(d)) == d and pickle.loads(pickle.dumps(d)).index == 0
    assert normalize_device(d) == "cuda" and normalize_device(tinypix.device("cpu")) == "cpu"


@pytest.mark.parametrize("bad, message", [("cuda:1", "GPU 0 only"), ("mps", "unknown device"),
                                          ("cuda:x", "invalid device string"), (0, "expected a string")])
def test_bad_devices_are_named(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        tinypix.device(bad)


def test_tensor_device_and_moves_accept_devices():
    cpu = tinypix.device("cpu")
    x = tinypix.zeros(2, 3, device=cpu)
    assert x.device.type == "cpu" and x.device.index is None and x.device == "cpu" and not x.is_cuda
    assert isinstance(x.device, tinypix.device) and f"{x.device}" == "cpu"
    assert x.to(cpu) is x and x.to(device=cpu) is x and x.to(cpu, tinypix.float64).dtype == np.float64
    for make in (lambda: tinypix.ones(2, device=cpu), lambda: tinypix.tensor([1.0], device=cpu),
                 lambda: tinypix.randn(2, device=cpu), lambda: tinypix.arange(3, device=cpu),
                 lambda: tinypix.linspace(0, 1, 3, device=cpu), lambda: tinypix.eye(2, device=cpu),
                 lambda: tinypix.zeros_like(x, device=cpu)):
        assert make().device == cpu
    net = tinypix.nn.Linear(2, 2).to(cpu)
    assert net.weight.device == "cpu"
    y = tinypix.ones(2)
    assert y.to(tinypix.ones(1, dtype=tinypix.float64)).dtype == np.float64  # .to(other)
    assert y.to(copy=True) is not y and y.to(copy=True).tolist() == y.tolist()


@pytest.mark.skipif(not tinypix.is_cuda_available(), reason="needs CuPy and a GPU")
def test_cuda_tensor_device_is_cuda_index_0():
    g = tinypix.device("cuda")
    x = tinypix.ones(2, device=g)
    assert x.device == g and x.device.index == 0 and repr(x.device) == "device(type='cuda', index=0)"
    assert x.is_cuda and x.to(tinypix.device("cpu")).device == "cpu"
    with pytest.raises(RuntimeError, match="'cpu' and 'cuda:0'"):
        x + tinypix.ones(2)


# -- dtypes ----------------------------------------------------------------------------------
@given(st.sampled_from(sorted(DTYPES)), st.sampled_from(["tensor", "zeros", "ones", "full", "empty",
                                                         "arange", "to", "type", "new_zeros", "eye"]))
def test_dtype_names_work_everywhere_as_in_pytorch(name, where):
    torch = pytest.importorskip("torch")
    assume(not (where == "arange" and DTYPES[name] == "bool"))  # neither library counts in bools
    dtype = getattr(tinypix, name)
    make = {"tensor": lambda m, d: m.tensor([1, 0], dtype=d), "zeros": lambda m, d: m.zeros(2, dtype=d),
            "ones": lambda m, d: m.ones(2, dtype=d), "full": lambda m, d: m.full((2,), 1, dtype=d),
            "empty": lambda m, d: m.empty(2, dtype=d), "arange": lambda m, d: m.arange(3, dtype=d),
            "to": lambda m, d: m.ones(2).to(d), "type": lambda m, d: m.ones(2).type(d),
            "new_zeros": lambda m, d: m.ones(2).new_zeros(3, dtype=d), "eye": lambda m, d: m.eye(2, dtype=d)}
    ours, theirs = make[where](tinypix, dtype), make[where](torch, getattr(torch, name))
    assert ours.dtype == np.dtype(DTYPES[name]) == np.dtype(str(theirs.dtype).split(".")[-1])
    assert ours.dtype == dtype  # x.dtype == torch.long reads as in PyTorch


def test_dtype_names_do_not_hide_builtins_inside_the_package():
    assert tinypix.float is np.float32 and tinypix.int is np.int32 and tinypix.bool is np.bool_
    for name, module in list(sys.modules.items()):
        if name.startswith("tinypix.") and module is not None:
            for builtin in ("float", "int", "bool"):
                assert getattr(module, builtin, getattr(builtins, builtin)) is getattr(builtins, builtin), \
                    f"{name}.{builtin} hides the builtin"


def test_type_names_and_conversions_follow_pytorch():
    torch = pytest.importorskip("torch")
    for name in ("float32", "float64", "int64", "int32", "uint8", "bool", "float16"):
        assert tinypix.ones(1, dtype=getattr(tinypix, name)).type() == \
            torch.ones(1, dtype=getattr(torch, name)).type()
    assert tinypix.ones(2).type("torch.LongTensor").dtype == np.int64
    x = tinypix.tensor([1.5, 2.5], requires_grad=True)
    assert x.type_as(tinypix.tensor([1])).dtype == np.int64 and x.half().dtype == np.float16
    assert x.new_tensor([1, 2]).dtype == np.float32 and x.new_ones((2, 2)).shape == (2, 2)
    assert x.new_full((3,), 7).tolist() == [7.0] * 3 and x.new_empty(4).dtype == np.float32
    with pytest.raises(TypeError, match="not a dtype: 'cuda:2'"):
        x.to(dtype="cuda:2")


# -- grad mode -------------------------------------------------------------------------------
def test_no_grad_and_enable_grad_work_in_every_form():
    x = tinypix.ones(2, requires_grad=True)

    @tinypix.no_grad
    def bare(t):
        """doc"""
        return t * 2

    @tinypix.no_grad()
    def called(t):
        return t * 2

    assert not bare(x).requires_grad and not called(x).requires_grad
    assert bare.__name__ == "bare" and bare.__doc__ == "doc"
    with tinypix.no_grad():
        assert not (x * 2).requires_grad

        @tinypix.enable_grad
        def on(t):
            return t * 2
        assert on(x).requires_grad
        with tinypix.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    with pytest.raises(TypeError, match="no_grad\\(\\) takes no arguments"):
        tinypix.no_grad(5)


def test_set_grad_enabled_as_block_call_and_decorator():
    x = tinypix.ones(2, requires_grad=True)
    for train in (True, False):
        with tinypix.set_grad_enabled(train):
            assert (x * 2).requires_grad == train
    assert tinypix.is_grad_enabled()
    tinypix.set_grad_enabled(False)
    try:
        assert not tinypix.is_grad_enabled()
    finally:
        tinypix.set_grad_enabled(True)

    @tinypix.set_grad_enabled(False)
    def frozen(t):
        return t * 2
    assert tinypix.is_grad_enabled() and not frozen(x).requires_grad and tinypix.is_grad_enabled()


def test_bare_no_grad_is_per_thread_and_per_call():
    """@no_grad without parentheses keeps what @no_grad() has: each call its own block, and
    another thread's recording untouched."""
    seen, started, release = [], threading.Event(), threading.Event()

    @tinypix.no_grad
    def hold():
        started.set()
        release.wait(5)
        return tinypix.is_grad_enabled()

    thread = threading.Thread(target=lambda: seen.append(hold()))
    thread.start()
    started.wait(5)
    assert tinypix.is_grad_enabled()  # this thread still records
    release.set()
    thread.join()
    assert seen == [False]

    @tinypix.no_grad
    def recurse(n):
        return tinypix.is_grad_enabled() if n == 0 else recurse(n - 1)
    assert recurse(3) is False and tinypix.is_grad_enabled()
