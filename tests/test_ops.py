"""Every core op: float64 gradcheck on hypothesis-drawn shapes, and agreement with PyTorch.

Each case draws its inputs (shapes, dims, flags) and returns NumPy arrays plus two functions
that apply the op: one on tinypix tensors, one on torch tensors. Values come from a drawn seed
and a normal distribution, so they have no ties (max) and sit away from kinks (relu, abs).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix as tp
import tinypix.functional as F
from tinypix.testing import gradcheck
from tinypix.testing.strategies import broadcastable_shapes, shapes

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def values(data, shape, low=None, away_from=None):
    """Normal values from a drawn seed; optionally shifted above ``low`` or away from a point."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    a = np.random.default_rng(seed).standard_normal(shape)
    if low is not None:
        a = low + 0.2 + np.abs(a)
    if away_from is not None:
        a = np.where(a >= away_from, a + 0.05, a - 0.05)
    return a


def dims(data, ndim, allow_tuple=True):
    """None, an int or a tuple of distinct dims for a tensor of ``ndim`` dims (negative too)."""
    if ndim == 0:
        return None
    kind = data.draw(st.sampled_from(["none", "int", "tuple"] if allow_tuple else ["none", "int"]))
    if kind == "none":
        return None
    if kind == "int":
        return data.draw(st.integers(-ndim, ndim - 1))
    return tuple(data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


# -- elementwise -----------------------------------------------------------------------------
def _unary(name, tp_fn, torch_fn, **value_kw):
    def make(data):
        return [values(data, data.draw(shapes()), **value_kw)], tp_fn, torch_fn
    make.__name__ = name
    case(make)


_unary("neg", lambda x: -x, lambda x: -x)
_unary("exp", lambda x: x.exp(), lambda x: x.exp())
_unary("log", lambda x: x.log(), lambda x: x.log(), low=0.0)
_unary("sqrt", lambda x: x.sqrt(), lambda x: x.sqrt(), low=0.0)
_unary("abs", lambda x: abs(x), lambda x: abs(x), away_from=0.0)
_unary("tanh", lambda x: x.tanh(), lambda x: x.tanh())
_unary("sigmoid", lambda x: x.sigmoid(), lambda x: x.sigmoid())
_unary("relu", lambda x: x.relu(), lambda x: x.relu(), away_from=0.0)
_unary("leaky_relu", lambda x: F.leaky_relu(x, 0.2),
       lambda x: __import__("torch").nn.functional.leaky_relu(x, 0.2), away_from=0.0)
_unary("clamp", lambda x: x.clamp(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7), away_from=0.7)
_unary("pow_scalar", lambda x: x ** 3, lambda x: x ** 3)
_unary("rpow_scalar", lambda x: 2.0 ** x, lambda x: 2.0 ** x)
_unary("scalar_arith", lambda x: (3.0 - x) * 2.0 / (x * x + 1.0) + 1,
       lambda x: (3.0 - x) * 2.0 / (x * x + 1.0) + 1)


def _binary(name, tp_fn, torch_fn, b_low=None):
    def make(data):
        sa, sb = data.draw(broadcastable_shapes(2))
        return [values(data, sa), values(data, sb, low=b_low)], tp_fn, torch_fn
    make.__name__ = name
    case(make)


_binary("add", lambda a, b: a + b, lambda a, b: a + b)
_binary("sub", lambda a, b: a - b, lambda a, b: a - b)
_binary("mul", lambda a, b: a * b, lambda a, b: a * b)
_binary("div", lambda a, b: a / b, lambda a, b: a / b, b_low=0.0)
_binary("pow", lambda a, b: b ** a, lambda a, b: b ** a, b_low=0.0)


@case
def where(data):
    sc, sa, sb = data.draw(broadcastable_shapes(3))
    cond = values(data, sc) > 0
    return [values(data, sa), values(data, sb)], \
        lambda a, b: tp.where(tp.tensor(cond), a, b), \
        lambda a, b: __import__("torch").where(__import__("torch").tensor(cond), a, b)


@case
def matmul(data):
    batch_a, batch_b = data.draw(broadcastable_shapes(2, max_dims=2, max_side=3))
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    vec = data.draw(st.sampled_from(["none", "a", "b"]))
    sa = (k,) if vec == "a" else batch_a + (n, k)
    sb = (k,) if vec == "b" else batch_b + (k, m)
    return [values(data, sa), values(data, sb)], lambda a, b: a @ b, lambda a, b: a @ b


# -- reductions ------------------------------------------------------------------------------
def _reduce(name, method, torch_method=None, min_count=1):
    def make(data):
        shape = data.draw(shapes(max_side=4))
        dim = dims(data, len(shape), allow_tuple=method not in ("softmax", "log_softmax"))
        if method in ("softmax", "log_softmax") and dim is None:
            dim = -1 if shape else None
            if dim is None:
                shape = (3,)
                dim = 0
        axes = range(len(shape)) if dim is None else ((dim,) if isinstance(dim, int) else dim)
        if int(np.prod([shape[a] for a in axes])) < min_count:
            shape, dim = (2,) + shape[1:] if shape else (2,), 0
        keepdim = data.draw(st.booleans())
        tm = torch_method or method

        def tp_fn(x):
            if method in ("softmax", "log_softmax"):
                return getattr(x, method)(dim)
            out = getattr(x, method)(dim=dim, keepdim=keepdim)
            return out.values if isinstance(dim, int) and method in ("max", "min") else out

        def torch_fn(x):
            if method in ("softmax", "log_softmax"):
                return getattr(x, tm)(dim)
            if dim is None:
                out = getattr(x, tm)()
                return out.reshape([1] * x.ndim) if keepdim else out
            return getattr(x, tm)(dim=dim, keepdim=keepdim)  # amax/amin give the values only

        return [values(data, shape)], tp_fn, torch_fn
    make.__name__ = name
    case(make)


_reduce("sum", "sum")
_reduce("mean", "mean")
_reduce("var", "var", min_count=2)
_reduce("max", "max", "amax")
_reduce("min", "min", "amin")
_reduce("softmax", "softmax")
_reduce("log_softmax", "log_softmax")


# -- shape -----------------------------------------------------------------------------------
@case
def reshape(data):
    shape = data.draw(shapes())
    size = int(np.prod(shape))
    target = [d for d in (1, 2, 3, 4, 5) if size % d == 0]
    first = data.draw(st.sampled_from(target))
    new = (first, -1)
    return [values(data, shape)], lambda x: x.reshape(new), lambda x: x.reshape(new)


@case
def permute(data):
    shape = data.draw(shapes(min_dims=1))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    return [values(data, shape)], lambda x: x.permute(*perm), lambda x: x.permute(*perm)


@case
def transpose_flatten_squeeze(data):
    shape = data.draw(shapes(min_dims=2, max_dims=4))
    return [values(data, shape)], \
        lambda x: x.transpose(0, -1).flatten(1).unsqueeze(1).squeeze(1) * 2, \
        lambda x: x.transpose(0, -1).flatten(1).unsqueeze(1).squeeze(1) * 2


@case
def expand(data):
    shape = data.draw(shapes(max_dims=3, max_side=3))
    target = tuple(data.draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    lead = (data.draw(st.integers(1, 3)),)
    return [values(data, shape)], lambda x: x.expand(*(lead + target)), lambda x: x.expand(*(lead + target))


@case
def basic_index(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=2))
    start = data.draw(st.integers(0, shape[0] - 1))
    step = data.draw(st.integers(1, 2))
    key = (slice(start, None, step), Ellipsis, 0) if len(shape) > 1 else slice(start, None, step)
    return [values(data, shape)], lambda x: x[key], lambda x: x[key]


@case
def integer_array_index(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    idx = np.asarray(data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=6)))
    return [values(data, shape)], lambda x: x[idx] * 1.5, \
        lambda x: x[__import__("torch").from_numpy(idx)] * 1.5


@case
def cat_stack(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    n = data.draw(st.integers(1, 3))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    ins = [values(data, shape) for _ in range(n)]
    return ins, lambda *xs: tp.cat([tp.stack(xs, dim), tp.stack(xs, dim)], dim), \
        lambda *xs: __import__("torch").cat([__import__("torch").stack(xs, dim)] * 2, dim)


@case
def pad(data):
    shape = data.draw(shapes(min_dims=1, max_dims=4))
    n = data.draw(st.integers(1, len(shape)))
    widths = tuple(data.draw(st.lists(st.integers(0, 2), min_size=2 * n, max_size=2 * n)))
    return [values(data, shape)], lambda x: F.pad(x, widths, value=0.5), \
        lambda x: __import__("torch").nn.functional.pad(x, widths, value=0.5)


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_gradcheck(name, data):
    arrays, tp_fn, _ = CASES[name](data)
    gradcheck(tp_fn, [tp.tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_matches_torch(name, data):
    torch = pytest.importorskip("torch")
    arrays, tp_fn, torch_fn = CASES[name](data)
    xs = [tp.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = tp_fn(*xs), torch_fn(*ts)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(tp.tensor(g))
    ty.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-6)
