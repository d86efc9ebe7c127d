"""Comparisons and tests of values: ``eq ... ge``, ``maximum``/``minimum``, ``isnan``, ``isinf``,
``isfinite``, ``isclose``, ``allclose``, ``equal``, and the logical operators ``& | ^ ~``.

All but maximum and minimum answer with bool tensors (or a Python bool) outside the graph.
Operands are promoted to one dtype first, as for arithmetic (``elementwise.operands``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import get_array_module
from ..tensor import Tensor, check_same_device
from .elementwise import operands

if TYPE_CHECKING:
    from ..typing import Array, TensorOrNumber


class Maximum(Function):
    """Elementwise max(a, b) (``largest``) or min(a, b); a NaN in either gives NaN. The gradient
    goes to the chosen input, split in halves on ties (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, a, b, largest):
        xp = get_array_module(a)
        ctx.save_for_backward(a, b)
        ctx.largest = largest
        return xp.maximum(a, b) if largest else xp.minimum(a, b)

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        xp = get_array_module(dy)
        shared = xp.where(a == b, dy / 2, dy)
        zero = dy.dtype.type(0)
        a_loses, b_loses = (a < b, a > b) if ctx.largest else (a > b, a < b)
        da = unbroadcast(xp.where(a_loses, zero, shared), a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(xp.where(b_loses, zero, shared), b.shape) if ctx.needs_input_grad[1] else None
        return da, db, None


def maximum(input: Tensor, other: TensorOrNumber) -> Tensor:
    """Elementwise larger of the two (NaN if either is NaN); ``torch.max(a, b)`` too."""
    return Maximum.apply(*operands("maximum", input, other), True)


def minimum(input: Tensor, other: TensorOrNumber) -> Tensor:
    """Elementwise smaller of the two (NaN if either is NaN); ``torch.min(a, b)`` too."""
    return Maximum.apply(*operands("minimum", input, other), False)


# -- comparisons -----------------------------------------------------------------------------
def _arrays(op, a, b):
    a, b = operands(op, a, b)
    return (a.data if isinstance(a, Tensor) else a), (b.data if isinstance(b, Tensor) else b)


def _compare(name: str, fn: Callable[[Array, Array], Array]) -> Callable[[Tensor, TensorOrNumber], Tensor]:
    def compare(input: Tensor, other: TensorOrNumber) -> Tensor:
        return Tensor._wrap(fn(*_arrays(name, input, other)))
    compare.__name__ = name
    compare.__doc__ = f"Elementwise ``{name}`` comparison; a bool tensor, outside the graph."
    return compare


eq = _compare("eq", lambda a, b: a == b)
ne = _compare("ne", lambda a, b: a != b)
lt = _compare("lt", lambda a, b: a < b)
le = _compare("le", lambda a, b: a <= b)
gt = _compare("gt", lambda a, b: a > b)
ge = _compare("ge", lambda a, b: a >= b)


def isnan(input: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(input.data).isnan(input.data))


def isinf(input: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(input.data).isinf(input.data))


def isfinite(input: Tensor) -> Tensor:
    return Tensor._wrap(get_array_module(input.data).isfinite(input.data))


def isclose(input: Tensor, other: TensorOrNumber, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """Elementwise ``|input - other| <= atol + rtol * |other|`` (or equal, e.g. both inf; NaNs are
    close to each other only with ``equal_nan``). Both must have one dtype, as in PyTorch."""
    if isinstance(other, Tensor):
        check_same_device("isclose", [input, other])
        if other.dtype != input.dtype:
            raise TypeError(f"isclose: input has dtype {input.dtype} but other has {other.dtype}; "
                            f"convert one first, e.g. other.to(input.dtype)")
    a, b = _arrays("isclose", input, other)
    xp = get_array_module(a)
    if a.dtype == np.bool_:
        return Tensor._wrap(xp.broadcast_to(a == b, np.broadcast_shapes(a.shape, b.shape)))
    return Tensor._wrap(xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input: Tensor, other: TensorOrNumber, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """True when every element is :func:`isclose` (a Python bool)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both have the same shape and the same values (a Python bool)."""
    return input.shape == other.shape and bool(eq(input, other).data.all())


# -- logic -----------------------------------------------------------------------------------
def _bitwise(name: str, fn: Callable[[Array, Array], Array]) -> Callable[[Tensor, TensorOrNumber], Tensor]:
    def bitwise(input: Tensor, other: TensorOrNumber) -> Tensor:
        a, b = _arrays(name, input, other)
        if a.dtype.kind not in "biu":
            raise TypeError(f"{name}: expected bool or integer tensors, got dtype {a.dtype}; for masks "
                            "compare first, e.g. (x > 0) & (y > 0)")
        return Tensor._wrap(fn(a, b))
    bitwise.__name__ = name
    bitwise.__doc__ = f"Elementwise ``{name}`` of bool (logical) or integer (bitwise) tensors."
    return bitwise


bitwise_and = _bitwise("bitwise_and", lambda a, b: a & b)
bitwise_or = _bitwise("bitwise_or", lambda a, b: a | b)
bitwise_xor = _bitwise("bitwise_xor", lambda a, b: a ^ b)


def bitwise_not(input: Tensor) -> Tensor:
    """``~input``: logical not of a bool tensor, bitwise not of an integer one."""
    if input.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not (~): expected a bool or integer tensor, got dtype {input.dtype}; "
                        "for a mask compare first, e.g. ~(x > 0)")
    return Tensor._wrap(~input.data)


def logical_not(input: Tensor) -> Tensor:
    return Tensor._wrap(input.data == 0)
