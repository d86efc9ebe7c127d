"""Batch norm in training on the CPU: each pass of the readable version, fused into two loops.

The readable version (``tinypix/functional/norm.py``) is a few NumPy expressions, and each one
reads or writes the whole activation once more: the mean, x - mean, its square, the variance,
the scaling, the weight, the bias -- about ten passes over an array of tens of MB in a U-Net.
Here each channel is one loop body that reads x three times (mean, variance, output) and writes
xhat and y; backward reads dy and xhat twice and writes dx. Sums are accumulated in float64.
A ReLU after the norm (``relu=True``) costs no pass of its own: forward clips y in its last loop,
and backward zeroes dy where y <= 0 as its two loops read it.

Arrays in, arrays out, with x viewed as (N, C, S), S the product of the spatial sizes. Tests hold
these equal to the readable path.
"""
import numpy as np
from numba import njit, prange

from . import cpu  # noqa: F401 -- sets the number of threads the parallel loops use
from . import cpu_team

# Summation may be reordered (so that the loops vectorize); NaN and inf still propagate.
_FAST = {"reassoc", "contract"}


def forward(x, weight, bias, eps, relu=False):
    """Training batch norm: x (N, C, *) -> (y, xhat, mean, var), statistics over all but dim 1.

    mean and var (biased, summed in float64) are (C,) in x's dtype; weight and bias (C,) may
    be None. relu: y = max(y, 0) (a NaN stays NaN), as F.relu would make it."""
    C = x.shape[1]
    x3 = np.ascontiguousarray(x).reshape(x.shape[0], C, -1)
    y, xhat = np.empty_like(x3), np.empty_like(x3)
    mean, var = np.empty(C), np.empty(C)
    weight = np.ones(C, x.dtype) if weight is None else weight
    bias = np.zeros(C, x.dtype) if bias is None else bias
    cpu_team.run(lambda first, last: _forward(x3, weight, bias, float(eps), relu, y, xhat, mean, var,
                                              first, last), C, 2 * x3.size)  # shares of channels
    return y.reshape(x.shape), xhat.reshape(x.shape), mean.astype(x.dtype), var.astype(x.dtype)


@njit(parallel=True, nogil=True, cache=True, fastmath=_FAST)
def _forward(x, weight, bias, eps, relu, y, xhat, mean, var, first, last):
    """Channels first to last - 1."""
    N, C, S = x.shape
    m = N * S
    for c in prange(first, last):
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
                v = h * weight[c] + bias[c]
                y[n, c, s] = 0.0 if relu and v <= 0 else v  # (a NaN stays NaN)
        mean[c], var[c] = mu, squares / m


def backward(dy, xhat, scale, y=None):
    """Training batch norm's gradients: dy, xhat (N, C, *), scale = weight * inv_std (C,) ->
    (dx, dweight, dbias) with dx = scale * (dy - mean(dy) - xhat * mean(dy * xhat)).

    y: forward's output, where a ReLU followed the norm (relu=True); dy is then the ReLU's
    output gradient, and the norm's is 0 where y <= 0, else dy."""
    C = dy.shape[1]
    dy3 = np.ascontiguousarray(dy).reshape(dy.shape[0], C, -1)
    dx = np.empty_like(dy3)
    dweight, dbias = np.empty(C, dy.dtype), np.empty(C, dy.dtype)
    xhat3, scale = np.ascontiguousarray(xhat).reshape(dy3.shape), scale.astype(dy.dtype)
    y3 = None if y is None else np.ascontiguousarray(y).reshape(dy3.shape)
    cpu_team.run(lambda first, last: _backward(dy3, xhat3, y3, scale, dx, dweight, dbias, first, last),
                 C, 3 * dy3.size)
    return dx.reshape(dy.shape), dweight, dbias


@njit(inline="always")
def _through_relu(dy, y, n, c, s):
    """The norm's output gradient: dy itself, or after a ReLU (y given) 0 where y <= 0, else
    dy (PyTorch's threshold_backward: a NaN y passes dy, an infinite dy where y <= 0 gives 0)."""
    if y is None:
        return dy[n, c, s]
    return 0.0 if y[n, c, s] <= 0 else dy[n, c, s]


@njit(parallel=True, nogil=True, cache=True, fastmath=_FAST)
def _backward(dy, xhat, y, scale, dx, dweight, dbias, first, last):
    """Channels first to last - 1; y None (no ReLU) or forward's output (after a ReLU)."""
    N, C, S = dy.shape
    m = N * S
    for c in prange(first, last):
        sum_dy = 0.0
        sum_dy_xhat = 0.0
        for n in range(N):
            for s in range(S):
                g = _through_relu(dy, y, n, c, s)
                sum_dy += g
                sum_dy_xhat += g * xhat[n, c, s]
        a, b = sum_dy / m, sum_dy_xhat / m
        for n in range(N):
            for s in range(S):
                dx[n, c, s] = (_through_relu(dy, y, n, c, s) - a - xhat[n, c, s] * b) * scale[c]
        dweight[c], dbias[c] = sum_dy_xhat, sum_dy
