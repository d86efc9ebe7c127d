"""Reductions (sum, mean, var, std, norm, max, min, argmax) and softmax / log_softmax.

``dim`` is an int, a tuple of ints or None (all dimensions); ``keepdim`` keeps reduced
dimensions as size 1. The backward of a reduction spreads ``dy`` back over the reduced axes.
"""
from __future__ import annotations

import builtins
import math
import warnings
from collections import namedtuple
from typing import TYPE_CHECKING, Sequence, overload

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .compare import maximum, minimum

if TYPE_CHECKING:
    from ..typing import DTypeLike


def _axes(op, x, dim):
    """Normalized tuple of axes for ``dim``; a clear error when one is out of range."""
    if dim is None:
        return tuple(range(x.ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    n = builtins.max(x.ndim, 1)
    for d in dims:
        if not -n <= d < n:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor of shape {x.shape} "
                             f"(expected a value in [{-n}, {n - 1}])")
    return tuple(sorted(d % n for d in dims)) if x.ndim else ()


def _spread(dy, x_shape, axes, keepdim):
    """Reshape dy so it broadcasts against the input (re-insert reduced axes when not kept)."""
    if not keepdim:
        shape = [1 if i in axes else n for i, n in enumerate(x_shape)]
        dy = dy.reshape(shape)
    return dy


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.x_shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return x.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, dy):
        xp = get_array_module(dy)
        return xp.broadcast_to(_spread(dy, ctx.x_shape, ctx.axes, ctx.keepdim), ctx.x_shape), None, None


class Amax(Function):
    """Largest value over ``axes``; the gradient is shared equally between tied maxima."""

    @staticmethod
    def forward(ctx, x, axes, keepdim, largest):
        y = x.max(axis=axes, keepdims=True) if largest else x.min(axis=axes, keepdims=True)
        hit = x == y
        ctx.save_for_backward(hit)
        ctx.axes, ctx.keepdim = axes, keepdim
        return y if keepdim else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx, dy):
        hit, = ctx.saved_tensors
        dy = _spread(dy, hit.shape, ctx.axes, ctx.keepdim)
        count = hit.sum(axis=ctx.axes, keepdims=True).astype(dy.dtype)
        return dy * hit / count, None, None, None


def sum(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    axes = _axes("sum", x, dim)
    if x.dtype.kind == "b":
        x = x.long()
    return Sum.apply(x, axes, keepdim)


def mean(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    if x.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating-point tensor, got dtype {x.dtype}; use x.float()")
    axes = _axes("mean", x, dim)
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    return sum(x, dim, keepdim) / float(count)


def var(x: Tensor, dim: int | Sequence[int] | None = None, unbiased: bool = True, keepdim: bool = False,
        correction: int | None = None) -> Tensor:
    """Variance over ``dim``; ``correction=1`` (the default, unbiased) divides by n - 1."""
    correction = (1 if unbiased else 0) if correction is None else correction
    axes = _axes("var", x, dim)
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    centered = x - mean(x, dim, keepdim=True)
    return sum(centered * centered, dim, keepdim) / float(builtins.max(count - correction, 0))


def std(x: Tensor, dim: int | Sequence[int] | None = None, unbiased: bool = True, keepdim: bool = False,
        correction: int | None = None) -> Tensor:
    """Standard deviation over ``dim``: sqrt(var), ``correction=1`` (unbiased) by default.

    Written as ||x - mean|| / sqrt(n - correction), so that where all values are equal the
    gradient is 0, as PyTorch makes it, rather than 0 / 0.
    """
    correction = (1 if unbiased else 0) if correction is None else correction
    axes = _axes("std", x, dim)
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    centered = x - mean(x, dim, keepdim=True)
    return _vector_norm(centered, 2.0, axes, keepdim) / math.sqrt(builtins.max(count - correction, 0))


class VectorNorm(Function):
    """(sum |x|^p)^(1/p) over ``axes``, for a finite p != 0. Backward, as PyTorch computes it:
    dx = s(x) * dy / norm^(p-1) with s(x) = x |x|^(p-2) (for p < 2 written sign(x) |x|^(p-1),
    which is 0 at x = 0), and 0 wherever the norm is 0."""

    @staticmethod
    def forward(ctx, x, p, axes, keepdim):
        xp = get_array_module(x)
        a = xp.abs(x)
        n = xp.sqrt((x * x).sum(axis=axes, keepdims=True)) if p == 2 else \
            (a ** p).sum(axis=axes, keepdims=True) ** (1 / p)
        ctx.save_for_backward(x, n)
        ctx.p, ctx.axes, ctx.keepdim = p, axes, keepdim
        return n if keepdim else n.reshape([m for i, m in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx, dy):
        x, n = ctx.saved_tensors
        xp, p = get_array_module(x), ctx.p
        dy = _spread(dy, x.shape, ctx.axes, ctx.keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):  # the 0-norm and x = 0 cases are masked
            if p == 2:
                s = x
            elif p < 2:
                s = xp.sign(x) * xp.where(x == 0, 0, xp.abs(x) ** (p - 1))
            else:
                s = x * xp.abs(x) ** (p - 2)
            scale = xp.where(n == 0, 0, dy / (n if p == 2 else n ** (p - 1)))
        return (s * scale).astype(x.dtype), None, None, None


def _vector_norm(x, p, axes, keepdim):
    if p == 0:  # the number of nonzero elements: piecewise constant, so no gradient flows
        count = (x.data != 0).sum(axis=axes, keepdims=keepdim).astype(x.dtype)
        return Tensor._wrap(count)
    if math.isinf(p):
        return (amax if p > 0 else amin)(x.abs(), axes, keepdim)
    return VectorNorm.apply(x, float(p), axes, keepdim)


def norm(input: Tensor, p: float | str = "fro", dim: int | Sequence[int] | None = None,
         keepdim: bool = False, dtype: DTypeLike | None = None) -> Tensor:
    """The p-norm of ``input`` over ``dim`` (all elements when None), as ``torch.norm``.

    p: 'fro' or 2 (square root of the sum of squares), 1 (sum of |x|), ``inf`` (max |x|),
    ``-inf`` (min |x|), 0 (number of nonzeros), or any other number: (sum |x|^p)^(1/p).
    'fro' takes ``dim`` None, an int or two ints; 'nuc' (nuclear norm) is not supported.
    """
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise TypeError(f"norm: expected a floating-point tensor, got dtype {input.dtype}; use x.float()")
    if isinstance(p, str):
        if p != "fro":
            raise ValueError(f"norm: p={p!r} is not supported; use 'fro', or a number (2, 1, inf, ...)")
        if dim is not None and not isinstance(dim, (int, np.integer)) and len(tuple(dim)) != 2:
            raise ValueError(f"norm: p='fro' takes dim None, an int or a pair of ints, got dim={dim}")
        p = 2
    return _vector_norm(input, float(p), _axes("norm", input, dim), keepdim)


MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _extreme(op, x, dim, keepdim, largest):
    if isinstance(dim, Tensor):  # torch.max(a, b): elementwise, as maximum(a, b)
        return (maximum if largest else minimum)(x, dim)
    if dim is None or not isinstance(dim, (int, np.integer)):
        return Amax.apply(x, _axes(op, x, dim), keepdim, largest)
    values = Amax.apply(x, _axes(op, x, dim), keepdim, largest)
    indices = (argmax if largest else argmin)(x, dim, keepdim)
    return MaxResult(values, indices)


# For type checkers, as in PyTorch's stubs: an int dim gives (values, indices).
@overload
def max(input: Tensor, dim: Tensor | Sequence[int] | None = ..., keepdim: bool = ...) -> Tensor: ...
@overload
def max(input: Tensor, dim: int, keepdim: bool = ...) -> MaxResult: ...
def max(input: Tensor, dim: int | Sequence[int] | Tensor | None = None,
        keepdim: bool = False) -> Tensor | MaxResult:
    """``x.max()`` is the largest element; ``x.max(dim)`` (an int) returns ``(values, indices)``
    as in PyTorch; a tuple ``dim`` returns the values only (like ``amax``); ``max(a, b)`` with a
    tensor ``b`` is the elementwise :func:`maximum`."""
    return _extreme("max", input, dim, keepdim, True)


@overload
def min(input: Tensor, dim: Tensor | Sequence[int] | None = ..., keepdim: bool = ...) -> Tensor: ...
@overload
def min(input: Tensor, dim: int, keepdim: bool = ...) -> MaxResult: ...
def min(input: Tensor, dim: int | Sequence[int] | Tensor | None = None,
        keepdim: bool = False) -> Tensor | MaxResult:
    """The smallest element(s); see :func:`max` for what ``dim`` returns."""
    return _extreme("min", input, dim, keepdim, False)


def amax(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    return Amax.apply(x, _axes("amax", x, dim), keepdim, True)


def amin(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    return Amax.apply(x, _axes("amin", x, dim), keepdim, False)


def _arg(op, x, dim, keepdim, fn):
    if dim is None:
        return Tensor._wrap(fn(x.data.reshape(-1), axis=0).astype(np.int64))
    axis, = _axes(op, x, dim)
    return Tensor._wrap(fn(x.data, axis=axis, keepdims=keepdim).astype(np.int64))


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest element (flat when dim is None); no gradient."""
    return _arg("argmax", x, dim, keepdim, get_array_module(x.data).argmax)


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _arg("argmin", x, dim, keepdim, get_array_module(x.data).argmin)


def any(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    return Tensor._wrap(x.data.astype(bool).any(axis=_axes("any", x, dim), keepdims=keepdim))


def all(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    return Tensor._wrap(x.data.astype(bool).all(axis=_axes("all", x, dim), keepdims=keepdim))


# -- softmax ---------------------------------------------------------------------------------
class Softmax(Function):
    """y = e^(x - max) / sum e^(x - max) along ``axis`` (subtracting the max keeps e^ finite).
    Backward: dx = y * (dy - sum(dy * y))."""

    @staticmethod
    def forward(ctx, x, axis):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, dy):
        y, = ctx.saved_tensors
        return y * (dy - (dy * y).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """y = x - max - log(sum e^(x - max)). Backward: dx = dy - softmax(x) * sum(dy)."""

    @staticmethod
    def forward(ctx, x, axis):
        xp = get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, dy):
        y, = ctx.saved_tensors
        xp = get_array_module(y)
        return dy - xp.exp(y) * dy.sum(axis=ctx.axis, keepdims=True), None


def _softmax_dim(op, ndim, dim, stacklevel):
    """``dim``, or PyTorch's deprecated choice when it is None (with its warning): dim 0 for
    0-, 1- and 3-D input (a vector; an unbatched C, H, W image), else 1 (the classes of N, C, ...)."""
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include "
                  f"dim=X as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_args(op, input, dim, stacklevel, dtype):
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {input.dtype}; use x.float()")
    # stacklevel + 1: one more frame (this one) between the warning and the caller
    axis, = _axes(op, input, _softmax_dim(op, input.ndim, dim, stacklevel + 1)) or (None,)
    return input, axis


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: DTypeLike | None = None) -> Tensor:
    """e^x / sum e^x along ``dim``; ``dtype`` casts the input first. Without ``dim``, PyTorch's
    implicit choice and warning (see ``_softmax_dim``)."""
    return Softmax.apply(*_softmax_args("softmax", input, dim, _stacklevel, dtype))


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: DTypeLike | None = None) -> Tensor:
    """log(softmax(input, dim)), computed stably; arguments as for :func:`softmax`."""
    return LogSoftmax.apply(*_softmax_args("log_softmax", input, dim, _stacklevel, dtype))
