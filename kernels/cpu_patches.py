"""Convolution whose windows tile the image: kernel == stride, no padding, no dilation, one group.

A U-Net's 2x2 stride-2 transposed convolutions (and 1x1 convolutions) have this geometry. Each
pixel then lies in exactly one window, so im2col is only a reordering of the image, and col2im
only a reordering of the columns: no overlaps to add up, no zero border. Here each is one copy
of a share of the images, laid out with the images side by side, so that every product is one
wide matrix product. (cpu_conv's general route multiplies image by image where it scatters, and
for 8x8 inputs those products are 64 columns wide; where it unfolds, it copies through a padded
buffer first.)

Registered for these geometries in float32 and float64, asked before cpu_winograd and cpu_conv
(registry.ENGINES); ``geo`` is functional/conv.py's Geometry.
"""
import numpy as np
from numba import njit

from . import cpu_team
from .reference import conv_output_size
from .registry import FLOATS, register

HOW = "windows that tile the image: im2col as a reordering"


def tiles_the_image(geo):
    """Whether the windows of ``geo`` tile the image (and the functions below compute it)."""
    return (geo.kernel_size == geo.stride and geo.padding == (0, 0) and geo.dilation == (1, 1)
            and geo.groups == 1)


def _applies(a, *args):
    """``applies`` for every op below: float32 or float64, and the Geometry among the arguments
    tiles the image."""
    geo = next(arg for arg in args if hasattr(arg, "kernel_size"))
    return a.dtype in FLOATS and tiles_the_image(geo)


@register("conv2d", "cpu", HOW, applies=_applies)
def conv2d(x, w, geo):
    return unfold_and_multiply(x, geo, w=w)[0]


@register("conv2d_backward_data", "cpu", HOW, applies=_applies)
def conv2d_backward_data(dy, w, geo, x_shape):
    return scatter(dy, w, geo, x_shape)


@register("conv2d_backward_weight", "cpu", HOW, applies=_applies)
def conv2d_backward_weight(dy, x, w_shape, geo):
    return unfold_and_multiply(x, geo, d=dy, w_shape=w_shape)[1]


@register("conv2d_backward", "cpu", HOW, applies=_applies)
def conv2d_backward(dy, x, w, geo):
    return scatter(dy, w, geo, x.shape), unfold_and_multiply(x, geo, d=dy, w_shape=w.shape)[1]


@register("conv_transpose2d_backward", "cpu", HOW, applies=_applies)
def conv_transpose2d_backward(dy, x, w, geo):
    return unfold_and_multiply(dy, geo, w=w, d=x, w_shape=w.shape)


@njit(nogil=True, cache=True)
def _reorder(image, cols, unfold):
    """Copy between image (n, C, H, W) and its columns cols (C, kh, kw, n, OH, OW), where
    cols[c, i, j, m, oh, ow] is image[m, c, oh*kh + i, ow*kw + j]: into cols if unfold (im2col),
    else into image (col2im; its rows and columns past OH*kh, OW*kw are left as they are).
    Along image rows and column rows: faster than NumPy's copy of a transposed view, whose
    innermost axis is the kernel's 2 columns."""
    C, kh, kw, n, OH, OW = cols.shape
    for m in range(n):
        for c in range(C):
            for oh in range(OH):
                for i in range(kh):
                    row = image[m, c, oh * kh + i]
                    for j in range(kw):
                        col = cols[c, i, j, m, oh]
                        if unfold:
                            for ow in range(OW):
                                col[ow] = row[ow * kw + j]
                        else:
                            for ow in range(OW):
                                row[ow * kw + j] = col[ow]


def _unfold(a, kernel_size, out_hw):
    """im2col with the images side by side: a (n, C, H, W) -> (C*kh*kw, n*OH*OW), a copy."""
    n, C = a.shape[:2]
    (kh, kw), (OH, OW) = kernel_size, out_hw
    cols = np.empty((C, kh, kw, n, OH, OW), a.dtype)
    _reorder(np.ascontiguousarray(a), cols, True)
    return cols.reshape(C * kh * kw, n * OH * OW)


def side_by_side(a):
    """(n, F, OH, OW) -> (F, n*OH*OW), a copy: the images side by side, as _unfold lays them."""
    n, F, OH, OW = a.shape  # (sizes spelled out, not -1: n may be 0)
    return np.ascontiguousarray(a.reshape(n, F, OH * OW).swapaxes(0, 1)).reshape(F, n * OH * OW)


def unfold_and_multiply(a, geo, w=None, d=None, w_shape=None):
    """cpu_conv.gather for tiling windows: y = conv2d(a, w) if w (F, C, kh, kw) is
    given, and dw = sum_n d_n @ im2col(a_n)^T, of shape w_shape, if d (N, F, OH, OW) is given.
    Returns (y, dw), None for a product not asked for. The team's threads take a share of the
    images each; their parts of dw are summed here."""
    N, C, H, W = a.shape
    kh, kw = geo.kernel_size
    out_hw = (conv_output_size(H, kh, kh), conv_output_size(W, kw, kw))
    F = w.shape[0] if w is not None else w_shape[0]
    y = None if w is None else np.empty((N, F) + out_hw, a.dtype)

    def share(start, stop):
        cols = _unfold(a[start:stop], geo.kernel_size, out_hw)       # (C*kh*kw, n*OH*OW)
        if w is not None:                                           # (F, n, OH, OW) -> images first
            product = w.reshape(F, -1) @ cols
            np.copyto(y[start:stop], product.reshape((F, stop - start) + out_hw).swapaxes(0, 1))
        if d is not None:  # transposed, (C*kh*kw, F): OpenBLAS's faster orientation
            return cols @ side_by_side(d[start:stop]).T
    work = a.size + (0 if y is None else y.size)
    if d is None:
        cpu_team.run(share, N, work)
        return y, None
    dw_t = cpu_team.run_and_add(share, N, work) if N else np.zeros((C * kh * kw, F), a.dtype)
    return y, np.ascontiguousarray(dw_t.T).reshape(w_shape)


def scatter(dy, w, geo, x_shape):
    """cpu_conv.scatter for tiling windows: dx = col2im(W^T @ dy), of shape x_shape, for dy
    (N, F, OH, OW) and w (F, C, kh, kw). Rows and columns of dx that no window covers are 0."""
    N, F = dy.shape[:2]
    out_hw = dy.shape[2:]
    dx = np.empty(x_shape, dy.dtype)
    if x_shape[2:] != (out_hw[0] * geo.kernel_size[0], out_hw[1] * geo.kernel_size[1]):
        dx[...] = 0  # (only the uncovered rows and columns need it; they are few)
    C = x_shape[1]
    kh, kw = geo.kernel_size

    def share(start, stop):
        cols = w.reshape(F, -1).T @ side_by_side(dy[start:stop])   # (C*kh*kw, n*OH*OW)
        _reorder(dx[start:stop], cols.reshape((C, kh, kw, stop - start) + tuple(out_hw)), False)
    cpu_team.run(share, N, dy.size + dx.size)
    return dx
