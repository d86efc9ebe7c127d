"""Convolution on the CPU, a few images at a time: the same products as the readable path, less memory traffic.

The readable path (``tinypix/functional/conv.py``) unfolds the whole batch with im2col and then
multiplies. For a 16x64x64x64 batch and a 3x3 kernel those columns take 151 MB: writing them
out and reading them back costs as much time as the arithmetic. Here the same matrix products
run on a chunk of images whose columns fit in the processor's cache (about ``CHUNK_BYTES``),
unfolded into one buffer that every chunk reuses, with each product writing straight into its
slice of the result. More savings:

  - nothing of the columns' size is kept for backward: the weight gradient unfolds x again,
    which costs less than storing the columns and reading them back;
  - at stride 1 each product can unfold either of its two images (below), so it unfolds the one
    with fewer channels; the input gradient then needs no scatter-add when dy has fewer;
  - where backward's two products both unfold dy (``conv2d_grads``, ``conv_transpose2d_grads``),
    one unfold per chunk serves both;
  - unfolding is one strided copy per chunk (``_windows``), with no bounds tests at all: the
    chunk is copied into a zero-bordered buffer first;
  - big 3x3 stride-1 products (``cpu_winograd.applies``) take Winograd's route instead
    (``cpu_winograd.py``): an input transform in place of the unfold, and 4x fewer
    multiplications. The routes below then prefer the flipped side, which needs no scatter-add;
  - windows that tile the image (kernel == stride, no padding: 2x2 stride-2 up-sampling, 1x1)
    take ``cpu_patches.py``: unfolding is then a reordering, with no padded buffer and no adds;
  - every core works at once, on its own images (``cpu_team.py``), rather than every core on
    a sliver of each narrow product.

Arrays in, arrays out, NumPy only; ``geo`` is functional/conv.py's Geometry (kernel_size,
stride, padding, dilation, groups as ints and (h, w) pairs). Tests hold these functions equal
to the readable path on drawn geometries.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import cpu, cpu_patches, cpu_team, cpu_winograd
from .reference import conv_output_size

CHUNK_BYTES = 4 << 20  # columns per chunk: well inside the L2+L3 cache of a laptop or server core
MIN_COLUMNS = 1024     # but no narrower products: 4x256x16x16 ran 8% faster 4 images at a time;
                       # images this wide get products of their own (no copies of y and dy:
                       # 8x3x128x128 -> 32 9.9 ms against 11.2, interleaved calls)
WINOGRAD_SHARE = 4     # fewer images per team thread: Winograd shares out its passes instead


def _out_hw(hw, geo):
    return tuple(conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                 zip(hw, geo.kernel_size, geo.stride, geo.padding, geo.dilation))


def _images_per_chunk(N, rows, L, dtype):
    """How many images' columns (rows x L each) fit in CHUNK_BYTES, or make MIN_COLUMNS columns
    if that is more; at least one, at most N."""
    fit = CHUNK_BYTES // (rows * L * np.dtype(dtype).itemsize)
    return max(1, min(N, max(fit, -(-MIN_COLUMNS // L))))


def _windows(xpad, geo, out_hw):
    """im2col as a view: xpad (n, C, Hp, Wp) -> (n, C, kh, kw, OH, OW), no copy.

    Entry [n, c, i, j, oh, ow] is xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]: the tap (i, j) of the
    window at (oh, ow). Copying this view into a contiguous buffer is im2col.
    """
    s = xpad.strides
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel_size, geo.stride, geo.dilation
    return as_strided(xpad, xpad.shape[:2] + (kh, kw) + tuple(out_hw),
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
        self.x, self.geo, self.out_hw = x, geo, _out_hw((H, W), geo)
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


def _side_by_side(a, groups):
    """(n, G*r, OH, OW) -> (G, r, n*OH*OW): the chunk's images side by side, per group (a copy
    unless n == 1)."""
    cols = cpu_patches.side_by_side(a)
    return cols.reshape(groups, a.shape[1] // groups, cols.shape[1])


def _flip_geometry(geo):
    """At stride 1, the geometry of the same product seen from the other side (padding
    d*(k-1) - p; see backward_data), or None where that does not exist."""
    pad = tuple(d * (k - 1) - p for k, p, d in zip(geo.kernel_size, geo.padding, geo.dilation))
    return geo._replace(padding=pad) if geo.stride == (1, 1) and min(pad) >= 0 else None


def _flipped_transposed(w, groups):
    """w (F, C/G, kh, kw) -> (C, F/G, kh, kw): each filter turned 180 degrees, input and output
    channels swapped within each group. Applying it twice gives w back."""
    F, Cg, kh, kw = w.shape
    wg = w.reshape(groups, F // groups, Cg, kh, kw)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(wg.swapaxes(1, 2)).reshape(groups * Cg, F // groups, kh, kw)


# At stride 1 each product below can unfold either of its two images: conv2d(x, w) is also
# conv2d's backward-data of x with the flipped, transposed kernel (and the other way round).
# Unfolding copies (channels * kh * kw) rows per pixel, so each picks the side with fewer channels.

def forward(x, w, geo):
    """conv2d without bias: x (N, C, H, W), w (F, C/G, kh, kw) -> y (N, F, OH, OW)."""
    if cpu_patches.applies(geo):
        return cpu_patches.unfold_and_multiply(x, geo, w=w)[0]
    flip = _flip_geometry(geo)
    if flip is not None and w.shape[0] < x.shape[1] and not cpu_winograd.applies(geo, x, w.shape[0]):
        out_shape = (x.shape[0], w.shape[0]) + _out_hw(x.shape[2:], geo)
        return _scatter(x, _flipped_transposed(w, geo.groups), flip, out_shape)
    return _gather(x, w, geo)


def backward_data(dy, w, geo, x_shape):
    """conv2d's input gradient: dy (N, F, OH, OW), w (F, C/G, kh, kw) -> dx of shape x_shape."""
    if cpu_patches.applies(geo):
        return cpu_patches.scatter(dy, w, geo, x_shape)
    flip = _flip_geometry(geo)
    if flip is not None and (w.shape[0] <= x_shape[1] or cpu_winograd.applies(flip, dy, x_shape[1])):
        return _gather(dy, _flipped_transposed(w, geo.groups), flip)
    return _scatter(dy, w, geo, x_shape)


def weight_grad(dy, x, w_shape, geo):
    """conv2d's weight gradient: dy (N, F, OH, OW), x (N, C, H, W) -> dw (F, C/G, kh, kw)."""
    if cpu_patches.applies(geo):
        return cpu_patches.unfold_and_multiply(x, geo, d=dy, w_shape=w_shape)[1]
    flip = _flip_geometry(geo)
    if flip is not None and w_shape[0] < x.shape[1]:
        flipped_shape = (x.shape[1], w_shape[0] // geo.groups) + tuple(w_shape[2:])
        return _flipped_transposed(_weight_grad_gather(x, dy, flipped_shape, flip), geo.groups)
    return np.ascontiguousarray(_weight_grad_gather(dy, x, w_shape, geo))


def conv2d_grads(dy, x, w, geo):
    """conv2d's (dx, dw) together. Where both products unfold dy (stride 1, dy with no more
    channels than x), one unfold per chunk serves both."""
    flip = _flip_geometry(geo)
    if (flip is None or cpu_patches.applies(geo)
            or (w.shape[0] > x.shape[1] and not cpu_winograd.applies(flip, dy, x.shape[1]))):
        return backward_data(dy, w, geo, x.shape), weight_grad(dy, x, w.shape, geo)
    w_flip = _flipped_transposed(w, geo.groups)
    dx, dw_flip = _unfold_and_multiply(dy, flip, w=w_flip, d=x, w_shape=w_flip.shape)
    return dx, _flipped_transposed(dw_flip, geo.groups)


def conv_transpose2d_grads(dy, x, w, geo):
    """conv_transpose2d's (dx, dw) = (conv2d's forward of dy, conv2d's weight gradient with x
    as the output gradient): both unfold dy unless x has fewer channels (then neither does)."""
    if cpu_patches.applies(geo):
        return cpu_patches.unfold_and_multiply(dy, geo, w=w, d=x, w_shape=w.shape)
    flip = _flip_geometry(geo)
    if flip is not None and w.shape[0] < dy.shape[1] and not cpu_winograd.applies(geo, dy, w.shape[0]):
        return forward(dy, w, geo), weight_grad(x, dy, w.shape, geo)
    dx, dw = _unfold_and_multiply(dy, geo, w=w, d=x, w_shape=w.shape)
    return dx, np.ascontiguousarray(dw)


def _gather(x, w, geo):
    """y = W @ im2col(x) per group, a chunk of images at a time."""
    return _unfold_and_multiply(x, geo, w=w)[0]


def _weight_grad_gather(dy, x, w_shape, geo):
    """dw = sum over images of dy_n @ im2col(x_n)^T per group (a view, maybe not contiguous)."""
    return _unfold_and_multiply(x, geo, d=dy, w_shape=w_shape)[1]


def _unfold_and_multiply(a, geo, w=None, d=None, w_shape=None):
    """One unfold of a per chunk, for one or both products that read it:
    y = W @ im2col(a) if w (F, C/G, kh, kw) is given, and dw = sum_n d_n @ im2col(a_n)^T, of
    shape w_shape, if d is given. Returns (y, dw), None for a product not asked for; dw may be
    a view of a transposed sum (callers copy it once, in the layout they need).

    Each of the team's threads (cpu_team.py) takes a share of the images, writes its part of y
    in place and returns its part of dw (for Winograd, of dw's transform dU); the parts are
    summed here."""
    F = w.shape[0] if w is not None else w_shape[0]
    y = None if w is None else np.empty((a.shape[0], F) + _out_hw(a.shape[2:], geo), a.dtype)
    winograd = cpu_winograd.applies(geo, a, F)  # decided for the whole batch, for every share
    if winograd and a.shape[0] < WINOGRAD_SHARE * cpu_team.size():  # share out its passes instead
        return y, cpu_winograd.unfold_and_multiply(a, geo.padding, w, d, w_shape, y)[1]
    if winograd:  # the weights are transformed once, the shares' summed dU transformed back once
        U = None if w is None else cpu_winograd.weight_transform(w)

        def multiply(a, d, y):
            return cpu_winograd.transformed_products(a, geo.padding, U, d, F, y)[1]
    else:
        def multiply(a, d, y):
            return _im2col_and_multiply(a, geo, w, d, w_shape, y)

    def share(start, stop):
        return multiply(a[start:stop], None if d is None else d[start:stop],
                        None if y is None else y[start:stop])
    work = a.size * math.prod(geo.kernel_size) + (0 if y is None else y.size)  # cols and y
    parts = cpu_team.run(share, a.shape[0], work)
    if d is None:
        return y, None
    total = parts[0]  # each share's own array: summed in place
    for part in parts[1:]:
        total += part
    return y, cpu_winograd.weight_adjoint(total, w_shape) if winograd else total


def _im2col_and_multiply(a, geo, w, d, w_shape, y):
    """_unfold_and_multiply's work for images a by im2col, writing y (or None) in place;
    returns dw (or None)."""
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
    if d is None:
        return None
    if dw_t is None:  # an empty batch
        dw_t = np.zeros((G, math.prod(w_shape[1:]), w_shape[0] // G), a.dtype)
    return dw_t.swapaxes(1, 2).reshape(w_shape)


def _scatter(dy, w, geo, x_shape):
    """dx = col2im(W^T @ dy) per group, a chunk of images at a time (any stride); the team's
    threads (cpu_team.py) take a share of the images each."""
    dx = np.zeros(x_shape, dy.dtype)
    cpu_team.run(lambda start, stop: _scatter_into(dy[start:stop], w, geo, dx[start:stop]),
                 dy.shape[0], dy.size + dx.size)
    return dx


def _scatter_into(dy, w, geo, dx):
    """_scatter's work for images dy, added into their dx (zeros)."""
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
