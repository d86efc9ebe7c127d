"""tinypix.functional -- every op as a function (re-exported as ``tinypix.nn.functional``).

Each module holds primitives (``Function`` subclasses, forward and backward together) and the
public functions that validate arguments and call them.
"""
from .elementwise import (abs, add, cast, clamp, div, eq, exp, ge, gt, le, leaky_relu, log, lt,
                          mul, ne, neg, pow, relu, sigmoid, sqrt, sub, tanh, where)
from .linalg import linear, matmul
from .reduce import (all, amax, amin, any, argmax, argmin, log_softmax, max, mean, min, softmax,
                     sum, var)
from .shape import (cat, expand, flatten, getitem, pad, permute, reshape, squeeze, stack,
                    transpose, unsqueeze, view)
