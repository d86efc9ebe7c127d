"""kernels/cpu_winograd.py: Winograd's F(4x4, 3x3) gives im2col's convolution.

The written-out 1-D formulas are the matrices; one tile is a valid 3x3 correlation; a whole layer
(both products, drawn geometries, chunks down to one image) equals the readable path; each of its
registered ops equals the readable path, by shares of images and with each pass shared out;
where it applies is decided by the layer's shapes alone; and with it switched on for every
channel count, conv2d and conv_transpose2d pass gradcheck and match PyTorch.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
import tinypix.functional as F
from tinypix import kernels
from tinypix.functional import conv
from tinypix.kernels import cpu_team, cpu_winograd as wino
from tinypix.testing import gradcheck

seeds = st.integers(0, 2**32 - 1)
values = st.floats(-1e3, 1e3, allow_nan=False)


@st.composite
def layers(draw, max_batch=4, max_padding=3):
    """(N, C, F, H, W, (ph, pw)) of a 3x3 stride-1 convolution with at least one output pixel."""
    ph, pw = draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding))
    H = draw(st.integers(max(1, 3 - 2 * ph), 13))
    W = draw(st.integers(max(1, 3 - 2 * pw), 13))
    return (draw(st.integers(0, max_batch)), draw(st.integers(1, 5)), draw(st.integers(1, 5)),
            H, W, (ph, pw))


def _arrays(layer, seed, dtype):
    N, C, Fo, H, W, (ph, pw) = layer
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Fo, C, 3, 3)).astype(dtype)
    dy = rng.standard_normal((N, Fo, H + 2 * ph - 2, W + 2 * pw - 2)).astype(dtype)
    return x, w, dy, conv.Geometry((3, 3), (1, 1), (ph, pw), (1, 1), 1)


def _readable(fn, *args):
    with pytest.MonkeyPatch.context() as m:
        m.setenv(kernels.ENV_VAR, "reference")
        return fn(*args)


def _close(actual, expected):
    """float64 to 1e-10; float32 to Winograd's rounding (see the module docstring)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    tol = 1e-10 if actual.dtype == np.float64 else 1e-4
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


@given(st.lists(values, min_size=6, max_size=6), st.lists(values, min_size=4, max_size=4))
def test_written_out_transforms_are_the_matrices(six, four):
    six, four = np.array(six), np.array(four)
    np.testing.assert_allclose(wino._bt(*six), wino.BT @ six, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(wino._at(*six), wino.AT @ six, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(wino._a(*four), wino.AT.T @ four, rtol=1e-12, atol=1e-9)


@given(seeds)
def test_one_tile_is_a_valid_correlation(seed):
    """A^T [(G g G^T) * (B^T d B)] A is the 4x4 valid cross-correlation of a 6x6 d with a 3x3 g,
    and kron(G, G) is the weight transform G g G^T, flattened."""
    rng = np.random.default_rng(seed)
    d, g = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    U = wino.G @ g @ wino.G.T
    np.testing.assert_allclose((wino.GG @ g.ravel()).reshape(6, 6), U, atol=1e-14)
    Y = wino.AT @ (U * (wino.BT @ d @ wino.BT.T)) @ wino.AT.T
    direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(Y, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(layer=layers(), seed=seeds, chunk=st.sampled_from([1, 3000, wino.CHUNK_BYTES]),
       order=st.sampled_from("CF"), threads=st.sampled_from([1, 2, 100]))
def test_layer_matches_im2col(dtype, layer, seed, chunk, order, threads):
    """y and dw from one call (sharing the input transform) equal the readable path's, for any
    padding, odd sizes, an empty batch, chunks of one image up to the whole batch, inputs in
    either memory order, and the work shared by chunks or (more threads than chunks) pass by
    pass."""
    x, w, dy, geo = _arrays(layer, seed, dtype)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(wino, "CHUNK_BYTES", chunk)
        m.setattr(cpu_team, "MIN_SHARE", 1)
        m.setattr(cpu_team, "get_num_threads", lambda: threads)
        y, dw = wino.unfold_and_multiply(np.asarray(x, order=order), geo.padding, w=w,
                                         d=np.asarray(dy, order=order), w_shape=w.shape)
    _close(y, _readable(conv._conv2d, x, w, geo))
    _close(dw, _readable(conv._conv2d_backward_weight, dy, x, w.shape, geo))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(layer=layers(max_batch=3, max_padding=2), seed=seeds, threads=st.sampled_from([1, 2, 100]))
def test_every_op_matches_the_readable_path(dtype, layer, seed, threads):
    """Each registered op, by chunks of images or pass by pass (for conv_transpose2d, dy is the
    input and x the output gradient)."""
    x, w, dy, geo = _arrays(layer, seed, dtype)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(wino, "CHUNK_BYTES", 3000)  # a few images per chunk
        m.setattr(cpu_team, "MIN_SHARE", 1)
        m.setattr(cpu_team, "get_num_threads", lambda: threads)
        results = [wino.conv2d(x, w, geo), wino.conv2d_backward_data(dy, w, geo, x.shape),
                   wino.conv2d_backward_weight(dy, x, w.shape, geo), *wino.conv2d_backward(dy, x, w, geo),
                   *wino.conv_transpose2d_backward(x, dy, w, geo)]
    y = _readable(conv._conv2d, x, w, geo)
    dx = _readable(conv._conv2d_backward_data, dy, w, geo, x.shape)
    dw = _readable(conv._conv2d_backward_weight, dy, x, w.shape, geo)
    for actual, expected in zip(results, (y, dx, dw, dx, dw, y, dw)):
        _close(actual, expected)


def test_where_it_applies():
    """16 or more channels on each side and 32 on one; 64 tiles in the batch or 4M multiply-adds
    per product; 3x3, stride 1, padding at most 2, no dilation or groups; float32 or float64. The
    shapes decide, nothing else: every op of a layer asks the same question."""
    geo = conv.Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1)
    f32 = np.dtype(np.float32)
    assert wino.layer_applies(geo, 16, 64, 64, (64, 64), f32)       # 16 x 256 tiles
    assert wino.layer_applies(geo, 16, 64, 16, (64, 64), np.dtype(np.float64))
    assert wino.layer_applies(geo, 16, 32, 64, (8, 8), f32)         # 64 tiles
    assert not wino.layer_applies(geo, 4, 64, 64, (8, 8), f32)      # 16 tiles, 64 x 64 x 16 = 64K
    assert wino.layer_applies(geo, 4, 256, 256, (16, 16), f32)      # 64 x 256 x 256 = 4M
    assert not wino.layer_applies(geo, 16, 16, 16, (64, 64), f32)   # too narrow on both sides
    assert not wino.layer_applies(geo, 16, 8, 256, (64, 64), f32)   # too narrow on one
    assert not wino.layer_applies(geo, 16, 64, 64, (64, 64), np.dtype(np.float16))
    for other in (dict(kernel_size=(5, 5)), dict(kernel_size=(3, 1)), dict(stride=(2, 2)),
                  dict(dilation=(2, 2)), dict(groups=2), dict(padding=(3, 1))):
        assert not wino.layer_applies(geo._replace(**other), 16, 64, 64, (64, 64), f32)
    np.testing.assert_equal(wino.tiles((64, 61), (1, 0)), ((64, 59), (16, 15)))
    x, w = np.zeros((16, 32, 8, 8), np.float32), np.zeros((64, 32, 3, 3), np.float32)
    assert "cpu_winograd" in kernels.explain("conv2d", x, w, geo).splitlines()[1]
    assert "cpu_winograd" not in kernels.explain("conv2d", x[:4], w, geo).splitlines()[1]


def _everywhere(fn):
    """Run fn with Winograd on for every channel count."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(wino, "MIN_CHANNELS", 1)
        m.setattr(wino, "MIN_WIDER", 1)
        m.setattr(wino, "MIN_MULTIPLY_ADDS", 0)
        return fn()


def _tensors(layer, seed, transpose=False):
    N, C, Fo, H, W, padding = layer
    rng = np.random.default_rng(seed)
    x = tinypix.tensor(rng.standard_normal((max(N, 1), C, H, W)), requires_grad=True)
    w = tinypix.tensor(rng.standard_normal((C, Fo, 3, 3) if transpose else (Fo, C, 3, 3)),
                       requires_grad=True)
    b = tinypix.tensor(rng.standard_normal(Fo), requires_grad=True)
    return x, w, b, padding


@given(layers(max_batch=2, max_padding=2), seeds)
def test_conv2d_gradcheck_through_winograd(layer, seed):
    x, w, b, padding = _tensors(layer, seed)
    assert _everywhere(lambda: gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), (x, w, b)))


@given(layers(max_batch=2, max_padding=1), seeds)
def test_conv_transpose2d_gradcheck_through_winograd(layer, seed):
    x, w, b, padding = _tensors(layer, seed, transpose=True)
    assert _everywhere(lambda: gradcheck(
        lambda x, w, b: F.conv_transpose2d(x, w, b, padding=padding), (x, w, b)))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
@given(layer=layers(max_batch=2, max_padding=1), seed=seeds)
def test_matches_torch_through_winograd(op, layer, seed):
    torch = pytest.importorskip("torch")
    x, w, b, padding = _tensors(layer, seed, transpose=op == "conv_transpose2d")
    y = _everywhere(lambda: getattr(F, op)(x, w, b, padding=padding))
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    _everywhere(lambda: y.backward(tinypix.tensor(dy)))
    ts = [torch.tensor(t.detach().numpy(), requires_grad=True) for t in (x, w, b)]
    ty = getattr(torch.nn.functional, op)(*ts, padding=padding)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-9)
    for t, tt in zip((x, w, b), ts):
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_a_nan_or_infinity_spreads_to_whole_tiles():
    """As documented: the transforms mix each 6x6 input tile, so one NaN or infinity makes NaN of
    every 4x4 output tile whose input tile holds it -- more outputs than im2col's 9, never fewer."""
    geo = conv.Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1)
    w = np.ones((1, 1, 3, 3))
    for bad in (np.nan, np.inf):
        x = np.ones((1, 1, 8, 8))
        x[0, 0, 2, 2] = bad
        y = wino.unfold_and_multiply(x, geo.padding, w=w)[0]
        im2col = _readable(conv._conv2d, x, w, geo)
        assert np.isnan(y[0, 0, :4, :4]).all() and np.isfinite(y[0, 0, 4:, 4:]).all()
        assert (~np.isfinite(im2col)).sum() == 9
        assert not np.isfinite(y[~np.isfinite(im2col)]).any()
