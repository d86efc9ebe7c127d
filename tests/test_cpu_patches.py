"""kernels/cpu_patches.py: convolutions whose windows tile the image (kernel == stride, no
padding or dilation, one group) equal the readable path, through each of its ops, on drawn
batches (empty ones too), channels, kernels and image sizes that leave rows and columns no
window covers, with the work shared out or not."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinypix import kernels
from tinypix.functional import conv
from tinypix.kernels import cpu_patches, cpu_team


@st.composite
def tiling(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    N, C, F = draw(st.integers(0, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    H, W = kh * draw(st.integers(1, 4)) + draw(st.integers(0, kh - 1)), kw * draw(st.integers(1, 4)) + draw(st.integers(0, kw - 1))
    return N, C, F, H, W, conv.Geometry((kh, kw), (kh, kw), (0, 0), (1, 1), 1)


def _readable(fn, *args):
    with pytest.MonkeyPatch.context() as m:
        m.setenv(kernels.ENV_VAR, "reference")
        return fn(*args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(case=tiling(), seed=st.integers(0, 2**32 - 1), share_small_work=st.booleans())
def test_tiling_windows_match_the_readable_path(dtype, case, seed, share_small_work):
    N, C, F, H, W, geo = case
    assert cpu_patches.tiles_the_image(geo)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C) + geo.kernel_size).astype(dtype)
    dy = rng.standard_normal((N, F, H // geo.stride[0], W // geo.stride[1])).astype(dtype)
    expected = {"y": _readable(conv._conv2d, x, w, geo),
                "dx": _readable(conv._conv2d_backward_data, dy, w, geo, x.shape),
                "dw": _readable(conv._conv2d_backward_weight, dy, x, w.shape, geo)}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_team, "MIN_SHARE", 1 if share_small_work else cpu_team.MIN_SHARE)
        got = [("y", cpu_patches.conv2d(x, w, geo)), ("dx", cpu_patches.conv2d_backward_data(dy, w, geo, x.shape)),
               ("dw", cpu_patches.conv2d_backward_weight(dy, x, w.shape, geo))]
        got += zip(("dx", "dw"), cpu_patches.conv2d_backward(dy, x, w, geo))
        # conv_transpose2d of dy (its input) with output gradient x: the same products swapped
        got += zip(("y", "dw"), cpu_patches.conv_transpose2d_backward(x, dy, w, geo))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for name, value in got:
        assert value.shape == expected[name].shape and value.dtype == dtype, name
        np.testing.assert_allclose(value, expected[name], rtol=tol, atol=tol, err_msg=name)


def test_only_tiling_geometries_apply():
    tiles = conv.Geometry((2, 2), (2, 2), (0, 0), (1, 1), 1)
    assert cpu_patches.tiles_the_image(tiles)
    assert cpu_patches.tiles_the_image(tiles._replace(kernel_size=(1, 1), stride=(1, 1)))
    for other in (tiles._replace(stride=(1, 1)), tiles._replace(padding=(1, 0)),
                  tiles._replace(dilation=(2, 2)), tiles._replace(groups=2)):
        assert not cpu_patches.tiles_the_image(other)
    x, w = np.zeros((2, 4, 8, 8), np.float32), np.zeros((3, 4, 2, 2), np.float32)
    assert "runs cpu_patches" in kernels.explain("conv2d", x, w, tiles)
    assert "runs readable" in kernels.explain("conv2d", x.astype(np.float16), w.astype(np.float16), tiles)
