"""Hypothesis strategies and inputs shared by the kernel tests (Numba and CUDA against reference)."""
import numpy as np
from hypothesis import assume, strategies as st

from tinypix.kernels import reference as ref


@st.composite
def geometries(draw, pool=False, max_batch=2, max_channels=3):
    """(x_shape, (kernel_size, stride, padding, dilation), ceil_mode) with output size >= 1."""
    pairs, sizes = [], []
    for _ in "hw":
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        p = draw(st.integers(0, k // 2))
        sizes.append(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 12)))
        pairs.append((k, s, p, d))
    geometry = tuple(tuple(pair) for pair in zip(*pairs))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), *sizes)
    ceil_mode = draw(st.booleans()) if pool else False
    if pool:  # rare dilated windows that hold no input are refused (tested separately)
        try:
            ref.max_pool2d(np.zeros(shape), *geometry, ceil_mode)
        except ValueError:
            assume(False)
    return shape, geometry, ceil_mode


def pool_input(rng, shape, dtype):
    """Small integers, so windows have ties (first maximum wins), some -inf and NaN."""
    x = rng.integers(-3, 4, size=shape).astype(dtype)
    x[rng.random(shape) < 0.05] = -np.inf
    x[rng.random(shape) < 0.03] = np.nan
    return x


@st.composite
def resizes(draw, max_batch=2, max_channels=3):
    """(x_shape, out_hw, align_corners, scale_hw): explicit sizes or user scale factors."""
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), draw(st.integers(1, 12)),
             draw(st.integers(1, 12)))
    align_corners = draw(st.booleans())
    if draw(st.booleans()):
        return shape, (draw(st.integers(1, 12)), draw(st.integers(1, 12))), align_corners, (None, None)
    scale_hw = tuple(draw(st.sampled_from([0.5, 0.7, 1.0, 4 / 3, 1.5, 2.0, 2.6, 3.0])) for _ in "hw")
    out_hw = tuple(int(np.floor(n * s)) for n, s in zip(shape[2:], scale_hw))
    assume(min(out_hw) >= 1)
    return shape, out_hw, align_corners, scale_hw
