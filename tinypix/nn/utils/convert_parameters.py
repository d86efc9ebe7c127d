"""All parameters as one flat vector, and back (e.g. for line searches or weight averaging)."""
from __future__ import annotations

from typing import Iterable

from ...functional.shape import cat, reshape
from ...tensor import Tensor


def _check_one_device(op, parameters):
    devices = {p.device for p in parameters}
    if len(devices) > 1:
        raise TypeError(f"{op}: found parameters on different devices {sorted(devices)}; move the "
                        "model to one device first, e.g. model.to('cpu')")


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One 1-D tensor of all parameters, flattened and concatenated in order (differentiable)."""
    parameters = list(parameters)
    _check_one_device("parameters_to_vector", parameters)
    return cat([reshape(p, -1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D tensor ``vec`` into ``parameters`` (their ``.data``
    becomes a view of ``vec``, as in PyTorch)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got {type(vec).__name__}")
    parameters = list(parameters)
    _check_one_device("vector_to_parameters", parameters)
    total = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(f"vector_to_parameters: vec of shape {vec.shape} must be 1-D with {total} "
                         "entries, one per parameter entry")
    start = 0
    for p in parameters:
        n = p.numel()
        p.data = vec.data[start:start + n].reshape(p.shape)
        start += n
