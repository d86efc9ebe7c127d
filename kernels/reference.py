"""Reference kernels: plain NumPy, readable, and the specification the fast kernels are tested against.

Every function takes arrays and returns arrays; there is no autograd here. The same code runs on
CuPy arrays: the array module ``xp`` comes from the input (``xp = _xp(x)``), so a GPU run uses
these functions until dedicated CUDA kernels exist.

Geometry arguments are ``(h, w)`` pairs of ints. Names: ``x`` an input batch ``(N, C, H, W)``,
``dy``/``dx`` gradients of an output/input, ``cols`` the im2col matrix, ``indices`` flat
positions ``h * W + w`` inside one ``(n, c)`` plane.
"""
from __future__ import annotations

import numpy as np


def _xp(x):
    """The array module of ``x``: cupy for a CuPy array (imported only then), numpy otherwise."""
    if type(x).__module__.startswith("cupy"):
        import cupy
        return cupy
    return np


def _scatter_add(target, index, values):
    """``target[index] += values`` where repeated indices accumulate (a plain ``+=`` keeps one)."""
    if _xp(target) is np:
        np.add.at(target, index, values)
    else:
        import cupyx
        cupyx.scatter_add(target, index, values)


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """How many positions a window takes as it slides over ``n`` pixels: PyTorch's formula for
    every convolution and pooling (and tinypix's only copy of it),

        floor((n + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1,    e.g. 32 - 3 + 1 = 30.

    The window has ``kernel`` taps, ``dilation`` pixels apart; the input is zero-padded by
    ``padding`` on each side. ``ceil_mode`` (pooling) rounds up instead, as long as the last
    window still starts inside the input or the left padding. A ValueError names the argument
    that is not a whole number in range, or says that the window does not fit.
    """
    for name, v, least in (("n", n, 1), ("kernel", kernel, 1), ("stride", stride, 1),
                           ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < least:
            raise ValueError(f"conv_output_size: {name} must be an int >= {least}, got {v!r}")
    span = dilation * (kernel - 1) + 1  # the dilated window's extent
    out = (n + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    if out < 1:  # (rounding up, a window may hang over the end; it must start inside)
        raise ValueError(f"conv_output_size: a window spanning {span} pixels does not fit in "
                         f"{n} + 2*{padding} = {n + 2 * padding} padded pixels")
    return int(out)


def _pool_window_starts(n, out, k, s, p, d):
    """First in-bounds input position of each of the ``out`` pooling windows: int64 ``(out,)``.

    A window starting in the left padding begins at its first tap that lands at ``>= 0``. With
    dilation a window can skip every input position (e.g. taps at -1 and 1 on a 1-pixel input);
    PyTorch then returns -inf with an index outside the plane, which no backward can use, so we
    refuse that geometry with a ValueError instead.
    """
    start = np.arange(out) * s - p
    first = np.where(start < 0, start % d, start)  # start + (taps skipped in the padding) * d
    last = np.minimum(start + d * (k - 1), n - 1)
    if np.any(first > last):
        o = int(np.argmax(first > last))
        raise ValueError(f"pooling window {o} covers only padding: input {n}, kernel {k}, "
                         f"stride {s}, padding {p}, dilation {d}")
    return first


def im2col(x, kernel_size, stride, padding, dilation):
    """Unfold every kernel-sized patch of ``x`` into a column, so convolution becomes a matmul.

    x: (N, C, H, W) -> cols: (N, C*kh*kw, OH*OW), C-contiguous, with
    ``cols[n, (c*kh + i)*kw + j, oh*OW + ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]``
    where xpad is x zero-padded by (ph, pw). The row order matches ``w.reshape(F, C*kh*kw)`` for
    a PyTorch weight w: (F, C, kh, kw).
    """
    xp = _xp(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    N, C, H, W = x.shape
    OH = conv_output_size(H, kh, sh, ph, dh)
    OW = conv_output_size(W, kw, sw, pw, dw)
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = xp.empty((N, C, kh, kw, OH, OW), dtype=x.dtype)
    # One strided slice per kernel tap (i, j) gathers that tap for every output position at once.
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            cols[:, :, i, j] = xpad[:, :, h0:h0 + sh * (OH - 1) + 1:sh, w0:w0 + sw * (OW - 1) + 1:sw]
    return cols.reshape(N, C * kh * kw, OH * OW)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """The adjoint of :func:`im2col`: add every column entry back to the pixel it was read from.

    cols: (N, C*kh*kw, OH*OW) -> x: (N, C, H, W) with ``x_shape = (N, C, H, W)``. Entries that
    im2col read from the zero padding are dropped. This is conv2d's backward-data and
    conv_transpose2d's forward.
    """
    xp = _xp(cols)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    N, C, H, W = x_shape
    OH = conv_output_size(H, kh, sh, ph, dh)
    OW = conv_output_size(W, kw, sw, pw, dw)
    cols = cols.reshape(N, C, kh, kw, OH, OW)
    xpad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            # Within one tap the strided positions are distinct, so a plain += adds every entry.
            xpad[:, :, h0:h0 + sh * (OH - 1) + 1:sh, w0:w0 + sw * (OW - 1) + 1:sw] += cols[:, :, i, j]
    return xp.ascontiguousarray(xpad[:, :, ph:ph + H, pw:pw + W])


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Max over each window, and where it was: PyTorch's max_pool2d with ``return_indices=True``.

    x: (N, C, H, W) -> y: (N, C, OH, OW), indices: int64 (N, C, OH, OW) holding the flat
    position ``h*W + w`` of the maximum in the unpadded (n, c) plane. Padding counts as -inf.
    Each window is scanned row-major; the first maximum wins, and a NaN always replaces the
    running maximum (so NaN propagates and the last NaN's index is kept, as in PyTorch).
    """
    xp = _xp(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    N, C, H, W = x.shape
    OH = conv_output_size(H, kh, sh, ph, dh, ceil_mode)
    OW = conv_output_size(W, kw, sw, pw, dw, ceil_mode)
    # With ceil_mode the last window may reach past the right padding: pad far enough for it.
    Hp = max(ph + H, sh * (OH - 1) + dh * (kh - 1) + 1)
    Wp = max(pw + W, sw * (OW - 1) + dw * (kw - 1) + 1)
    xpad = xp.full((N, C, Hp, Wp), -np.inf, dtype=x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    # Flat index of every padded position in the unpadded plane (meaningless on padding, which
    # never wins: -inf is not > anything).
    hs, ws = xp.arange(Hp) - ph, xp.arange(Wp) - pw
    flat = hs[:, None] * W + ws[None, :]
    # Start from -inf at each window's first real position, which an all -inf window keeps.
    first_h = xp.asarray(_pool_window_starts(H, OH, kh, sh, ph, dh))
    first_w = xp.asarray(_pool_window_starts(W, OW, kw, sw, pw, dw))
    y = xp.full((N, C, OH, OW), -np.inf, dtype=x.dtype)
    indices = xp.broadcast_to(first_h[:, None] * W + first_w[None, :], y.shape).astype(np.int64)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            window = (slice(h0, h0 + sh * (OH - 1) + 1, sh), slice(w0, w0 + sw * (OW - 1) + 1, sw))
            v = xpad[(slice(None), slice(None)) + window]
            take = (v > y) | xp.isnan(v)
            y = xp.where(take, v, y)
            indices = xp.where(take, flat[window], indices)
    return y, indices


def max_pool2d_backward(dy, indices, x_shape):
    """Route each output gradient to the input position that won its window.

    dy, indices: (N, C, OH, OW) -> dx: (N, C, H, W) with ``x_shape = (N, C, H, W)``. Overlapping
    windows can pick the same position, so contributions add up.
    """
    xp = _xp(dy)
    N, C, H, W = x_shape
    dx = xp.zeros((N * C, H * W), dtype=dy.dtype)
    plane = xp.arange(N * C)[:, None]
    _scatter_add(dx, (plane, indices.reshape(N * C, -1)), dy.reshape(N * C, -1))
    return dx.reshape(x_shape)


def max_unpool2d(x, indices, output_hw):
    """Put each value back at its recorded position; every other output is zero.

    x, indices: (N, C, H, W) -> y: (N, C, OH, OW) with ``output_hw = (OH, OW)`` and
    ``y[n, c].flat[indices[n, c]] = x[n, c]`` (assignment: for a repeated index one value is kept).
    """
    xp = _xp(x)
    N, C = x.shape[:2]
    OH, OW = output_hw
    y = xp.zeros((N * C, OH * OW), dtype=x.dtype)
    plane = xp.arange(N * C)[:, None]
    y[plane, indices.reshape(N * C, -1)] = x.reshape(N * C, -1)
    return y.reshape(N, C, OH, OW)


def max_unpool2d_backward(dy, indices):
    """Gather the gradient of each unpooled value from the position it was put at.

    dy: (N, C, OH, OW), indices: (N, C, H, W) -> dx: (N, C, H, W), ``dx[n, c] = dy[n, c].flat[indices[n, c]]``.
    """
    xp = _xp(dy)
    N, C = dy.shape[:2]
    dx = xp.take_along_axis(dy.reshape(N * C, -1), indices.reshape(N * C, -1), axis=1)
    return dx.reshape(indices.shape)


def bilinear_source_index(in_size, out_size, align_corners, scale):
    """Where each output position reads from along one axis, as PyTorch's upsample_bilinear2d.

    Returns ``(i0, i1, lam)``, each (out_size,): output position ``o`` is
    ``(1 - lam[o]) * x[i0[o]] + lam[o] * x[i1[o]]``. ``scale`` is the user's scale factor or None.
    i0, i1 are int64 and lam float64 NumPy arrays (tiny; callers cast lam to their dtype).
    An axis whose size does not change is copied, whatever the scale (PyTorch's CPU kernel does
    this: a scale of 1.2 on 4 pixels gives 4 pixels, unchanged).
    """
    if out_size < 1:
        raise ValueError(f"output size {out_size} < 1 (input size {in_size})")
    if out_size == in_size:
        copy = np.arange(out_size)
        return copy, copy, np.zeros(out_size)
    if align_corners:
        s = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        s = 1.0 / scale if scale is not None and scale > 0 else in_size / out_size
    dst = np.arange(out_size, dtype=np.float64)
    src = dst * s if align_corners else np.maximum((dst + 0.5) * s - 0.5, 0.0)
    # Clamping i0 and lam only matters for a user scale that points past the last input,
    # where PyTorch clamps the same way.
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = np.clip(src - i0, 0.0, 1.0)
    return i0, i1, lam


def _bilinear_matrix(xp, in_size, out_size, align_corners, scale, dtype):
    """The (out_size, in_size) matrix A with ``y = A @ x`` along one axis: two weights per row."""
    i0, i1, lam = bilinear_source_index(in_size, out_size, align_corners, scale)
    a = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(a, (rows, i0), 1.0 - lam)  # add, not assign: at the border i0 == i1
    np.add.at(a, (rows, i1), lam)
    return xp.asarray(a.astype(dtype))


def bilinear_interpolate(x, out_hw, align_corners, scale_hw=(None, None)):
    """Bilinear resize, PyTorch's ``interpolate(mode='bilinear')``.

    x: (N, C, H, W) -> y: (N, C, OH, OW) with ``out_hw = (OH, OW)``. ``scale_hw`` holds the user's
    scale factors (or None) that PyTorch puts in the coordinate formula when align_corners is False.
    Bilinear is separable and linear: ``y = Ah @ x @ Aw.T`` with one small matrix per axis.
    """
    xp = _xp(x)
    H, W = x.shape[2:]
    ah = _bilinear_matrix(xp, H, out_hw[0], align_corners, scale_hw[0], x.dtype)
    aw = _bilinear_matrix(xp, W, out_hw[1], align_corners, scale_hw[1], x.dtype)
    return xp.ascontiguousarray(ah @ x @ aw.T)


def bilinear_interpolate_backward(dy, in_hw, align_corners, scale_hw=(None, None)):
    """The adjoint of :func:`bilinear_interpolate`: ``dx = Ah.T @ dy @ Aw``.

    dy: (N, C, OH, OW) -> dx: (N, C, H, W) with ``in_hw = (H, W)``.
    """
    xp = _xp(dy)
    OH, OW = dy.shape[2:]
    ah = _bilinear_matrix(xp, in_hw[0], OH, align_corners, scale_hw[0], dy.dtype)
    aw = _bilinear_matrix(xp, in_hw[1], OW, align_corners, scale_hw[1], dy.dtype)
    return xp.ascontiguousarray(ah.T @ dy @ aw)
