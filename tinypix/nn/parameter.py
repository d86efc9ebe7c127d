"""Parameter: a Tensor that a Module registers as trainable."""
from __future__ import annotations

from typing import Any

from ..creation import as_array
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable; ``requires_grad`` is True by default.

    ``Parameter(t)`` shares ``t``'s array (no copy), as in PyTorch.
    """

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(0.0)
        # Tensor.__init__ copies its data; a Parameter made from a Tensor shares its array.
        self._data = data.data if isinstance(data, Tensor) else as_array(data)
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
