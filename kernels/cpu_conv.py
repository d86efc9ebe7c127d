"""Convolution on the CPU by im2col, a few images at a time: the readable path's products, with less memory traffic.

The readable path (``tinypix/functional/conv.py``) unfolds the whole batch with im2col and then
multiplies. For a 16x64x64x64 batch and a 3x3 kernel those columns take 151 MB: writing them
out and reading them back costs as much time as the arithmetic. Here the same matrix products
run on a chunk of images whose columns fit in the processor's cache (about ``CHUNK_BYTES``),
unfolded into one buffer that every chunk reuses, with each product writing straight into its
slice of the result. Also:

  - nothing of the columns' size is kept for backward: the weight gradient unfolds x again,
    which costs less than storing the columns and reading them back;
  - at stride 1 each product can unfold either of its two images (see ``flip_geometry``), so it
    unfolds the one with fewer channels; the input gradient then needs no scatter-add when dy
    has fewer;
  - where both gradients of conv2d unfold dy (``conv2d_backward``), and in
    ``conv_transpose2d_backward``, one unfold per chunk serves both products;
  - unfolding is one strided copy per chunk (``_windows``), with no bounds tests at all: the
    chunk is copied into a zero-bordered buffer first;
  - the team's threads (``cpu_team.py``) take a share of the images each.

This module's implementations are asked after cpu_patches' and cpu_winograd's (registry.ENGINES)
and take every float32 and float64 convolution those leave. ``geo`` is functional/conv.py's
Geometry (kernel_size, stride, padding, dilation as (h, w) pairs, groups).
"""
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import cpu, cpu_patches, cpu_team
from .reference import conv_output_size
from .registry import is_float, register

CHUNK_BYTES = 4 << 20  # columns per chunk: well inside the L2+L3 cache of a laptop or server core
MIN_COLUMNS = 1024     # no narrower products (images this wide get products of their own,
                       # which need no copies of y and dy)
HOW = "im2col a cache-sized chunk of images at a time"


def out_hw(hw, geo):
    """The output grid (OH, OW) of a convolution with geometry ``geo`` on an (H, W) input."""
    return tuple(conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                 zip(hw, geo.kernel_size, geo.stride, geo.padding, geo.dilation))


def flip_geometry(geo):
    """At stride 1, the geometry of the same product seen from the other side (padding
    d*(k-1) - p), or None where that does not exist.

    conv2d(x, w) is then also conv2d's backward-data of x with the flipped, transposed kernel
    (``flipped_transposed``), and the other way round. Unfolding copies (channels * kh * kw) rows
    per pixel, so each product can pick the side with fewer channels."""
    pad = tuple(d * (k - 1) - p for k, p, d in zip(geo.kernel_size, geo.padding, geo.dilation))
    return geo._replace(padding=pad) if geo.stride == (1, 1) and min(pad) >= 0 else None


def flipped_transposed(w, groups):
    """w (F, C/G, kh, kw) -> (C, F/G, kh, kw): each filter turned 180 degrees, input and output
    channels swapped within each group. Applying it twice gives w back."""
    F, Cg, kh, kw = w.shape
    wg = w.reshape(groups, F // groups, Cg, kh, kw)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(wg.swapaxes(1, 2)).reshape(groups * Cg, F // groups, kh, kw)


# -- the ops ----------------------------------------------------------------------------------
@register("conv2d", "cpu", HOW, applies=is_float)
def conv2d(x, w, geo):
    """x (N, C, H, W), w (F, C/G, kh, kw) -> y (N, F, OH, OW)."""
    flip = flip_geometry(geo)
    if flip is not None and w.shape[0] < x.shape[1]:
        out_shape = (x.shape[0], w.shape[0]) + out_hw(x.shape[2:], geo)
        return scatter(x, flipped_transposed(w, geo.groups), flip, out_shape)
    return gather(x, geo, w=w)[0]


@register("conv2d_backward_data", "cpu", HOW, applies=is_float)
def conv2d_backward_data(dy, w, geo, x_shape):
    """dy (N, F, OH, OW), w (F, C/G, kh, kw) -> dx of shape x_shape (N, C, H, W)."""
    flip = flip_geometry(geo)
    if flip is not None and w.shape[0] <= x_shape[1]:
        return gather(dy, flip, w=flipped_transposed(w, geo.groups))[0]
    return scatter(dy, w, geo, x_shape)


@register("conv2d_backward_weight", "cpu", HOW, applies=is_float)
def conv2d_backward_weight(dy, x, w_shape, geo):
    """dy (N, F, OH, OW), x (N, C, H, W) -> dw (F, C/G, kh, kw)."""
    flip = flip_geometry(geo)
    if flip is not None and w_shape[0] < x.shape[1]:
        flipped_shape = (x.shape[1], w_shape[0] // geo.groups) + tuple(w_shape[2:])
        return flipped_transposed(gather(dy, flip, d=x, w_shape=flipped_shape)[1], geo.groups)
    return np.ascontiguousarray(gather(x, geo, d=dy, w_shape=w_shape)[1])


@register("conv2d_backward", "cpu", HOW, applies=is_float)
def conv2d_backward(dy, x, w, geo):
    """conv2d's (dx, dw). Where both products unfold dy (stride 1, dy with no more channels than
    x), one unfold per chunk serves both."""
    flip = flip_geometry(geo)
    if flip is None or w.shape[0] > x.shape[1]:
        return conv2d_backward_data(dy, w, geo, x.shape), conv2d_backward_weight(dy, x, w.shape, geo)
    w_flip = flipped_transposed(w, geo.groups)
    dx, dw_flip = gather(dy, flip, w=w_flip, d=x, w_shape=w_flip.shape)
    return dx, flipped_transposed(dw_flip, geo.groups)


@register("conv_transpose2d_backward", "cpu", HOW, applies=is_float)
def conv_transpose2d_backward(dy, x, w, geo):
    """conv_transpose2d's (dx, dw) = (conv2d of dy, conv2d's weight gradient with x as the output
    gradient): both unfold dy, one unfold per chunk, unless x has fewer channels (then neither
    does)."""
    flip = flip_geometry(geo)
    if flip is not None and w.shape[0] < dy.shape[1]:
        return conv2d(dy, w, geo), conv2d_backward_weight(x, dy, w.shape, geo)
    dx, dw = gather(dy, geo, w=w, d=x, w_shape=w.shape)
    return dx, np.ascontiguousarray(dw)


# -- the two routes ---------------------------------------------------------------------------
def _images_per_chunk(N, rows, L, dtype):
    """How many images' columns (rows x L each) fit in CHUNK_BYTES, or make MIN_COLUMNS columns
    if that is more; at least one, at most N."""
    fit = CHUNK_BYTES // (rows * L * np.dtype(dtype).itemsize)
    return max(1, min(N, max(fit, -(-MIN_COLUMNS // L))))


def _windows(xpad, geo, hw):
    """im2col as a view: xpad (n, C, Hp, Wp) -> (n, C, kh, kw, OH, OW), no copy.

    Entry [n, c, i, j, oh, ow] is xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]: the tap (i, j) of the
    window at (oh, ow). Copying this view into a contiguous buffer is im2col.
    """
    s = xpad.strides
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel_size, geo.stride, geo.dilation
    return as_strided(xpad, xpad.shape[:2] + (kh, kw) + tuple(hw),
                      (s[0], s[1], s[2] * dh, s[3] * dw, s[2] * sh, s[3] * sw), writeable=False)


class _Unfolder:
    """Unfolds chunks of a batch x: (N, C, H, W) into one reused buffer of columns.

    ``chunks()`` yields (start, stop, cols) with cols: (G, C/G*kh*kw, n*OH*OW) for the
    n = stop - start images: group g's rows of reference.im2col(x)[start:stop], the n images
    side by side, so that one matrix product covers the chunk (which matters for the small
    images deep in a network). Valid until the next chunk.
    """

    def __init__(self, x, geo):
        N, C, H, W = x.shape
        (kh, kw), (ph, pw) = geo.kernel_size, geo.padding
        self.x, self.geo, self.out_hw = x, geo, out_hw((H, W), geo)
        rows, L = C * kh * kw, self.out_hw[0] * self.out_hw[1]
        self.size = _images_per_chunk(N, rows, L, x.dtype)
        self.pad = np.zeros((self.size, C, H + 2 * ph, W + 2 * pw), x.dtype)  # borders stay 0
        self.cols = np.empty((C, kh, kw, self.size * L), x.dtype)

    def chunks(self):
        (ph, pw), (N, _, H, W), G = self.geo.padding, self.x.shape, self.geo.groups
        for start in range(0, N, self.size):
            n = min(self.size, N - start)
            pad, cols = self.pad[:n], self.cols[..., :n * self.out_hw[0] * self.out_hw[1]]
            pad[:, :, ph:ph + H, pw:pw + W] = self.x[start:start + n]
            windows = _windows(pad, self.geo, self.out_hw).transpose(1, 2, 3, 0, 4, 5)
            np.copyto(cols.reshape(windows.shape), windows)  # (C, kh, kw, n, OH, OW)
            yield start, start + n, cols.reshape(G, -1, cols.shape[-1])


def gather(a, geo, w=None, d=None, w_shape=None):
    """The products that unfold a (N, C, H, W), one unfold per chunk for both:
    y = W @ im2col(a) per group if w (F, C/G, kh, kw) is given, and
    dw = sum over images of d_n @ im2col(a_n)^T, of shape w_shape, if d (N, F, OH, OW) is given.
    Returns (y, dw), None for a product not asked for; dw may be a view of a transposed sum
    (callers copy it once, in the layout they need).

    Each of the team's threads takes a share of the images, writes its part of y in place and
    returns its part of dw; the parts are added up."""
    F = w.shape[0] if w is not None else w_shape[0]
    y = None if w is None else np.empty((a.shape[0], F) + out_hw(a.shape[2:], geo), a.dtype)

    def share(start, stop):
        return _gather_share(a[start:stop], geo, w, None if d is None else d[start:stop],
                             w_shape, None if y is None else y[start:stop])
    work = a.size * math.prod(geo.kernel_size) + (0 if y is None else y.size)  # cols and y
    if d is None:
        cpu_team.run(share, a.shape[0], work)
        return y, None
    return y, cpu_team.run_and_add(share, a.shape[0], work).swapaxes(1, 2).reshape(w_shape)


def _gather_share(a, geo, w, d, w_shape, y):
    """gather's work for images a, writing y (or None) in place; returns dw transposed,
    (G, C/G*kh*kw, F/G), or None."""
    G, unfold = geo.groups, _Unfolder(a, geo)
    dw_t = None
    if w is not None:
        F = w.shape[0]
        w_mat = w.reshape(G, F // G, -1)                        # (G, F/G, C/G*kh*kw)
    L = unfold.out_hw[0] * unfold.out_hw[1]
    for start, stop, cols in unfold.chunks():
        if L >= MIN_COLUMNS or stop - start == 1:  # each image's products are wide enough alone:
            pieces = [(cols[..., k * L:(k + 1) * L], start + k, start + k + 1)  # no copies of y, d
                      for k in range(stop - start)]
        else:                                      # one product for the chunk's images
            pieces = [(cols, start, stop)]
        for part_cols, first, last in pieces:
            if w is not None and last - first == 1:  # the product lands in place
                np.matmul(w_mat, part_cols, out=y[first].reshape(G, F // G, L))
            elif w is not None:                      # (F, n, OH, OW) -> images first
                y[first:last] = (w_mat @ part_cols).reshape((F, last - first) + unfold.out_hw).swapaxes(0, 1)
            if d is not None:  # summed transposed, (G, C/G*kh*kw, F/G): OpenBLAS's faster way
                part = part_cols @ _side_by_side(d[first:last], G).swapaxes(1, 2)
                if dw_t is None:
                    dw_t = part
                else:
                    dw_t += part
    if d is not None and dw_t is None:  # an empty batch
        dw_t = np.zeros((G, math.prod(w_shape[1:]), w_shape[0] // G), a.dtype)
    return dw_t


def _side_by_side(a, groups):
    """(n, G*r, OH, OW) -> (G, r, n*OH*OW): the chunk's images side by side, per group (a copy
    unless n == 1)."""
    cols = cpu_patches.side_by_side(a)
    return cols.reshape(groups, a.shape[1] // groups, cols.shape[1])


def scatter(dy, w, geo, x_shape):
    """dx = col2im(W^T @ dy) per group, a chunk of images at a time (any stride); the team's
    threads take a share of the images each."""
    dx = np.zeros(x_shape, dy.dtype)
    cpu_team.run(lambda start, stop: _scatter_share(dy[start:stop], w, geo, dx[start:stop]),
                 dy.shape[0], dy.size + dx.size)
    return dx


def _scatter_share(dy, w, geo, dx):
    """scatter's work for images dy, added into their dx (zeros)."""
    N, F = dy.shape[:2]
    G, oh_ow = geo.groups, dy.shape[2:]
    w_t = w.reshape(G, F // G, -1).swapaxes(1, 2)           # (G, C/G*kh*kw, F/G), a view
    rows, L = w_t.shape[0] * w_t.shape[1], oh_ow[0] * oh_ow[1]
    size = _images_per_chunk(N, rows, L, dy.dtype)
    cols = np.empty((size, rows, L), dy.dtype)
    dy_mat = np.ascontiguousarray(dy).reshape(N, G, F // G, L)
    for start in range(0, N, size):
        stop = min(start + size, N)
        chunk = cols[:stop - start]
        np.matmul(w_t, dy_mat[start:stop], out=chunk.reshape(stop - start, G, -1, L))
        cpu.col2im_into(chunk, dx[start:stop], geo.kernel_size, geo.stride, geo.padding, geo.dilation)
