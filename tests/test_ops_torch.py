"""The PyTorch ops added for homework: float64 gradcheck on hypothesis-drawn inputs and
agreement with PyTorch (values and gradients), and drawn comparisons for the ops without
gradients (integer division, tests of values, indices, promotion, creation).

A differentiable case returns its input arrays and ``fn(lib, *inputs)``, written once for both
libraries: ``lib`` is ``tinypix`` or ``torch``, so the case reads as the homework code it checks.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
from tinypix.testing import gradcheck
from tinypix.testing.strategies import broadcastable_shapes, shapes

CASES = {}
seeds = st.integers(0, 2**32 - 1)


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def normal(data, shape):
    return np.random.default_rng(data.draw(seeds, label="seed")).standard_normal(shape)


# -- elementwise -------------------------------------------------------------------------------
@case
def remainder_fmod(data):
    """a = b * (k + f) with f in [0.1, 0.9]: a / b stays away from the integers, where both jump."""
    s1, s2 = data.draw(broadcastable_shapes(2, max_dims=3))
    sa = np.broadcast_shapes(s1, s2)
    rng = np.random.default_rng(data.draw(seeds))
    b = rng.choice([-1, 1], s2) * rng.uniform(0.5, 2.0, s2)
    a = np.broadcast_to(b, sa) * (rng.integers(-3, 4, sa) + rng.uniform(0.1, 0.9, sa))
    return [a, b], lambda m, a, b: m.remainder(a, b) + 2 * m.fmod(a, b) + a % 1.5 - a.fmod(-0.7)


@case
def maximum_minimum(data):
    sa, sb = data.draw(broadcastable_shapes(2, max_dims=3))
    return [normal(data, sa), normal(data, sb)], \
        lambda m, a, b: m.maximum(a, b) * 2 + m.minimum(a, b) + m.max(a, b) * m.min(b, a)


@case
def clone_and_alpha(data):
    sa, sb = data.draw(broadcastable_shapes(2, max_dims=3))
    return [normal(data, sa), normal(data, sb)], \
        lambda m, a, b: m.add(a.clone(), b, alpha=2.5) - a.sub(b, alpha=-1.5)


# -- shape -------------------------------------------------------------------------------------
@case
def repeat(data):
    shape = data.draw(shapes(max_dims=3, max_side=3))
    extra = data.draw(st.integers(0, 2))
    sizes = tuple(data.draw(st.lists(st.integers(1, 3), min_size=len(shape) + extra,
                                     max_size=len(shape) + extra)))
    return [normal(data, shape)], lambda m, x: x.repeat(*sizes) if sizes else x.repeat(())


@case
def repeat_interleave(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=3))
    dim = data.draw(st.sampled_from([None] + list(range(-len(shape), len(shape)))))
    n = int(np.prod(shape)) if dim is None else shape[dim]
    counts = data.draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=n, max_size=n)))

    def fn(m, x):
        repeats = counts if isinstance(counts, int) else m.tensor(counts)
        return m.repeat_interleave(x, repeats, dim=dim)
    return [normal(data, shape)], fn


@case
def transposes(data):
    shape = data.draw(shapes(min_dims=2, max_dims=4, max_side=4))
    return [normal(data, shape)], \
        lambda m, x: x.mT * 2 + (x[(0,) * (x.ndim - 2)].T @ x[(0,) * (x.ndim - 2)]).sum() + \
        x.flatten(0, -2).t().sum()


@case
def squeeze_dims(data):
    shape = data.draw(shapes(min_dims=1, max_dims=4, max_side=2))
    dims = tuple(data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), max_size=len(shape),
                                    unique_by=lambda d: d % len(shape))))
    return [normal(data, shape)], lambda m, x: x.squeeze(dims) * 2 + m.squeeze(x, dims)


@case
def meshgrid(data):
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    indexing = data.draw(st.sampled_from(["ij", "xy"]))
    return [normal(data, (n,)) for n in sizes], \
        lambda m, *xs: m.stack(m.meshgrid(*xs, indexing=indexing)) * m.stack(m.meshgrid(xs, indexing=indexing))


# -- pad ---------------------------------------------------------------------------------------
@st.composite
def pad_geometries(draw):
    """(shape, pad, mode) that PyTorch accepts: the copying modes pad the last k of k+1 or k+2
    dims within their limits; 'constant' pads any dims, and crops with negative values."""
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    if mode == "constant":
        shape = draw(shapes(min_dims=1, max_dims=4, max_side=4))
        k = draw(st.integers(1, len(shape)))
        pad = []
        for n in shape[::-1][:k]:
            before = draw(st.integers(-(n - 1), 3))
            pad += [before, draw(st.integers(-(n - 1 + min(before, 0)), 3))]
        return shape, tuple(pad), mode
    k = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=k + draw(st.integers(1, 2)), max_size=5)))
    shape = shape[:k + 2]
    limit = {"reflect": -1, "replicate": 3, "circular": 0}[mode]  # reflect: < n; circular: <= n
    pad = []
    for n in shape[::-1][:k]:
        top = 3 if mode == "replicate" else n + limit
        pad += [draw(st.integers(0, top)), draw(st.integers(0, top))]
    return shape, tuple(pad), mode


@case
def pad(data):
    shape, widths, mode = data.draw(pad_geometries())
    value = data.draw(st.sampled_from([None, 0.0, -1.5])) if mode == "constant" else None
    kw = {} if value is None else {"value": value}
    return [normal(data, shape)], lambda m, x: m.nn.functional.pad(x, widths, mode=mode, **kw)


def test_pad_needs_tensor_entries_as_ints_and_names_bad_geometries():
    """Pads may be 1-element tensors (size arithmetic in homework); impossible pads say why."""
    x = tinypix.randn(1, 2, 3, 3)
    diff = tinypix.tensor([3])
    assert tinypix.nn.functional.pad(x, [diff // 2, diff - diff // 2, 0, 0]).shape == (1, 2, 3, 6)
    with pytest.raises(ValueError, match="reflect.*dim 1 of shape \\(2, 3\\) has size 3"):
        tinypix.nn.functional.pad(tinypix.randn(2, 3), (3, 0), mode="reflect")
    with pytest.raises(NotImplementedError, match="last 1, 2 or 3 dims"):
        tinypix.nn.functional.pad(x, (1, 1), mode="replicate")
    with pytest.raises(ValueError, match="no value"):
        tinypix.nn.functional.pad(x, (1, 1, 1, 1), mode="circular", value=2.0)


# -- indexing ----------------------------------------------------------------------------------
def _index_for(rng, x_shape, dim, unique):
    """An int64 index no larger than x outside ``dim``; with ``unique``, no position repeats."""
    shape = tuple(rng.integers(1, n + 1) if i != dim else rng.integers(1, x_shape[dim] + 2)
                  for i, n in enumerate(x_shape))
    if unique:
        shape = shape[:dim] + (min(shape[dim], x_shape[dim]),) + shape[dim + 1:]
        full = shape[:dim] + (x_shape[dim],) + shape[dim + 1:]
        return np.argsort(rng.random(full), axis=dim).take(range(shape[dim]), axis=dim)
    return rng.integers(0, x_shape[dim], shape)


@case
def masked_fill(data):
    sm, sx = data.draw(broadcastable_shapes(2, max_dims=3))
    sx = np.broadcast_shapes(sm, sx)
    mask = normal(data, sm) > 0
    in_place = data.draw(st.booleans())

    def fn(m, x, v):
        if in_place:
            return (x * 1.0).masked_fill_(m.tensor(mask), v)
        return x.masked_fill(m.tensor(mask), v) + m.masked_fill(x, m.tensor(mask), 0.5)
    return [normal(data, sx), normal(data, ())], fn


@case
def gather(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    index = _index_for(np.random.default_rng(data.draw(seeds)), shape, dim % len(shape), False)
    return [normal(data, shape)], lambda m, x: m.gather(x, dim, m.tensor(index)) + x.gather(dim, m.tensor(index))


@case
def scatter(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    dim = data.draw(st.integers(0, len(shape) - 1))
    rng = np.random.default_rng(data.draw(seeds))
    unique = _index_for(rng, shape, dim, True)  # scatter: a position written twice has no one value
    repeated = _index_for(rng, shape, dim, False)

    def fn(m, x, src, src2):  # src shaped as index: PyTorch's backward refuses a larger one
        y = x.scatter(dim, m.tensor(unique), src) + m.scatter_add(x, dim, m.tensor(repeated), src2)
        return y + x.scatter(dim, m.tensor(unique), 2.5) + (x * 1.0).scatter_add_(dim, m.tensor(repeated), src2)
    return [normal(data, shape), normal(data, unique.shape), normal(data, repeated.shape)], fn


@case
def index_select_topk_sort(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    k = data.draw(st.integers(0, shape[dim]))
    largest, descending = data.draw(st.booleans()), data.draw(st.booleans())
    idx = np.random.default_rng(data.draw(seeds)).integers(0, shape[dim], data.draw(st.integers(0, 5)))

    def fn(m, x):
        top = m.topk(x, k, dim, largest=largest)
        return m.cat([top.values, x.topk(k, dim=dim, largest=largest)[0], x.index_select(dim, m.tensor(idx)),
                      m.sort(x, dim, descending=descending).values], dim)
    return [normal(data, shape)], fn


# -- reductions and products -------------------------------------------------------------------
def _dim_arg(data, ndim, tuples=True):
    kinds = ["none", "int"] + (["tuple"] if tuples and ndim else [])
    kind = data.draw(st.sampled_from(kinds if ndim else ["none"]))
    if kind == "none":
        return None
    if kind == "int":
        return data.draw(st.integers(-ndim, ndim - 1))
    return tuple(data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


@case
def std(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    dim = _dim_arg(data, len(shape))
    axes = range(len(shape)) if dim is None else [dim] if isinstance(dim, int) else dim
    count = int(np.prod([shape[a] for a in axes]))
    keepdim, correction = data.draw(st.booleans()), data.draw(st.sampled_from([None, 0, 1, 2][:count + 1]))

    def fn(m, x):
        if correction is None:
            return x.std(dim, keepdim=keepdim) + m.std(x, dim, unbiased=False, keepdim=keepdim)
        return x.std(dim, keepdim=keepdim, correction=correction)
    return [normal(data, shape)], fn


@case
def norm(data):
    p = data.draw(st.sampled_from(["fro", 2, 1, float("inf"), float("-inf"), 3, 1.5, 0.5]))
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    dim = _dim_arg(data, len(shape))
    if p == "fro" and isinstance(dim, tuple) and len(dim) != 2:
        dim = None
    keepdim = data.draw(st.booleans())
    x = normal(data, shape)
    x = np.where(x >= 0, x + 0.1, x - 0.1)  # away from 0, where |x| has a kink
    return [x], lambda m, x: x.norm(p, dim, keepdim) if dim is not None or keepdim else m.norm(x, p)


@case
def cosine_similarity(data):
    s1, s2 = data.draw(broadcastable_shapes(2, min_dims=1, max_dims=3))
    ndim = len(np.broadcast_shapes(s1, s2))
    dim = data.draw(st.integers(-ndim, ndim - 1))
    eps = data.draw(st.sampled_from([1e-8, 1e-3]))
    return [normal(data, s1), normal(data, s2)], \
        lambda m, a, b: m.nn.functional.cosine_similarity(a, b, dim=dim, eps=eps)


EQUATIONS = ["ij,jk->ik", "ij,jk", "bij,bjk->bik", "ii->i", "ii", "ij->", "i,j->ij", "ij,ij->i",
             "iij->j", "ijk->kji", "ba", "...ij,...jk->...ik", "i...->...", "ij,j", "bi,bj->bij",
             "ii,ij->j", "ij,kj->ik"]


@case
def einsum(data):
    eq = data.draw(st.sampled_from(EQUATIONS))
    size = {c: data.draw(st.integers(1, 3), label=c) for c in sorted(set(eq) - set(",->."))}
    batch = data.draw(st.lists(st.integers(1, 3), max_size=2))
    ins = eq.split("->")[0].split(",")
    shapes_ = [tuple(batch if "..." in s else []) + tuple(size[c] for c in s.replace("...", "")) for s in ins]
    return [normal(data, s) for s in shapes_], lambda m, *xs: m.einsum(eq, *xs)


@case
def einsum_broadcast(data):
    """Size-1 dims broadcast in einsum, as in elementwise ops: their gradient sums the copies."""
    n, k = data.draw(st.integers(2, 3)), data.draw(st.integers(1, 3))
    return [normal(data, (1, k)), normal(data, (n, k))], lambda m, a, b: m.einsum("ij,ij->ij", a, b)


@case
def softmax_with_dtype(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    return [normal(data, shape)], \
        lambda m, x: m.nn.functional.softmax(x, dim, dtype=m.float64) + x.log_softmax(dim, dtype=m.float64)


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_gradcheck(name, data):
    arrays, fn = CASES[name](data)
    gradcheck(lambda *xs: fn(tinypix, *xs), [tinypix.tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_matches_torch(name, data):
    torch = pytest.importorskip("torch")
    arrays, fn = CASES[name](data)
    xs = [tinypix.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = fn(tinypix, *xs), fn(torch, *ts)
    assert y.shape == tuple(ty.shape) and y.dtype.name == str(ty.dtype).split(".")[-1]
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-7, atol=1e-9)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(tinypix.tensor(g))
    ty.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        want = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


# -- ops without gradients, drawn against PyTorch ----------------------------------------------
def _same(ours, theirs):
    """Same shape, dtype and values (NaN where PyTorch has NaN)."""
    assert ours.shape == tuple(theirs.shape), (ours.shape, theirs.shape)
    assert ours.dtype.name == str(theirs.dtype).split(".")[-1], (ours.dtype, theirs.dtype)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def _both(torch, *arrays):
    return [tinypix.tensor(a) for a in arrays], [torch.tensor(a) for a in arrays]


@given(broadcastable_shapes(2, max_dims=3), seeds, st.sampled_from(["int64", "int32", "float32", "float64"]))
def test_floor_divide_and_remainder_round_down_like_pytorch(shapes_, seed, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    a = rng.integers(-20, 21, shapes_[0]).astype(dtype)
    b = (rng.choice([-1, 1], shapes_[1]) * rng.integers(1, 6, shapes_[1])).astype(dtype)
    if dtype.startswith("float"):
        a, b = a * 0.75, b * 1.25
    (x, y), (tx, ty) = _both(torch, a, b)
    for ours, theirs in [(x // y, tx // ty), (x % y, tx % ty), (x.fmod(y), tx.fmod(ty)),
                         (x // 3, tx // 3), (-7 // y, -7 // ty), (x % -4, tx % -4), (5 % y, 5 % ty),
                         (x.div(y, rounding_mode="trunc"), tx.div(ty, rounding_mode="trunc")),
                         (tinypix.div(x, 2, rounding_mode="floor"), torch.div(tx, 2, rounding_mode="floor")),
                         (x // 2.5, tx // 2.5), (tinypix.fmod(x, 3), torch.fmod(tx, 3))]:
        _same(ours, theirs)


def test_integer_division_by_zero_raises_and_float_gives_inf():
    torch = pytest.importorskip("torch")
    for op in (lambda a, b: a // b, lambda a, b: a % b, lambda a, b: a.fmod(b)):
        with pytest.raises(ZeroDivisionError, match="division by zero"):
            op(tinypix.tensor([1, 2]), tinypix.tensor([1, 0]))
        (x, y), (tx, ty) = _both(torch, np.array([1.0, -1.0, 0.0]), np.zeros(3))
        _same(op(x, y), op(tx, ty))


def test_floor_divide_has_no_gradient_and_rounded_div_a_zero_one():
    x = tinypix.tensor([2.5, -3.5], requires_grad=True)
    with pytest.raises(RuntimeError, match="floor_divide.*not implemented"):
        (x // 2).sum().backward()
    tinypix.div(x, 2, rounding_mode="floor").sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


@given(shapes(max_dims=3), seeds)
def test_isnan_isinf_isfinite_isclose_allclose(shape, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    a = rng.choice([0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e-9], shape)
    b = a + rng.choice([0.0, 1e-6, 1e-4, np.nan], shape)
    (x, y), (tx, ty) = _both(torch, a, b)
    for fn in ("isnan", "isinf", "isfinite"):
        _same(getattr(tinypix, fn)(x), getattr(torch, fn)(tx))
        _same(getattr(x, fn)(), getattr(tx, fn)())
    for kw in ({}, {"rtol": 1e-3}, {"atol": 1e-5, "equal_nan": True}):
        _same(tinypix.isclose(x, y, **kw), torch.isclose(tx, ty, **kw))
        assert tinypix.allclose(x, y, **kw) == torch.allclose(tx, ty, **kw)
        assert x.allclose(y, **kw) == tx.allclose(ty, **kw)
    assert tinypix.equal(x, x) == torch.equal(tx, tx)


def test_isclose_wants_one_dtype_as_pytorch():
    with pytest.raises(TypeError, match="isclose: input has dtype int64 but other has float32"):
        tinypix.allclose(tinypix.tensor([1]), tinypix.tensor([1.0]))


@given(shapes(max_dims=3), seeds, st.booleans())
def test_one_hot(shape, seed, infer):
    torch = pytest.importorskip("torch")
    labels = np.random.default_rng(seed).integers(0, 5, shape)
    n = -1 if infer else int(labels.max(initial=0)) + 1 + seed % 3
    _same(tinypix.nn.functional.one_hot(tinypix.tensor(labels), n),
          torch.nn.functional.one_hot(torch.tensor(labels), n))


def test_one_hot_refuses_what_pytorch_refuses():
    F = tinypix.nn.functional
    with pytest.raises(ValueError, match="smaller than num_classes=2"):
        F.one_hot(tinypix.tensor([0, 3]), 2)
    with pytest.raises(ValueError, match="non-negative"):
        F.one_hot(tinypix.tensor([0, -1]))
    with pytest.raises(TypeError, match="int64"):
        F.one_hot(tinypix.tensor([0.0, 1.0]))


@given(shapes(min_dims=1, max_dims=3), seeds, st.booleans())
def test_sort_argsort_topk_indices_with_ties(shape, seed, descending):
    """Small integers tie often: a stable sort keeps equal values in their order, as PyTorch's."""
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(seed).integers(0, 3, shape).astype(np.float32)
    dim = seed % len(shape)
    (x,), (tx,) = _both(torch, a)
    got = x.sort(dim=dim, descending=descending, stable=True)
    want = tx.sort(dim=dim, descending=descending, stable=True)
    _same(got.values, want.values)
    _same(got.indices, want.indices)
    _same(tinypix.argsort(x, dim, descending=descending, stable=True),
          torch.argsort(tx, dim=dim, descending=descending, stable=True))
    distinct = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    (x,), (tx,) = _both(torch, distinct)
    k = seed % (shape[dim] + 1)
    for largest in (True, False):
        got, want = tinypix.topk(x, k, dim, largest), torch.topk(tx, k, dim, largest)
        _same(got.indices, want.indices)
        _same(got.values, want.values)
    assert got._fields == ("values", "indices")


@given(st.sampled_from(["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]),
       st.sampled_from(["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]),
       st.booleans(), st.booleans(), st.sampled_from([None, True, 3, 2.5]))
def test_promotion_follows_pytorch(da, db, a_0d, b_0d, scalar):
    """Binary ops, where and cat promote as torch.result_type: a float beats integers whatever their
    size; a 0-d tensor or a number counts only when it is of a higher kind."""
    torch = pytest.importorskip("torch")
    a = np.ones(() if a_0d else (2,), da)
    b = np.ones(() if b_0d else (2,), db)
    (x, y), (tx, ty) = _both(torch, a, b)
    assert tinypix.result_type(x, y) == np.dtype(str(torch.result_type(tx, ty)).split(".")[-1])
    if da != "bool" or db != "bool":
        assert (x * y).dtype.name == str((tx * ty).dtype).split(".")[-1]
        assert tinypix.where(x > 0, x, y).dtype.name == str(torch.where(tx > 0, tx, ty).dtype).split(".")[-1]
    got, want = tinypix.cat([x.reshape(-1), y.reshape(-1)]), torch.cat([tx.reshape(-1), ty.reshape(-1)])
    assert got.dtype.name == str(want.dtype).split(".")[-1]
    if scalar is not None and da != "bool":
        assert (x + scalar).dtype.name == str((tx + scalar).dtype).split(".")[-1]
        assert tinypix.where(x > 0, scalar, x).dtype.name == str(torch.where(tx > 0, scalar, tx).dtype).split(".")[-1]


@given(st.floats(-5, 5), st.floats(-5, 5), st.integers(0, 9), st.integers(1, 4), st.integers(1, 4), seeds)
def test_creation_functions_match_pytorch(start, end, steps, n, m, seed):
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(tinypix.linspace(start, end, steps).numpy(),
                               torch.linspace(start, end, steps).numpy(), rtol=1e-6, atol=1e-6)
    assert tinypix.linspace(start, end, steps).dtype == np.float32
    _same(tinypix.eye(n), torch.eye(n))
    _same(tinypix.eye(n, m, dtype=tinypix.long), torch.eye(n, m, dtype=torch.long))
    a = np.random.default_rng(seed).integers(0, 5, (n, m))
    (x,), (tx,) = _both(torch, a)
    _same(tinypix.full_like(x, 2.7), torch.full_like(tx, 2.7))
    _same(tinypix.full_like(x, 2.7, dtype=tinypix.float), torch.full_like(tx, 2.7, dtype=torch.float))
    for name in ("zeros_like", "ones_like"):
        _same(getattr(tinypix, name)(x), getattr(torch, name)(tx))
    for name in ("empty_like", "randn_like", "rand_like"):
        kw = {} if name == "empty_like" else {"dtype": tinypix.float64}
        got, want = getattr(tinypix, name)(x.double(), **kw), getattr(torch, name)(tx.double())
        assert got.shape == tuple(want.shape) and got.dtype == np.float64
    r = tinypix.rand_like(tinypix.zeros(1000))
    assert 0 <= r.min().item() and r.max().item() < 1


def test_meshgrid_without_indexing_warns_and_uses_ij():
    with pytest.warns(UserWarning, match="indexing argument"):
        a, b = tinypix.meshgrid(tinypix.arange(2), tinypix.arange(3))
    assert a.shape == b.shape == (2, 3) and a[:, 0].tolist() == [0, 1]


def test_transpose_of_other_than_matrices_warns_as_pytorch():
    torch = pytest.importorskip("torch")
    for shape in [(), (3,), (2, 3, 4)]:
        x = tinypix.tensor(np.arange(np.prod(shape)).reshape(shape))
        with pytest.warns(UserWarning, match="deprecated"):
            y = x.T
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _same(y, torch.tensor(np.arange(np.prod(shape)).reshape(shape)).T)
    with pytest.raises(RuntimeError, match="mT is only supported on matrices"):
        tinypix.ones(3).mT


def test_norm_and_std_corner_cases_follow_pytorch():
    torch = pytest.importorskip("torch")
    zero = tinypix.zeros(3, dtype=tinypix.float64, requires_grad=True)
    tzero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (zero.norm() + zero.std() + zero.norm(3)).backward()
    (tzero.norm() + tzero.std() + tzero.norm(3)).backward()
    assert zero.grad.tolist() == tzero.grad.tolist() == [0.0, 0.0, 0.0]  # not 0/0
    assert tinypix.tensor([0.0, 2.0, -1.0]).norm(0).item() == 2.0
    with pytest.raises(TypeError, match="norm: expected a floating-point tensor"):
        tinypix.tensor([1, 2]).norm()
    with pytest.raises(ValueError, match="'nuc' is not supported"):
        tinypix.ones(2, 2).norm("nuc")


def test_indexing_ops_name_bad_indices():
    x = tinypix.ones(2, 3)
    with pytest.raises(IndexError, match="gather: index 3 is out of bounds for dim 1 with size 3"):
        x.gather(1, tinypix.tensor([[0, 3]]))
    with pytest.raises(TypeError, match="int64"):
        x.gather(1, tinypix.tensor([[0.0]]))
    with pytest.raises(TypeError, match="masked_fill: the mask must be a bool tensor"):
        x.masked_fill(tinypix.tensor([1, 0, 1]), 2.0)
    with pytest.raises(ValueError, match="topk: k=4 is out of range"):
        x.topk(4)
    with pytest.raises(TypeError, match="einsum: operands have different dtypes"):
        tinypix.einsum("ij,jk", x, x.double().t())
    with pytest.raises(ValueError, match="einsum: .* 2 operand"):
        tinypix.einsum("ij,jk->ik", x)


def test_implicit_softmax_dim_is_pytorchs_with_its_warning():
    torch = pytest.importorskip("torch")
    for ndim in range(5):
        a = np.random.default_rng(ndim).standard_normal((2, 3, 4, 2)[:ndim])
        for name in ("softmax", "log_softmax"):
            with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name}") as record:
                got = getattr(tinypix.nn.functional, name)(tinypix.tensor(a))
            assert record[0].filename == __file__  # the warning names the caller's line
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = getattr(torch.nn.functional, name)(torch.tensor(a))
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
            with pytest.warns(UserWarning) as record:
                getattr(tinypix.tensor(a), name)()
            assert record[0].filename == __file__
