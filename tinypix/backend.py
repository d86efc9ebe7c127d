"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

Op code never branches on the device. It asks for the array module of its inputs::

    xp = get_array_module(x)      # numpy or cupy
    y = xp.maximum(x, 0)

CuPy is imported lazily, the first time something asks for ``'cuda'`` or hands us a CuPy array,
so ``import tinypix`` works (and stays fast) on machines without it.
"""
from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .typing import Array, DeviceLike

_cupy = None

GPU_INSTALL_HINT = ("install CuPy for your CUDA version, e.g. `pip install tinypix[gpu]` "
                    "(CUDA 12) or `pip install cupy-cuda13x` (CUDA 13)")


def cupy() -> ModuleType:
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


def is_cupy_array(a: Any) -> bool:
    """True for a cupy.ndarray, without importing CuPy when it was never loaded."""
    return "cupy" in sys.modules and type(a).__module__.startswith("cupy")


def get_array_module(*arrays: Any) -> ModuleType:
    """The array module (numpy or cupy) that owns the given arrays."""
    for a in arrays:
        if is_cupy_array(a):
            return cupy()
    return np


def is_cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        cupy()
        return True
    except RuntimeError:
        return False


class device(str):
    """Where a tensor lives, as ``torch.device``: ``device('cpu')``, ``device('cuda')``,
    ``device('cuda:0')`` or ``device('cuda', 0)``; ``.type`` ('cpu' or 'cuda'), ``.index`` (0, or
    None when not given).

    It is a ``str`` (``'cpu'``, ``'cuda'`` or ``'cuda:0'``), so every place that takes a device name
    takes a device too. tinypix has one GPU, so ``'cuda'`` and ``'cuda:0'`` are the same device: a
    device equals the names and devices of the same place, and hashes like its ``.type``. Unlike
    ``torch.device``, ``device('cpu') == 'cpu'`` is True, so ``x.device == 'cpu'`` tests work.
    """

    _type: str
    _index: int | None

    def __new__(cls, type: str | device, index: int | None = None) -> device:
        if isinstance(type, device) and index is None:
            return type
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {type!r}")
        kind, _, number = type.partition(":")
        if number:
            if index is not None:
                raise ValueError(f"device: the index is given twice, in {type!r} and as index={index}")
            if not number.isdigit():
                raise ValueError(f"device: invalid device string {type!r}; use 'cpu', 'cuda' or 'cuda:0'")
            index = int(number)
        if kind not in ("cpu", "cuda") or (kind == "cpu" and index not in (None, 0)):
            raise ValueError(f"device: unknown device {type!r}; tinypix has 'cpu' and 'cuda' (GPU 0)")
        if kind == "cuda" and index not in (None, 0):
            raise ValueError(f"device: {kind}:{index} does not exist for tinypix, which uses GPU 0 only; "
                             "use 'cuda' or 'cuda:0'")
        name = kind if index is None or kind == "cpu" else f"{kind}:{index}"
        self = super().__new__(cls, name)
        self._type, self._index = kind, (index if kind == "cuda" else None)
        return self

    @property
    def type(self) -> str:
        return self._type

    @property
    def index(self) -> int | None:
        return self._index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                return normalize_device(other) == self._type
            except ValueError:
                return False
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self._type)

    def __repr__(self) -> str:
        index = "" if self._index is None else f", index={self._index}"
        return f"device(type='{self._type}'{index})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # pickled (e.g. to DataLoader workers) as the name it was made from
        return device, (str.__str__(self),)


CPU, CUDA = device("cpu"), device("cuda", 0)  # what Tensor.device returns


def normalize_device(device_: DeviceLike | None) -> str:
    """'cpu' or 'cuda' from 'cpu', 'cuda', 'cuda:0', a :class:`device` or None (cpu)."""
    if device_ is None:
        return "cpu"
    if isinstance(device_, device):
        return device_.type
    if not isinstance(device_, str):
        device_ = str(device_)  # e.g. a torch.device
    if device_ == "cpu":
        return "cpu"
    if device_ in ("cuda", "cuda:0"):
        return "cuda"
    raise ValueError(f"unknown device {device_!r}: use 'cpu', 'cuda' or 'cuda:0'")


def device_of(a: Array) -> str:
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if is_cupy_array(a) else "cpu"


def module_for(device: str) -> ModuleType:
    """The array module for a normalized device name."""
    return cupy() if device == "cuda" else np


def to_device(a: Array, device: DeviceLike) -> Array:
    """Move an array to ``device`` ('cpu' or 'cuda'); no copy when it is already there."""
    device = normalize_device(device)
    if device_of(a) == device:
        return a
    if device == "cuda":
        return cupy().asarray(a)
    return a.get()  # cupy -> numpy


def scatter_add(xp: ModuleType, target: Array, index: Any, values: Array) -> None:
    """``target[index] += values`` with repeated indices accumulated (NumPy's add.at)."""
    if xp is np:
        np.add.at(target, index, values)
    else:
        import cupyx
        cupyx.scatter_add(target, index, values)
