"""``tinypix.cuda``, as ``torch.cuda``: ask whether a GPU can be used.

    device = "cuda" if tinypix.cuda.is_available() else "cpu"
"""
from __future__ import annotations

from .backend import cupy, is_cuda_available as is_available

__all__ = ["device_count", "is_available"]


def device_count() -> int:
    """How many GPUs CuPy sees; 0 without CuPy or a GPU (tinypix computes on GPU 0 only)."""
    return cupy().cuda.runtime.getDeviceCount() if is_available() else 0
