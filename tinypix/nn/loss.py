"""Loss modules: thin wrappers that remember their options and call ``tinypix.functional``.

Constructor arguments are PyTorch's, in PyTorch's order, including the deprecated
``size_average`` and ``reduce`` (translated to ``reduction`` with PyTorch's warning), so
positional calls such as ``nn.CrossEntropyLoss(weights, None, 255)`` mean the same here.
Class weights are buffers, so ``loss_fn.to('cuda')`` moves them with everything else.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from .. import functional as F
from ..functional.loss import binary_cross_entropy, huber_loss
from .module import Module

if TYPE_CHECKING:
    from ..tensor import Tensor
    from ..typing import Array


def _legacy_reduction(size_average, reduce):
    """PyTorch's translation of the old flags: reduce=False -> 'none', else size_average
    (default True) -> 'mean' or 'sum'."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "none" if not reduce else ("mean" if size_average else "sum")
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{reduction}' instead.", stacklevel=4)
    return reduction


class _Loss(Module):
    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', "
                             f"got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of scores (N, C) or (N, C, H, W) against labels (N,) or (N, H, W);
    ``label_smoothing`` mixes the one-hot target with the uniform distribution."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (N, C, *) against labels (N, *)."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(_Loss):
    """Mean squared error; ``forward(input, target, mask=None)`` averages over valid elements."""

    def forward(self, input: Tensor, target: Tensor, mask: Tensor | Array | None = None) -> Tensor:
        return F.mse_loss(input, target, self.reduction, mask=mask)


class L1Loss(_Loss):
    """Mean absolute error; ``forward(input, target, mask=None)`` averages over valid elements."""

    def forward(self, input: Tensor, target: Tensor, mask: Tensor | Array | None = None) -> Tensor:
        return F.l1_loss(input, target, self.reduction, mask=mask)


class SmoothL1Loss(_Loss):
    """Quadratic below ``beta``, linear above; ``forward(input, target, mask=None)``."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor, mask: Tensor | Array | None = None) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, beta=self.beta, mask=mask)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, linear above with slope delta (delta * SmoothL1Loss(beta=delta));
    ``forward(input, target, mask=None)``."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor, mask: Tensor | Array | None = None) -> Tensor:
        return huber_loss(input, target, self.reduction, delta=self.delta, mask=mask)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1] (e.g. after a Sigmoid) against targets
    of the same shape; ``weight`` broadcasts to the input."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy on logits (sigmoid inside, computed stably); ``pos_weight`` weighs
    the positive term (e.g. (C, 1, 1) for (N, C, H, W) inputs)."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", pos_weight: Tensor | None = None) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)
