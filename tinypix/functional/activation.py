"""Activations beyond relu / leaky_relu / sigmoid / tanh: gelu, elu, silu, hardtanh, relu6, and
erf, the one new primitive they need (the exact GELU is x * Phi(x), Phi the normal CDF).

Everything but erf is composed from existing primitives, so its gradient comes for free.
``inplace=True`` (where PyTorch has it) makes the input hold the result and returns it, with
PyTorch's rules (see ``Tensor._inplace``): values and gradients are those of the out-of-place op.
"""
from __future__ import annotations

import math

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .elementwise import clamp, exp, sigmoid, tanh, where

# W. J. Cody's rational Chebyshev approximations (CALERF, netlib SPECFUN, 1969/1985): relative
# error below 1e-16 on each of three intervals of |x|.
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRT_1_PI = 5.6418958354775628695e-1  # 1 / sqrt(pi)


def _rational(t, num, den, n):
    """CALERF's nested Horner loops in t: (numerator, denominator), each still without its
    constant term, which the caller adds."""
    p, q = num[-1] * t, t
    for i in range(n):
        p = (p + num[i]) * t
        q = (q + den[i]) * t
    return p, q


def _erf(x):
    """erf of a floating array, to float64 round-off (vectorized CALERF).

    |x| <= 0.46875: erf = x R1(x^2). Beyond, erfc(y) = e^(-y^2) R(y) with R a rational function
    of y (y <= 4) or of 1/y^2 (y > 4), and erf = sign(x) (1 - erfc(|x|)). Each rational function
    runs only on the elements of its interval, picked by index (faster than boolean masks).
    """
    xp = get_array_module(x)
    x = x.reshape(-1)
    y = xp.abs(x)
    out = xp.empty_like(x)
    inner = y <= 0.46875
    near, far = xp.flatnonzero(inner), xp.flatnonzero(~inner)  # NaN is far, and stays NaN
    xs = x[near]
    p, q = _rational(xs * xs, _A, _B, 3)
    out[near] = xs * (p + _A[3]) / (q + _B[3])

    # Past 27, erfc(y) < 1e-318 is 0 next to 1 (and y * y would overflow for huge y).
    y = xp.minimum(y[far], 27.0)
    erfc = xp.empty_like(y)
    in_mid = y <= 4.0
    mid, tail = xp.flatnonzero(in_mid), xp.flatnonzero(~in_mid)
    p, q = _rational(y[mid], _C, _D, 7)
    erfc[mid] = (p + _C[7]) / (q + _D[7])
    inv = 1 / y[tail]
    inv2 = inv * inv
    p, q = _rational(inv2, _P, _Q, 4)
    erfc[tail] = (_SQRT_1_PI - inv2 * (p + _P[4]) / (q + _Q[4])) * inv
    # One exp suffices for erf: its relative error (~y^2 ulp) is scaled down by erfc(y) itself.
    erfc *= xp.exp(-y * y)
    out[far] = xp.copysign(1 - erfc, x[far])
    return out


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt.  Backward: dx = dy * 2/sqrt(pi) e^(-x^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf(x).reshape(x.shape)

    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return dy * ((2 / math.sqrt(math.pi)) * get_array_module(x).exp(-x * x))


def _floating(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {x.dtype}; use x.float()")
    return x


def erf(input: Tensor) -> Tensor:
    """The error function, elementwise (any shape)."""
    return Erf.apply(_floating("erf", input))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: x * Phi(x) with Phi the standard normal CDF (any shape).

    ``approximate='none'``: Phi(x) = (1 + erf(x / sqrt(2))) / 2, exactly.
    ``approximate='tanh'``: Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2.
    """
    x = _floating("gelu", input)
    if approximate == "none":
        return x * 0.5 * (erf(x * math.sqrt(0.5)) + 1.0)
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
        return x * 0.5 * (tanh(inner) + 1.0)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, alpha * (e^x - 1) elsewhere (any shape)."""
    x = _floating("elu", input)
    if inplace:
        return x._inplace("elu_", elu, alpha)
    # e^min(x, 0): the positive side is not used, and must not overflow.
    return where(x.data > 0, x, (exp(clamp(x, max=0.0)) - 1.0) * float(alpha))


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish); any shape."""
    x = _floating("silu", input)
    if inplace:
        return x._inplace("silu_", silu)
    return x * sigmoid(x)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]; the gradient is 1 strictly inside, 0 at and beyond the
    limits (as PyTorch's)."""
    x = _floating("hardtanh", input)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val={min_val} must not exceed max_val={max_val}")
    if inplace:
        return x._inplace("hardtanh_", hardtanh, min_val, max_val)
    inside = (x.data > min_val) & (x.data < max_val)
    return where(inside, x, get_array_module(x.data).clip(x.data, min_val, max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): hardtanh to [0, 6]."""
    return hardtanh(input, 0.0, 6.0, inplace)
