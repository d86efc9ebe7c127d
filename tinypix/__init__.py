"""tinypix: a from-scratch tensor and autograd engine on NumPy (CuPy optional), and the
pixel-labeling toolkit built on it.

    import tinypix
    x = tinypix.randn(4, 3, requires_grad=True)
    loss = (x ** 2).sum()
    loss.backward()          # x.grad == 2 * x
"""
from . import autograd
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backend import is_cuda_available
from .creation import (arange, bool_, empty, float16, float32, float64, from_numpy, full,
                       generator, int8, int16, int32, int64, manual_seed, ones, ones_like, rand,
                       randint, randn, tensor, uint8, zeros, zeros_like)
from .functional import (abs, argmax, cat, clamp, exp, log, matmul, max, mean, min, relu,
                         sigmoid, sqrt, stack, sum, tanh, where)
from .tensor import Tensor, _install_operators
from ._blas import let_workers_sleep, use_haswell_kernels_on_amd
from ._memory import keep_freed_memory

_install_operators()
let_workers_sleep()  # NumPy's idle BLAS threads would otherwise spin on the cores we need
use_haswell_kernels_on_amd()  # faster than OpenBLAS's Skylake-X ones there, for conv's shapes
keep_freed_memory()  # and every large temporary would page-fault its memory in anew

__version__ = "0.1.0"

# Importing the submodule tinypix.tensor set the package attribute `tensor` to that module;
# the public name is the function, as in PyTorch.
from .creation import tensor  # noqa: E402,F811
from . import nn, optim
from .serialization import load, save
from .summary import conv_output_size, receptive_field, summary  # noqa: E402
