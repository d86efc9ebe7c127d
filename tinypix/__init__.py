"""tinypix: a from-scratch tensor and autograd engine on NumPy (CuPy optional), and the
pixel-labeling toolkit built on it.

    import tinypix
    x = tinypix.randn(4, 3, requires_grad=True)
    loss = (x ** 2).sum()
    loss.backward()          # x.grad == 2 * x
"""
import importlib.util
import os
import sys


def _find_kernels():
    """Make ``tinypix.kernels`` importable from a source checkout too.

    Installed, kernels/ sits inside this package (setup.cfg maps it there). In a checkout it sits
    beside this folder, and a Python started in the checkout imports this folder rather than the
    installed package; so, only when the package has no kernels of its own, load the ones beside
    it under their installed name."""
    if importlib.util.find_spec(f"{__name__}.kernels") is not None:
        return
    beside = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")
    if not os.path.isfile(os.path.join(beside, "__init__.py")):
        raise ImportError(f"tinypix: its kernels are missing (looked inside the package and in "
                          f"{beside}); reinstall it, e.g. `pip install --force-reinstall tinypix`")
    spec = importlib.util.spec_from_file_location(f"{__name__}.kernels", os.path.join(beside, "__init__.py"),
                                                  submodule_search_locations=[beside])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]  # no half-loaded module left behind
        raise
    globals()["kernels"] = module  # the attribute a submodule's import sets


_find_kernels()

from . import autograd  # noqa: E402
from .autograd import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: E402
from .backend import device, is_cuda_available  # noqa: E402
from .creation import (arange, bool_, double, empty, empty_like, eye, float16, float32,  # noqa: E402
                       float64, from_numpy, full, full_like, generator, half, int8, int16, int32,
                       int64, linspace, long, manual_seed, ones, ones_like, rand, rand_like, randint,
                       randn, randn_like, short, tensor, uint8, zeros, zeros_like)
from .creation import bool_ as bool, float32 as float, int32 as int  # noqa: E402  (torch.bool, ...)
from .functional import (abs, add, allclose, amax, amin, argmax, argmin, argsort,  # noqa: E402
                         bitwise_and, bitwise_not, bitwise_or, bitwise_xor, cat, clamp, clone, div,
                         einsum, eq, equal, erf, exp, flatten, floor_divide, fmod, gather, ge, gt,
                         index_select, isclose, isfinite, isinf, isnan, le, log, log_softmax,
                         logical_not, lt, masked_fill, matmul, max, maximum, mean, meshgrid, min,
                         minimum, mul, ne, neg, norm, permute, pow, promote_types, relu, remainder,
                         repeat_interleave, reshape, result_type, scatter, scatter_add, sigmoid,
                         softmax, sort, sqrt, squeeze, stack, std, sub, sum, t, tanh, topk,
                         transpose, true_divide, unsqueeze, var, where)
from .kernels import get_num_threads, set_num_threads  # noqa: E402
from .tensor import Tensor  # noqa: E402
from .tuning import tune_process  # noqa: E402
from .interop import from_dlpack  # noqa: E402


__version__ = "0.1.0"

# Importing the submodule tinypix.tensor set the package attribute `tensor` to that module;
# the public name is the function, as in PyTorch.
from .creation import tensor  # noqa: E402,F811
from . import cuda, nn, optim
from .serialization import load, save
from .kernels import conv_output_size  # noqa: E402
from .summary import receptive_field, summary  # noqa: E402

# `from tinypix import *`: every public function, class and dtype, but not the modules, nor the
# dtypes float, int and bool, which would shadow Python's own.
__all__ = sorted(name for name, value in globals().items()
                 if not name.startswith("_") and name not in ("float", "int", "bool")
                 and not isinstance(value, type(sys)))

# Subpackages that ``import tinypix`` does not load, to stay quick; each loads on first use, as in
# ``tinypix.models.UNet(...)`` or ``tinypix.utils.data.DataLoader``.
_LAZY = ("cli", "data", "metrics", "models", "testing", "training", "utils", "viz")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
