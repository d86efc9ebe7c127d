"""tinypix.functional -- every op as a function (re-exported as ``tinypix.nn.functional``).

Each module holds primitives (``Function`` subclasses, forward and backward together) and the
public functions that validate arguments and call them.
"""
from .elementwise import (abs, add, cast, clamp, clone, exp, leaky_relu, log, mul, neg, pow,
                          promote_types, relu, relu_, result_type, sigmoid, sqrt, sub, tanh,
                          true_divide, where)
from .division import div, floor_divide, fmod, remainder
from .compare import (allclose, bitwise_and, bitwise_not, bitwise_or, bitwise_xor, eq, equal, ge,
                      gt, isclose, isfinite, isinf, isnan, le, logical_not, lt, maximum, minimum,
                      ne)
from .linalg import cosine_similarity, einsum, linear, matmul
from .reduce import (all, amax, amin, any, argmax, argmin, log_softmax, max, mean, min, softmax,
                     std, sum, var)
from .shape import (cat, expand, flatten, getitem, meshgrid, pad, permute, repeat,
                    repeat_interleave, reshape, squeeze, stack, t, transpose, unsqueeze, view)
from .indexing import (argsort, gather, index_select, masked_fill, one_hot, scatter, scatter_add,
                       sort, topk)
from .conv import conv2d, conv_matrix, conv_transpose2d
from .pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d, max_unpool2d
from .upsample import interpolate
from .dropout import dropout, dropout2d
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cosine_normal_loss,
                   cross_entropy, huber_loss, l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from .activation import elu, erf, gelu, hardtanh, relu6, silu
from .norm import batch_norm, group_norm, layer_norm, normalize
# After `from .norm import ...`, which sets the package attribute `norm` to the module norm.py:
# the public name is the function, as torch.norm and torch.nn.functional... (Tensor.norm) expect.
from .reduce import norm  # noqa: E402,F811
