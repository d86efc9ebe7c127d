"""Datasets: what a DataLoader reads from. PyTorch's ``torch.utils.data`` datasets.

A map-style ``Dataset`` is indexed: ``dataset[i]`` for ``0 <= i < len(dataset)`` returns one sample,
of any structure (a tuple ``(image, label)``, a dict, a Tensor, a NumPy array, a number, a string,
or these nested). An ``IterableDataset`` is iterated instead, for streams that cannot be indexed.
"""
from __future__ import annotations

import bisect
import itertools
import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any, Generic, Iterable, Iterator, Sequence, TypeVar

from ...tensor import Tensor
from .sampler import global_generator, numpy_generator

if TYPE_CHECKING:
    import numpy as np

T_co = TypeVar("T_co", covariant=True)
_T = TypeVar("_T")


class Dataset(Generic[T_co]):
    """Base class of map-style datasets: subclasses define ``__getitem__`` (and usually ``__len__``,
    which the default samplers need). ``a + b`` concatenates two datasets."""

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset[T_co]) -> ConcatDataset[T_co]:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co], Iterable[T_co]):
    """Base class of datasets read as a stream: subclasses define ``__iter__``.

    With ``num_workers > 0`` every worker iterates its own copy of the dataset, so without care
    every sample comes ``num_workers`` times; ``get_worker_info()`` inside ``__iter__`` tells a
    worker its ``id`` and ``num_workers``, to take its own share (e.g. every ``num_workers``-th item).
    """

    def __add__(self, other: Dataset[T_co]) -> ChainDataset:  # type: ignore[override]
        return ChainDataset([self, other])


class TensorDataset(Dataset[tuple[Tensor, ...]]):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``.

    Args:
        *tensors: Tensors with one first size N, e.g. images (N, C, H, W) and labels (N,).
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: expected Tensors, got {type(t).__name__}; "
                                f"wrap arrays with tinypix.tensor or tinypix.from_numpy")
            if t.ndim == 0 or t.shape[0] != tensors[0].shape[0]:
                raise ValueError(f"TensorDataset: size mismatch between tensors: every tensor needs the same first "
                                 f"size, got shapes {[x.shape for x in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset[T_co]):
    """The samples of several map-style datasets one after the other."""

    datasets: list[Dataset[T_co]]
    cumulative_sizes: list[int]

    def __init__(self, datasets: Iterable[Dataset[T_co]]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset; use ChainDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> T_co:
        if idx < 0:
            if -idx > len(self):
                raise ValueError(f"ConcatDataset: absolute value of index {idx} should not exceed the "
                                 f"dataset length {len(self)}")
            idx = len(self) + idx
        if idx >= len(self):
            raise IndexError(f"ConcatDataset: index {idx} is out of range for {len(self)} samples")
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[dataset_idx - 1] if dataset_idx > 0 else 0
        return self.datasets[dataset_idx][idx - start]


class ChainDataset(IterableDataset):
    """The items of several IterableDatasets one stream after the other."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got {type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order: ``Subset(d, [4, 0])[1] is d[0]``."""

    dataset: Dataset[T_co]
    indices: Sequence[int]

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: int | list[int]) -> T_co:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list[T_co]:
        # A DataLoader asks for a whole batch at once through __getitems__ when the dataset has it.
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset[_T], lengths: Sequence[int | float],
                 generator: np.random.Generator | None = None) -> list[Subset[_T]]:
    """Split ``dataset`` into non-overlapping Subsets of the given lengths, in a random order.

    Args:
        dataset: a map-style dataset of N samples.
        lengths: the sizes, summing to N; or fractions summing to 1, each turned into
            ``floor(N * fraction)`` with the remainder given out one by one from the first split
            on (PyTorch's rule: ``random_split(range(10), [0.25, 0.75])`` has sizes 3 and 7).
        generator: a ``numpy.random.Generator``; default tinypix's global generator, so
            ``tinypix.manual_seed`` makes the split repeatable.

    Returns:
        a list of ``Subset``, one per length.
    """
    generator = numpy_generator(generator, "random_split")
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"random_split: fraction at index {i} is {frac}, not between 0 and 1")
        sizes = [math.floor(n * frac) for frac in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; this split is an empty dataset")
        lengths = sizes
    if any(not isinstance(size, numbers.Integral) or size < 0 for size in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths {lengths} ({sum(lengths)}) does not equal the length "
                         f"of the input dataset ({n}); give sizes that sum to {n}, or fractions that sum to 1")
    indices = (global_generator() if generator is None else generator).permutation(n).tolist()
    return [Subset(dataset, indices[end - size:end])
            for end, size in zip(itertools.accumulate(int(size) for size in lengths), lengths)]
