"""(Leaky) ReLU on the CPU: one pass over the data, shared out over cpu_team's threads.

The readable version (``tinypix/functional/elementwise.py``) takes NumPy's route: ``maximum`` or
``where`` forward, and backward a comparison, which writes a mask, and then ``where``: passes
over the whole array on one core. Here each direction is one pass, on every core.

Registered for float32 and float64, any slope; the same arithmetic as the readable version.
"""
import numpy as np
from numba import njit

from . import cpu_team
from .registry import is_float, register

HOW = "one pass on every core"


def _contiguous(a):
    """a, or a C-contiguous copy; unlike np.ascontiguousarray, keeps a 0-d array 0-d."""
    return a if a.flags.c_contiguous else a.copy(order="C")


@register("leaky_relu", "cpu", HOW, applies=is_float)
def leaky_relu(x, slope):
    """y = x where x > 0 or NaN, else slope * x (0 where slope is 0, even for x = -inf)."""
    x = _contiguous(x)
    y = np.empty_like(x)
    # leaky or not is decided on the Python float, as the readable path does: a slope such as
    # 1e-50 is leaky there even though it rounds to 0 in float32, so -inf gives NaN, not 0
    flat_x, flat_y, leaky, slope = x.reshape(-1), y.reshape(-1), slope != 0, x.dtype.type(slope)
    cpu_team.run(lambda start, stop: _forward(flat_x[start:stop], flat_y[start:stop], slope, leaky),
                 x.size, 2 * x.size)
    return y


@njit(nogil=True, cache=True)
def _forward(x, y, slope, leaky):
    for i in range(x.size):
        v = x[i]
        y[i] = v if not v <= 0 else (v * slope if leaky else 0)  # NaN stays NaN


@register("leaky_relu_backward", "cpu", HOW, applies=is_float)
def leaky_relu_backward(dy, s, slope):
    """dx from dy and s, forward's output (or, for a negative slope, its input): where s > 0
    dy, else slope * dy. For ReLU (slope 0), as PyTorch's threshold_backward: 0 where s <= 0,
    else dy (so a NaN passes dy, and an infinite dy where s <= 0 gives 0, not NaN)."""
    dy, s = _contiguous(dy), _contiguous(s)
    dx = np.empty_like(dy)
    flat_dy, flat_s, flat_dx = dy.reshape(-1), s.reshape(-1), dx.reshape(-1)
    leaky, slope = slope != 0, dy.dtype.type(slope)  # (leaky decided as in forward)
    cpu_team.run(lambda start, stop: _backward(flat_dy[start:stop], flat_s[start:stop],
                                               flat_dx[start:stop], slope, leaky), dy.size, 3 * dy.size)
    return dx


@njit(nogil=True, cache=True)
def _backward(dy, s, dx, slope, leaky):
    for i in range(dy.size):
        if leaky:
            dx[i] = dy[i] if s[i] > 0 else dy[i] * slope
        else:  # slope is a 0 of dy's type here
            dx[i] = slope if s[i] <= 0 else dy[i]
