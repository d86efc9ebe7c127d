"""Gradient clipping: scale all gradients together so that their joint norm is at most
max_norm (``clip_grad_norm_``), or clamp each entry (``clip_grad_value_``). Both change
``p.grad`` in place, between ``loss.backward()`` and ``optimizer.step()``.
"""
from __future__ import annotations

import math
import types
import warnings
from typing import Iterable

import numpy as np

from ...backend import get_array_module, to_device
from ...tensor import Tensor


def _as_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _vector_norm(a, p):
    """The p-norm of array ``a`` seen as one vector (p may be inf, -inf or 0), a 0-d array."""
    xp = get_array_module(a)
    a = xp.abs(a)
    if p == math.inf:
        return a.max() if a.size else xp.zeros((), a.dtype)
    if p == -math.inf:
        return a.min() if a.size else xp.asarray(math.inf, a.dtype)
    if p == 0:
        return (a != 0).sum().astype(a.dtype)
    if p == 1:
        return a.sum()
    if p == 2:
        return xp.sqrt((a * a).sum())
    return (a ** p).sum() ** (1 / p)


def get_total_norm(tensors: Tensor | Iterable[Tensor], norm_type: float | str = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The p-norm of all ``tensors`` together, as if concatenated into one vector: the norm of
    the vector of their norms. A 0-d Tensor on the first tensor's device (0. if there are none).

    ``foreach`` is accepted for PyTorch's signature; there is one implementation.
    """
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return Tensor._wrap(np.zeros((), np.float32))
    device = tensors[0].device
    norms = [to_device(_vector_norm(t.data, norm_type), device) for t in tensors]
    xp = get_array_module(norms[0])
    dtype = xp.result_type(*norms)
    total = _vector_norm(xp.stack([n.astype(dtype) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is "
                           "non-finite, so it cannot be clipped. To disable this error and scale the "
                           "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return Tensor._wrap(total)


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor | float,
                          foreach: bool | None = None) -> None:
    """Multiply every gradient by min(max_norm / (total_norm + 1e-6), 1), in place."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    total = total_norm.data if isinstance(total_norm, Tensor) else total_norm
    xp = get_array_module(total)
    # Always multiplied (by 1 when below the limit), as PyTorch does: no branch on the value.
    coef = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
    for g in grads:
        g.data *= to_device(xp.asarray(coef), g.device).astype(g.dtype)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their total ``norm_type``-norm
    is at most ``max_norm`` (see ``get_total_norm``); returns the total norm before clipping,
    a 0-d Tensor. ``norm_type`` may be ``'inf'`` / ``math.inf`` (the largest |entry|).
    """
    is_generator = isinstance(parameters, types.GeneratorType)
    parameters = _as_list(parameters)
    if is_generator and not parameters:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.",
                      stacklevel=2)
    grads = [p.grad for p in parameters if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            xp = get_array_module(p.grad.data)
            xp.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)
