"""Stochastic gradient descent with momentum, Nesterov momentum and two kinds of weight decay."""
from __future__ import annotations

from .optimizer import _REQUIRED, Optimizer, ParamsT


class SGD(Optimizer):
    """SGD: ``w <- w - lr * v`` with a momentum buffer ``v`` (v = g when momentum is 0).

    With g = dL/dw, momentum mu, dampening d and weight decay wd, one step is:

    Coupled weight decay (``decoupled_weight_decay=False``, PyTorch's SGD, exactly)::

        g <- g + wd * w                   # L2 penalty (wd/2)|w|^2 added to the loss
        v <- mu * v + (1 - d) * g         # v = g on the first step
        w <- w - lr * (g + mu * v  if nesterov else  v)

    Decoupled weight decay (``decoupled_weight_decay=True``, Loshchilov and Hutter; the lecture's
    update)::

        v <- mu * v + (1 - d) * g         # g is the loss gradient only
        w <- w - lr * wd * w - lr * (g + mu * v  if nesterov else  v)

    When they differ: without momentum both give ``w - lr*wd*w - lr*g``, the same update. With
    momentum the coupled decay term goes into v, so it is averaged and amplified like a gradient
    (by up to 1 / (1 - mu) in steady state) and lags behind w; the decoupled term shrinks w by
    the fixed factor (1 - lr*wd) each step, independent of the gradient history. (With adaptive
    methods the gap is larger still: see AdamW.)

    Args:
        params: an iterable of Parameters, or of dicts defining parameter groups.
        lr: learning rate (required).
        momentum, dampening: mu and d above.
        nesterov: look-ahead momentum (needs momentum > 0 and dampening 0).
        weight_decay: wd above.
        decoupled_weight_decay: choose the rule, see above.
    """

    def __init__(self, params: ParamsT, lr: float = _REQUIRED, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> None:
        if lr is not _REQUIRED and lr < 0.0:
            raise ValueError(f"SGD: invalid learning rate lr={lr}; it must be >= 0")
        if momentum < 0.0:
            raise ValueError(f"SGD: invalid momentum={momentum}; it must be >= 0")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: invalid weight_decay={weight_decay}; it must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum requires momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, mu, damp, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
            decoupled = group["decoupled_weight_decay"]
            for p, w, g, state in self._params_with_grad(group):
                if wd and not decoupled:
                    g = g + wd * w  # a new array: p.grad itself stays the loss gradient
                if mu:
                    v = state.get("momentum_buffer")
                    if v is None:
                        v = state["momentum_buffer"] = g.copy()
                    else:
                        v *= mu
                        v += (1 - damp) * g
                    g = g + mu * v if group["nesterov"] else v
                if wd and decoupled:
                    w *= 1 - lr * wd
                w -= lr * g
