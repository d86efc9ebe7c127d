"""Loss modules: thin wrappers that remember their options and call ``tinypix.functional``.

Class weights are buffers, so ``loss_fn.to('cuda')`` moves them with everything else.
"""
from .. import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', "
                             f"got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of scores (N, C) or (N, C, H, W) against labels (N,) or (N, H, W)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C, *) against labels (N, *)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
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

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target, mask=None):
        return F.smooth_l1_loss(input, target, self.reduction, beta=self.beta, mask=mask)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (sigmoid inside, computed stably)."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)
