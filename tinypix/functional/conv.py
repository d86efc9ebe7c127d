"""Convolution, transpose convolution, and the dense matrix of a convolution.

conv2d lays every receptive field of the input out as one column (im2col), which turns the
convolution into a matrix product with the weight matrix W = w.reshape(F, C*kh*kw)
(one product per group):

    cols = im2col(x)              (N, C*kh*kw, OH*OW)
    y    = W @ cols               (N, F, OH*OW)           conv2d's forward

Its gradient with respect to x multiplies by the transposed matrix and folds the columns back
onto the image, adding where receptive fields overlap (col2im is the adjoint of im2col):

    dx   = col2im(W^T @ dy)       (N, C, H, W)            conv2d's backward-data

conv_transpose2d is that second map run forwards -- transpose convolution is convolution
transposed -- and its backward-data is conv2d's forward. So the two array ops ``_conv2d`` and
``_conv2d_backward_data`` are each used by both layers, crosswise, with one weight layout: a
(F, C/groups, kh, kw) weight takes conv2d from C to F channels and conv_transpose2d from F back
to C (PyTorch's (in, out/groups, kh, kw) layout for the transpose).

``conv_matrix`` writes conv2d out as a dense matrix, so that "the transpose" can be looked at.
"""
from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .. import kernels
from ..autograd import Function, no_grad
from ..backend import get_array_module
from ..tensor import Tensor, check_same_device
from .shape import pad

if TYPE_CHECKING:
    from ..typing import Array, IntPair, ShapeLike

Geometry = namedtuple("Geometry", "kernel_size stride padding dilation groups")


# -- the array ops, shared by conv2d AND conv_transpose2d --------------------------------------
# Each is an op of the kernel registry (kernels/registry.py): the body below is its readable
# implementation and specification; a faster one registered for the arrays' device may run
# instead (kernels.explain says which).
def _columns(x, geo):
    """im2col(x) split by group: (N, G, C/G*kh*kw, OH*OW), and the output grid (OH, OW)."""
    cols = kernels.im2col(x, geo.kernel_size, geo.stride, geo.padding, geo.dilation)
    grid = tuple(kernels.conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                 zip(x.shape[2:], geo.kernel_size, geo.stride, geo.padding, geo.dilation))
    G = geo.groups  # sizes spelled out, not -1: an empty batch has nothing to infer them from
    return cols.reshape(x.shape[0], G, cols.shape[1] // G, cols.shape[-1]), grid


@kernels.op("conv2d")
def _conv2d(x, w, geo):
    """conv2d's forward, and conv_transpose2d's backward-data: y = W @ im2col(x) per group.

    x: (N, C, H, W), w: (F, C/G, kh, kw) -> y: (N, F, OH, OW)
    """
    cols, (oh, ow) = _columns(x, geo)
    F, G = w.shape[0], geo.groups
    y = w.reshape(G, F // G, -1) @ cols  # (N, G, F/G, OH*OW): the weight broadcasts over images
    return y.reshape(x.shape[0], F, oh, ow)


@kernels.op("conv2d_backward_data")
def _conv2d_backward_data(dy, w, geo, x_shape):
    """conv2d's backward-data, and conv_transpose2d's forward: dx = col2im(W^T @ dy) per group.

    dy: (N, F, OH, OW), w: (F, C/G, kh, kw) -> dx: x_shape = (N, C, H, W)
    """
    N, F = dy.shape[:2]
    G, L = geo.groups, dy.shape[2] * dy.shape[3]
    w_t = w.reshape(G, F // G, -1).swapaxes(1, 2)  # (G, C/G*kh*kw, F/G), a view
    cols = w_t @ dy.reshape(N, G, F // G, L)       # (N, G, C/G*kh*kw, OH*OW)
    return kernels.col2im(cols.reshape(N, G * cols.shape[2], L), x_shape, geo.kernel_size,
                          geo.stride, geo.padding, geo.dilation)


@kernels.op("conv2d_backward_weight")
def _conv2d_backward_weight(dy, x, w_shape, geo):
    """dW = sum over images of dy_n @ im2col(x_n)^T per group: the weight gradient of both ops.

    dy: (N, F, OH, OW), x: (N, C, H, W) -> dw: w_shape = (F, C/G, kh, kw). The columns are
    unfolded again rather than kept from the forward pass: that costs one im2col but saves
    the memory of the largest array a convolution makes.
    """
    N, F = dy.shape[:2]
    cols, _ = _columns(x, geo)
    L = dy.shape[2] * dy.shape[3]
    dw = dy.reshape(N, geo.groups, F // geo.groups, L) @ cols.swapaxes(-1, -2)  # (N, G, F/G, C/G*kh*kw)
    return dw.sum(axis=0).reshape(w_shape)


@kernels.op("conv2d_backward")
def _conv2d_backward(dy, x, w, geo):
    """conv2d's two gradients, (dx, dw). One op, so that an engine may compute them together."""
    return _conv2d_backward_data(dy, w, geo, x.shape), _conv2d_backward_weight(dy, x, w.shape, geo)


@kernels.op("conv_transpose2d_backward")
def _conv_transpose2d_backward(dy, x, w, geo):
    """conv_transpose2d's two gradients, (dx, dw): its input gradient is conv2d's forward of dy,
    and its weight gradient is conv2d's with x in the place of the output gradient."""
    return _conv2d(dy, w, geo), _conv2d_backward_weight(x, dy, w.shape, geo)


def _add_bias(y, b):
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


# -- the two ops ------------------------------------------------------------------------------
class Conv2d(Function):
    """y = conv2d(x, w) + b.  x: (N, C, H, W), w: (F, C/G, kh, kw), b: (F,) or None
    -> y: (N, F, OH, OW).

    Backward: dx = conv_transpose2d's forward of dy; dw = sum_n dy_n @ im2col(x_n)^T; db = dy
    summed over images and pixels.
    """

    @staticmethod
    def forward(ctx, x, w, b, geo):
        ctx.save_for_backward(w, x if ctx.needs_input_grad[1] else None)
        ctx.x_shape, ctx.geo = x.shape, geo
        return _add_bias(_conv2d(x, w, geo), b)

    @staticmethod
    def backward(ctx, dy):
        w, x = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if need_x and need_w:
            dx, dw = _conv2d_backward(dy, x, w, ctx.geo)
        else:
            dx = _conv2d_backward_data(dy, w, ctx.geo, ctx.x_shape) if need_x else None
            dw = _conv2d_backward_weight(dy, x, w.shape, ctx.geo) if need_w else None
        db = dy.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db, None


class ConvTranspose2d(Function):
    """y = conv_transpose2d(x, w) + b.  x: (N, C, H, W), w: (C, F/G, kh, kw), b: (F,) or None
    -> y: out_shape = (N, F, OH, OW).

    Forward is conv2d's backward-data; backward-data is conv2d's forward (im2col of dy, then the
    matrix product); dw is conv2d's weight gradient with input and output swapped.

    ``grid`` is the (h, w) grid of windows that conv2d would slide over the output. It exceeds
    (H, W) only when output_padding >= stride (PyTorch allows up to the dilation): those extra
    windows see no input pixel, so x is padded with zeros there and dx is cropped back.
    """

    @staticmethod
    def forward(ctx, x, w, b, geo, out_shape, grid):
        xp = get_array_module(x)
        ctx.x_hw = x.shape[2:]
        if grid != ctx.x_hw:
            x = xp.pad(x, ((0, 0), (0, 0), (0, grid[0] - x.shape[2]), (0, grid[1] - x.shape[3])))
        ctx.save_for_backward(w, x if ctx.needs_input_grad[1] else None)
        ctx.geo = geo
        return _add_bias(_conv2d_backward_data(x, w, geo, out_shape), b)

    @staticmethod
    def backward(ctx, dy):
        w, x = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if need_x and need_w:
            dx, dw = _conv_transpose2d_backward(dy, x, w, ctx.geo)
        else:
            dx = _conv2d(dy, w, ctx.geo) if need_x else None
            dw = _conv2d_backward_weight(x, dy, w.shape, ctx.geo) if need_w else None
        h, wd = ctx.x_hw
        if dx is not None and dx.shape[2:] != (h, wd):
            dx = get_array_module(dx).ascontiguousarray(dx[:, :, :h, :wd])
        db = dy.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db, None, None, None


# -- argument checks --------------------------------------------------------------------------
def pair(op: str, name: str, value: IntPair, minimum: int) -> tuple[int, int]:
    """(h, w) from an int or a pair of ints, each at least ``minimum``; a clear error otherwise."""
    pr = (value, value) if isinstance(value, (int, np.integer)) else value
    if (not isinstance(pr, (tuple, list)) or len(pr) != 2 or
            not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pr)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(pr) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return int(pr[0]), int(pr[1])


def check_image(op: str, x: Tensor) -> None:
    """x must be a floating (N, C, H, W) tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected the input to be a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        hint = "; add a batch dimension with x.unsqueeze(0)" if x.ndim == 3 else ""
        raise ValueError(f"{op}: expected a 4-D input of shape (N, C, H, W), got shape {x.shape}{hint}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}; use x.float()")


def _check_conv(op, x, w, b, groups):
    """Shapes, dtypes and devices of a (transpose) convolution's input, weight and bias."""
    check_image(op, x)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    check_same_device(op, [t for t in (x, w, b) if t is not None])
    layout = "(F, C/groups, kh, kw)" if op == "conv2d" else "(C, F/groups, kh, kw)"
    if not isinstance(w, Tensor) or w.ndim != 4:
        got = f"shape {w.shape}" if isinstance(w, Tensor) else type(w).__name__
        raise ValueError(f"{op}: weight must be a 4-D tensor of shape {layout}, got {got}")
    C = x.shape[1]
    if C % groups:
        raise ValueError(f"{op}: input channels {C} are not divisible by groups={groups}")
    if op == "conv2d" and w.shape[0] % groups:
        raise ValueError(f"{op}: output channels {w.shape[0]} (weight of shape {w.shape}) are not "
                         f"divisible by groups={groups}")
    expected_C, F = (w.shape[1] * groups, w.shape[0]) if op == "conv2d" else (w.shape[0], w.shape[1] * groups)
    if expected_C != C:
        raise ValueError(f"{op}: input has {C} channels but a weight of shape {w.shape} (layout "
                         f"{layout}, groups={groups}) expects {expected_C}")
    for t, name in ((w, "weight"), (b, "bias")):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{op}: input has dtype {x.dtype} but {name} has dtype {t.dtype}; "
                            f"convert one, e.g. {name}.to(x.dtype)")
    if b is not None and (not isinstance(b, Tensor) or b.shape != (F,)):
        raise ValueError(f"{op}: bias must have shape ({F},), one value per output channel, got "
                         f"{getattr(b, 'shape', type(b).__name__)}")


def same_padding(op: str, padding: str, kernel_size: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding for ``padding='valid'`` (none) or ``'same'``
    (output size = input size, stride 1 only): d*(k-1) in all along each axis, the odd one
    on the right / bottom, as PyTorch pads."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding != "same":
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a pair of ints, got "
                         f"{padding!r}")
    if tuple(stride) != (1, 1):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride "
                         f"{tuple(stride)}); give the padding as numbers, or use stride 1")
    (th, tw) = (d * (k - 1) for k, d in zip(kernel_size, dilation))
    return (tw // 2, tw - tw // 2, th // 2, th - th // 2)


def _geometry(op, kernel_hw, stride, padding, dilation, groups):
    return Geometry(kernel_hw, pair(op, "stride", stride, 1), pair(op, "padding", padding, 0),
                    pair(op, "dilation", dilation, 1), int(groups))


def _check_kernel_fits(op, hw, geo):
    """The padded input must hold one (dilated) kernel along each axis."""
    span = [d * (k - 1) + 1 for k, d in zip(geo.kernel_size, geo.dilation)]
    padded = [n + 2 * p for n, p in zip(hw, geo.padding)]
    if span[0] > padded[0] or span[1] > padded[1]:
        kh, kw = geo.kernel_size
        raise ValueError(
            f"{op}: the {kh}x{kw} kernel (dilation {geo.dilation}, so it spans {span[0]}x{span[1]}) "
            f"is larger than the padded input {padded[0]}x{padded[1]} (input {hw[0]}x{hw[1]}, padding "
            f"{geo.padding} on each side); use a smaller kernel or more padding")


# -- public functions -------------------------------------------------------------------------
def conv2d(x: Tensor, w: Tensor, b: Tensor | None = None, stride: IntPair = 1, padding: IntPair | str = 0,
           dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch), by im2col and one matrix product per group.

    Args:
        x: (N, C, H, W) input.
        w: (F, C/groups, kh, kw) weight.
        b: (F,) bias or None.
        stride, padding, dilation: ints or (h, w) pairs; padding is zeros on every side.
            padding may also be 'valid' (none) or 'same' (stride 1 only: OH, OW = H, W; an
            odd total padding d*(k-1) puts the extra row / column at the bottom / right).
        groups: C and F are split into this many groups, each convolved with its own F/groups filters.

    Returns:
        y: (N, F, OH, OW) with OH = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1, likewise OW.
    """
    _check_conv("conv2d", x, w, b, groups)
    if isinstance(padding, str):
        left, right, top, bottom = same_padding("conv2d", padding, w.shape[2:],
                                                pair("conv2d", "stride", stride, 1),
                                                pair("conv2d", "dilation", dilation, 1))
        if (right, bottom) != (left, top):  # the odd pixel: padded first, the rest symmetric
            x = pad(x, (0, right - left, 0, bottom - top))
        padding = (top, left)
    geo = _geometry("conv2d", tuple(w.shape[2:]), stride, padding, dilation, groups)
    _check_kernel_fits("conv2d", x.shape[2:], geo)
    return Conv2d.apply(x, w, b, geo)


def conv_transpose2d(x: Tensor, w: Tensor, b: Tensor | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> Tensor:
    """2-D transpose convolution: the transpose (adjoint) of ``conv2d`` with the same weight.

    Each input pixel lays down a copy of the filter, scaled by its value, ``stride`` pixels apart
    in the output; overlaps add up. ``padding`` crops that many pixels from each side of the
    result (it undoes conv2d's padding); ``output_padding`` adds rows/columns at the bottom/right,
    to reach the sizes that a strided conv2d maps to the same output size.

    Args:
        x: (N, C, H, W) input.
        w: (C, F/groups, kh, kw) weight -- the layout of a conv2d from F channels to C.
        b: (F,) bias or None.
        stride, padding, output_padding, dilation: ints or (h, w) pairs; output_padding must be
            smaller than stride or dilation.
        groups: channel groups, as in conv2d.

    Returns:
        y: (N, F, OH, OW) with OH = (H-1)*sh - 2*ph + dh*(kh-1) + oph + 1, likewise OW.
    """
    op = "conv_transpose2d"
    _check_conv(op, x, w, b, groups)
    geo = _geometry(op, tuple(w.shape[2:]), stride, padding, dilation, groups)
    out_pad = pair(op, "output_padding", output_padding, 0)
    if any(o >= max(s, d) for o, s, d in zip(out_pad, geo.stride, geo.dilation)):
        raise ValueError(f"{op}: output_padding {out_pad} must be smaller than stride {geo.stride} "
                         f"or dilation {geo.dilation}, along each axis")
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in
                   zip(x.shape[2:], geo.stride, geo.padding, geo.dilation, geo.kernel_size, out_pad))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size would be {out_hw[0]}x{out_hw[1]} for input "
                         f"{x.shape[2]}x{x.shape[3]} (kernel {geo.kernel_size}, stride {geo.stride}, "
                         f"padding {geo.padding}, dilation {geo.dilation}, output_padding {out_pad}); "
                         f"reduce the padding")
    grid = tuple(kernels.conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                 zip(out_hw, geo.kernel_size, geo.stride, geo.padding, geo.dilation))
    out_shape = (x.shape[0], w.shape[1] * groups) + out_hw
    return ConvTranspose2d.apply(x, w, b, geo, out_shape, grid)


def conv_matrix(w: Tensor | Array, input_shape: ShapeLike, stride: IntPair = 1,
                padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """The dense matrix C of conv2d on one image: ``conv2d(x, w).flatten() == C @ x.flatten()``.

    A teaching tool: convolution is a (sparse, weight-sharing) matrix, and conv_transpose2d with
    the same weight multiplies by its transpose,
    ``conv_transpose2d(y, w, ..., output_padding=op).flatten() == C.T @ y.flatten()``, where
    op = (H + 2p - d*(k-1) - 1) % s restores the rows a strided conv2d skipped.

    Column q of C is the output for the basis image with a single 1 at input pixel q, so C is
    built by running conv2d on all C*H*W basis images at once.

    Args:
        w: (F, C/groups, kh, kw) weight, a Tensor or an array.
        input_shape: (C, H, W) of one image.
        stride, padding, dilation, groups: as in conv2d.

    Returns:
        A Tensor without grad, shape (F*OH*OW, C*H*W), w's dtype and device; rows and columns
        in C order ((f, oh, ow) and (c, h, w)).

    Example -- the lecture's 1-D convolution: pixels a b c d, filter x y z, stride 1, padding 1
    (a 1 x 4 image, a 1 x 3 kernel, padding only along the width)::

        C = conv_matrix(tinypix.tensor([[[[x, y, z]]]]), (1, 1, 4), padding=(0, 1))
        # C = [[y z 0 0]     C @ [a b c d] = [ay+bz, ax+by+cz, bx+cy+dz, cx+dy]
        #      [x y z 0]
        #      [0 x y z]
        #      [0 0 x y]]

    Without padding on six pixels, C is 4 x 6 and its transpose maps four values to six:
    C.T @ [a b c d] = [ax, ay+bx, az+by+cx, bz+cy+dx, cz+dy, dz] -- each input pixel lays down a
    copy of the filter, which is what ``conv_transpose2d`` computes.
    """
    w = w if isinstance(w, Tensor) else Tensor._wrap(w)
    if len(input_shape) != 3:
        raise ValueError(f"conv_matrix: input_shape must be (C, H, W) of one image, got {tuple(input_shape)}")
    C, H, W = (int(n) for n in input_shape)
    xp = get_array_module(w.data)
    basis = Tensor._wrap(xp.eye(C * H * W, dtype=w.dtype).reshape(C * H * W, C, H, W))
    with no_grad():
        y = conv2d(basis, w.detach(), None, stride, padding, dilation, groups)  # (C*H*W, F, OH, OW)
    return Tensor._wrap(xp.ascontiguousarray(y.data.reshape(C * H * W, -1).T))
