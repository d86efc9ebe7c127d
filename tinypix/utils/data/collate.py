"""Turning a list of samples into one batch: PyTorch's ``default_collate`` and ``default_convert``.

``default_collate`` keeps the structure of a sample and stacks its leaves along a new first dim:
    Tensors (...)                  -> Tensor (N, ...)
    NumPy arrays (...)             -> Tensor (N, ...), dtype kept (float32 stays float32)
    NumPy scalars                  -> Tensor (N,), their dtype
    Python floats / ints / bools   -> Tensor (N,) float64 / int64 / bool
    strings, bytes                 -> the N values as they came: a list (a tuple when the strings sit
                                      in a tuple or list, as in PyTorch)
    dict / namedtuple              -> the same type, each entry collated
    tuple, list (other sequences)  -> a list with each position collated (a tuple gives a list, as in
                                      PyTorch: ``(image, label)`` samples give ``[images, labels]``)
"""
from __future__ import annotations

import collections.abc
import copy
import re
from typing import Any, Sequence

import numpy as np

from ...creation import from_numpy, tensor
from ...functional import stack
from ...tensor import Tensor

# NumPy dtypes that cannot become tensors: strings, bytes, unicode, objects.
_STRING_OR_OBJECT = re.compile(r"[SaUO]")

_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _where(path):
    return "".join(f"[{p!r}]" for p in path) or "values"


def _as_tensor(array):
    """A Tensor sharing ``array``'s memory where it can (native byte order), else a copy."""
    return from_numpy(array) if array.dtype.isnative else tensor(array)


def _check_shapes(batch, path):
    first = tuple(batch[0].shape)
    for i, x in enumerate(batch):
        if tuple(x.shape) != first:
            raise RuntimeError(
                f"default_collate: cannot stack the samples' {_where(path)} into one batch: sample 0 has shape "
                f"{first} but sample {i} has shape {tuple(x.shape)}. Resize or crop the samples to one size "
                f"(e.g. with a transform), or pass a collate_fn that pads them")


def _collate(batch, path):
    elem = batch[0]
    if isinstance(elem, Tensor):
        _check_shapes(batch, path)
        return stack(batch, 0)
    if isinstance(elem, np.ndarray):
        if _STRING_OR_OBJECT.search(elem.dtype.str):
            raise TypeError(_ERROR.format(elem.dtype) + f" (at the samples' {_where(path)})")
        _check_shapes(batch, path)
        return _as_tensor(np.stack(batch))
    if isinstance(elem, (np.bool_, np.number)):  # NumPy scalars keep their dtype
        return _as_tensor(np.array(batch))
    if isinstance(elem, float):
        return tensor(batch, dtype=np.float64)
    if isinstance(elem, int):  # bool included: all bools give a bool tensor, ints int64
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        for i, d in enumerate(batch):
            if not isinstance(d, collections.abc.Mapping) or set(d) != set(elem):
                keys = sorted(map(repr, d)) if isinstance(d, collections.abc.Mapping) else type(d).__name__
                raise ValueError(f"default_collate: the samples' {_where(path)} have different keys: sample 0 has "
                                 f"{sorted(map(repr, elem))}, sample {i} has {keys}; every sample needs the same keys")
        entries = {key: _collate([d[key] for d in batch], path + (key,)) for key in elem}
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                # A copy keeps the mapping type's extra properties (e.g. a defaultdict's factory).
                clone = copy.copy(elem)
                clone.update(entries)
                return clone
            return type(elem)(entries)
        except TypeError:  # the type cannot be copied or built from a dict
            return entries
    if isinstance(elem, collections.abc.Sequence):
        for i, s in enumerate(batch):
            if len(s) != len(elem):
                raise RuntimeError(f"default_collate: each element in list of batch should be of equal size: the "
                                   f"samples' {_where(path)} has {len(elem)} items in sample 0 but {len(s)} in "
                                   f"sample {i}")
        # Each column stays a tuple, so strings inside sequences come back as tuples, as in PyTorch.
        columns = [_collate(column, path + (j,)) for j, column in enumerate(zip(*batch))]
        if isinstance(elem, tuple):
            return type(elem)(*columns) if hasattr(elem, "_fields") else columns  # namedtuple, else a list
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                clone[:] = columns
                return clone
            return type(elem)(columns)
        except TypeError:  # e.g. range: no __setitem__, no constructor from a list
            return columns
    raise TypeError(_ERROR.format(type(elem)) + (f" (at the samples' {_where(path)})" if path else ""))


def default_collate(batch: Sequence[Any]) -> Any:
    """Collate a list of N samples into one batch (the rules are in this module's docstring).

    Args:
        batch: a non-empty list of samples of one structure, e.g. N tuples ``(image (C, H, W),
            label int)``.

    Returns:
        the batch, e.g. ``[images (N, C, H, W), labels (N,) int64]``.

    Raises RuntimeError naming the position (``['image']``, ``[0]``, ...) when two samples' arrays
    have different shapes, ValueError when dicts have different keys, TypeError for leaves that
    cannot be batched.
    """
    if not isinstance(batch, collections.abc.Sequence) or isinstance(batch, (str, bytes)) or not batch:
        raise TypeError(f"default_collate: expected a non-empty list of samples, got {batch!r:.80}")
    return _collate(batch, ())


def default_convert(data: Any) -> Any:
    """Turn the NumPy arrays and scalars in one sample into Tensors, keeping the structure.

    The collate_fn a DataLoader uses when ``batch_size=None`` (no batching). Tuples become lists
    (namedtuples stay namedtuples), as in PyTorch; arrays of strings or objects, Python numbers and
    everything else are returned as they are.
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _STRING_OR_OBJECT.search(data.dtype.str) else _as_tensor(data)
    if isinstance(data, (np.bool_, np.number)):
        return _as_tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        entries = {key: default_convert(value) for key, value in data.items()}
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update(entries)
                return clone
            return type(data)(entries)
        except TypeError:
            return entries
    if isinstance(data, tuple):
        items = [default_convert(d) for d in data]
        return type(data)(*items) if hasattr(data, "_fields") else items
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        items = [default_convert(d) for d in data]
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                clone[:] = items
                return clone
            return type(data)(items)
        except TypeError:
            return items
    return data
