"""Division that rounds: ``floor_divide`` (``//``), ``div(a, b, rounding_mode=)``, ``remainder``
(``%``) and ``fmod``, with PyTorch's rounding, dtypes and gradients.

``//`` and ``%`` round down, as Python does (-7 // 2 == -4, -7 % 3 == 2); ``rounding_mode='trunc'``
and ``fmod`` round toward zero, as C does. Integer operands give integers; an integer divided by
zero raises ZeroDivisionError (as in PyTorch), a float gives inf or NaN.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import get_array_module
from ..tensor import Tensor
from .elementwise import operands, true_divide

if TYPE_CHECKING:
    from ..typing import TensorOrNumber


class Remainder(Function):
    """a - b * floor(a / b): the sign of b, as Python's % (``remainder``); with ``trunc``,
    a - b * trunc(a / b), the sign of a, as C's fmod (``fmod``). Backward: da = dy,
    db = -dy * floor(a / b) (or trunc)."""

    @staticmethod
    def forward(ctx, a, b, trunc):
        xp = get_array_module(a)
        ctx.save_for_backward(a, b)
        ctx.trunc = trunc
        with np.errstate(divide="ignore", invalid="ignore"):  # x % 0.0 is NaN, silently
            return xp.fmod(a, b) if trunc else xp.remainder(a, b)

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        da = unbroadcast(dy, a.shape) if ctx.needs_input_grad[0] else None
        db = None
        if ctx.needs_input_grad[1]:
            db = unbroadcast(-dy * _rounded_quotient(a, b, "trunc" if ctx.trunc else "floor"), b.shape)
        return da, db, None


class RoundedDiv(Function):
    """a / b rounded down ('floor') or toward zero ('trunc'). The result is piecewise constant:
    ``div(..., rounding_mode=)`` has zero gradients and ``floor_divide`` (``//``) none at all,
    as in PyTorch."""

    @staticmethod
    def forward(ctx, a, b, mode, differentiable):
        ctx.shapes, ctx.differentiable = (a.shape, b.shape), differentiable
        return _rounded_quotient(a, b, mode)

    @staticmethod
    def backward(ctx, dy):
        if not ctx.differentiable:
            raise RuntimeError("floor_divide (//): the derivative is not implemented, as in PyTorch "
                               "(the result is piecewise constant); compute it from a detached "
                               "tensor, e.g. x.detach() // 2, or use tinypix.div(a, b, rounding_mode="
                               "'floor'), whose gradient is zero")
        xp = get_array_module(dy)
        return xp.zeros(ctx.shapes[0], dy.dtype), xp.zeros(ctx.shapes[1], dy.dtype), None, None


def _rounded_quotient(a, b, mode):
    xp = get_array_module(a)
    with np.errstate(divide="ignore", invalid="ignore"):  # float x // 0 is +-inf or NaN, silently
        if mode == "floor":
            return xp.floor_divide(a, b)
        if a.dtype.kind in "iu":  # exact for integers of any size
            return (xp.abs(a) // xp.abs(b)) * (xp.sign(a) * xp.sign(b))
        return xp.trunc(a / b)


def div(a: TensorOrNumber, b: TensorOrNumber, rounding_mode: str | None = None) -> Tensor:
    """a / b; true division (integers give float32) unless ``rounding_mode`` is 'floor' or
    'trunc', which keep integer dtypes and have zero gradients."""
    if rounding_mode is None:
        return true_divide(a, b)
    if rounding_mode not in ("floor", "trunc"):
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
    return _rounded_div("div", a, b, rounding_mode, differentiable=True)


def floor_divide(a: TensorOrNumber, b: TensorOrNumber) -> Tensor:
    """a // b rounded down (PyTorch's ``//`` since 1.13, and Python's): -7 // 2 is -4; integer
    dtypes stay integers. Dividing an integer by 0 raises ZeroDivisionError; a float gives
    +-inf or NaN. Not differentiable (backward raises, as in PyTorch)."""
    return _rounded_div("floor_divide", a, b, "floor", differentiable=False)


def _rounded_div(op, a, b, mode, differentiable):
    a, b = operands(op, a, b)
    _check_integer_divisor(op, b)
    return RoundedDiv.apply(a, b, mode, differentiable)


def _check_integer_divisor(op, b):
    b = b.data if isinstance(b, Tensor) else b
    if b.dtype.kind in "iub" and bool((b == 0).any()):
        raise ZeroDivisionError(f"{op}: integer division by zero (the divisor has a 0); PyTorch "
                                "raises here too. Divide floats to get inf/NaN instead, e.g. a.float()")


def remainder(a: TensorOrNumber, b: TensorOrNumber) -> Tensor:
    """a - b * floor(a / b): Python's %, with the sign of the divisor (-7 % 3 is 2)."""
    a, b = operands("remainder", a, b)
    _check_integer_divisor("remainder", b)
    return Remainder.apply(a, b, False)


def fmod(a: TensorOrNumber, b: TensorOrNumber) -> Tensor:
    """a - b * trunc(a / b): C's fmod, with the sign of the dividend (fmod(-7, 3) is -1)."""
    a, b = operands("fmod", a, b)
    _check_integer_divisor("fmod", b)
    return Remainder.apply(a, b, True)
