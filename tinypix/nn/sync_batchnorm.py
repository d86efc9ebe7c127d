"""SyncBatchNorm: batch normalization over the global batch of data-parallel training.

With the batch split over ranks, plain ``BatchNorm2d`` normalizes each rank's share by that
share's statistics; ``SyncBatchNorm`` sums each channel's count, sum and squared deviations over
all ranks, so every rank normalizes by the whole batch's mean and variance (and updates the
running statistics with them), and its backward sums the two per-channel reductions of the
gradient over the ranks too. One process on the whole batch and N ranks on its shares then
compute the same numbers (up to rounding).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import distributed as dist
from ..autograd import Function
from ..backend import get_array_module
from ..functional.norm import _channel_shape
from .module import Module
from .norm import _BatchNorm

if TYPE_CHECKING:
    from ..tensor import Tensor


def _summed(*arrays):
    """Each (C,) array summed over all ranks, in one message (float64, so the sums do not round)."""
    xp = get_array_module(arrays[0])
    flat = np.concatenate([np.asarray(a if xp is np else xp.asnumpy(a), dtype=np.float64) for a in arrays])
    if dist.is_initialized() and dist.get_world_size() > 1:
        from ..tensor import Tensor
        dist.all_reduce(Tensor._wrap(flat))
    return [xp.asarray(part) for part in np.split(flat, len(arrays))]


class SyncBatchNormFunction(Function):
    """y = xhat * weight + bias with the global batch's mean and biased variance, per channel.

    Forward: global count m and mean (one all-reduce), then the global variance from the squared
    deviations (a second one). Backward: with sums over all ranks of dy and dy * xhat,
    dx = weight * inv_std / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)); dweight and dbias are
    this rank's own sums, which data-parallel training averages with the other ranks'.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        xp = get_array_module(x)
        axes, shape = (0,) + tuple(range(2, x.ndim)), _channel_shape(x)
        count = xp.full(x.shape[1], x.size // x.shape[1], dtype=np.float64)
        m, total = _summed(count, x.sum(axis=axes, dtype=np.float64))
        mean = (total / m).astype(x.dtype)
        xhat = x - mean.reshape(shape)
        (squares,) = _summed((xhat * xhat).sum(axis=axes, dtype=np.float64))
        var = (squares / m).astype(x.dtype)
        inv_std = 1 / xp.sqrt(var + eps)
        xhat *= inv_std.reshape(shape)
        y = xhat if weight is None else xhat * weight.reshape(shape)
        y = y if bias is None else y + bias.reshape(shape)
        if running_mean is not None:  # in place: the module's buffers
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += (momentum * squares / np.maximum(m - 1, 1)).astype(running_var.dtype)
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.m = m
        return y

    @staticmethod
    def backward(ctx, dy):
        xhat, inv_std, weight = ctx.saved_tensors
        axes, shape = (0,) + tuple(range(2, dy.ndim)), _channel_shape(dy)
        dbias = dy.sum(axis=axes)
        dweight = (dy * xhat).sum(axis=axes)
        dx = None
        if ctx.needs_input_grad[0]:
            sum_dy, sum_dy_xhat = _summed(dbias, dweight)
            m = ctx.m.reshape(shape)
            scale = inv_std if weight is None else weight * inv_std
            dx = (dy - (sum_dy.reshape(shape) / m).astype(dy.dtype)
                  - xhat * (sum_dy_xhat.reshape(shape) / m).astype(dy.dtype)) * scale.reshape(shape)
        need_w, need_b = ctx.needs_input_grad[1:3]
        return dx, dweight if need_w else None, dbias if need_b else None, None, None, None, None


class SyncBatchNorm(_BatchNorm):
    """Batch normalization of x: (N, C, *) over the whole batch of all ranks in training (see the
    module's docstring); in evaluation, or outside a process group of more than one rank, the
    same as ``BatchNorm2d`` / ``BatchNorm1d``."""

    def _check_input(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_features}, *), got {x.shape}")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input(x)
        momentum = self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        momentum = 0.0 if momentum is None else momentum
        return SyncBatchNormFunction.apply(x, self.weight, self.bias, self.running_mean, self.running_var,
                                           float(momentum), float(self.eps))

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: None = None) -> Module:
        """``module`` with every BatchNorm1d/2d (at any depth) replaced by a SyncBatchNorm holding
        the same parameters and buffers (the module itself when it is one)."""
        if process_group is not None:
            raise ValueError("convert_sync_batchnorm: only the default process group (None) is supported")
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
            sync.weight, sync.bias = module.weight, module.bias
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(sync, name, getattr(module, name))
            sync.train(module.training)
            return sync
        for name, child in list(module.named_children()):
            setattr(module, name, cls.convert_sync_batchnorm(child))
        return module


__all__ = ["SyncBatchNorm"]
