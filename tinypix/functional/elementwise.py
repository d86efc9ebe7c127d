"""Elementwise primitives: arithmetic, exp/log, activations, clamp, where, clone; and PyTorch's
type promotion (``result_type``), which every op with two operands uses.

Binary ops broadcast like NumPy; their backward sums the gradient back down to each input's
shape (``unbroadcast``). A Python number counts only by its kind, so ``x * 2.0`` stays float32
and ``int_tensor * 2.5`` is float32. Division that rounds lives in division.py, comparisons in
compare.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import kernels
from ..autograd import Function, unbroadcast
from ..backend import get_array_module, to_device
from ..tensor import Tensor, check_same_device, dtype_category as _category

if TYPE_CHECKING:
    from ..typing import Array, DTypeLike, Number, TensorOrNumber


# -- operands and PyTorch's type promotion ----------------------------------------------------
def promote_types(a: DTypeLike, b: DTypeLike) -> np.dtype[Any]:
    """The dtype of an op on tensors of dtypes a and b: a higher category wins whatever its size
    (int64 with float16 gives float16); within one category, the wider (NumPy's rule there)."""
    a, b = np.dtype(a), np.dtype(b)
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _scalar_dtype(value):
    """The dtype PyTorch gives a Python number in an op: bool, int64, or the default float32."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return np.dtype(np.int64)
    return np.dtype(np.float32)


def result_type(*operands: TensorOrNumber) -> np.dtype[Any]:
    """PyTorch's ``result_type`` of Tensors and Python numbers.

    Three tiers: tensors with dimensions, 0-d tensors, numbers. Within a tier dtypes promote
    (:func:`promote_types`); a lower tier changes the result only when its category is higher.
    So ``float32 (3,) + float64 0-d`` is float32, ``int64 (3,) + 2.5`` is float32 and
    ``int8 (3,) + 1000`` stays int8.
    """
    tiers = [None, None, None]
    for v in operands:
        if isinstance(v, Tensor):
            tier, dtype = (0 if v.ndim else 1), v.dtype
        else:
            tier, dtype = 2, _scalar_dtype(v)
        tiers[tier] = dtype if tiers[tier] is None else promote_types(tiers[tier], dtype)
    result = None
    for dtype in reversed(tiers):  # numbers, then 0-d tensors, then tensors with dimensions
        if dtype is not None and (result is None or _category(dtype) >= _category(result)):
            result = dtype
    return result


def operands(op: str, a: TensorOrNumber | Array, b: TensorOrNumber | Array) -> tuple[Any, Any]:
    """Two operands of one dtype (``result_type``'s): each a Tensor, or a constant array made
    from a Python number or an array."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
    t = a if isinstance(a, Tensor) else b
    a, b = (_as_operand(op, v, t) for v in (a, b))
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        check_same_device(op, [a, b])
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                             "(sizes must match or be 1, aligned from the last dimension)") from None
    dtype, xp = result_type(a, b), get_array_module(t.data)
    return tuple(_to_dtype(v, dtype, xp) for v in (a, b))


def _as_operand(op, value, like):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return Tensor._wrap(to_device(value, like.device))  # an array acts as a tensor
    if not isinstance(value, (int, float, bool, np.number, np.bool_)):
        raise TypeError(f"{op}: unsupported operand of type {type(value).__name__}")
    return value


def _to_dtype(v, dtype, xp):
    if isinstance(v, Tensor):
        return v if v.dtype == dtype else cast(v, dtype)
    return xp.asarray(np.asarray(v).astype(dtype))  # via astype: -1 into uint8 wraps, as in PyTorch


# -- dtype and device moves ------------------------------------------------------------------
class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.in_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, dy):
        return dy.astype(ctx.in_dtype) if ctx.in_dtype.kind == "f" else None, None


class Move(Function):
    @staticmethod
    def forward(ctx, x, device):
        ctx.in_device = "cuda" if device == "cpu" else "cpu"
        return to_device(x, device)

    @staticmethod
    def backward(ctx, dy):
        return to_device(dy, ctx.in_device), None


def cast(x: Tensor, dtype: DTypeLike) -> Tensor:
    return Cast.apply(x, np.dtype(dtype))


def move(x: Tensor, device: str) -> Tensor:
    return Move.apply(x, device)


# -- arithmetic ------------------------------------------------------------------------------
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, dy):
        sa, sb = ctx.shapes
        return unbroadcast(dy, sa), unbroadcast(dy, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx, dy):
        sa, sb = ctx.shapes
        return unbroadcast(dy, sa), (unbroadcast(-dy, sb) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        da = unbroadcast(dy * b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(dy * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        da = unbroadcast(dy / b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-dy * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Pow(Function):
    """a ** b. d/da = b a^(b-1); d/db = a^b log(a) (only computed when b needs a gradient)."""

    @staticmethod
    def forward(ctx, a, b):
        y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, dy):
        a, b, y = ctx.saved_tensors
        da = unbroadcast(dy * b * a ** (b - 1), a.shape) if ctx.needs_input_grad[0] else None
        if ctx.needs_input_grad[1]:
            xp = get_array_module(a)
            log_a = xp.log(xp.where(a > 0, a, 1))  # a^b log a -> 0 where a = 0 (the limit for b > 0)
            db = unbroadcast(dy * y * log_a, b.shape)
        else:
            db = None
        return da, db


def add(a: TensorOrNumber, b: TensorOrNumber, alpha: Number = 1) -> Tensor:
    """a + alpha * b (``torch.add(input, other, alpha=1)``)."""
    return Add.apply(*operands("add", a, b if alpha == 1 else b * alpha))


def sub(a: TensorOrNumber, b: TensorOrNumber, alpha: Number = 1) -> Tensor:
    """a - alpha * b."""
    return Sub.apply(*operands("sub", a, b if alpha == 1 else b * alpha))


def mul(a: TensorOrNumber, b: TensorOrNumber) -> Tensor:
    return Mul.apply(*operands("mul", a, b))


def true_divide(a: TensorOrNumber, b: TensorOrNumber) -> Tensor:
    """a / b; integers give float32, as in PyTorch. (``div`` adds rounding modes.)"""
    a, b = operands("div", a, b)
    if a.dtype.kind != "f":  # true division of integers gives floats, as in PyTorch
        a, b = (cast(v, np.float32) if isinstance(v, Tensor) else v.astype(np.float32) for v in (a, b))
    return Div.apply(a, b)


def pow(a: TensorOrNumber, b: TensorOrNumber) -> Tensor:
    return Pow.apply(*operands("pow", a, b))


# -- unary -----------------------------------------------------------------------------------
class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, dy):
        return -dy


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = get_array_module(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        y, = ctx.saved_tensors
        return dy * y


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_array_module(x).log(x)

    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return dy / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = get_array_module(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        y, = ctx.saved_tensors
        return dy / (2 * y)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_array_module(x).abs(x)

    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return dy * get_array_module(x).sign(x)  # 0 at x = 0, as in PyTorch


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = get_array_module(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        y, = ctx.saved_tensors
        return dy * (1 - y * y)


class LeakyReLU(Function):
    """max(x, 0) + slope * min(x, 0); slope 0 is ReLU. The gradient at 0 is taken as slope.

    Saved for backward: the output y, which is positive exactly where x is when slope >= 0 (and
    which the next layer keeps anyway); for a negative slope, x itself.
    """

    @staticmethod
    def forward(ctx, x, slope):
        y = _leaky_relu(x, slope)
        ctx.slope = slope
        ctx.save_for_backward(y if slope >= 0 else x)
        return y

    @staticmethod
    def backward(ctx, dy):
        s, = ctx.saved_tensors
        return _leaky_relu_backward(dy, s, ctx.slope), None


@kernels.op("leaky_relu")
def _leaky_relu(x, slope):
    """y = x where x > 0 (or NaN), else slope * x; for slope 0 (ReLU) 0 there, even for -inf."""
    xp = get_array_module(x)
    if slope == 0:
        return xp.maximum(x, x.dtype.type(0))  # (maximum keeps a NaN)
    return xp.where(x > 0, x, x * x.dtype.type(slope))


@kernels.op("leaky_relu_backward")
def _leaky_relu_backward(dy, s, slope):
    """dx from dy and s, forward's output (or, for a negative slope, its input), as in PyTorch:
    leaky, dy where s > 0 and slope * dy elsewhere; ReLU, dy except where s <= 0 (a NaN passes
    it), selecting 0 there rather than multiplying (an infinite dy gives 0, not NaN)."""
    xp = get_array_module(dy)
    if slope == 0:
        return xp.where(s <= 0, dy.dtype.type(0), dy)
    return xp.where(s > 0, dy, dy * dy.dtype.type(slope))


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, dy):
        return dy


class Clamp(Function):
    """min(max(x, lo), hi); the gradient passes where x lies inside [lo, hi]."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.bounds = lo, hi
        return get_array_module(x).clip(x, lo, hi)

    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        lo, hi = ctx.bounds
        inside = (x >= lo if lo is not None else True) & (x <= hi if hi is not None else True)
        return dy * inside, None, None


class Where(Function):
    """cond ? a : b, broadcasting all three. cond carries no gradient."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        ctx.shapes = a.shape, b.shape
        return get_array_module(a).where(cond, a, b)

    @staticmethod
    def backward(ctx, dy):
        cond, = ctx.saved_tensors
        xp = get_array_module(dy)
        zero = dy.dtype.type(0)
        da = unbroadcast(xp.where(cond, dy, zero), ctx.shapes[0]) if ctx.needs_input_grad[1] else None
        db = unbroadcast(xp.where(cond, zero, dy), ctx.shapes[1]) if ctx.needs_input_grad[2] else None
        return None, da, db


def _float_only(op, x):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {x.dtype}; use x.float()")
    return x


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(_float_only("exp", x))


def log(x: Tensor) -> Tensor:
    return Log.apply(_float_only("log", x))


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(_float_only("sqrt", x))


def abs(x: Tensor) -> Tensor:
    return Abs.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(_float_only("tanh", x))


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x), written as (1 + tanh(x/2)) / 2: composed, and it cannot overflow."""
    return tanh(x * 0.5) * 0.5 + 0.5


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(input, 0). ``inplace=True`` is ``input.relu_()``: same values and gradients (see
    ``Tensor._inplace`` for what in place means in a graph)."""
    if inplace:
        return input.relu_()
    return LeakyReLU.apply(input, 0.0)


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """max(input, 0) + negative_slope * min(input, 0); ``inplace`` as for :func:`relu`."""
    if inplace:
        return input._inplace("leaky_relu_", leaky_relu, negative_slope)
    return LeakyReLU.apply(input, float(negative_slope))


def clone(input: Tensor) -> Tensor:
    """A copy of ``input`` with its own memory; gradients pass through unchanged."""
    return Clone.apply(input)


def clamp(x: Tensor, min: Number | None = None, max: Number | None = None) -> Tensor:
    if min is None and max is None:
        raise ValueError("clamp: give at least one of min and max")
    return Clamp.apply(x, min, max)


def where(condition: Tensor | Array, input: TensorOrNumber, other: TensorOrNumber) -> Tensor:
    """Elementwise ``input if condition else other`` (``condition`` a bool tensor or array;
    ``input``, ``other`` tensors or numbers, promoted together as in PyTorch)."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    cond = cond if hasattr(cond, "dtype") else np.asarray(cond)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: expected a bool condition, got dtype {cond.dtype}; compare first, "
                        "e.g. where(mask > 0, a, b), or mask.bool()")
    a, b = input, other
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):  # two numbers: PyTorch's dtype
        dtype = result_type(a, b)
        a = Tensor._wrap(get_array_module(cond).asarray(np.asarray(a).astype(dtype)))
    a, b = operands("where", a, b)
    tensors = [t for t in (condition, a, b) if isinstance(t, Tensor)]
    check_same_device("where", tensors)
    try:
        np.broadcast_shapes(tuple(cond.shape), tuple(np.shape(a)), tuple(np.shape(b)))
    except ValueError:
        raise ValueError(f"where: shapes {tuple(cond.shape)} (condition), {tuple(np.shape(a))} and "
                         f"{tuple(np.shape(b))} cannot be broadcast together") from None
    return Where.apply(cond, a, b)
