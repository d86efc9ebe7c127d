"""Layers without convolution: Linear, Dropout, Identity, Flatten and Unflatten.

Each layer holds its parameters and calls the matching function of ``tinypix.functional``,
where forward and backward are written.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import functional as F
from ..creation import empty, zeros
from . import init
from .module import Module
from .parameter import Parameter

if TYPE_CHECKING:
    from ..tensor import Tensor
    from ..typing import DeviceLike, DTypeLike, ShapeLike


class Linear(Module):
    """y = x @ weight^T + bias.  x: (..., in_features) -> y: (..., out_features).

    weight: (out_features, in_features), Kaiming normal for ReLU (std sqrt(2 / in_features));
    bias: (out_features,), zeros.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: DeviceLike | None = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(empty(out_features, in_features))
        self.bias = Parameter(zeros(out_features)) if bias else None
        self.reset_parameters()
        self._place(device, dtype)

    def reset_parameters(self) -> None:
        init.kaiming_normal_(self.weight, nonlinearity="relu")
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(Module):
    """Zero each entry with probability p in training and scale the rest by 1 / (1 - p);
    the identity in evaluation. ``inplace=True``: the input holds the result (``Tensor._inplace``)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace:
            return x._inplace("dropout_", F.dropout, self.p, self.training)
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zero whole channels of x: (N, C, H, W) with probability p in training (see ``F.dropout2d``)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace:
            return x._inplace("dropout2d_", F.dropout2d, self.p, self.training)
        return F.dropout2d(x, self.p, self.training)


class Identity(Module):
    """Returns its input; a placeholder that keeps a network's structure (and state_dict names)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (one entry may be -1): the inverse of Flatten,
    e.g. (N, 12) -> (N, 3, 2, 2) with ``Unflatten(1, (3, 2, 2))``."""

    def __init__(self, dim: int, unflattened_size: ShapeLike) -> None:
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        if not -x.ndim <= self.dim < x.ndim:
            raise IndexError(f"{self!r}: dim {self.dim} is out of range for input of shape {x.shape}")
        d = self.dim % x.ndim
        return F.reshape(x, x.shape[:d] + self.unflattened_size + x.shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
