"""Pooling and unpooling: max_pool2d (with PyTorch's argmax indices), avg_pool2d, max_unpool2d
(SegNet's unpooling through those indices), adaptive_avg_pool2d and adaptive_max_pool2d.

Output sizes are PyTorch's: floor((H + 2p - d*(k-1) - 1) / s) + 1, or the ceiling with
``ceil_mode=True`` as long as the last window still starts inside the input or the left padding.
Max-pool indices are flat positions ``h*W + w`` in each (n, c) plane of the unpadded input.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Sequence, overload

import numpy as np

from .. import kernels
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor, check_same_device
from .conv import Geometry, check_image, pair
from .linalg import matmul

if TYPE_CHECKING:
    from ..typing import IntPair, OptIntPair


class MaxPool2d(Function):
    """y = the maximum of each window, indices = where it was (flat ``h*W + w`` in its plane).

    x: (N, C, H, W) -> y, indices: (N, C, OH, OW). Backward sends each dy to the position of its
    window's maximum; where overlapping windows share a maximum the gradients add up.
    """

    @staticmethod
    def forward(ctx, x, geo, ceil_mode):
        y, indices = kernels.max_pool2d(x, geo.kernel_size, geo.stride, geo.padding, geo.dilation,
                                        ceil_mode)
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        return y, indices

    @staticmethod
    def backward(ctx, dy, d_indices):
        indices, = ctx.saved_tensors
        return kernels.max_pool2d_backward(dy, indices, ctx.x_shape), None, None


def _window_counts(n, out, k, s, p, include_pad):
    """How many positions of each of the ``out`` windows along one axis PyTorch's mean divides by.

    Windows reach at most into the padding (a ceil_mode window is cut there); without
    ``include_pad`` only positions inside the input count.
    """
    start = np.arange(out) * s - p
    end = np.minimum(start + k, n + p)
    if not include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, n)
    return end - start


class AvgPool2d(Function):
    """y = the mean of each window.  x: (N, C, H, W) -> y: (N, C, OH, OW).

    A window sum is kh*kw shifted, strided views of the zero-padded input added up; ``divisor``
    (OH, OW) turns it into PyTorch's mean. Backward spreads dy / divisor back through the same views.
    """

    @staticmethod
    def _taps(geo, out_hw):
        """One (rows, cols) slice pair per kernel tap: that tap's pixel for every window."""
        (kh, kw), (sh, sw), (oh, ow) = geo.kernel_size, geo.stride, out_hw
        return [(slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))
                for i in range(kh) for j in range(kw)]

    @staticmethod
    def forward(ctx, x, geo, out_hw, divisor):
        xp = get_array_module(x)
        (ph, pw), (H, W) = geo.padding, x.shape[2:]
        # Pad the bottom/right far enough for a ceil_mode window that sticks out.
        bottom = max(ph, geo.stride[0] * (out_hw[0] - 1) + geo.kernel_size[0] - H - ph)
        right = max(pw, geo.stride[1] * (out_hw[1] - 1) + geo.kernel_size[1] - W - pw)
        xpad = xp.pad(x, ((0, 0), (0, 0), (ph, bottom), (pw, right)))
        y = xp.zeros(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
        for rows, cols in AvgPool2d._taps(geo, out_hw):
            y += xpad[:, :, rows, cols]
        ctx.divisor = xp.asarray(divisor, dtype=x.dtype)
        ctx.geo, ctx.out_hw, ctx.x_shape, ctx.pad_shape = geo, out_hw, x.shape, xpad.shape
        return y / ctx.divisor

    @staticmethod
    def backward(ctx, dy):
        xp = get_array_module(dy)
        dxpad = xp.zeros(ctx.pad_shape, dtype=dy.dtype)
        share = dy / ctx.divisor
        for rows, cols in AvgPool2d._taps(ctx.geo, ctx.out_hw):
            dxpad[:, :, rows, cols] += share  # one tap's views never overlap themselves
        (ph, pw), (H, W) = ctx.geo.padding, ctx.x_shape[2:]
        return xp.ascontiguousarray(dxpad[:, :, ph:ph + H, pw:pw + W]), None, None, None


class MaxUnpool2d(Function):
    """y = zeros with each x put back where ``indices`` says (SegNet's unpooling).

    x, indices: (N, C, H, W) -> y: (N, C, OH, OW). Backward gathers dy at those positions.
    """

    @staticmethod
    def forward(ctx, x, indices, out_hw):
        ctx.save_for_backward(indices)
        return kernels.max_unpool2d(x, indices, out_hw)

    @staticmethod
    def backward(ctx, dy):
        indices, = ctx.saved_tensors
        return kernels.max_unpool2d_backward(dy, indices), None, None


# -- public functions -------------------------------------------------------------------------
def _pool_geometry(op, kernel_size, stride, padding, dilation=1):
    """Geometry of a pooling window, with PyTorch's rule that padding is at most half the kernel."""
    k = pair(op, "kernel_size", kernel_size, 1)
    geo = Geometry(k, k if stride is None else pair(op, "stride", stride, 1),
                   pair(op, "padding", padding, 0), pair(op, "dilation", dilation, 1), 1)
    if any(p > kk // 2 for p, kk in zip(geo.padding, k)):
        raise ValueError(f"{op}: padding {geo.padding} must be at most half the kernel size {k}")
    return geo


def _pool_output(op, x, geo, ceil_mode):
    """(OH, OW), or an error naming the sizes when a window does not fit."""
    try:
        return tuple(kernels.conv_output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                     zip(x.shape[2:], geo.kernel_size, geo.stride, geo.padding, geo.dilation))
    except ValueError as error:
        raise ValueError(
            f"{op}: the {geo.kernel_size[0]}x{geo.kernel_size[1]} window (dilation {geo.dilation}) "
            f"does not fit the input {x.shape[2]}x{x.shape[3]} with padding {geo.padding} "
            f"({error}); use a smaller kernel_size") from None


# For type checkers, as in PyTorch's stubs: the result is a pair when return_indices is True.
@overload
def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = ..., padding: IntPair = ...,
               dilation: IntPair = ..., ceil_mode: bool = ...,
               return_indices: Literal[False] = ...) -> Tensor: ...
@overload
def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = ..., padding: IntPair = ...,
               dilation: IntPair = ..., ceil_mode: bool = ..., *,
               return_indices: Literal[True]) -> tuple[Tensor, Tensor]: ...
@overload
def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = ..., padding: IntPair = ...,
               dilation: IntPair = ..., ceil_mode: bool = ...,
               return_indices: bool = ...) -> Tensor | tuple[Tensor, Tensor]: ...
def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max pooling.

    Args:
        x: (N, C, H, W) input.
        kernel_size, stride (default: kernel_size), padding, dilation: ints or (h, w) pairs.
            Padding counts as -inf and is at most half the kernel.
        ceil_mode: round the output size up instead of down.
        return_indices: also return where each maximum was, for ``max_unpool2d``.

    Returns:
        y: (N, C, OH, OW), and with ``return_indices`` an int64 tensor of the same shape holding
        the flat position ``h*W + w`` of each maximum in its (n, c) input plane.
    """
    check_image("max_pool2d", x)
    geo = _pool_geometry("max_pool2d", kernel_size, stride, padding, dilation)
    _pool_output("max_pool2d", x, geo, ceil_mode)
    try:
        y, indices = MaxPool2d.apply(x, geo, bool(ceil_mode))
    except ValueError as e:  # a dilated window that lands only on padding
        raise ValueError(f"max_pool2d: {e} (input {x.shape[2]}x{x.shape[3]}); use less "
                         f"padding or dilation") from None
    # Indices are integers: they are not part of the graph.
    return (y, indices.detach()) if return_indices else y


def avg_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Average pooling, PyTorch's semantics.

    Args:
        x: (N, C, H, W) input.
        kernel_size, stride (default: kernel_size), padding: ints or (h, w) pairs; padding is
            zeros, at most half the kernel.
        ceil_mode: round the output size up instead of down.
        count_include_pad: divide by the window size including padded positions (but not the
            part of a ceil_mode window beyond the padding); False divides by the input positions only.
        divisor_override: divide every window sum by this number instead.

    Returns:
        y: (N, C, OH, OW).
    """
    check_image("avg_pool2d", x)
    geo = _pool_geometry("avg_pool2d", kernel_size, stride, padding)
    out_hw = _pool_output("avg_pool2d", x, geo, ceil_mode)
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("avg_pool2d: divisor_override must not be zero")
        divisor = np.full(out_hw, float(divisor_override))
    else:
        counts = [_window_counts(n, o, k, s, p, count_include_pad) for n, o, k, s, p in
                  zip(x.shape[2:], out_hw, geo.kernel_size, geo.stride, geo.padding)]
        divisor = np.outer(*counts)
    return AvgPool2d.apply(x, geo, out_hw, divisor)


def max_unpool2d(x: Tensor, indices: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0, output_size: Sequence[int] | None = None) -> Tensor:
    """The partial inverse of max_pool2d: each value goes back where its maximum came from.

    Args:
        x: (N, C, H, W) pooled values.
        indices: int tensor (N, C, H, W) from ``max_pool2d(..., return_indices=True)``.
        kernel_size, stride (default: kernel_size), padding: those of the max_pool2d.
        output_size: the size of the pooled input, (OH, OW) or a full shape (its last two
            entries are used); needed when pooling dropped rows or columns (odd sizes). Default
            (H-1)*s - 2p + k.

    Returns:
        y: (N, C, OH, OW), zero except at the recorded positions.
    """
    op = "max_unpool2d"
    check_image(op, x)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor from max_pool2d(..., "
                        f"return_indices=True), got {getattr(indices, 'dtype', type(indices).__name__)}")
    check_same_device(op, [x, indices])
    if indices.shape != x.shape:
        raise ValueError(f"{op}: indices of shape {indices.shape} do not match the input of shape "
                         f"{x.shape}; pass the indices returned with this pooled tensor")
    k = pair(op, "kernel_size", kernel_size, 1)
    s = k if stride is None else pair(op, "stride", stride, 1)
    p = pair(op, "padding", padding, 0)
    default = tuple((n - 1) * ss - 2 * pp + kk for n, ss, pp, kk in zip(x.shape[2:], s, p, k))
    if output_size is None:
        out_hw = default
    else:
        out_hw = tuple(int(n) for n in tuple(output_size)[-2:])
        if len(tuple(output_size)) not in (2, 4) or any(
                not d - ss < n < d + ss for n, d, ss in zip(out_hw, default, s)):
            raise ValueError(f"{op}: output_size {tuple(output_size)} must end in (OH, OW) strictly "
                             f"between {tuple(d - ss for d, ss in zip(default, s))} and "
                             f"{tuple(d + ss for d, ss in zip(default, s))} for input "
                             f"{x.shape[2]}x{x.shape[3]}, kernel {k}, stride {s}, padding {p}")
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size would be {out_hw[0]}x{out_hw[1]} for input "
                         f"{x.shape[2]}x{x.shape[3]}, kernel {k}, stride {s}, padding {p}")
    plane = out_hw[0] * out_hw[1]
    if indices.numel():
        lo, hi = int(indices.data.min()), int(indices.data.max())
        if lo < 0 or hi >= plane:
            raise ValueError(f"{op}: index {hi if hi >= plane else lo} is outside the "
                             f"{out_hw[0]}x{out_hw[1]} output plane (valid: 0 to {plane - 1}); were "
                             f"the indices made from a different input size? pass output_size")
    return MaxUnpool2d.apply(x, indices, out_hw)


def _bins(n, out):
    """PyTorch's adaptive bins of ``n`` positions into ``out``: [floor(i*n/out), ceil((i+1)*n/out))."""
    i = np.arange(out)
    return (i * n) // out, -((-(i + 1) * n) // out)


def _bin_matrix(n, out, dtype, xp):
    """(out, n) averaging matrix of the adaptive bins."""
    start, end = _bins(n, out)
    pos = np.arange(n)
    inside = (pos >= start[:, None]) & (pos < end[:, None])
    return Tensor._wrap(xp.asarray(inside / (end - start)[:, None], dtype=dtype))


def _output_size(op, x, output_size):
    """(OH, OW) from an int or a pair whose None entries keep the input's size."""
    check_image(op, x)
    sizes = (output_size, output_size) if not isinstance(output_size, (tuple, list)) else output_size
    if len(sizes) != 2:
        raise ValueError(f"{op}: output_size must be an int or an (OH, OW) pair, got {output_size!r}")
    oh, ow = (n if s is None else s for n, s in zip(x.shape[2:], sizes))
    return pair(op, "output_size", (oh, ow), 1)


def adaptive_avg_pool2d(x: Tensor, output_size: OptIntPair) -> Tensor:
    """Average pooling to a fixed output size: output pixel (i, j) is the mean of rows
    [floor(i*H/OH), ceil((i+1)*H/OH)) and likewise columns -- bins that may overlap by one.

    Averaging is separable, so this is two small matrix products, y = Ah @ x @ Aw^T, and its
    gradient comes from matmul's.

    Args:
        x: (N, C, H, W) input.
        output_size: an int or an (OH, OW) pair; None in the pair keeps that input size.

    Returns:
        y: (N, C, OH, OW).
    """
    oh, ow = _output_size("adaptive_avg_pool2d", x, output_size)
    xp = get_array_module(x.data)
    ah = _bin_matrix(x.shape[2], oh, x.dtype, xp)
    aw = _bin_matrix(x.shape[3], ow, x.dtype, xp)
    return matmul(matmul(ah, x), aw.transpose(0, 1))


class AdaptiveMaxPool2d(Function):
    """y = the maximum of each adaptive bin, indices = where it was (flat ``h*W + w``).

    x: (N, C, H, W) -> y, indices: (N, C, OH, OW). One bin at a time (there are OH*OW, and the
    bins differ in size); each is scanned row-major, the first maximum wins and a NaN wins over
    everything (the last NaN), as in PyTorch. Backward is max_pool2d's: dy goes to the winners.
    """

    @staticmethod
    def forward(ctx, x, out_hw):
        xp = get_array_module(x)
        N, C, H, W = x.shape
        (hs, he), (ws, we) = _bins(H, out_hw[0]), _bins(W, out_hw[1])
        y = xp.empty((N, C) + tuple(out_hw), dtype=x.dtype)
        indices = xp.empty((N, C) + tuple(out_hw), dtype=np.int64)
        for i in range(out_hw[0]):
            for j in range(out_hw[1]):
                window = x[:, :, hs[i]:he[i], ws[j]:we[j]].reshape(N, C, -1)
                nan = xp.isnan(window)
                last_nan = window.shape[2] - 1 - nan[:, :, ::-1].argmax(axis=2)
                k = xp.where(nan.any(axis=2), last_nan, window.argmax(axis=2))
                y[:, :, i, j] = xp.take_along_axis(window, k[:, :, None], axis=2)[:, :, 0]
                width = we[j] - ws[j]
                indices[:, :, i, j] = (hs[i] + k // width) * W + ws[j] + k % width
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        return y, indices

    @staticmethod
    def backward(ctx, dy, d_indices):
        indices, = ctx.saved_tensors
        return kernels.max_pool2d_backward(dy, indices, ctx.x_shape), None


@overload
def adaptive_max_pool2d(x: Tensor, output_size: OptIntPair,
                        return_indices: Literal[False] = ...) -> Tensor: ...
@overload
def adaptive_max_pool2d(x: Tensor, output_size: OptIntPair, *,
                        return_indices: Literal[True]) -> tuple[Tensor, Tensor]: ...
@overload
def adaptive_max_pool2d(x: Tensor, output_size: OptIntPair,
                        return_indices: bool = ...) -> Tensor | tuple[Tensor, Tensor]: ...
def adaptive_max_pool2d(x: Tensor, output_size: OptIntPair,
                        return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max pooling to a fixed output size: output pixel (i, j) is the maximum over rows
    [floor(i*H/OH), ceil((i+1)*H/OH)) and likewise columns.

    Args:
        x: (N, C, H, W) input.
        output_size: an int or an (OH, OW) pair; None in the pair keeps that input size.
        return_indices: also return where each maximum was, as ``max_pool2d`` does.

    Returns:
        y: (N, C, OH, OW), and with ``return_indices`` the int64 flat positions ``h*W + w``.
    """
    out_hw = _output_size("adaptive_max_pool2d", x, output_size)
    if 0 in x.shape[2:]:
        raise ValueError(f"adaptive_max_pool2d: the input {x.shape} has no pixels to take a maximum of")
    y, indices = AdaptiveMaxPool2d.apply(x, out_hw)
    return (y, indices.detach()) if return_indices else y
