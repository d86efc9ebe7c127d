"""Normalization: batch_norm (a primitive with a hand-written backward), batch_norm_relu (the
same with a ReLU after it, as one op) and normalize (composed).

Batch norm standardizes each channel over the batch and the spatial positions, then scales and
shifts it:  y = (x - mean) / sqrt(var + eps) * weight + bias.  In training the mean and the
(biased) variance come from the batch, and the running averages are updated with the unbiased
variance; in evaluation the running averages are used instead, so y is an affine map of x.
"""
from .. import kernels
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor, check_same_device
from .elementwise import clamp, pow, sqrt
from .reduce import sum


def _channel_shape(x):
    """(1, C, 1, 1, ...): per-channel values broadcast against x: (N, C, *)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class BatchNorm(Function):
    """y = xhat * weight + bias with xhat = (x - mean) * inv_std, per channel.

    x: (N, C, *), weight, bias: (C,) or None, running_mean, running_var: (C,) or None.
    Training (batch statistics), with m = N * prod(*) values per channel and sums over them:
        dbias = sum(dy),  dweight = sum(dy * xhat),
        dx = weight * inv_std / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)).
    The last two terms are the paths through the batch mean and variance. In evaluation the
    statistics are constants: dx = dy * weight * inv_std.

    relu: the output is max(y, 0) instead, and backward first sets dy to 0 where that is <= 0.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps, relu):
        xp = get_array_module(x)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = _channel_shape(x)
        fast = kernels.fused_batch_norm(x) if training else None
        if fast is not None:  # the same arithmetic, in two fused loops (kernels/cpu_norm.py)
            y, xhat, mean, var = fast.forward(x, weight, bias, eps, relu)
            inv_std = 1 / xp.sqrt(var + eps)
        else:
            if training:
                mean = x.mean(axis=axes)
                xhat = x - mean.reshape(shape)
                var = (xhat * xhat).mean(axis=axes)  # biased: the batch is the population normalized
            else:
                xhat = x - running_mean.astype(x.dtype).reshape(shape)
                var = running_var.astype(x.dtype)
            inv_std = 1 / xp.sqrt(var + eps)
            xhat *= inv_std.reshape(shape)
            y = xhat if weight is None else xhat * weight.reshape(shape)
            y = y if bias is None else y + bias.reshape(shape)
            y = xp.maximum(y, 0) if relu else y
        if training and running_mean is not None:
            # In place: these arrays are the module's buffers.
            m = x.size // x.shape[1]
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (m / (m - 1))
        ctx.save_for_backward(xhat, inv_std, weight, y if relu else None)
        ctx.training = training
        return y

    @staticmethod
    def backward(ctx, dy):
        xhat, inv_std, weight, y = ctx.saved_tensors
        axes = (0,) + tuple(range(2, dy.ndim))
        shape = _channel_shape(dy)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        scale = inv_std if weight is None else weight * inv_std
        fast = kernels.fused_batch_norm(dy) if ctx.training and need_x else None
        if fast is not None:  # the same arithmetic, in two fused loops (kernels/cpu_norm.py)
            dx, dweight, dbias = fast.backward(dy, xhat, scale, y)
            return (dx, dweight if need_w else None, dbias if need_b else None,
                    None, None, None, None, None, None)
        if y is not None:  # through the ReLU first (0 where y <= 0, as in F.relu's backward)
            dy = get_array_module(dy).where(y <= 0, dy.dtype.type(0), dy)
        dbias = dy.sum(axis=axes) if (need_b or (need_x and ctx.training)) else None
        dweight = (dy * xhat).sum(axis=axes) if (need_w or (need_x and ctx.training)) else None
        dx = None
        if need_x:
            if ctx.training:
                m = dy.size // dy.shape[1]
                dx = dy - (dbias / m).reshape(shape) - xhat * (dweight / m).reshape(shape)
                dx *= scale.reshape(shape)
            else:
                dx = dy * scale.reshape(shape)
        return (dx, dweight if need_w else None, dbias if need_b else None,
                None, None, None, None, None, None)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
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
                           float(momentum), float(eps), False)


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=False,
                    momentum=0.1, eps=1e-5):
    """relu(batch_norm(x, ...)) as one op, with batch_norm's arguments: on the CPU in training,
    one pass over x less each way (kernels/cpu_norm.py). Not a PyTorch function: nn.BatchNorm2d's
    ``forward_relu`` calls it, and the U-Net's blocks call that."""
    _check("batch_norm_relu", x, running_mean, running_var, weight, bias, training)
    return BatchNorm.apply(x, weight, bias, running_mean, running_var, bool(training),
                           float(momentum), float(eps), True)


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


def normalize(x, p=2.0, dim=1, eps=1e-12):
    """x / max(||x||_p, eps) along ``dim`` (PyTorch's F.normalize); composed from primitives.

    The norm is clamped *before* the root (max(||x||, eps) = max(sum|x|^p, eps^p)^(1/p)), so a
    zero vector gives 0 with a finite gradient instead of 0/0.
    """
    if p == 2:
        norm = sqrt(clamp(sum(x * x, dim, keepdim=True), min=eps * eps))
    else:
        norm = pow(clamp(sum(pow(abs(x), p), dim, keepdim=True), min=eps ** p), 1.0 / p)
    return x / norm
