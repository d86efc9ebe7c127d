"""Reductions (sum, mean, var, max, min, argmax) and softmax / log_softmax.

``dim`` is an int, a tuple of ints or None (all dimensions); ``keepdim`` keeps reduced
dimensions as size 1. The backward of a reduction spreads ``dy`` back over the reduced axes.
"""
import builtins
from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor


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


def sum(x, dim=None, keepdim=False):
    axes = _axes("sum", x, dim)
    if x.dtype.kind == "b":
        x = x.long()
    return Sum.apply(x, axes, keepdim)


def mean(x, dim=None, keepdim=False):
    if x.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating-point tensor, got dtype {x.dtype}; use x.float()")
    axes = _axes("mean", x, dim)
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    return sum(x, dim, keepdim) / float(count)


def var(x, dim=None, unbiased=True, keepdim=False, correction=None):
    """Variance over ``dim``; ``correction=1`` (the default, unbiased) divides by n - 1."""
    correction = (1 if unbiased else 0) if correction is None else correction
    axes = _axes("var", x, dim)
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    centered = x - mean(x, dim, keepdim=True)
    return sum(centered * centered, dim, keepdim) / float(builtins.max(count - correction, 0))


MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _extreme(op, x, dim, keepdim, largest):
    if dim is None or not isinstance(dim, (int, np.integer)):
        return Amax.apply(x, _axes(op, x, dim), keepdim, largest)
    values = Amax.apply(x, _axes(op, x, dim), keepdim, largest)
    indices = (argmax if largest else argmin)(x, dim, keepdim)
    return MaxResult(values, indices)


def max(x, dim=None, keepdim=False):
    """``x.max()`` is the largest element; ``x.max(dim)`` (an int) returns ``(values, indices)``
    as in PyTorch; a tuple ``dim`` returns the values only (like ``amax``)."""
    return _extreme("max", x, dim, keepdim, True)


def min(x, dim=None, keepdim=False):
    """The smallest element(s); see :func:`max` for what ``dim`` returns."""
    return _extreme("min", x, dim, keepdim, False)


def amax(x, dim=None, keepdim=False):
    return Amax.apply(x, _axes("amax", x, dim), keepdim, True)


def amin(x, dim=None, keepdim=False):
    return Amax.apply(x, _axes("amin", x, dim), keepdim, False)


def _arg(op, x, dim, keepdim, fn):
    if dim is None:
        return Tensor._wrap(fn(x.data.reshape(-1), axis=0).astype(np.int64))
    axis, = _axes(op, x, dim)
    return Tensor._wrap(fn(x.data, axis=axis, keepdims=keepdim).astype(np.int64))


def argmax(x, dim=None, keepdim=False):
    """Index of the largest element (flat when dim is None); no gradient."""
    return _arg("argmax", x, dim, keepdim, get_array_module(x.data).argmax)


def argmin(x, dim=None, keepdim=False):
    return _arg("argmin", x, dim, keepdim, get_array_module(x.data).argmin)


def any(x, dim=None, keepdim=False):
    return Tensor._wrap(x.data.astype(bool).any(axis=_axes("any", x, dim), keepdims=keepdim))


def all(x, dim=None, keepdim=False):
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


def softmax(x, dim=-1):
    axis, = _axes("softmax", x, dim)
    return Softmax.apply(x, axis)


def log_softmax(x, dim=-1):
    axis, = _axes("log_softmax", x, dim)
    return LogSoftmax.apply(x, axis)
