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
from .autograd import Function, enable_grad, is_grad_enabled, no_grad  # noqa: E402
from .backend import is_cuda_available  # noqa: E402
from .creation import (arange, bool_, empty, float16, float32, float64, from_numpy, full,  # noqa: E402
                       generator, int8, int16, int32, int64, manual_seed, ones, ones_like, rand,
                       randint, randn, tensor, uint8, zeros, zeros_like)
from .functional import (abs, argmax, cat, clamp, exp, log, matmul, max, mean, min, relu,  # noqa: E402
                         sigmoid, sqrt, stack, sum, tanh, where)
from .kernels import get_num_threads, set_num_threads  # noqa: E402
from .tensor import Tensor  # noqa: E402
from .tuning import tune_process  # noqa: E402


__version__ = "0.1.0"

# Importing the submodule tinypix.tensor set the package attribute `tensor` to that module;
# the public name is the function, as in PyTorch.
from .creation import tensor  # noqa: E402,F811
from . import nn, optim
from .serialization import load, save
from .kernels import conv_output_size  # noqa: E402
from .summary import receptive_field, summary  # noqa: E402
