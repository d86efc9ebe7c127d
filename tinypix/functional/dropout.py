"""Dropout: zero random entries in training, scale the survivors by 1 / (1 - p).

The scaling ("inverted dropout") keeps every activation's expected value unchanged, so nothing
needs rescaling at evaluation time, where dropout is the identity. Composed: the output is
``x * mask`` with a constant mask, so the gradient is ``dy * mask`` with no backward of its own.
"""
from __future__ import annotations

from ..backend import to_device
from ..creation import generator
from ..tensor import Tensor


def _check_p(op, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability p must be in [0, 1], got {p}")


def _masked(x, p, mask_shape):
    # Drawn on the CPU from the global generator, so a seed gives the same mask on any device.
    keep = generator().random(mask_shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(x.dtype)
    return x * Tensor._wrap(to_device(mask, x.device))


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each entry of x with probability p (x: any shape); identity when not training."""
    _check_p("dropout", p)
    if not training or p == 0.0:
        return x
    return _masked(x, p, x.shape)


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels: x: (N, C, H, W) or (C, H, W); each (sample, channel) plane is kept
    or dropped together (neighbouring pixels are correlated, so single-pixel dropout would
    barely regularize a conv layer)."""
    _check_p("dropout2d", p)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W) or (C, H, W), got {x.shape}")
    if not training or p == 0.0:
        return x
    return _masked(x, p, x.shape[:-2] + (1, 1))
