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
from .conv import conv2d, conv_matrix, conv_transpose2d
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d, max_unpool2d
from .upsample import interpolate
from .dropout import dropout, dropout2d
from .loss import (binary_cross_entropy_with_logits, cosine_normal_loss, cross_entropy, l1_loss,
                   mse_loss, nll_loss, smooth_l1_loss)
from .norm import batch_norm, normalize
