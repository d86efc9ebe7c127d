"""Normalization layers: BatchNorm1d / BatchNorm2d (statistics over the batch), LayerNorm and
GroupNorm (statistics over each sample). Each calls the function of ``tinypix.functional.norm``
where forward and backward are written; parameter and buffer names are PyTorch's.
"""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

from .. import functional as F
from ..creation import ones, tensor, zeros
from ..functional.norm import group_norm, layer_norm
from .module import Module
from .parameter import Parameter

if TYPE_CHECKING:
    from ..tensor import Tensor
    from ..typing import DeviceLike, DTypeLike, ShapeLike


class _BatchNorm(Module):
    """Batch normalization per channel of x: (N, C, *) (see ``F.batch_norm``).

    Training: normalize with the batch mean and biased variance; update
    ``running_mean`` / ``running_var`` as ``(1 - momentum) * running + momentum * batch`` (the
    variance unbiased). ``momentum=None`` averages all batches seen equally. ``bias=False`` drops
    the shift (beta) but keeps the scale.
    Evaluation: normalize with the running statistics. weight (gamma) starts at 1, bias (beta) at 0.
    """

    _expected = ""  # the input shapes a subclass takes, for its error message

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: DeviceLike | None = None,
                 dtype: DTypeLike | None = None, *, bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(ones(num_features)) if affine else None
        self.bias = Parameter(zeros(num_features)) if affine and bias else None
        tracked = track_running_stats
        self.register_buffer("running_mean", zeros(num_features) if tracked else None)
        self.register_buffer("running_var", ones(num_features) if tracked else None)
        self.register_buffer("num_batches_tracked", tensor(0) if tracked else None)
        self._place(device, dtype)

    def _check_input(self, x):
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.item())
        momentum = 0.0 if momentum is None else momentum
        # Without running statistics there is nothing else to normalize with, even in eval.
        use_batch = self.training or self.running_mean is None
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch, momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of x: (N, C) (per feature) or (N, C, L) (per channel, over N and L)."""

    def _check_input(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            C = self.num_features
            raise ValueError(f"{self!r}: expected input of shape (N, {C}) or (N, {C}, L), got {x.shape}")


class BatchNorm2d(_BatchNorm):
    """Batch normalization of x: (N, C, H, W) per channel, over N, H and W."""

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_features}, H, W), "
                             f"got {x.shape}")


class LayerNorm(Module):
    """Layer normalization over the last dims, ``normalized_shape`` (see ``F.layer_norm``).

    x: (*, *normalized_shape) -> same shape. With ``elementwise_affine``, weight (ones) and bias
    (zeros, unless ``bias=False``) have shape normalized_shape. The same in training and eval.
    """

    def __init__(self, normalized_shape: int | ShapeLike, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: DeviceLike | None = None, dtype: DTypeLike | None = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = Parameter(ones(*self.normalized_shape)) if elementwise_affine else None
        self.bias = Parameter(zeros(*self.normalized_shape)) if elementwise_affine and bias else None
        self._place(device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalization of x: (N, C, *) with C = num_channels split into ``num_groups`` groups
    (see ``F.group_norm``). With ``affine``, weight (ones) and bias (zeros, unless ``bias=False``)
    have shape (C,). The same in training and eval."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: DeviceLike | None = None, dtype: DTypeLike | None = None, *, bias: bool = True) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                             f"num_groups={num_groups}")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = eps, affine
        self.weight = Parameter(ones(num_channels)) if affine else None
        self.bias = Parameter(zeros(num_channels)) if affine and bias else None
        self._place(device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_channels}, ...), "
                             f"got {x.shape}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
