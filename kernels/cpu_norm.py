"""Batch norm in training on the CPU: each pass of the readable version, fused into two loops.

The readable version (``tinypix/functional/norm.py``) is a few NumPy expressions, and each one
reads or writes the whole activation once more: the mean, x - mean, its square, the variance,
the scaling, the weight, the bias -- about ten passes over an array of tens of MB in a U-Net.
Here each channel is one loop body that reads x three times (mean, variance, output) and writes
xhat and y; backward reads dy and xhat twice and writes dx. Sums are accumulated in float64.
The team's threads (cpu_team.py) take a share of the channels each.

Registered for float32 and float64; x is viewed as (N, C, S), S the product of the spatial sizes.
"""
import numpy as np
from numba import njit

from . import cpu_team
from .registry import is_float, register

# Summation may be reordered (so that the loops vectorize); NaN and inf still propagate.
_FAST = {"reassoc", "contract"}
HOW = "two fused loops per channel, sums in float64"


@register("batch_norm", "cpu", HOW, applies=is_float)
def forward(x, weight, bias, eps):
    """Training batch norm: x (N, C, *) -> (y, xhat, mean, var), statistics over all but dim 1.

    mean and var (biased, summed in float64) are (C,) in x's dtype; weight and bias (C,) may
    be None."""
    C = x.shape[1]
    x3 = np.ascontiguousarray(x).reshape(x.shape[0], C, -1)
    y, xhat = np.empty_like(x3), np.empty_like(x3)
    mean, var = np.empty(C), np.empty(C)
    weight = np.ones(C, x.dtype) if weight is None else weight
    bias = np.zeros(C, x.dtype) if bias is None else bias
    cpu_team.run(lambda first, last: _forward(x3, weight, bias, float(eps), y, xhat, mean, var, first, last),
                 C, 2 * x3.size)  # shares of channels
    return y.reshape(x.shape), xhat.reshape(x.shape), mean.astype(x.dtype), var.astype(x.dtype)


@njit(nogil=True, cache=True, fastmath=_FAST)
def _forward(x, weight, bias, eps, y, xhat, mean, var, first, last):
    """Channels first to last - 1."""
    N, C, S = x.shape
    m = N * S
    for c in range(first, last):
        total = 0.0
        for n in range(N):
            for s in range(S):
                total += x[n, c, s]
        mu = total / m
        squares = 0.0
        for n in range(N):
            for s in range(S):
                d = x[n, c, s] - mu
                squares += d * d
        inv_std = 1.0 / np.sqrt(squares / m + eps)
        for n in range(N):
            for s in range(S):
                h = (x[n, c, s] - mu) * inv_std
                xhat[n, c, s] = h
                y[n, c, s] = h * weight[c] + bias[c]
        mean[c], var[c] = mu, squares / m


@register("batch_norm_backward", "cpu", HOW, applies=is_float)
def backward(dy, xhat, scale):
    """Training batch norm's gradients: dy, xhat (N, C, *), scale = weight * inv_std (C,) ->
    (dx, dweight, dbias) with dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat))."""
    C = dy.shape[1]
    dy3 = np.ascontiguousarray(dy).reshape(dy.shape[0], C, -1)
    dx = np.empty_like(dy3)
    dweight, dbias = np.empty(C, dy.dtype), np.empty(C, dy.dtype)
    xhat3, scale = np.ascontiguousarray(xhat).reshape(dy3.shape), scale.astype(dy.dtype)
    cpu_team.run(lambda first, last: _backward(dy3, xhat3, scale, dx, dweight, dbias, first, last),
                 C, 3 * dy3.size)  # shares of channels
    return dx.reshape(dy.shape), dweight, dbias


@njit(nogil=True, cache=True, fastmath=_FAST)
def _backward(dy, xhat, scale, dx, dweight, dbias, first, last):
    """Channels first to last - 1."""
    N, C, S = dy.shape
    m = N * S
    for c in range(first, last):
        sum_dy = 0.0
        sum_dy_xhat = 0.0
        for n in range(N):
            for s in range(S):
                g = dy[n, c, s]
                sum_dy += g
                sum_dy_xhat += g * xhat[n, c, s]
        a, b = sum_dy / m, sum_dy_xhat / m
        for n in range(N):
            for s in range(S):
                dx[n, c, s] = (dy[n, c, s] - a - xhat[n, c, s] * b) * scale[c]
        dweight[c], dbias[c] = sum_dy_xhat, sum_dy
