"""Tests for tinypix.kernels.

- the Numba kernels (cpu) equal the reference ones on drawn geometries, float32 and float64;
- each backward is the exact adjoint of its forward, on both implementations;
- im2col equals a deliberately naive loop (the specification of the specification);
- max_pool2d and bilinear agree with PyTorch (skipped when torch is absent);
- float16 takes the readable ops; the readable ones run on CuPy arrays too.
(test_registry.py tests the registry that picks between them.)
"""
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tinypix
import tinypix.functional as F
from tinypix import kernels
from tinypix.kernels import cpu
from tinypix.kernels import reference as ref

DTYPES = [np.float32, np.float64]
IMPLS = [pytest.param(ref, id="reference"), pytest.param(cpu, id="numba")]
seeds = st.integers(0, 2**32 - 1)


def assert_close(actual, expected, dtype):
    assert actual.dtype == expected.dtype == dtype
    assert actual.shape == expected.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def assert_adjoint(a, b, c, d):
    """<a, b> == <c, d> to 1e-10, relative to the sum of |products| (robust to cancellation)."""
    lhs, rhs = np.vdot(a, b), np.vdot(c, d)
    scale = max(np.vdot(np.abs(a), np.abs(b)), np.vdot(np.abs(c), np.abs(d)), 1e-300)
    assert abs(lhs - rhs) <= 1e-10 * scale, (lhs, rhs)


from kernel_strategies import geometries, pool_input, resizes  # noqa: E402


# ---- the Numba kernels equal the reference -------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@given(g=geometries(), seed=seeds)
def test_im2col_col2im_fast_match_reference(dtype, g, seed):
    shape, geometry, _ = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    cols = cpu.im2col(x, *geometry)
    np.testing.assert_array_equal(cols, ref.im2col(x, *geometry))  # a pure copy: exact
    assert cols.dtype == dtype and cols.flags.c_contiguous
    c = rng.standard_normal(cols.shape).astype(dtype)
    assert_close(cpu.col2im(c, shape, *geometry), ref.col2im(c, shape, *geometry), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(g=geometries(pool=True), seed=seeds)
def test_pool_unpool_fast_match_reference(dtype, g, seed):
    shape, geometry, ceil_mode = g
    rng = np.random.default_rng(seed)
    x = pool_input(rng, shape, dtype)
    y, indices = cpu.max_pool2d(x, *geometry, ceil_mode)
    y_ref, indices_ref = ref.max_pool2d(x, *geometry, ceil_mode)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(indices, indices_ref)
    assert y.dtype == dtype and indices.dtype == np.int64
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(cpu.max_pool2d_backward(dy, indices, shape), ref.max_pool2d_backward(dy, indices, shape), dtype)
    # Unpooling the pooled values: a repeated index always carries the same value.
    unpooled = cpu.max_unpool2d(y, indices, shape[2:])
    np.testing.assert_array_equal(unpooled, ref.max_unpool2d(y, indices, shape[2:]))
    g_up = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(cpu.max_unpool2d_backward(g_up, indices),
                                  ref.max_unpool2d_backward(g_up, indices))


@pytest.mark.parametrize("dtype", DTYPES)
@given(r=resizes(), seed=seeds)
def test_bilinear_fast_matches_reference(dtype, r, seed):
    shape, out_hw, align_corners, scale_hw = r
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    assert_close(cpu.bilinear_interpolate(x, out_hw, align_corners, scale_hw),
                 ref.bilinear_interpolate(x, out_hw, align_corners, scale_hw), dtype)
    dy = rng.standard_normal(shape[:2] + out_hw).astype(dtype)
    assert_close(cpu.bilinear_interpolate_backward(dy, shape[2:], align_corners, scale_hw),
                 ref.bilinear_interpolate_backward(dy, shape[2:], align_corners, scale_hw), dtype)


# ---- adjoint identities (float64) ----------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@given(g=geometries(), seed=seeds)
def test_col2im_is_adjoint_of_im2col(impl, g, seed):
    shape, geometry, _ = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = impl.im2col(x, *geometry)
    c = rng.standard_normal(cols.shape)
    assert_adjoint(cols, c, x, impl.col2im(c, shape, *geometry))


@pytest.mark.parametrize("impl", IMPLS)
@given(r=resizes(), seed=seeds)
def test_bilinear_backward_is_adjoint(impl, r, seed):
    shape, out_hw, align_corners, scale_hw = r
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape[:2] + out_hw)
    assert_adjoint(impl.bilinear_interpolate(x, out_hw, align_corners, scale_hw), dy,
                   x, impl.bilinear_interpolate_backward(dy, shape[2:], align_corners, scale_hw))


@pytest.mark.parametrize("impl", IMPLS)
@given(g=geometries(pool=True), seed=seeds)
def test_max_pool2d_backward_is_adjoint_of_gather(impl, g, seed):
    shape, geometry, ceil_mode = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    _, indices = impl.max_pool2d(pool_input(rng, shape, np.float64), *geometry, ceil_mode)
    N, C = shape[:2]
    gathered = np.take_along_axis(x.reshape(N, C, -1), indices.reshape(N, C, -1), axis=2)
    dy = rng.standard_normal(indices.shape)
    assert_adjoint(gathered, dy.reshape(N, C, -1), x, impl.max_pool2d_backward(dy, indices, shape))


@pytest.mark.parametrize("impl", IMPLS)
@given(shape=st.tuples(*(st.integers(1, n) for n in (2, 3, 12, 12))), data=st.data(), seed=seeds)
def test_max_unpool2d_backward_is_adjoint(impl, shape, data, seed):
    N, C, H, W = shape
    h, w = data.draw(st.integers(1, H)), data.draw(st.integers(1, W))
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal((N, C, h, w)), rng.standard_normal(shape)
    # Distinct positions per plane: with repeats, assignment keeps one value and is not linear-adjoint.
    indices = np.stack([rng.permutation(H * W)[:h * w] for _ in range(N * C)]).reshape(x.shape)
    assert_adjoint(impl.max_unpool2d(x, indices, (H, W)), dy, x, impl.max_unpool2d_backward(dy, indices))


# ---- im2col against its plainest possible statement ----------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
def test_im2col_matches_naive_loops(impl):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geometry = (2, 3), (2, 1), (1, 2), (2, 1)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6))
    N, C, H, W = x.shape
    OH, OW = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    expected = np.zeros((N, C * kh * kw, OH * OW))
    for n in range(N):
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    for oh in range(OH):
                        for ow in range(OW):
                            h, w = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if 0 <= h < H and 0 <= w < W:
                                expected[n, (c * kh + i) * kw + j, oh * OW + ow] = x[n, c, h, w]
    np.testing.assert_array_equal(impl.im2col(x, *geometry), expected)


# ---- agreement with PyTorch ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("impl", IMPLS)
@given(g=geometries(pool=True), seed=seeds)
@example(g=((1, 1, 5, 5), ((2, 2), (2, 2), (1, 1), (1, 1)), True), seed=0)  # ceil_mode drops a window
@example(g=((1, 1, 6, 6), ((3, 3), (2, 2), (0, 0), (1, 1)), True), seed=0)  # last window hangs over
@example(g=((1, 1, 2, 2), ((3, 3), (3, 3), (0, 0), (1, 1)), True), seed=0)  # its only window does
def test_max_pool2d_matches_torch(torch, impl, g, seed):
    shape, (kernel_size, stride, padding, dilation), ceil_mode = g
    x = pool_input(np.random.default_rng(seed), shape, np.float64)
    y, indices = impl.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    xt = torch.from_numpy(x).requires_grad_()
    yt, it = torch.nn.functional.max_pool2d(xt, kernel_size, stride, padding, dilation,
                                            ceil_mode=ceil_mode, return_indices=True)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(indices, it.numpy())
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(impl.max_pool2d_backward(dy, indices, shape), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@given(r=resizes(), seed=seeds)
@example(r=((1, 1, 2, 5), (2, 7), False, (4 / 3, 1.5)), seed=0)  # unchanged H: copied despite its scale
@example(r=((1, 2, 5, 3), (2, 7), False, (0.5, 2.6)), seed=0)
def test_bilinear_matches_torch(torch, impl, r, seed):
    shape, out_hw, align_corners, scale_hw = r
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    xt = torch.from_numpy(x).requires_grad_()
    if scale_hw == (None, None):
        yt = torch.nn.functional.interpolate(xt, size=out_hw, mode="bilinear", align_corners=align_corners)
    else:  # the user's scale enters the coordinate formula, as with recompute_scale_factor=None
        yt = torch.nn.functional.interpolate(xt, scale_factor=scale_hw, mode="bilinear",
                                             align_corners=align_corners, recompute_scale_factor=False)
    y = impl.bilinear_interpolate(x, out_hw, align_corners, scale_hw)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(impl.bilinear_interpolate_backward(dy, shape[2:], align_corners, scale_hw),
                               xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_max_pool2d_nan_and_ties_match_torch(torch):
    x = np.array([[[[1.0, 3.0, 3.0, np.nan, 2.0, np.nan, -np.inf, -np.inf]]]])
    yt, it = torch.nn.functional.max_pool2d(torch.from_numpy(x), (1, 3), (1, 1), return_indices=True)
    for impl in (ref, cpu):
        y, indices = impl.max_pool2d(x, (1, 3), (1, 1), (0, 0), (1, 1), False)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_array_equal(indices, it.numpy())


# ---- sizes and errors ----------------------------------------------------------------------------

def test_conv_output_size():
    assert kernels.conv_output_size(5, 3, 1, 1, 1) == 5
    assert kernels.conv_output_size(7, 3, 2, 0, 2) == 2
    assert kernels.conv_output_size(5, 2, 2, 0, 1, ceil_mode=True) == 3
    # ceil_mode would add a window starting in the right padding: PyTorch drops it.
    assert kernels.conv_output_size(5, 2, 2, 1, 1, ceil_mode=True) == 3
    # rounding up, the one window may reach past a 2-pixel input, as PyTorch allows
    assert kernels.conv_output_size(2, 3, 3, 0, 1, ceil_mode=True) == 1
    assert tinypix.conv_output_size is kernels.conv_output_size  # the only copy of the formula
    with pytest.raises(ValueError, match="spanning 3 pixels does not fit in 2"):
        kernels.conv_output_size(2, 3, 1, 0, 1)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        kernels.conv_output_size(5, 3, 0)


@pytest.mark.parametrize("impl", IMPLS)
def test_errors(impl):
    with pytest.raises(ValueError, match="does not fit"):
        impl.im2col(np.zeros((1, 1, 2, 2)), (3, 3), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="output size"):
        impl.bilinear_interpolate(np.zeros((1, 1, 2, 2)), (0, 3), False)
    # Dilation 2 with padding 1 on one row: the window taps rows -1 and 1, neither inside.
    with pytest.raises(ValueError, match="only padding"):
        impl.max_pool2d(np.zeros((1, 1, 1, 3)), (2, 1), (1, 1), (1, 0), (2, 1), False)


# ---- float16 -----------------------------------------------------------------------------------

def test_float16_takes_the_readable_path(monkeypatch):
    """Numba cannot compute in float16, so float16 arrays take the readable ops, and the layers
    built on them work (in PyTorch too, float16 convolution runs on the CPU)."""
    monkeypatch.delenv("TINYPIX_KERNELS", raising=False)
    assert "runs readable" in kernels.explain("im2col", np.zeros((1, 1, 3, 3), np.float16),
                                              (1, 1), (1, 1), (0, 0), (1, 1))
    rng = np.random.default_rng(0)
    x64, w64 = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    x, w = (tinypix.tensor(a.astype(np.float16), requires_grad=True) for a in (x64, w64))
    with kernels.trace() as ran:
        y = F.max_pool2d(F.conv2d(x, w, padding=1), 2)
        y.sum().backward()
    assert {call.implementation for call in ran} == {"readable"}
    assert y.dtype == x.grad.dtype == w.grad.dtype == np.float16
    expected = F.max_pool2d(F.conv2d(tinypix.tensor(x64), tinypix.tensor(w64), padding=1), 2)
    np.testing.assert_allclose(y.detach().numpy(), expected.numpy(), rtol=2e-2, atol=2e-2)


def test_reference_runs_on_cupy(monkeypatch):
    cupy = pytest.importorskip("cupy")
    monkeypatch.setenv("TINYPIX_KERNELS", "reference")  # the readable path, on the GPU
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        pytest.skip("CuPy is installed but sees no GPU")
    rng = np.random.default_rng(0)
    x = pool_input(rng, (2, 3, 7, 8), np.float64)
    geometry = (3, 2), (2, 1), (1, 1), (1, 2)
    y, indices = kernels.max_pool2d(cupy.asarray(x), *geometry, True)
    assert "runs readable" in kernels.explain("max_pool2d", cupy.asarray(x), *geometry, True)
    y_ref, indices_ref = ref.max_pool2d(x, *geometry, True)
    np.testing.assert_array_equal(y.get(), y_ref)
    np.testing.assert_array_equal(indices.get(), indices_ref)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(kernels.max_pool2d_backward(cupy.asarray(dy), indices, x.shape).get(),
                               ref.max_pool2d_backward(dy, indices_ref, x.shape))
    np.testing.assert_array_equal(kernels.max_unpool2d(y, indices, (7, 8)).get(),
                                  ref.max_unpool2d(y_ref, indices_ref, (7, 8)))
    np.testing.assert_array_equal(kernels.max_unpool2d_backward(cupy.asarray(x), indices).get(),
                                  ref.max_unpool2d_backward(x, indices_ref))
    x = rng.standard_normal((2, 3, 7, 8))
    cols = kernels.im2col(cupy.asarray(x), *geometry)
    np.testing.assert_allclose(cols.get(), ref.im2col(x, *geometry))
    np.testing.assert_allclose(kernels.col2im(cols, x.shape, *geometry).get(), ref.col2im(cols.get(), x.shape, *geometry))
    y = kernels.bilinear_interpolate(cupy.asarray(x), (11, 5), False, (1.6, 0.7))
    np.testing.assert_allclose(y.get(), ref.bilinear_interpolate(x, (11, 5), False, (1.6, 0.7)))
    np.testing.assert_allclose(kernels.bilinear_interpolate_backward(y, (7, 8), True).get(),
                               ref.bilinear_interpolate_backward(y.get(), (7, 8), True))
