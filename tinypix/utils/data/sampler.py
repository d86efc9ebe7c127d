"""Samplers: the order in which a DataLoader visits a dataset, one index (or one batch of indices)
at a time. PyTorch's ``torch.utils.data`` samplers, drawing from NumPy generators.

Randomness: a sampler's ``generator`` is a ``numpy.random.Generator`` (``numpy.random.default_rng(0)``
makes one), or None. With None, every pass (every ``iter(sampler)``) draws a fresh seed from
tinypix's global generator, the one ``tinypix.manual_seed`` seeds, as PyTorch's samplers draw from
``torch``'s default generator: after ``tinypix.manual_seed(s)`` the sequence of orders repeats.
"""
from __future__ import annotations

import itertools
import math
from typing import Generic, Iterable, Iterator, Sequence, Sized, TypeVar

import numpy as np

from ...creation import generator as global_generator

T_co = TypeVar("T_co", covariant=True)


def numpy_generator(generator: np.random.Generator | None, who: str) -> np.random.Generator | None:
    """``generator`` checked to be None or a ``numpy.random.Generator``; ``who`` names the caller."""
    if generator is None or isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"{who}: generator must be a numpy.random.Generator (e.g. numpy.random.default_rng(0)) "
                    f"or None (tinypix's global generator, seeded by tinypix.manual_seed), "
                    f"got {type(generator).__name__}")


def draw_seed(generator: np.random.Generator | None = None) -> int:
    """A seed in [0, 2**63) from ``generator``, or from tinypix's global generator when None."""
    return int((global_generator() if generator is None else generator).integers(2**63))


# Generic in what it yields, as PyTorch's, so that PyTorch code's ``class MySampler(Sampler[int])`` runs.
class Sampler(Generic[T_co]):
    """Base class: subclasses define ``__iter__`` (indices, or lists of indices for a batch
    sampler) and, when they know it, ``__len__``."""

    def __init__(self, data_source: Sized | None = None) -> None:
        pass  # PyTorch keeps this argument for backwards compatibility only

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler[int]):
    """Indices ``0, 1, ..., len(data_source) - 1`` in order."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Indices in a random order.

    Args:
        data_source: the dataset (only its length is used).
        replacement: draw ``num_samples`` indices independently (with repeats) instead of
            permutations.
        num_samples: how many indices one pass yields; default ``len(data_source)``. Without
            replacement and above the length, whole permutations follow one another.
        generator: a ``numpy.random.Generator`` that every pass draws from, or None for a new
            seed per pass from tinypix's global generator.
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: int | None = None,
                 generator: np.random.Generator | None = None) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = numpy_generator(generator, "RandomSampler")
        if not isinstance(self.num_samples, int) or isinstance(self.num_samples, bool) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        rng = np.random.default_rng(draw_seed()) if self.generator is None else self.generator
        if self.replacement:
            # In chunks of 32, as PyTorch, so a long pass holds no large index array.
            for _ in range(self.num_samples // 32):
                yield from rng.integers(0, n, 32).tolist()
            yield from rng.integers(0, n, self.num_samples % 32).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from rng.permutation(n).tolist()
            if self.num_samples % n:
                yield from rng.permutation(n).tolist()[:self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given ``indices`` in a random order (a new permutation each pass)."""

    def __init__(self, indices: Sequence[int], generator: np.random.Generator | None = None) -> None:
        self.indices = indices
        self.generator = numpy_generator(generator, "SubsetRandomSampler")

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(draw_seed()) if self.generator is None else self.generator
        for i in rng.permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler[list[int]]):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    The last list is shorter when ``len(sampler)`` is not a multiple of ``batch_size``, and left
    out when ``drop_last``. ``list(BatchSampler(SequentialSampler(range(5)), 2, False))`` is
    ``[[0, 1], [2, 3], [4]]``.
    """

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return math.ceil(len(self.sampler) / self.batch_size)


class InfiniteConstantSampler(Sampler[None]):
    """``None`` forever: the DataLoader's sampler for an IterableDataset, which has no indices;
    the dataset's own iterator decides when a pass ends."""

    def __iter__(self) -> Iterator[None]:
        return itertools.repeat(None)
