"""Normalization: batch_norm and standardize (primitives with hand-written backwards), and
layer_norm, group_norm and normalize (composed from them and other primitives).

Batch norm standardizes each channel over the batch and the spatial positions, then scales and
shifts it:  y = (x - mean) / sqrt(var + eps) * weight + bias.  In training the mean and the
(biased) variance come from the batch, and the running averages are updated with the unbiased
variance; in evaluation the running averages are used instead, so y is an affine map of x.

Layer norm and group norm standardize each sample on its own (over its last dims, or over the
channels of one group and all positions) with the biased variance, in training and evaluation
alike, then scale and shift elementwise (layer norm) or per channel (group norm).
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

from .. import kernels
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor, check_same_device
from .elementwise import clamp, pow, sqrt
from .reduce import sum
from .shape import reshape


def _channel_shape(x):
    """(1, C, 1, 1, ...): per-channel values broadcast against x: (N, C, *)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


@kernels.op("batch_norm")
def _batch_norm_train(x, weight, bias, eps):
    """Training batch norm's array op: x (N, C, *), weight, bias (C,) or None -> (y, xhat, mean,
    var), with the mean and the biased variance (C,) over all dims but 1 -- the batch is the
    population normalized -- and xhat = (x - mean) / sqrt(var + eps), y = xhat * weight + bias."""
    xp = get_array_module(x)
    axes, shape = (0,) + tuple(range(2, x.ndim)), _channel_shape(x)
    mean = x.mean(axis=axes)
    xhat = x - mean.reshape(shape)
    var = (xhat * xhat).mean(axis=axes)
    xhat *= (1 / xp.sqrt(var + eps)).reshape(shape)
    y = xhat if weight is None else xhat * weight.reshape(shape)
    return (y if bias is None else y + bias.reshape(shape)), xhat, mean, var


@kernels.op("batch_norm_backward")
def _batch_norm_train_backward(dy, xhat, scale):
    """Training batch norm's gradients: dy, xhat (N, C, *), scale = weight * inv_std (C,) ->
    (dx, dweight, dbias), with m values per channel and sums over them:

        dbias = sum(dy),  dweight = sum(dy * xhat),
        dx = scale / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)).

    The last two terms of dx are the paths through the batch mean and variance."""
    axes, shape = (0,) + tuple(range(2, dy.ndim)), _channel_shape(dy)
    dbias = dy.sum(axis=axes)
    dweight = (dy * xhat).sum(axis=axes)
    m = dy.size // dy.shape[1]
    dx = dy - (dbias / m).reshape(shape) - xhat * (dweight / m).reshape(shape)
    dx *= scale.reshape(shape)
    return dx, dweight, dbias


class BatchNorm(Function):
    """y = xhat * weight + bias with xhat = (x - mean) * inv_std, per channel.

    x: (N, C, *), weight, bias: (C,) or None, running_mean, running_var: (C,) or None.
    Training uses the batch's statistics (``_batch_norm_train``, and its backward); evaluation
    the running ones, which are constants: dx = dy * weight * inv_std.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        xp = get_array_module(x)
        if training:
            y, xhat, mean, var = _batch_norm_train(x, weight, bias, eps)
            inv_std = 1 / xp.sqrt(var + eps)
            if running_mean is not None:  # in place: these arrays are the module's buffers
                m = x.size // x.shape[1]
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * var * (m / (m - 1))
        else:
            shape = _channel_shape(x)
            inv_std = 1 / xp.sqrt(running_var.astype(x.dtype) + eps)
            xhat = (x - running_mean.astype(x.dtype).reshape(shape)) * inv_std.reshape(shape)
            y = xhat if weight is None else xhat * weight.reshape(shape)
            y = y if bias is None else y + bias.reshape(shape)
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.training = training
        return y

    @staticmethod
    def backward(ctx, dy):
        xhat, inv_std, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        scale = inv_std if weight is None else weight * inv_std
        axes = (0,) + tuple(range(2, dy.ndim))
        if ctx.training and need_x:
            dx, dweight, dbias = _batch_norm_train_backward(dy, xhat, scale)
        else:
            dx = dy * scale.reshape(_channel_shape(dy)) if need_x else None
            dweight = (dy * xhat).sum(axis=axes) if need_w else None
            dbias = dy.sum(axis=axes) if need_b else None
        return (dx, dweight if need_w else None, dbias if need_b else None,
                None, None, None, None, None)


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization over all dims but the channel dim 1 (PyTorch's F.batch_norm).

    Args:
        x: (N, C, *) floating tensor.
        running_mean, running_var: (C,) tensors updated in place when ``training`` (as
            ``(1 - momentum) * running + momentum * batch``), used when not; may be None in
            training (then nothing is tracked).
        weight, bias: (C,) scale and shift, or None.
        training: use batch statistics (True) or the running ones (False).
    Returns:
        y: (N, C, *), same dtype as x.
    """
    _check("batch_norm", x, running_mean, running_var, weight, bias, training)
    return BatchNorm.apply(x, weight, bias, running_mean, running_var, bool(training),
                           float(momentum), float(eps))


def _check(op, x, running_mean, running_var, weight, bias, training):
    """Shapes, dtypes and devices of batch_norm's arguments; a clear error naming op otherwise."""
    if not isinstance(x, Tensor) or x.ndim < 2:
        shape = x.shape if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{op}: expected input of shape (N, C, ...), got {shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}; use x.float()")
    C = x.shape[1]
    named = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    for name, t in named.items():
        if t is not None and t.shape != (C,):
            raise ValueError(f"{op}: {name} has shape {t.shape} but the input {x.shape} has "
                             f"C = {C} channels; expected shape ({C},)")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(f"{op}: evaluation (training=False) needs running_mean and running_var")
    if training and x.numel() // C <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got "
                         f"input of shape {x.shape}; use a larger batch or call .eval()")
    check_same_device(op, [t for t in (x, *named.values()) if t is not None])


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along ``dim`` (PyTorch's F.normalize); composed from primitives.

    The norm is clamped *before* the root (max(||x||, eps) = max(sum|x|^p, eps^p)^(1/p)), so a
    zero vector gives 0 with a finite gradient instead of 0/0.
    """
    if p == 2:
        norm = sqrt(clamp(sum(x * x, dim, keepdim=True), min=eps * eps))
    else:
        norm = pow(clamp(sum(pow(abs(x), p), dim, keepdim=True), min=eps ** p), 1.0 / p)
    return x / norm


# -- layer norm and group norm ----------------------------------------------------------------
class Standardize(Function):
    """xhat = (x - mean) / sqrt(var + eps), mean and biased variance over ``axes``.

    Backward, with means over the same m values per group:
        dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)
    (batch norm's formula without the scale; the last two terms are the paths through the mean
    and the variance).
    """

    @staticmethod
    def forward(ctx, x, axes, eps):
        xp = get_array_module(x)
        xhat = x - x.mean(axis=axes, keepdims=True)
        inv_std = 1 / xp.sqrt((xhat * xhat).mean(axis=axes, keepdims=True) + eps)
        xhat *= inv_std
        ctx.save_for_backward(xhat, inv_std)
        ctx.axes = axes
        return xhat

    @staticmethod
    def backward(ctx, dy):
        xhat, inv_std = ctx.saved_tensors
        axes = ctx.axes
        dx = dy - dy.mean(axis=axes, keepdims=True)
        dx -= xhat * (dy * xhat).mean(axis=axes, keepdims=True)
        dx *= inv_std
        return dx, None, None


def _check_norm_input(op, x, params):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected the input to be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}; use x.float()")
    check_same_device(op, [x] + [t for t in params.values() if t is not None])


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization (PyTorch's F.layer_norm): standardize each sample over its last
    ``len(normalized_shape)`` dims, then ``* weight + bias`` elementwise.

    Args:
        input: (*, *normalized_shape) floating tensor.
        normalized_shape: an int or a tuple of ints, the trailing shape of input.
        weight, bias: tensors of shape normalized_shape, or None.
        eps: added to the variance.
    Returns:
        y: input's shape and dtype.
    """
    op = "layer_norm"
    _check_norm_input(op, input, {"weight": weight, "bias": bias})
    shape = ((int(normalized_shape),) if isinstance(normalized_shape, numbers.Integral)
             else tuple(int(n) for n in normalized_shape))
    k = len(shape)
    if k == 0 or input.ndim < k or input.shape[input.ndim - k:] != shape:
        raise ValueError(f"{op}: given normalized_shape={list(shape)}, expected input with shape "
                         f"(*, {', '.join(map(str, shape))}), but got input of shape {input.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"{op}: {name} has shape {t.shape}; expected normalized_shape {shape}")
    y = Standardize.apply(input, tuple(range(input.ndim - k, input.ndim)), float(eps))
    y = y if weight is None else y * weight
    return y if bias is None else y + bias


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Group normalization (PyTorch's F.group_norm): split the C channels into ``num_groups``
    groups and standardize each group of each sample over its channels and all positions, then
    ``* weight + bias`` per channel.

    Args:
        input: (N, C, *) floating tensor, C divisible by num_groups.
        weight, bias: (C,) tensors, or None.
        eps: added to the variance.
    Returns:
        y: input's shape and dtype.
    """
    op = "group_norm"
    _check_norm_input(op, input, {"weight": weight, "bias": bias})
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    N, C = input.shape[:2]
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"{op}: the {C} channels of input {input.shape} cannot be split into "
                         f"num_groups={num_groups} equal groups")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"{op}: {name} has shape {t.shape}; expected ({C},), one per channel")
    group_size = C // num_groups * math.prod(input.shape[2:])
    grouped = reshape(input, (N, num_groups, group_size))
    y = reshape(Standardize.apply(grouped, (2,), float(eps)), input.shape)
    per_channel = (C,) + (1,) * (input.ndim - 2)
    y = y if weight is None else y * reshape(weight, per_channel)
    return y if bias is None else y + reshape(bias, per_channel)
