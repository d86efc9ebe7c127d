"""Type aliases for tinypix's annotations, after PyTorch's (``torch.types``, ``torch._prims_common``,
``torch.nn.common_types``), for editors and type checkers:

    def zeros(*size: int | Sequence[int], dtype: DTypeLike | None = None,
              requires_grad: bool = False, device: DeviceLike | None = "cpu") -> Tensor

The library's modules import these names only under ``if TYPE_CHECKING:``; their annotations are
strings (``from __future__ import annotations``), so ``import tinypix`` never loads this module.
Your own code may import it (``from tinypix.typing import DTypeLike``) after ``import tinypix``.
"""
from __future__ import annotations

import os
from typing import IO, Any, Callable, Optional, Sequence, Union

import numpy as np

from .backend import device
from .tensor import Tensor

# A Python number, as ``torch.types.Number``.
Number = Union[int, float, bool]

# What a ``dtype=`` argument takes: a NumPy type (``tinypix.float32``, ``tinypix.long``), a
# ``numpy.dtype``, a name (``'float32'``) or a Python type (float -> float32, int -> int64, bool).
DTypeLike = Union[np.dtype[Any], type, str]

# What a ``device=`` argument takes: 'cpu', 'cuda', 'cuda:0' or a :class:`tinypix.device`.
DeviceLike = Union[str, device]

# A shape: a tuple or list of sizes (``Tensor.shape`` is a tuple).
ShapeLike = Sequence[int]

# An int, or an (h, w) pair of them, as ``torch.nn.common_types._size_2_t`` (kernel_size, stride, ...).
IntPair = Union[int, tuple[int, int]]

# An output size: an int or an (h, w) pair, where None keeps the input's size (``_size_2_opt_t``).
OptIntPair = Union[int, None, tuple[Optional[int], Optional[int]]]

# An operand of an elementwise op: a Tensor or a Python number.
TensorOrNumber = Union[Tensor, Number]

# What ``save`` and ``load`` take for a file: a path, or a file object opened in binary mode.
FileLike = Union[str, bytes, os.PathLike[str], IO[bytes]]

# ``load``'s ``map_location``: a device, a dict from saved to target device, or a callable
# ``(tensor, 'cpu') -> Tensor`` (None keeps the tensor on the CPU).
MapLocation = Optional[Union[str, device, dict[str, str], Callable[[Tensor, str], Optional[Tensor]]]]

# A raw array, as a Function's forward and backward see them: ``numpy.ndarray`` on 'cpu',
# ``cupy.ndarray`` on 'cuda' (CuPy is optional, so it is not named here).
Array = Any

__all__ = ["Array", "DTypeLike", "DeviceLike", "FileLike", "IntPair", "MapLocation", "Number", "OptIntPair",
           "ShapeLike", "TensorOrNumber"]
