"""max_pool2d, avg_pool2d, max_unpool2d and adaptive_avg_pool2d: gradients, PyTorch, bad input."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinypix
import tinypix.functional as F
from tinypix.functional.pool import adaptive_max_pool2d
from tinypix.testing import gradcheck
from tinypix.testing.strategies import conv_geometries

seeds = st.integers(0, 2**32 - 1)


@st.composite
def pool_geometries(draw, dilation=True):
    """x shape and keyword arguments of a pooling whose padding is at most half the kernel."""
    g = draw(conv_geometries(max_size=7, max_channels=3, max_dilation=2 if dilation else 1, max_groups=1))
    kw = {"kernel_size": g["kernel_size"], "stride": g["stride"], "ceil_mode": draw(st.booleans()),
          "padding": tuple(min(p, k // 2) for p, k in zip(g["padding"], g["kernel_size"]))}
    d = g["dilation"] if dilation else (1, 1)
    if dilation:
        kw["dilation"] = d
    # Less padding than conv_geometries drew: the window must still fit.
    assume(all(dd * (k - 1) + 1 <= n + 2 * p for n, k, p, dd in
               zip((g["H"], g["W"]), kw["kernel_size"], kw["padding"], d)))
    return (g["N"], g["C"], g["H"], g["W"]), kw


def _t(a, grad=True):
    return tinypix.tensor(a, requires_grad=grad)


def _max_pool_or_reject(x, **kw):
    """max_pool2d, skipping the example when a dilated window lands only on padding (an error
    in tinypix; PyTorch returns -inf there)."""
    try:
        return F.max_pool2d(x, **kw)
    except ValueError as e:
        assume("covers only padding" not in str(e))
        raise


def _compare_with_torch(op, torch_op, x, rng, **kw):
    torch = pytest.importorskip("torch")
    a, ta = _t(x), torch.tensor(x, requires_grad=True)
    y, ty = op(a, **kw), torch_op(ta, **kw)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-6, rtol=1e-6)
    dy = rng.standard_normal(y.shape)
    y.backward(tinypix.tensor(dy))
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), atol=1e-6, rtol=1e-6)


# -- max_pool2d --------------------------------------------------------------------------------
@given(pool_geometries(), seeds)
def test_max_pool2d_gradcheck(geo, seed):
    shape, kw = geo
    x = _t(np.random.default_rng(seed).standard_normal(shape))  # distinct values: no ties
    _max_pool_or_reject(x, **kw)
    assert gradcheck(lambda x: F.max_pool2d(x, **kw), (x,))


@given(pool_geometries(), seeds)
def test_max_pool2d_values_and_indices_match_torch(geo, seed):
    torch = pytest.importorskip("torch")
    shape, kw = geo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    y, indices = _max_pool_or_reject(_t(x, grad=False), return_indices=True, **kw)
    ty, tindices = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    np.testing.assert_array_equal(y.data, ty.numpy())
    np.testing.assert_array_equal(indices.data, tindices.numpy())
    assert indices.dtype == np.int64 and not indices.requires_grad
    _compare_with_torch(F.max_pool2d, torch.nn.functional.max_pool2d, x, rng, **kw)


# -- avg_pool2d --------------------------------------------------------------------------------
@given(pool_geometries(dilation=False), st.booleans(), seeds)
def test_avg_pool2d_gradcheck_and_torch(geo, count_include_pad, seed):
    shape, kw = geo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    kw["count_include_pad"] = count_include_pad
    assert gradcheck(lambda x: F.avg_pool2d(x, **kw), (_t(x),))
    torch = pytest.importorskip("torch")
    _compare_with_torch(F.avg_pool2d, torch.nn.functional.avg_pool2d, x, rng, **kw)


def test_avg_pool2d_divisor_override():
    x = tinypix.ones(1, 1, 4, 4)
    np.testing.assert_allclose(F.avg_pool2d(x, 2, divisor_override=2).data, np.full((1, 1, 2, 2), 2.0))


# -- max_unpool2d ------------------------------------------------------------------------------
@given(pool_geometries(dilation=False), seeds)
def test_max_unpool2d_gradcheck_and_torch(geo, seed):
    """Unpool to the input's own size (output_size resolves odd sizes) after pooling it."""
    shape, kw = geo
    del kw["ceil_mode"]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    pooled, indices = F.max_pool2d(_t(x, grad=False), return_indices=True, **kw)
    # Windows that overlap can share a maximum; unpooling then keeps one copy, and its gradient
    # (like PyTorch's) is not the derivative of that, so gradcheck non-overlapping windows only.
    if all(s >= k for s, k in zip(kw["stride"], kw["kernel_size"])):
        assert gradcheck(lambda p: F.max_unpool2d(p, indices, output_size=shape, **kw), (pooled,))
    torch = pytest.importorskip("torch")
    tindices = torch.tensor(indices.data)
    _compare_with_torch(
        lambda p, **k: F.max_unpool2d(p, indices, output_size=shape, **k),
        lambda p, **k: torch.nn.functional.max_unpool2d(p, tindices, output_size=shape, **k),
        pooled.data, rng, **kw)


def test_max_unpool2d_restores_maxima_in_place():
    x = tinypix.tensor([[[[1.0, 9.0, 2.0], [3.0, 4.0, 8.0], [7.0, 5.0, 6.0]]]])
    y, indices = F.max_pool2d(x, 2, stride=1, return_indices=True)
    assert indices.tolist() == [[[[1, 1], [6, 5]]]]
    up = F.max_unpool2d(y, indices, 2, stride=1)
    assert up.tolist() == [[[[0.0, 9.0, 0.0], [0.0, 0.0, 8.0], [7.0, 0.0, 0.0]]]]


# -- adaptive_avg_pool2d -----------------------------------------------------------------------
@given(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 8), st.integers(1, 8)),
       st.tuples(st.integers(1, 9), st.one_of(st.none(), st.integers(1, 9))), seeds)
def test_adaptive_avg_pool2d_gradcheck_and_torch(shape, output_size, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, output_size), (_t(x),))
    torch = pytest.importorskip("torch")
    _compare_with_torch(F.adaptive_avg_pool2d, torch.nn.functional.adaptive_avg_pool2d, x, rng,
                        output_size=output_size)


@given(st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 8), st.integers(1, 8)),
       st.tuples(st.integers(1, 9), st.one_of(st.none(), st.integers(1, 9))), seeds)
def test_adaptive_max_pool2d_gradcheck_and_torch(shape, output_size, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)  # distinct values: no ties
    assert gradcheck(lambda x: adaptive_max_pool2d(x, output_size), (_t(x),))
    torch = pytest.importorskip("torch")
    _compare_with_torch(adaptive_max_pool2d, torch.nn.functional.adaptive_max_pool2d, x, rng,
                        output_size=output_size)
    ties = rng.integers(0, 3, shape).astype(np.float64)  # many ties: the first maximum wins
    ties.reshape(-1)[::7] = np.nan                      # and a NaN wins over everything
    _, indices = adaptive_max_pool2d(_t(ties, grad=False), output_size, return_indices=True)
    _, t_indices = torch.nn.functional.adaptive_max_pool2d(torch.tensor(ties), output_size,
                                                           return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    assert indices.dtype == np.int64 and not indices.requires_grad


@pytest.mark.parametrize("output_size", [1, 3, (2, None), (None, 5)])
def test_adaptive_pool_layers_match_pytorch(output_size):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    for name, kwargs in (("AdaptiveAvgPool2d", {}), ("AdaptiveMaxPool2d", {}),
                         ("AdaptiveMaxPool2d", {"return_indices": True})):
        ours = getattr(tinypix.nn, name)(output_size, **kwargs)
        theirs = getattr(torch.nn, name)(output_size, **kwargs)
        assert repr(ours) == repr(theirs)
        y, ty = ours(_t(x, grad=False)), theirs(torch.tensor(x))
        for a, b in zip(y if kwargs else [y], ty if kwargs else [ty]):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_adaptive_avg_pool2d_to_one_pixel_is_the_mean():
    x = tinypix.randn(2, 3, 5, 7, dtype=tinypix.float64)  # float64: summation order must not matter
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 1).data[..., 0, 0], x.data.mean(axis=(2, 3)),
                               rtol=1e-12)


# -- bad input ---------------------------------------------------------------------------------
def test_window_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"max_pool2d: the 5x5 window .* does not fit the input "
                                         r"2x2 with padding \(1, 1\) \(.*spanning 5 pixels does not fit in 2 \+ 2\*1 = 4"):
        F.max_pool2d(tinypix.randn(1, 1, 2, 2), 5, padding=1)
    with pytest.raises(ValueError, match=r"avg_pool2d: the 3x3 window .* input 2x2"):
        F.avg_pool2d(tinypix.randn(1, 1, 2, 2), 3)


def test_padding_more_than_half_the_kernel():
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half the "
                                         r"kernel size \(3, 3\)"):
        F.max_pool2d(tinypix.randn(1, 1, 8, 8), 3, padding=2)


def test_dilated_window_on_padding_only():
    with pytest.raises(ValueError, match=r"max_pool2d: pooling window 0 covers only padding"):
        F.max_pool2d(tinypix.randn(1, 1, 1, 4), 2, stride=1, padding=1, dilation=2)


def test_indices_from_a_different_shape():
    y, indices = F.max_pool2d(tinypix.randn(1, 2, 8, 8), 2, return_indices=True)
    with pytest.raises(ValueError, match=r"max_unpool2d: indices of shape \(1, 2, 4, 4\) do not "
                                         r"match the input of shape \(1, 2, 3, 3\)"):
        F.max_unpool2d(tinypix.randn(1, 2, 3, 3), indices, 2)
    _, big = F.max_pool2d(tinypix.randn(1, 2, 9, 9), 3, stride=2, return_indices=True)
    with pytest.raises(ValueError, match=r"max_unpool2d: index \d+ is outside the 8x8 output plane "
                                         r"\(valid: 0 to 63\)"):
        F.max_unpool2d(tinypix.randn(1, 2, 4, 4), big, 2)
    with pytest.raises(TypeError, match=r"max_unpool2d: indices must be an integer tensor"):
        F.max_unpool2d(y, y, 2)


def test_unpool_output_size_out_of_range():
    y, indices = F.max_pool2d(tinypix.randn(1, 1, 9, 9), 2, return_indices=True)
    F.max_unpool2d(y, indices, 2, output_size=(9, 9))
    with pytest.raises(ValueError, match=r"max_unpool2d: output_size \(10, 9\) must end in \(OH, OW\) "
                                         r"strictly between \(6, 6\) and \(10, 10\)"):
        F.max_unpool2d(y, indices, 2, output_size=(10, 9))


def test_other_bad_arguments():
    with pytest.raises(ValueError, match=r"avg_pool2d: expected a 4-D input .* got shape \(4, 4\)"):
        F.avg_pool2d(tinypix.randn(4, 4), 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be at least 1, got \(0, 3\)"):
        F.adaptive_avg_pool2d(tinypix.randn(1, 1, 4, 4), (0, 3))
