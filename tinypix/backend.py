"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

Op code never branches on the device. It asks for the array module of its inputs::

    xp = get_array_module(x)      # numpy or cupy
    y = xp.maximum(x, 0)

CuPy is imported lazily, the first time something asks for ``'cuda'`` or hands us a CuPy array,
so ``import tinypix`` works (and stays fast) on machines without it.
"""
import sys

import numpy as np

_cupy = None

GPU_INSTALL_HINT = ("install CuPy for your CUDA version, e.g. `pip install tinypix[gpu]` "
                    "(CUDA 12) or `pip install cupy-cuda13x` (CUDA 13)")


def cupy():
    """Return the cupy module, importing it on first use; a clear error if it cannot work."""
    global _cupy
    if _cupy is None:
        try:
            import cupy as cp
        except ImportError as e:
            raise RuntimeError(f"device 'cuda' needs CuPy, which is not installed: {GPU_INSTALL_HINT}") from e
        try:
            n = cp.cuda.runtime.getDeviceCount()
        except Exception as e:  # CuPy raises its own CUDARuntimeError when no driver is present
            raise RuntimeError(f"device 'cuda' needs an NVIDIA GPU, but CUDA reports none ({e})") from e
        if n == 0:
            raise RuntimeError("device 'cuda' needs an NVIDIA GPU, but CUDA reports none")
        _cupy = cp
    return _cupy


def is_cupy_array(a):
    """True for a cupy.ndarray, without importing CuPy when it was never loaded."""
    return "cupy" in sys.modules and type(a).__module__.startswith("cupy")


def get_array_module(*arrays):
    """The array module (numpy or cupy) that owns the given arrays."""
    for a in arrays:
        if is_cupy_array(a):
            return cupy()
    return np


def is_cuda_available():
    """True when CuPy imports and sees at least one GPU."""
    try:
        cupy()
        return True
    except RuntimeError:
        return False


def normalize_device(device):
    """'cpu' or 'cuda' from 'cpu', 'cuda', 'cuda:0' or None (cpu). Only GPU 0 is supported."""
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        device = str(device)
    if device == "cpu":
        return "cpu"
    if device in ("cuda", "cuda:0"):
        return "cuda"
    raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:0'")


def device_of(a):
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if is_cupy_array(a) else "cpu"


def module_for(device):
    """The array module for a normalized device name."""
    return cupy() if device == "cuda" else np


def to_device(a, device):
    """Move an array to ``device`` ('cpu' or 'cuda'); no copy when it is already there."""
    device = normalize_device(device)
    if device_of(a) == device:
        return a
    if device == "cuda":
        return cupy().asarray(a)
    return a.get()  # cupy -> numpy


def scatter_add(xp, target, index, values):
    """``target[index] += values`` with repeated indices accumulated (NumPy's add.at)."""
    if xp is np:
        np.add.at(target, index, values)
    else:
        import cupyx
        cupyx.scatter_add(target, index, values)
