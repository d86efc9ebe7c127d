"""Tensor's operators and methods: each one line, a call into ``tinypix.functional``, where the
op's forward and backward live side by side.

``Tensor`` (tensor.py) inherits them from ``TensorMethods``; they are written out on a class,
rather than attached at run time, so that editors and type checkers see every one. The in-place
forms (``add_``, ``relu_``, ``x += y``, ...) all go through ``Tensor._inplace``, which holds
PyTorch's rules for changing a tensor in place.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence, overload

import numpy as np

if TYPE_CHECKING:  # for the annotations only: tensor.py imports this module
    from .tensor import Tensor
    from .typing import Array, DTypeLike, Number, TensorOrNumber


def _functional():
    """tinypix.functional, where every op lives (imported on first use: it imports tensor.py,
    which imports this module)."""
    from . import functional
    return functional


class TensorMethods:
    """The operators and methods of ``tinypix.Tensor``."""

    # -- operators and methods ---------------------------------------------------------------
    def __add__(self, other: TensorOrNumber) -> Tensor:
        return _functional().add(self, other)

    def __radd__(self, other: TensorOrNumber) -> Tensor:
        return _functional().add(other, self)

    def __sub__(self, other: TensorOrNumber) -> Tensor:
        return _functional().sub(self, other)

    def __rsub__(self, other: TensorOrNumber) -> Tensor:
        return _functional().sub(other, self)

    def __mul__(self, other: TensorOrNumber) -> Tensor:
        return _functional().mul(self, other)

    def __rmul__(self, other: TensorOrNumber) -> Tensor:
        return _functional().mul(other, self)

    def __truediv__(self, other: TensorOrNumber) -> Tensor:
        return _functional().div(self, other)

    def __rtruediv__(self, other: TensorOrNumber) -> Tensor:
        return _functional().div(other, self)

    def __pow__(self, other: TensorOrNumber) -> Tensor:
        return _functional().pow(self, other)

    def __rpow__(self, other: TensorOrNumber) -> Tensor:
        return _functional().pow(other, self)

    def __matmul__(self, other: Tensor) -> Tensor:
        return _functional().matmul(self, other)

    def __rmatmul__(self, other: Tensor) -> Tensor:
        return _functional().matmul(other, self)

    def __mod__(self, other: TensorOrNumber) -> Tensor:
        return _functional().remainder(self, other)

    def __rmod__(self, other: TensorOrNumber) -> Tensor:
        return _functional().remainder(other, self)

    def __floordiv__(self, other: TensorOrNumber) -> Tensor:
        return _functional().floor_divide(self, other)

    def __rfloordiv__(self, other: TensorOrNumber) -> Tensor:
        return _functional().floor_divide(other, self)

    def __and__(self, other: TensorOrNumber) -> Tensor:
        return _functional().bitwise_and(self, other)

    def __rand__(self, other: TensorOrNumber) -> Tensor:
        return _functional().bitwise_and(other, self)

    def __or__(self, other: TensorOrNumber) -> Tensor:
        return _functional().bitwise_or(self, other)

    def __ror__(self, other: TensorOrNumber) -> Tensor:
        return _functional().bitwise_or(other, self)

    def __xor__(self, other: TensorOrNumber) -> Tensor:
        return _functional().bitwise_xor(self, other)

    def __rxor__(self, other: TensorOrNumber) -> Tensor:
        return _functional().bitwise_xor(other, self)

    def __invert__(self) -> Tensor:
        return _functional().bitwise_not(self)

    def __pos__(self) -> Tensor:
        return self

    def __neg__(self) -> Tensor:
        return _functional().neg(self)

    def __abs__(self) -> Tensor:
        return _functional().abs(self)

    def __getitem__(self, key: Any) -> Tensor:
        return _functional().getitem(self, key)

    def __eq__(self, other: TensorOrNumber) -> Tensor:  # type: ignore[override]
        return _functional().eq(self, other)

    def __ne__(self, other: TensorOrNumber) -> Tensor:  # type: ignore[override]
        return _functional().ne(self, other)

    def __lt__(self, other: TensorOrNumber) -> Tensor:
        return _functional().lt(self, other)

    def __le__(self, other: TensorOrNumber) -> Tensor:
        return _functional().le(self, other)

    def __gt__(self, other: TensorOrNumber) -> Tensor:
        return _functional().gt(self, other)

    def __ge__(self, other: TensorOrNumber) -> Tensor:
        return _functional().ge(self, other)

    __hash__ = object.__hash__  # defining __eq__ would otherwise make tensors unhashable

    def eq(self, other: TensorOrNumber) -> Tensor:
        return _functional().eq(self, other)

    def ne(self, other: TensorOrNumber) -> Tensor:
        return _functional().ne(self, other)

    def lt(self, other: TensorOrNumber) -> Tensor:
        return _functional().lt(self, other)

    def le(self, other: TensorOrNumber) -> Tensor:
        return _functional().le(self, other)

    def gt(self, other: TensorOrNumber) -> Tensor:
        return _functional().gt(self, other)

    def ge(self, other: TensorOrNumber) -> Tensor:
        return _functional().ge(self, other)

    def logical_not(self) -> Tensor:
        return _functional().logical_not(self)

    def isnan(self) -> Tensor:
        return _functional().isnan(self)

    def isinf(self) -> Tensor:
        return _functional().isinf(self)

    def isfinite(self) -> Tensor:
        return _functional().isfinite(self)

    def isclose(self, other: TensorOrNumber, rtol: float = 1e-05, atol: float = 1e-08,
                equal_nan: bool = False) -> Tensor:
        return _functional().isclose(self, other, rtol, atol, equal_nan)

    def allclose(self, other: TensorOrNumber, rtol: float = 1e-05, atol: float = 1e-08,
                 equal_nan: bool = False) -> bool:
        return _functional().allclose(self, other, rtol, atol, equal_nan)

    def equal(self, other: Tensor) -> bool:
        return _functional().equal(self, other)

    def add(self, other: TensorOrNumber, alpha: Number = 1) -> Tensor:
        return _functional().add(self, other, alpha)

    def sub(self, other: TensorOrNumber, alpha: Number = 1) -> Tensor:
        return _functional().sub(self, other, alpha)

    def mul(self, other: TensorOrNumber) -> Tensor:
        return _functional().mul(self, other)

    def div(self, other: TensorOrNumber, rounding_mode: str | None = None) -> Tensor:
        return _functional().div(self, other, rounding_mode)

    def floor_divide(self, other: TensorOrNumber) -> Tensor:
        return _functional().floor_divide(self, other)

    def remainder(self, other: TensorOrNumber) -> Tensor:
        return _functional().remainder(self, other)

    def fmod(self, other: TensorOrNumber) -> Tensor:
        return _functional().fmod(self, other)

    def maximum(self, other: TensorOrNumber) -> Tensor:
        return _functional().maximum(self, other)

    def minimum(self, other: TensorOrNumber) -> Tensor:
        return _functional().minimum(self, other)

    def pow(self, exponent: TensorOrNumber) -> Tensor:
        return _functional().pow(self, exponent)

    def neg(self) -> Tensor:
        return _functional().neg(self)

    def exp(self) -> Tensor:
        return _functional().exp(self)

    def log(self) -> Tensor:
        return _functional().log(self)

    def sqrt(self) -> Tensor:
        return _functional().sqrt(self)

    def abs(self) -> Tensor:
        return _functional().abs(self)

    def tanh(self) -> Tensor:
        return _functional().tanh(self)

    def sigmoid(self) -> Tensor:
        return _functional().sigmoid(self)

    def relu(self) -> Tensor:
        return _functional().relu(self)

    def clamp(self, min: Number | None = None, max: Number | None = None) -> Tensor:
        return _functional().clamp(self, min, max)

    def clip(self, min: Number | None = None, max: Number | None = None) -> Tensor:
        return _functional().clamp(self, min, max)

    def clamp_min(self, min: Number) -> Tensor:
        return _functional().clamp(self, min, None)

    def clamp_max(self, max: Number) -> Tensor:
        return _functional().clamp(self, None, max)

    def clone(self) -> Tensor:
        return _functional().clone(self)

    def matmul(self, other: Tensor) -> Tensor:
        return _functional().matmul(self, other)

    def sum(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return _functional().sum(self, dim, keepdim)

    def mean(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return _functional().mean(self, dim, keepdim)

    def var(self, dim: int | Sequence[int] | None = None, unbiased: bool = True,
            keepdim: bool = False, correction: int | None = None) -> Tensor:
        return _functional().var(self, dim, unbiased, keepdim, correction)

    def std(self, dim: int | Sequence[int] | None = None, unbiased: bool = True,
            keepdim: bool = False, correction: int | None = None) -> Tensor:
        return _functional().std(self, dim, unbiased, keepdim, correction)

    def norm(self, p: float | str = "fro", dim: int | Sequence[int] | None = None, keepdim: bool = False,
             dtype: DTypeLike | None = None) -> Tensor:
        return _functional().norm(self, p, dim, keepdim, dtype)

    # For type checkers, as in PyTorch's stubs: an int dim gives (values, indices).
    @overload
    def max(self, dim: Tensor | Sequence[int] | None = ..., keepdim: bool = ...) -> Tensor: ...
    @overload
    def max(self, dim: int, keepdim: bool = ...) -> tuple[Tensor, Tensor]: ...
    def max(self, dim: int | Sequence[int] | Tensor | None = None,
            keepdim: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        return _functional().max(self, dim, keepdim)

    @overload
    def min(self, dim: Tensor | Sequence[int] | None = ..., keepdim: bool = ...) -> Tensor: ...
    @overload
    def min(self, dim: int, keepdim: bool = ...) -> tuple[Tensor, Tensor]: ...
    def min(self, dim: int | Sequence[int] | Tensor | None = None,
            keepdim: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        return _functional().min(self, dim, keepdim)

    def amax(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return _functional().amax(self, dim, keepdim)

    def amin(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return _functional().amin(self, dim, keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return _functional().argmax(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return _functional().argmin(self, dim, keepdim)

    def any(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return _functional().any(self, dim, keepdim)

    def all(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return _functional().all(self, dim, keepdim)

    def softmax(self, dim: int | None = None, dtype: DTypeLike | None = None) -> Tensor:
        return _functional().softmax(self, dim, 4, dtype)  # 4: the warning points at the caller

    def log_softmax(self, dim: int | None = None, dtype: DTypeLike | None = None) -> Tensor:
        return _functional().log_softmax(self, dim, 4, dtype)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> tuple[Tensor, Tensor]:
        return _functional().topk(self, k, dim, largest, sorted)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> tuple[Tensor, Tensor]:
        return _functional().sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        return _functional().argsort(self, dim, descending, stable)

    def gather(self, dim: int, index: Tensor) -> Tensor:
        return _functional().gather(self, dim, index)

    def scatter(self, dim: int, index: Tensor, src: TensorOrNumber | None = None,
                value: Number | None = None, reduce: str | None = None) -> Tensor:
        return _functional().scatter(self, dim, index, src, value, reduce)

    def scatter_add(self, dim: int, index: Tensor, src: Tensor) -> Tensor:
        return _functional().scatter_add(self, dim, index, src)

    def index_select(self, dim: int, index: Tensor) -> Tensor:
        return _functional().index_select(self, dim, index)

    def masked_fill(self, mask: Tensor | Array, value: TensorOrNumber) -> Tensor:
        return _functional().masked_fill(self, mask, value)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return _functional().reshape(self, *shape)

    def view(self, *shape: int | Sequence[int]) -> Tensor:
        return _functional().view(self, *shape)

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        return _functional().permute(self, *dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return _functional().transpose(self, dim0, dim1)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _functional().flatten(self, start_dim, end_dim)

    def squeeze(self, dim: int | Sequence[int] | None = None) -> Tensor:
        return _functional().squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return _functional().unsqueeze(self, dim)

    def expand(self, *shape: int | Sequence[int]) -> Tensor:
        return _functional().expand(self, *shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return _functional().expand(self, *other.shape)

    def view_as(self, other: Tensor) -> Tensor:
        return _functional().reshape(self, *other.shape)

    def repeat(self, *sizes: int | Sequence[int]) -> Tensor:
        return _functional().repeat(self, *sizes)

    def repeat_interleave(self, repeats: int | Sequence[int] | Tensor, dim: int | None = None,
                          output_size: int | None = None) -> Tensor:
        return _functional().repeat_interleave(self, repeats, dim, output_size)

    def t(self) -> Tensor:
        return _functional().t(self)

    @property
    def T(self) -> Tensor:
        return _functional().shape.T(self)

    @property
    def mT(self) -> Tensor:
        return _functional().shape.mT(self)

    # -- in place: Tensor._inplace holds the rules ---------------------------------------------
    def add_(self, other: TensorOrNumber, alpha: Number = 1) -> Tensor:
        return self._inplace("add_", _functional().add, other, alpha)

    def sub_(self, other: TensorOrNumber, alpha: Number = 1) -> Tensor:
        return self._inplace("sub_", _functional().sub, other, alpha)

    def mul_(self, other: TensorOrNumber) -> Tensor:
        return self._inplace("mul_", _functional().mul, other)

    def div_(self, other: TensorOrNumber, rounding_mode: str | None = None) -> Tensor:
        return self._inplace("div_", _functional().div, other, rounding_mode)

    def pow_(self, exponent: TensorOrNumber) -> Tensor:
        return self._inplace("pow_", _functional().pow, exponent)

    def remainder_(self, other: TensorOrNumber) -> Tensor:
        return self._inplace("remainder_", _functional().remainder, other)

    def floor_divide_(self, other: TensorOrNumber) -> Tensor:
        return self._inplace("floor_divide_", _functional().floor_divide, other)

    def neg_(self) -> Tensor:
        return self._inplace("neg_", _functional().neg)

    def exp_(self) -> Tensor:
        return self._inplace("exp_", _functional().exp)

    def log_(self) -> Tensor:
        return self._inplace("log_", _functional().log)

    def abs_(self) -> Tensor:
        return self._inplace("abs_", _functional().abs)

    def sqrt_(self) -> Tensor:
        return self._inplace("sqrt_", _functional().sqrt)

    def relu_(self) -> Tensor:
        return self._inplace("relu_", _functional().relu)

    def sigmoid_(self) -> Tensor:
        return self._inplace("sigmoid_", _functional().sigmoid)

    def tanh_(self) -> Tensor:
        return self._inplace("tanh_", _functional().tanh)

    def clamp_(self, min: Number | None = None, max: Number | None = None) -> Tensor:
        return self._inplace("clamp_", _functional().clamp, min, max)

    def clamp_min_(self, min: Number) -> Tensor:
        return self._inplace("clamp_min_", _functional().clamp, min, None)

    def clamp_max_(self, max: Number) -> Tensor:
        return self._inplace("clamp_max_", _functional().clamp, None, max)

    def masked_fill_(self, mask: Tensor | Array, value: TensorOrNumber) -> Tensor:
        return self._inplace("masked_fill_", _functional().masked_fill, mask, value)

    def fill_(self, value: TensorOrNumber) -> Tensor:
        return self._inplace("fill_", _functional().indexing.fill, value)

    def zero_(self) -> Tensor:
        return self._inplace("zero_", _functional().indexing.fill, 0)

    def copy_(self, src: TensorOrNumber | Array, non_blocking: bool = False) -> Tensor:
        return self._inplace("copy_", _copy_source, src)

    def scatter_(self, dim: int, index: Tensor, src: TensorOrNumber | None = None,
                 value: Number | None = None, reduce: str | None = None) -> Tensor:
        return self._inplace("scatter_", _functional().scatter, dim, index, src, value, reduce)

    def scatter_add_(self, dim: int, index: Tensor, src: Tensor) -> Tensor:
        return self._inplace("scatter_add_", _functional().scatter_add, dim, index, src)

    def __iadd__(self, other: TensorOrNumber) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: TensorOrNumber) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: TensorOrNumber) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: TensorOrNumber) -> Tensor:
        return self.div_(other)

    def __ipow__(self, other: TensorOrNumber) -> Tensor:
        return self.pow_(other)

    def __imod__(self, other: TensorOrNumber) -> Tensor:
        return self.remainder_(other)

    def __ifloordiv__(self, other: TensorOrNumber) -> Tensor:
        return self.floor_divide_(other)


def _copy_source(t, src):
    """What ``t.copy_(src)`` puts into t: src (a Tensor, array or number) on t's device, in t's
    dtype and broadcast to t's shape, as a new array (t must not end up sharing src's memory)."""
    from .creation import as_array
    F = _functional()
    if not isinstance(src, type(t)):
        src = type(t)._wrap(as_array(src, dtype=t.dtype, device=t.device))
    src = src.to(t.device, t.dtype)
    try:
        fits = np.broadcast_shapes(src.shape, t.shape) == t.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"copy_: cannot copy a tensor of shape {src.shape} into one of shape "
                           f"{t.shape} (src must broadcast to it)")
    return F.clone(F.expand(src, *t.shape) if src.shape != t.shape else src)

