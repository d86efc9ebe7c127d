"""Handing tensors to NumPy, PyTorch, CuPy and back, without copies where none is needed.

The functions take the Tensor first; ``Tensor`` exposes them as the protocols other libraries look
for::

    Tensor.__dlpack__                  dlpack(t, stream=None, *, max_version, dl_device, copy)
    Tensor.__dlpack_device__           dlpack_device(t)
    Tensor.__array__                   as_array(t, dtype=None, copy=None)
    Tensor.__cuda_array_interface__    cuda_array_interface(t)   (a property, 'cuda' tensors only)
    tinypix.from_dlpack                from_dlpack(obj)

so ``np.from_dlpack(t)``, ``torch.from_dlpack(t)`` and ``cupy.from_dlpack(t)`` view a tensor's
memory, ``tinypix.from_dlpack(x)`` views theirs, and ``np.asarray(t)`` / ``np.array(t)`` behave as
they do for NumPy arrays (the first shares memory, the second copies).

A tensor is a NumPy or CuPy array plus autograd, so exporting delegates to that array's own
protocol. As in PyTorch, a tensor that requires grad is not exported: the receiver could change
its values behind autograd's back.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import cupy

if TYPE_CHECKING:
    from .tensor import Tensor
    from .typing import DTypeLike

# DLPack's device types (dlpack.h, DLDeviceType) that tinypix can hold: host memory goes to
# NumPy ('cpu'), GPU memory to CuPy ('cuda')
HOST_MEMORY = {1: "CPU", 3: "CUDA host (pinned)"}
GPU_MEMORY = {2: "CUDA", 13: "CUDA managed"}
OTHER_DEVICES = {4: "OpenCL", 7: "Vulkan", 8: "Metal", 9: "VPI", 10: "ROCm", 11: "ROCm host",
                 12: "ExtDev", 14: "oneAPI", 15: "WebGPU", 16: "Hexagon", 17: "MAIA"}


def _refuse_grad(tensor):
    if tensor.requires_grad:
        raise BufferError("Can't export tensors that require gradient, use tensor.detach()")


def dlpack(tensor: Tensor, stream: Any = None, *, max_version: tuple[int, int] | None = None,
           dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
    """``Tensor.__dlpack__``: a DLPack capsule of the tensor's memory, for ``from_dlpack`` elsewhere.

    The keywords are the DLPack protocol's (NumPy 2 passes all four) and go to the array's own
    ``__dlpack__``. Those left at None are not passed on, so an array module that predates them
    still answers; one that does not know a keyword that is given raises TypeError, and consumers
    (NumPy, PyTorch) then retry without it.
    """
    _refuse_grad(tensor)
    given = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
    return tensor.data.__dlpack__(**{k: v for k, v in given.items() if v is not None})


def dlpack_device(tensor: Tensor) -> tuple[int, int]:
    """``Tensor.__dlpack_device__``: ``(device_type, device_id)``, e.g. ``(1, 0)`` for the CPU."""
    return tensor.data.__dlpack_device__()


def from_dlpack(obj: Any) -> Tensor:
    """A Tensor sharing memory with ``obj``: anything with ``__dlpack__`` and ``__dlpack_device__``
    (a NumPy array, a PyTorch tensor, a CuPy array -> a 'cuda' Tensor, a tinypix Tensor).

    Writes to one show in the other. Memory on a device tinypix does not have raises ValueError;
    a dtype NumPy has no type for (bfloat16, float8) raises RuntimeError.
    """
    from .tensor import Tensor
    if isinstance(obj, Tensor):
        _refuse_grad(obj)
        obj = obj.data
    if not (hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__")):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and __dlpack_device__ (a NumPy "
                        f"or CuPy array, a PyTorch tensor, ...), got {type(obj).__name__}")
    device_type, device_id = obj.__dlpack_device__()
    if device_type in HOST_MEMORY:
        importer = np.from_dlpack
    elif device_type in GPU_MEMORY and device_id == 0:
        importer = cupy().from_dlpack  # without CuPy or a GPU: a RuntimeError saying how to get them
    else:
        where = HOST_MEMORY.get(device_type) or GPU_MEMORY.get(device_type) or OTHER_DEVICES.get(device_type)
        where = f"{where or 'unknown'} memory (DLPack device type {int(device_type)}, id {device_id})"
        raise ValueError(f"from_dlpack: the {type(obj).__name__} lives in {where}, which tinypix has no "
                         "device for: it has 'cpu' and 'cuda' (GPU 0). Move it there first, e.g. "
                         "x.cpu() or x.to('cuda:0') in PyTorch")
    try:
        return Tensor._wrap(importer(obj))
    except BufferError as e:  # e.g. a PyTorch tensor that requires grad
        raise BufferError(f"from_dlpack: cannot import this {type(obj).__name__}: {e}") from e
    except RuntimeError as e:
        raise RuntimeError(f"from_dlpack: cannot import this {type(obj).__name__}: {e} (if its dtype is "
                           "bfloat16 or a float8, which NumPy has no type for, convert it first, e.g. "
                           "x.float())") from e


def as_array(tensor: Tensor, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
    """``Tensor.__array__``: the tensor as a NumPy array, for ``np.asarray(t)`` and ``np.array(t)``.

    ``copy`` is NumPy 2's: True always copies (``np.array(t)``), None copies only when ``dtype``
    differs (``np.asarray(t)`` shares memory), False never copies and raises ValueError when a copy
    would be needed (another dtype, or a 'cuda' tensor). A 'cuda' tensor otherwise raises TypeError:
    moving it to the host is a cost to ask for explicitly, with ``.cpu()``.
    """
    dtype = tensor.dtype if dtype is None else np.dtype(dtype)
    if copy is False and (tensor.device != "cpu" or dtype != tensor.dtype):
        what = "on 'cuda'" if tensor.device != "cpu" else f"{tensor.dtype}, not {dtype}"
        raise ValueError(f"__array__: the tensor is {what}, so a NumPy array of it needs a copy, which "
                         "copy=False forbids; use copy=None (np.asarray)"
                         + (", after .cpu()" if tensor.device != "cpu" else ""))
    if tensor.device != "cpu":
        raise TypeError("cannot convert a 'cuda' tensor to a NumPy array implicitly; "
                        "call .cpu() first, e.g. np.asarray(x.cpu())")
    if dtype != tensor.dtype:
        return tensor.data.astype(dtype)
    return np.array(tensor.data, copy=True) if copy else tensor.data


def cuda_array_interface(tensor: Tensor) -> dict[str, Any]:
    """``Tensor.__cuda_array_interface__``: the CuPy array's, for Numba, CuPy, PyTorch and others.

    Only 'cuda' tensors have it: on a CPU tensor it raises AttributeError, so ``hasattr`` is False.
    """
    if tensor.device != "cuda":
        raise AttributeError("__cuda_array_interface__: only 'cuda' tensors have one; this tensor is "
                             "on 'cpu' (move it with .cuda(), or use np.asarray for CPU memory)")
    _refuse_grad(tensor)
    return tensor.data.__cuda_array_interface__
