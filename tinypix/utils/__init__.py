"""Utilities with PyTorch's names: ``tinypix.utils.data`` is ``torch.utils.data``."""
from . import data

__all__ = ["data"]
