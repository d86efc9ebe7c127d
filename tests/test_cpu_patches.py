"""kernels/cpu_patches.py: convolutions whose windows tile the image (kernel == stride, no
padding or dilation, one group) equal the readable path, through every cpu_conv entry point,
on drawn batches (empty ones too), channels, kernels and image sizes that leave rows and
columns no window covers."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinypix import kernels
from tinypix.functional import conv
from tinypix.kernels import cpu_conv, cpu_patches, cpu_team


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
    assert cpu_patches.applies(geo)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C) + geo.kernel_size).astype(dtype)
    dy = rng.standard_normal((N, F, H // geo.stride[0], W // geo.stride[1])).astype(dtype)
    expected = {"y": _readable(conv._conv_forward_data, x, w, geo),
                "dx": _readable(conv._conv_backward_data, dy, w, geo, x.shape),
                "dw": _readable(conv._conv_weight_grad, dy, x, w.shape, geo)}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_team, "MIN_WORK", 0 if share_small_work else cpu_team.MIN_WORK)
        got = [("y", cpu_conv.forward(x, w, geo)), ("dx", cpu_conv.backward_data(dy, w, geo, x.shape)),
               ("dw", cpu_conv.weight_grad(dy, x, w.shape, geo))]
        got += zip(("dx", "dw"), cpu_conv.conv2d_grads(dy, x, w, geo))
        # conv_transpose2d of dy (its input) with output gradient x: the same products swapped
        got += zip(("y", "dw"), cpu_conv.conv_transpose2d_grads(x, dy, w, geo))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for name, value in got:
        assert value.shape == expected[name].shape and value.dtype == dtype, name
        np.testing.assert_allclose(value, expected[name], rtol=tol, atol=tol, err_msg=name)


def test_only_tiling_geometries_apply():
    tiles = conv.Geometry((2, 2), (2, 2), (0, 0), (1, 1), 1)
    assert cpu_patches.applies(tiles) and cpu_patches.applies(tiles._replace(kernel_size=(1, 1), stride=(1, 1)))
    for other in (tiles._replace(stride=(1, 1)), tiles._replace(padding=(1, 0)),
                  tiles._replace(dilation=(2, 2)), tiles._replace(groups=2)):
        assert not cpu_patches.applies(other)
