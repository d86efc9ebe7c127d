"""The CPU engine's loops: im2col, col2im, pooling, unpooling and bilinear resizing, in Numba.

Same functions, arguments and results as ``reference.py``, which is the specification these are
tested against. Each public function is a thin Python wrapper: it works out the output geometry
(with reference's helpers), allocates the result and has the team (``cpu_team.py``) run one
compiled loop over its share of the (n, c) planes or images.

The loops are compiled with ``nogil=True`` (the team's threads run them at once) and without
Numba's parallel loops (the team is the parallelism). Compilation happens on first use, once per
dtype (float32, float64), and is cached on disk (``cache=True``), so only the first run pays for
it. To keep that cost low there are few loops, every geometry argument is a plain int, and arrays
are made C-contiguous first (Numba compiles a separate version for every memory layout).
"""
import numpy as np
from numba import njit

from . import cpu_team
from .reference import _pool_window_starts, bilinear_source_index, conv_output_size
from .registry import is_float, register

def _ints(*pairs):
    """Flatten (h, w) pairs into Python ints, so every call hits the same compiled signature."""
    return [int(v) for pair in pairs for v in pair]


@njit(cache=True)
def _inside(n_out, n_in, stride, offset):
    """The range [lo, hi) of outputs o whose input o*stride - offset lies inside [0, n_in).

    Working it out once per kernel tap keeps bounds tests out of the inner loops, which then
    vectorize (they are the whole cost of im2col and col2im)."""
    lo = min(max(0, -((-offset) // stride)), n_out)  # ceil(offset / stride), clipped
    hi = min(n_out, max(lo, (n_in - 1 + offset) // stride + 1))
    return lo, hi


@njit(nogil=True, cache=True)
def _im2col(x, cols, sh, sw, ph, pw, dh, dw):
    """x: (N, C, H, W) -> cols: (N, C, kh, kw, OH, OW), filled in place."""
    N, C, H, W = x.shape
    kh, kw, OH, OW = cols.shape[2:]
    for p in range(N * C):
        n, c = p // C, p % C
        for i in range(kh):
            for j in range(kw):
                lo, hi = _inside(OW, W, sw, pw - j * dw)  # input column w = ow*sw - pw + j*dw
                for oh in range(OH):
                    row = cols[n, c, i, j, oh]
                    h = oh * sh - ph + i * dh
                    if h < 0 or h >= H:  # the whole row reads padding
                        row[:] = 0
                        continue
                    row[:lo] = 0
                    row[hi:] = 0
                    src = x[n, c, h]
                    w0 = lo * sw - pw + j * dw
                    for ow in range(lo, hi):
                        row[ow] = src[w0 + (ow - lo) * sw]


@njit(nogil=True, cache=True)
def _col2im(cols, x, sh, sw, ph, pw, dh, dw):
    """cols: (N, C, kh, kw, OH, OW) added into x: (N, C, H, W), which must start at zero."""
    N, C, H, W = x.shape
    kh, kw, OH, OW = cols.shape[2:]
    for p in range(N * C):
        n, c = p // C, p % C
        for i in range(kh):
            for j in range(kw):
                lo, hi = _inside(OW, W, sw, pw - j * dw)
                for oh in range(OH):
                    h = oh * sh - ph + i * dh
                    if 0 <= h < H:  # rows that read padding give nothing back
                        row = cols[n, c, i, j, oh]
                        dst = x[n, c, h]
                        w0 = lo * sw - pw + j * dw
                        for ow in range(lo, hi):
                            dst[w0 + (ow - lo) * sw] += row[ow]


@njit(nogil=True, cache=True)
def _max_pool2d(x, y, indices, first_h, first_w, kh, kw, sh, sw, ph, pw, dh, dw):
    """x: (N, C, H, W) -> y, indices: (N, C, OH, OW), filled in place.

    first_h: (OH,), first_w: (OW,) are each window's first in-bounds row and column; scanning
    only in-bounds taps is the same as treating padding as -inf.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2:]
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            h_end = min(oh * sh - ph + (kh - 1) * dh + 1, H)
            for ow in range(OW):
                w_end = min(ow * sw - pw + (kw - 1) * dw + 1, W)
                best = -np.inf
                arg = first_h[oh] * W + first_w[ow]
                for h in range(first_h[oh], h_end, dh):
                    for w in range(first_w[ow], w_end, dw):
                        v = x[n, c, h, w]
                        if v > best or np.isnan(v):  # first maximum wins; NaN propagates
                            best = v
                            arg = h * W + w
                y[n, c, oh, ow] = best
                indices[n, c, oh, ow] = arg


@njit(nogil=True, cache=True)
def _scatter_planes(src, indices, out, accumulate):
    """out[p, indices[p, m]] (+)= src[p, m] for src, indices: (P, M), out: (P, K).

    Serves max_pool2d_backward (accumulate: overlapping windows share winners) and
    max_unpool2d (assign: the last write wins, as in PyTorch's loop).
    """
    P, M = src.shape
    for p in range(P):
        for m in range(M):
            if accumulate:
                out[p, indices[p, m]] += src[p, m]
            else:
                out[p, indices[p, m]] = src[p, m]


@njit(nogil=True, cache=True)
def _gather_planes(src, indices, out):
    """out[p, m] = src[p, indices[p, m]] for src: (P, K), indices, out: (P, M)."""
    P, M = out.shape
    for p in range(P):
        for m in range(M):
            out[p, m] = src[p, indices[p, m]]


@njit(nogil=True, cache=True)
def _bilinear(x, y, h0, h1, lh0, lh1, w0, w1, lw0, lw1):
    """x: (N, C, H, W) -> y: (N, C, OH, OW). Output row oh blends input rows h0[oh], h1[oh]
    with weights lh0[oh], lh1[oh]; columns likewise with w0, w1, lw0, lw1."""
    N, C = x.shape[:2]
    OH, OW = y.shape[2:]
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            for ow in range(OW):
                top = lw0[ow] * x[n, c, h0[oh], w0[ow]] + lw1[ow] * x[n, c, h0[oh], w1[ow]]
                bottom = lw0[ow] * x[n, c, h1[oh], w0[ow]] + lw1[ow] * x[n, c, h1[oh], w1[ow]]
                y[n, c, oh, ow] = lh0[oh] * top + lh1[oh] * bottom


@njit(nogil=True, cache=True)
def _bilinear_backward(dy, dx, h0, h1, lh0, lh1, w0, w1, lw0, lw1):
    """dy: (N, C, OH, OW) added into dx: (N, C, H, W), which must start at zero; the transpose
    of _bilinear, each output sending its gradient back to its four sources."""
    N, C = dy.shape[:2]
    OH, OW = dy.shape[2:]
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            for ow in range(OW):
                g = dy[n, c, oh, ow]
                dx[n, c, h0[oh], w0[ow]] += lh0[oh] * lw0[ow] * g
                dx[n, c, h0[oh], w1[ow]] += lh0[oh] * lw1[ow] * g
                dx[n, c, h1[oh], w0[ow]] += lh1[oh] * lw0[ow] * g
                dx[n, c, h1[oh], w1[ow]] += lh1[oh] * lw1[ow] * g


def _shared(kernel, split, *rest):
    """kernel(*(a[start:stop] for a in split), *rest) for each of the team's shares of the first
    axis (images, or (n, c) planes), at once (cpu_team.py). Every loop above writes only to the
    images or planes it reads from (repeated indices stay inside one plane), so shares never
    write to the same place. Slices along the first axis of a C-contiguous array stay
    C-contiguous, so every share runs the same compiled loop."""
    def share(start, stop):
        kernel(*(a[start:stop] for a in split), *rest)
    cpu_team.run(share, split[0].shape[0], sum(a.size for a in split))


@register("im2col", "cpu", "Numba loop, shares of planes", applies=is_float)
def im2col(x, kernel_size, stride, padding, dilation):
    """x: (N, C, H, W) -> cols: (N, C*kh*kw, OH*OW); see reference.im2col."""
    kh, kw, sh, sw, ph, pw, dh, dw = _ints(kernel_size, stride, padding, dilation)
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    cols = np.empty((N, C, kh, kw, OH, OW), dtype=x.dtype)
    _shared(_im2col, (np.ascontiguousarray(x), cols), sh, sw, ph, pw, dh, dw)
    return cols.reshape(N, C * kh * kw, OH * OW)


@register("col2im", "cpu", "Numba loop, shares of planes", applies=is_float)
def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """cols: (N, C*kh*kw, OH*OW) -> x: (N, C, H, W); see reference.col2im."""
    kh, kw, sh, sw, ph, pw, dh, dw = _ints(kernel_size, stride, padding, dilation)
    N, C, H, W = x_shape
    OH, OW = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    if cols.shape != (N, C * kh * kw, OH * OW):  # a mismatch would read outside cols
        raise ValueError(f"cols has shape {cols.shape}, expected {(N, C * kh * kw, OH * OW)}")
    x = np.zeros((N, C, H, W), dtype=cols.dtype)
    col2im_into(cols, x, kernel_size, stride, padding, dilation)
    return x


def col2im_into(cols, x, kernel_size, stride, padding, dilation):
    """Add col2im(cols) into x: (N, C, H, W), a C-contiguous array, in place."""
    kh, kw, sh, sw, ph, pw, dh, dw = _ints(kernel_size, stride, padding, dilation)
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    cols = np.ascontiguousarray(cols).reshape(N, C, kh, kw, OH, OW)
    _shared(_col2im, (cols, x), sh, sw, ph, pw, dh, dw)


@register("max_pool2d", "cpu", "Numba loop, shares of planes", applies=is_float)
def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode):
    """x: (N, C, H, W) -> y, indices: (N, C, OH, OW); see reference.max_pool2d."""
    kh, kw, sh, sw, ph, pw, dh, dw = _ints(kernel_size, stride, padding, dilation)
    N, C, H, W = x.shape
    OH = conv_output_size(H, kh, sh, ph, dh, ceil_mode)
    OW = conv_output_size(W, kw, sw, pw, dw, ceil_mode)
    first_h = _pool_window_starts(H, OH, kh, sh, ph, dh)
    first_w = _pool_window_starts(W, OW, kw, sw, pw, dw)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    indices = np.empty((N, C, OH, OW), dtype=np.int64)
    _shared(_max_pool2d, (np.ascontiguousarray(x), y, indices), first_h, first_w,
            kh, kw, sh, sw, ph, pw, dh, dw)
    return y, indices


def _planes(a, index):
    """Views of an array and its int64 indices as (N*C, rest) rows, ready for a plane kernel."""
    P = a.shape[0] * a.shape[1]
    return (np.ascontiguousarray(a).reshape(P, -1),
            np.ascontiguousarray(index, dtype=np.int64).reshape(P, -1))


@register("max_pool2d_backward", "cpu", "Numba loop, shares of planes", applies=is_float)
def max_pool2d_backward(dy, indices, x_shape):
    """dy, indices: (N, C, OH, OW) -> dx: (N, C, H, W); see reference.max_pool2d_backward."""
    N, C, H, W = x_shape
    dx = np.zeros((N * C, H * W), dtype=dy.dtype)
    _shared(_scatter_planes, (*_planes(dy, indices), dx), True)
    return dx.reshape(x_shape)


@register("max_unpool2d", "cpu", "Numba loop, shares of planes", applies=is_float)
def max_unpool2d(x, indices, output_hw):
    """x, indices: (N, C, H, W) -> y: (N, C, OH, OW); see reference.max_unpool2d."""
    N, C = x.shape[:2]
    OH, OW = output_hw
    y = np.zeros((N * C, OH * OW), dtype=x.dtype)
    _shared(_scatter_planes, (*_planes(x, indices), y), False)
    return y.reshape(N, C, OH, OW)


@register("max_unpool2d_backward", "cpu", "Numba loop, shares of planes", applies=is_float)
def max_unpool2d_backward(dy, indices):
    """dy: (N, C, OH, OW), indices: (N, C, H, W) -> dx: (N, C, H, W); see reference."""
    src, index = _planes(dy, indices)
    dx = np.empty(index.shape, dtype=dy.dtype)
    _shared(_gather_planes, (src, index, dx))
    return dx.reshape(indices.shape)


def _axis(in_size, out_size, align_corners, scale, dtype):
    """(i0, i1, 1 - lam, lam) along one axis, weights in ``dtype`` (see bilinear_source_index)."""
    i0, i1, lam = bilinear_source_index(in_size, out_size, align_corners, scale)
    return i0, i1, (1.0 - lam).astype(dtype), lam.astype(dtype)


@register("bilinear_interpolate", "cpu", "Numba loop, shares of planes", applies=is_float)
def bilinear_interpolate(x, out_hw, align_corners, scale_hw=(None, None)):
    """x: (N, C, H, W) -> y: (N, C, OH, OW); see reference.bilinear_interpolate."""
    N, C, H, W = x.shape
    OH, OW = int(out_hw[0]), int(out_hw[1])
    along_h = _axis(H, OH, align_corners, scale_hw[0], x.dtype)
    along_w = _axis(W, OW, align_corners, scale_hw[1], x.dtype)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    _shared(_bilinear, (np.ascontiguousarray(x), y), *along_h, *along_w)
    return y


@register("bilinear_interpolate_backward", "cpu", "Numba loop, shares of planes", applies=is_float)
def bilinear_interpolate_backward(dy, in_hw, align_corners, scale_hw=(None, None)):
    """dy: (N, C, OH, OW) -> dx: (N, C, H, W); see reference.bilinear_interpolate_backward."""
    N, C, OH, OW = dy.shape
    H, W = int(in_hw[0]), int(in_hw[1])
    along_h = _axis(H, OH, align_corners, scale_hw[0], dy.dtype)
    along_w = _axis(W, OW, align_corners, scale_hw[1], dy.dtype)
    dx = np.zeros((N, C, H, W), dtype=dy.dtype)
    _shared(_bilinear_backward, (np.ascontiguousarray(dy), dx), *along_h, *along_w)
    return dx
