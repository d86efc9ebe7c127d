"""Adam and AdamW: per-parameter step sizes from running moments of the gradient."""
from __future__ import annotations

import math

from ..backend import get_array_module
from .optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    """Adam (Kingma and Ba), matching PyTorch. With g = dL/dw, at step t = 1, 2, ...::

        g <- g + wd * w                          # coupled weight decay (L2), the default
        m <- b1 * m + (1 - b1) * g               # first moment (momentum)
        v <- b2 * v + (1 - b2) * g^2             # second moment (per-weight scale)
        w <- w - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)

    The (1 - b^t) factors undo the bias of m and v towards their zero start.
    ``decoupled_weight_decay=True`` (what AdamW does) replaces the first line by
    ``w <- w - lr * wd * w``: coupled decay would be divided by sqrt(v) like a gradient, so weights
    with large gradients would barely be decayed.

    Args:
        params: an iterable of Parameters, or of dicts defining parameter groups.
        lr: learning rate. betas: (b1, b2). eps: added to the denominator.
        weight_decay: wd above. decoupled_weight_decay: choose the rule, see above.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> None:
        name = type(self).__name__
        if lr < 0.0:
            raise ValueError(f"{name}: invalid learning rate lr={lr}; it must be >= 0")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}")
        if eps < 0.0 or weight_decay < 0.0:
            raise ValueError(f"{name}: eps={eps} and weight_decay={weight_decay} must be >= 0")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p, w, g, state in self._params_with_grad(group):
                xp = get_array_module(w)
                if not state:
                    state.update(step=0, exp_avg=xp.zeros_like(w), exp_avg_sq=xp.zeros_like(w))
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                if wd and group["decoupled_weight_decay"]:
                    w *= 1 - lr * wd
                elif wd:
                    g = g + wd * w
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
                denom = xp.sqrt(v)
                denom /= math.sqrt(1 - b2 ** t)
                denom += eps
                xp.divide(m, denom, out=denom)
                denom *= lr / (1 - b1 ** t)
                w -= denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): ``w <- w - lr * wd * w`` each
    step, then the Adam update of the loss gradient alone. Default weight_decay 1e-2, as in PyTorch.

    The paper writes the decay as ``w <- w - eta_t * lambda * w`` with eta_t the schedule's
    multiplier; here wd multiplies the whole (scheduled) lr, as in PyTorch, so lambda = base lr * wd.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay=True)
