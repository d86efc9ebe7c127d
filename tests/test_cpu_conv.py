"""kernels/cpu_conv.py (convolution a chunk of images at a time) equals the readable whole-batch path.

Each of its ops -- forward, input gradient, weight gradient, and the two gradients computed
together -- is compared with functional/conv.py's readable ops run with TINYPIX_KERNELS=reference,
and at stride 1 each product's two routes (unfolding one image or the other) with each other, on
drawn geometries and with chunks small enough that a batch spans several of them (and a last,
shorter one). (test_registry.py compares every registered implementation, this one included,
on the shapes it applies to.)
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
def test_every_op_matches_the_readable_path_for_any_chunk(dtype, g, seed, chunk, columns):
    """All five ops, with chunks of one image up to the whole batch. x, dy are conv2d's input and
    output gradient; for conv_transpose2d the roles swap: dy is its input, x its output gradient."""
    x, w, dy, geo = _inputs(g, seed, dtype)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_conv, "CHUNK_BYTES", chunk)
        m.setattr(cpu_conv, "MIN_COLUMNS", columns)
        got = [cpu_conv.conv2d(x, w, geo), cpu_conv.conv2d_backward_data(dy, w, geo, x.shape),
               cpu_conv.conv2d_backward_weight(dy, x, w.shape, geo),
               *cpu_conv.conv2d_backward(dy, x, w, geo), *cpu_conv.conv_transpose2d_backward(x, dy, w, geo)]
    y = _readable(conv._conv2d, x, w, geo)
    dx = _readable(conv._conv2d_backward_data, dy, w, geo, x.shape)
    dw = _readable(conv._conv2d_backward_weight, dy, x, w.shape, geo)
    for actual, expected in zip(got, (y, dx, dw, dx, dw, y, dw)):
        _close(actual, expected, dtype)
    assert all(dw.flags.c_contiguous for dw in got[2::2])


def test_an_empty_batch_gets_zero_weight_gradients():
    x, w, dy, geo = _inputs(dict(N=0, C=2, H=5, W=5, F=3, kernel_size=(3, 3), stride=(1, 1),
                                 padding=(1, 1), dilation=(1, 1), groups=1), 0, np.float32)
    for dx, dw in (cpu_conv.conv2d_backward(dy, x, w, geo), cpu_conv.conv_transpose2d_backward(x, dy, w, geo)):
        assert dx.shape[0] == 0 and dw.shape == w.shape and not dw.any()
    assert not cpu_conv.conv2d_backward_weight(dy, x, w.shape, geo).any()


@given(g=stride_one, seed=seeds, chunk=chunk_bytes, columns=min_columns)
def test_both_routes_of_each_product(g, seed, chunk, columns):
    """Unfolding one image or the other (at stride 1, with the flipped, transposed kernel) agree,
    whichever has more channels."""
    x, w, dy, geo = _inputs(g, seed, np.float64)
    G, flip = geo.groups, cpu_conv.flip_geometry(geo)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_conv, "CHUNK_BYTES", chunk)
        m.setattr(cpu_conv, "MIN_COLUMNS", columns)
        y, dx = cpu_conv.gather(x, geo, w=w)[0], cpu_conv.scatter(dy, w, geo, x.shape)
        dw = cpu_conv.gather(x, geo, d=dy, w_shape=w.shape)[1]
        assert flip is not None  # padding <= d*(k-1), as drawn
        w_flip = cpu_conv.flipped_transposed(w, G)
        np.testing.assert_array_equal(cpu_conv.flipped_transposed(w_flip, G), w)
        _close(cpu_conv.scatter(x, w_flip, flip, y.shape), y, np.float64)
        _close(cpu_conv.gather(dy, flip, w=w_flip)[0], dx, np.float64)
        dw_flip = cpu_conv.gather(dy, flip, d=x, w_shape=w_flip.shape)[1]
        _close(cpu_conv.flipped_transposed(dw_flip, G), dw, np.float64)
