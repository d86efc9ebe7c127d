"""Resizing images: ``interpolate`` with mode 'nearest' or 'bilinear', PyTorch's coordinates.

Both modes work one axis at a time: every output row (column) reads from one ('nearest') or two
('bilinear') input rows (columns). Where an output position reads from follows PyTorch exactly,
including its use of the user's ``scale_factor`` (not in/out) when one is given.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import kernels
from ..autograd import Function
from ..backend import get_array_module
from .conv import check_image, pair

if TYPE_CHECKING:
    from ..tensor import Tensor
    from ..typing import IntPair


def nearest_source_index(in_size: int, out_size: int, scale: float | None = None) -> np.ndarray:
    """The input position each output position copies along one axis, as PyTorch's 'nearest'.

    src = min(floor(dst * s), in_size - 1) with s = 1/scale (the user's scale factor) or
    in_size/out_size, computed in float32 as PyTorch does (it decides ties like 6 -> 9).
    PyTorch copies straight through when out_size is in_size or twice it.

    Returns:
        int64 NumPy array (out_size,), non-decreasing.
    """
    dst = np.arange(out_size)
    if out_size == in_size:
        return dst
    if out_size == 2 * in_size:
        return dst >> 1
    s = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    return np.minimum(np.floor(dst.astype(np.float32) * s).astype(np.int64), in_size - 1)


def _add_back(dy, src, n, axis):
    """Sum ``dy`` along ``axis`` into ``n`` slots: slot i receives every dy[j] with src[j] == i.

    ``src`` is non-decreasing, so the k-th copies of all sources have distinct sources and go in
    with one vectorized ``+=``; the loop runs once per copy (twice for 2x upsampling).
    """
    xp = get_array_module(dy)
    if len(src) == n and np.array_equal(src, np.arange(n)):
        return dy
    rank = np.arange(len(src)) - np.searchsorted(src, src)  # 0 for a source's first copy, 1, ...
    shape = list(dy.shape)
    shape[axis] = n
    dx = xp.zeros(shape, dtype=dy.dtype)
    lead = (slice(None),) * axis
    for k in range(int(rank.max()) + 1):
        j = np.flatnonzero(rank == k)
        dx[lead + (xp.asarray(src[j]),)] += dy[lead + (xp.asarray(j),)]
    return dx


class NearestInterpolate(Function):
    """y[n, c, i, j] = x[n, c, rows[i], cols[j]].  x: (N, C, H, W) -> y: (N, C, OH, OW).

    Backward adds each dy back to the pixel it was copied from (many copies when upsampling).
    """

    @staticmethod
    def forward(ctx, x, rows, cols):
        xp = get_array_module(x)
        ctx.x_hw, ctx.rows, ctx.cols = x.shape[2:], rows, cols
        return x[:, :, xp.asarray(rows)[:, None], xp.asarray(cols)]

    @staticmethod
    def backward(ctx, dy):
        (H, W), rows, cols = ctx.x_hw, ctx.rows, ctx.cols
        return _add_back(_add_back(dy, cols, W, axis=3), rows, H, axis=2), None, None


class BilinearInterpolate(Function):
    """y = Ah @ x @ Aw^T: each output pixel blends the 2x2 input pixels around its source point.

    x: (N, C, H, W) -> y: (N, C, OH, OW). Backward is the adjoint, dx = Ah^T @ dy @ Aw.
    """

    @staticmethod
    def forward(ctx, x, out_hw, align_corners, scale_hw):
        ctx.x_hw, ctx.align_corners, ctx.scale_hw = x.shape[2:], align_corners, scale_hw
        return kernels.bilinear_interpolate(x, out_hw, align_corners, scale_hw)

    @staticmethod
    def backward(ctx, dy):
        dx = kernels.bilinear_interpolate_backward(dy, ctx.x_hw, ctx.align_corners, ctx.scale_hw)
        return dx, None, None, None


def _scale_pair(scale_factor):
    """(sh, sw) positive finite floats from a number or a pair; None when malformed."""
    pr = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor, scale_factor)
    if len(pr) != 2 or not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                               and math.isfinite(v) and v > 0 for v in pr):
        return None
    return float(pr[0]), float(pr[1])


def interpolate(x: Tensor, size: IntPair | None = None,
                scale_factor: float | tuple[float, float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """Resize images to ``size`` or by ``scale_factor`` (give exactly one).

    Args:
        x: (N, C, H, W) input.
        size: output (OH, OW), or an int for both.
        scale_factor: a positive number or an (sh, sw) pair; the output is floor(H*sh) x floor(W*sw),
            and the factor itself (not the rounded ratio) places the samples, as in PyTorch.
        mode: 'nearest' (output pixel copies input pixel min(floor(dst * H/OH), H-1)) or 'bilinear'.
        align_corners: bilinear only. True maps the corner pixels' centers onto each other
            (src = dst * (H-1)/(OH-1)); False or None (the default, False) maps pixel edges
            (src = (dst + 0.5) * H/OH - 0.5, clamped at 0).

    Returns:
        y: (N, C, OH, OW).
    """
    op = "interpolate"
    check_image(op, x)
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"{op}: mode {mode!r} is not supported; use 'nearest' or 'bilinear'")
    if align_corners is not None and mode == "nearest":
        raise ValueError(f"{op}: align_corners={align_corners} only applies to mode='bilinear'; "
                         f"leave it None with mode='nearest'")
    if (size is None) == (scale_factor is None):
        given = "both" if size is not None else "neither"
        raise ValueError(f"{op}: give exactly one of size and scale_factor, got {given} "
                         f"(size={size!r}, scale_factor={scale_factor!r})")
    H, W = x.shape[2:]
    if size is not None:
        out_hw, scale_hw = pair(op, "size", size, 1), (None, None)
    else:
        scale_hw = _scale_pair(scale_factor)
        if scale_hw is None:
            raise ValueError(f"{op}: scale_factor must be a positive number or a pair of them, "
                             f"got {scale_factor!r}")
        out_hw = (math.floor(H * scale_hw[0]), math.floor(W * scale_hw[1]))
        if min(out_hw) < 1:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} turns the {H}x{W} input into "
                             f"{out_hw[0]}x{out_hw[1]}; the output needs at least one pixel per axis")
    if mode == "bilinear":
        return BilinearInterpolate.apply(x, out_hw, bool(align_corners), scale_hw)
    rows = nearest_source_index(H, out_hw[0], scale_hw[0])
    cols = nearest_source_index(W, out_hw[1], scale_hw[1])
    return NearestInterpolate.apply(x, rows, cols)
