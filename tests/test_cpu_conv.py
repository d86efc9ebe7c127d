"""kernels/cpu_conv.py (convolution a chunk of images at a time) equals the readable whole-batch path.

Each of its three products -- forward, input gradient, weight gradient, and the two gradients
computed together -- is compared with functional/conv.py's helpers run with
TINYPIX_KERNELS=reference, and at stride 1 each product's
two routes (unfolding one image or the other) with each other, on drawn geometries and with
chunks small enough that a batch spans several of them (and a last, shorter one).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinypix import kernels
from tinypix.functional import conv
from tinypix.kernels import cpu_conv
from tinypix.testing.strategies import conv_geometries

geometries = conv_geometries(max_batch=5, max_size=8, max_channels=4)
stride_one = conv_geometries(max_batch=5, max_size=8, max_channels=4, max_stride=1)
chunk_bytes = st.sampled_from([1, 300, 2000, cpu_conv.CHUNK_BYTES])
# images whose columns number MIN_COLUMNS or more get products of their own; narrower ones
# share one product per chunk (and chunks grow to MIN_COLUMNS columns): these draws give both
min_columns = st.sampled_from([1, 20, 1 << 30])
seeds = st.integers(0, 2**32 - 1)


def _inputs(g, seed, dtype):
    """x, w, dy for the conv2d described by g, and its Geometry."""
    rng = np.random.default_rng(seed)
    (kh, kw), G = g["kernel_size"], g["groups"]
    geo = conv.Geometry(g["kernel_size"], g["stride"], g["padding"], g["dilation"], G)
    x = rng.standard_normal((g["N"], g["C"], g["H"], g["W"])).astype(dtype)
    w = rng.standard_normal((g["F"], g["C"] // G, kh, kw)).astype(dtype)
    out_hw = tuple(kernels.conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                   zip(x.shape[2:], geo.kernel_size, geo.stride, geo.padding, geo.dilation))
    dy = rng.standard_normal((g["N"], g["F"]) + out_hw).astype(dtype)
    return x, w, dy, geo


def _readable(fn, *args):
    with pytest.MonkeyPatch.context() as m:
        m.setenv(kernels.ENV_VAR, "reference")
        return fn(*args)


def _close(actual, expected, dtype):
    assert actual.shape == expected.shape and actual.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(g=geometries, seed=seeds, chunk=chunk_bytes, columns=min_columns)
def test_chunked_conv_matches_whole_batch(dtype, g, seed, chunk, columns):
    x, w, dy, geo = _inputs(g, seed, dtype)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_conv, "CHUNK_BYTES", chunk)
        m.setattr(cpu_conv, "MIN_COLUMNS", columns)
        _check_all_three(x, w, dy, geo, dtype)


def _check_all_three(x, w, dy, geo, dtype):
    _close(cpu_conv.forward(x, w, geo), _readable(conv._conv_forward_data, x, w, geo), dtype)
    _close(cpu_conv.weight_grad(dy, x, w.shape, geo),
           _readable(conv._conv_weight_grad, dy, x, w.shape, geo), dtype)
    _close(cpu_conv.backward_data(dy, w, geo, x.shape),
           _readable(conv._conv_backward_data, dy, w, geo, x.shape), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(g=geometries, seed=seeds, chunk=chunk_bytes, columns=min_columns)
def test_both_gradients_together_match_whole_batch(dtype, g, seed, chunk, columns):
    """conv2d_grads and conv_transpose2d_grads (which share one unfold of dy where they can)
    give the readable path's two gradients. Here x, dy are conv2d's input and output gradient;
    for conv_transpose2d the roles swap: dy is its input, x its output gradient."""
    x, w, dy, geo = _inputs(g, seed, dtype)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_conv, "CHUNK_BYTES", chunk)
        m.setattr(cpu_conv, "MIN_COLUMNS", columns)
        dx, dw = cpu_conv.conv2d_grads(dy, x, w, geo)
        d_in, dw_t = cpu_conv.conv_transpose2d_grads(x, dy, w, geo)
    _close(dx, _readable(conv._conv_backward_data, dy, w, geo, x.shape), dtype)
    _close(dw, _readable(conv._conv_weight_grad, dy, x, w.shape, geo), dtype)
    _close(d_in, _readable(conv._conv_forward_data, x, w, geo), dtype)
    _close(dw_t, _readable(conv._conv_weight_grad, dy, x, w.shape, geo), dtype)
    assert dw.flags.c_contiguous and dw_t.flags.c_contiguous


def test_an_empty_batch_gets_zero_weight_gradients():
    x, w, dy, geo = _inputs(dict(N=0, C=2, H=5, W=5, F=3, kernel_size=(3, 3), stride=(1, 1),
                                 padding=(1, 1), dilation=(1, 1), groups=1), 0, np.float32)
    for dx, dw in (cpu_conv.conv2d_grads(dy, x, w, geo), cpu_conv.conv_transpose2d_grads(x, dy, w, geo)):
        assert dx.shape[0] == 0 and dw.shape == w.shape and not dw.any()
    assert not cpu_conv.weight_grad(dy, x, w.shape, geo).any()


@given(g=stride_one, seed=seeds, chunk=chunk_bytes, columns=min_columns)
def test_both_routes_of_each_product(g, seed, chunk, columns):
    """Unfolding one image or the other (at stride 1, with the flipped, transposed kernel) agree,
    whichever has more channels."""
    x, w, dy, geo = _inputs(g, seed, np.float64)
    G, flip = geo.groups, cpu_conv._flip_geometry(geo)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_conv, "CHUNK_BYTES", chunk)
        m.setattr(cpu_conv, "MIN_COLUMNS", columns)
        y, dx = cpu_conv._gather(x, w, geo), cpu_conv._scatter(dy, w, geo, x.shape)
        dw = cpu_conv._weight_grad_gather(dy, x, w.shape, geo)
        assert flip is not None  # padding <= d*(k-1), as drawn
        w_flip = cpu_conv._flipped_transposed(w, G)
        np.testing.assert_array_equal(cpu_conv._flipped_transposed(w_flip, G), w)
        _close(cpu_conv._scatter(x, w_flip, flip, y.shape), y, np.float64)
        _close(cpu_conv._gather(dy, w_flip, flip), dx, np.float64)
        dw_flip = cpu_conv._weight_grad_gather(x, dy, w_flip.shape, flip)
        _close(cpu_conv._flipped_transposed(dw_flip, G), dw, np.float64)


def test_reference_and_cupy_paths_unfold_the_whole_batch(monkeypatch):
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    assert kernels.chunked_conv(np.zeros((1, 1, 3, 3))) is None
