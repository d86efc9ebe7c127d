"""Loss modules: thin wrappers that remember their options and call ``tinypix.functional``.

Constructor arguments are PyTorch's, in PyTorch's order, including the deprecated
``size_average`` and ``reduce`` (translated to ``reduction`` with PyTorch's warning), so
positional calls such as ``nn.CrossEntropyLoss(weights, None, 255)`` mean the same here.
Class weights are buffers, so ``loss_fn.to('cuda')`` moves them with everything else.
"""
import warnings

from .. import functional as F
from ..functional.loss import binary_cross_entropy, huber_loss
from .module import Module


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
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', "
                             f"got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of scores (N, C) or (N, C, H, W) against labels (N,) or (N, H, W);
    ``label_smoothing`` mixes the one-hot target with the uniform distribution."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (N, C, *) against labels (N, *)."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(_Loss):
    """Mean squared error; ``forward(input, target, mask=None)`` averages over valid elements."""

    def forward(self, input, target, mask=None):
        return F.mse_loss(input, target, self.reduction, mask=mask)


class L1Loss(_Loss):
    """Mean absolute error; ``forward(input, target, mask=None)`` averages over valid elements."""

    def forward(self, input, target, mask=None):
        return F.l1_loss(input, target, self.reduction, mask=mask)


class SmoothL1Loss(_Loss):
    """Quadratic below ``beta``, linear above; ``forward(input, target, mask=None)``."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target, mask=None):
        return F.smooth_l1_loss(input, target, self.reduction, beta=self.beta, mask=mask)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, linear above with slope delta (delta * SmoothL1Loss(beta=delta));
    ``forward(input, target, mask=None)``."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target, mask=None):
        return huber_loss(input, target, self.reduction, delta=self.delta, mask=mask)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1] (e.g. after a Sigmoid) against targets
    of the same shape; ``weight`` broadcasts to the input."""

    def forward(self, input, target):
        return binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy on logits (sigmoid inside, computed stably); ``pos_weight`` weighs
    the positive term (e.g. (C, 1, 1) for (N, C, H, W) inputs)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)
