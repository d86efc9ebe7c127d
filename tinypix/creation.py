"""Making tensors: ``tensor``, ``zeros``, ``randn``, ... and the global random generator.

dtype rules (PyTorch's): Python floats become float32, Python ints int64, bools bool; a NumPy
array keeps its dtype (so float64 stays float64).
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import cupy, module_for, normalize_device, to_device

if TYPE_CHECKING:
    from .tensor import Tensor
    from .typing import Array, DeviceLike, DTypeLike, Number, ShapeLike

# dtypes, by PyTorch's names. tinypix/__init__.py also exports float32, int32 and bool_ as
# ``float``, ``int`` and ``bool`` (torch.float, torch.int, torch.bool); they are not defined under
# those names here, where they would hide Python's float(), int() and bool().
float32, float64, float16 = np.float32, np.float64, np.float16
int64, int32, int16, int8, uint8 = np.int64, np.int32, np.int16, np.int8, np.uint8
bool_ = np.bool_
double, half, long, short = float64, float16, int64, int16

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Seed every random draw tinypix makes (randn, rand, dropout, init, shuffling) on CPU and GPU."""
    seed_cpu(seed)
    import sys
    if "cupy" in sys.modules:
        sys.modules["cupy"].random.seed(seed)


def seed_cpu(seed: int) -> None:
    """manual_seed for the CPU's draws alone: what a DataLoader worker process seeds (CUDA may
    not be usable in a process forked after it was used)."""
    global _rng
    _rng = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The global ``numpy.random.Generator`` behind tinypix's random numbers."""
    return _rng


def _infer_dtype(data):
    """The dtype PyTorch would give ``torch.tensor(data)`` for Python data."""
    flat = np.asarray(data)
    if flat.dtype.kind == "f":
        return np.dtype(np.float32) if not isinstance(data, np.ndarray) else flat.dtype
    if flat.dtype.kind in "iu":
        return flat.dtype if isinstance(data, np.ndarray) else np.dtype(np.int64)
    if flat.dtype.kind == "b":
        return np.dtype(np.bool_)
    raise TypeError(f"tensor: cannot make a tensor from data of type {type(data).__name__} "
                    f"(NumPy dtype {flat.dtype}); use numbers, nested lists or arrays")


def as_array(data: Any, dtype: DTypeLike | None = None, device: DeviceLike | None = None) -> Array:
    """An array on ``device`` from Python data, a NumPy/CuPy array or a Tensor."""
    from .tensor import Tensor, _as_dtype
    if isinstance(data, Tensor):
        data = data.data
    if hasattr(data, "__cuda_array_interface__"):  # already a CuPy array
        arr = data if dtype is None else data.astype(_as_dtype(dtype), copy=False)
        return arr if device is None else to_device(arr, normalize_device(device))
    if isinstance(data, np.generic):
        data = np.asarray(data)
    dtype = _as_dtype(dtype) if dtype is not None else _infer_dtype(data)
    arr = np.array(data, dtype=dtype.newbyteorder("="))  # e.g. big-endian file data: native order
    return to_device(arr, normalize_device(device)) if device is not None else arr


def tensor(data: Any, dtype: DTypeLike | None = None, requires_grad: bool = False,
           device: DeviceLike | None = "cpu") -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists, or an array)."""
    from .tensor import Tensor
    t = Tensor._wrap(as_array(data, dtype, device))
    t.requires_grad = requires_grad
    return t


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor that shares memory with ``array`` (changes to one show in the other)."""
    from .tensor import Tensor
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if not array.dtype.isnative:
        raise ValueError(f"from_numpy: the array's dtype {array.dtype.str} is not in this machine's "
                         f"byte order, so its memory cannot be shared; use tinypix.tensor(array), "
                         f"which copies it into native order")
    return Tensor._wrap(array)


def _shape(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _filled(fill, size, dtype, requires_grad, device):
    from .tensor import Tensor, _as_dtype
    device = normalize_device(device)
    xp = module_for(device)
    t = Tensor._wrap(fill(xp, _shape(size), _as_dtype(dtype) or np.dtype(np.float32)))
    t.requires_grad = requires_grad
    return t


def zeros(*size: int | ShapeLike, dtype: DTypeLike | None = None, requires_grad: bool = False,
          device: DeviceLike | None = "cpu") -> Tensor:
    return _filled(lambda xp, s, d: xp.zeros(s, d), size, dtype, requires_grad, device)


def ones(*size: int | ShapeLike, dtype: DTypeLike | None = None, requires_grad: bool = False,
         device: DeviceLike | None = "cpu") -> Tensor:
    return _filled(lambda xp, s, d: xp.ones(s, d), size, dtype, requires_grad, device)


def empty(*size: int | ShapeLike, dtype: DTypeLike | None = None, requires_grad: bool = False,
          device: DeviceLike | None = "cpu") -> Tensor:
    return _filled(lambda xp, s, d: xp.empty(s, d), size, dtype, requires_grad, device)


def full(size: ShapeLike, fill_value: Number, dtype: DTypeLike | None = None, requires_grad: bool = False,
         device: DeviceLike | None = "cpu") -> Tensor:
    if dtype is None and isinstance(fill_value, bool):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, int):
        dtype = np.int64
    return _filled(lambda xp, s, d: xp.full(s, fill_value, d), (size,), dtype, requires_grad, device)


def _random(draw, size, dtype, requires_grad, device):
    # Draw on the CPU from the one seeded generator, so a seed gives the same numbers on any device.
    def fill(xp: ModuleType, s: tuple[int, ...], d: np.dtype[Any]) -> Array:
        a = draw(s).astype(d)
        return a if xp is np else cupy().asarray(a)
    return _filled(fill, size, dtype, requires_grad, device)


def randn(*size: int | ShapeLike, dtype: DTypeLike | None = None, requires_grad: bool = False,
          device: DeviceLike | None = "cpu") -> Tensor:
    """Samples from the standard normal distribution."""
    return _random(lambda s: _rng.standard_normal(s), size, dtype, requires_grad, device)


def rand(*size: int | ShapeLike, dtype: DTypeLike | None = None, requires_grad: bool = False,
         device: DeviceLike | None = "cpu") -> Tensor:
    """Samples from the uniform distribution on [0, 1)."""
    return _random(lambda s: _rng.random(s), size, dtype, requires_grad, device)


def randint(low: int, high: int, size: ShapeLike, dtype: DTypeLike | None = None,
            device: DeviceLike | None = "cpu") -> Tensor:
    """Integers drawn uniformly from [low, high)."""
    return _random(lambda s: _rng.integers(low, high, s), (size,), dtype or np.int64, False, device)


def arange(start: Number, end: Number | None = None, step: Number = 1,
           dtype: DTypeLike | None = None, requires_grad: bool = False,
           device: DeviceLike | None = "cpu") -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if is_int else np.float32
    return _filled(lambda xp, s, d: xp.arange(start, end, step, dtype=d), (), dtype, requires_grad, device)


def linspace(start: Number, end: Number, steps: int, dtype: DTypeLike | None = None,
             requires_grad: bool = False, device: DeviceLike | None = "cpu") -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (float32 by default).
    Computed as PyTorch does: from the start for the first half and from the end for the rest,
    so both ends are exact."""
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    start, end = (float(v) for v in (start, end))
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    i = np.arange(steps)
    values = np.where(i < steps // 2, start + step * i, end - step * (steps - 1 - i))
    values[:steps == 1] = start  # one step: the start, as in PyTorch
    return tensor(values, dtype or np.float32, requires_grad, device)


def eye(n: int, m: int | None = None, dtype: DTypeLike | None = None, requires_grad: bool = False,
        device: DeviceLike | None = "cpu") -> Tensor:
    """The (n, m) identity matrix (m = n by default): ones on the diagonal."""
    return _filled(lambda xp, s, d: xp.eye(s[0], s[1], dtype=d), ((n, n if m is None else m),),
                   dtype, requires_grad, device)


def _like(make, t, dtype, requires_grad, device, *args):
    return make(*t.shape, *args, dtype=dtype or t.dtype, requires_grad=requires_grad,
                device=device or t.device)


def zeros_like(input: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False,
               device: DeviceLike | None = None) -> Tensor:
    return _like(zeros, input, dtype, requires_grad, device)


def ones_like(input: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False,
              device: DeviceLike | None = None) -> Tensor:
    return _like(ones, input, dtype, requires_grad, device)


def empty_like(input: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False,
               device: DeviceLike | None = None) -> Tensor:
    return _like(empty, input, dtype, requires_grad, device)


def full_like(input: Tensor, fill_value: Number, dtype: DTypeLike | None = None, requires_grad: bool = False,
              device: DeviceLike | None = None) -> Tensor:
    """A tensor shaped like ``input``, of its dtype (so 2.7 in an int64 tensor is 2), full of
    ``fill_value``."""
    return full(input.shape, fill_value, dtype=dtype or input.dtype, requires_grad=requires_grad,
                device=device or input.device)


def randn_like(input: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False,
               device: DeviceLike | None = None) -> Tensor:
    return _like(randn, input, dtype, requires_grad, device)


def rand_like(input: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False,
              device: DeviceLike | None = None) -> Tensor:
    return _like(rand, input, dtype, requires_grad, device)
