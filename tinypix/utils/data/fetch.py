"""Fetchers: read the samples of one batch and collate them, in the main process or in a worker."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from .dataset import Dataset, IterableDataset
from .sampler import Sampler


def batch_count(dataset: Dataset, index_sampler: Sampler | Iterable[Any], batch_size: int | None,
                drop_last: bool) -> int:
    """The number of batches in one pass: ``len(loader)``.

    For an IterableDataset it comes from ``len(dataset)`` (TypeError if it has none); otherwise
    from the sampler that yields the batches' indices.
    """
    if not isinstance(dataset, IterableDataset):
        return len(index_sampler)
    length = len(dataset)
    if batch_size is not None:
        length = length // batch_size if drop_last else math.ceil(length / batch_size)
    return length


class MapFetcher:
    """For map-style datasets: ``fetch(indices)`` is ``collate_fn([dataset[i] for i in indices])``
    (``collate_fn(dataset[index])`` without auto-collation, i.e. ``batch_size=None``).

    ``stage`` says what runs (which index is read, or collate_fn): a worker names it when something
    fails.
    """

    def __init__(self, dataset: Dataset, auto_collation: bool, collate_fn: Callable[[Any], Any],
                 drop_last: bool) -> None:
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.stage = "before the first batch"

    def fetch(self, index: Any) -> Any:
        if not self.auto_collation:
            self.stage = f"while loading sample index {index!r}"
            data = self.dataset[index]
        elif callable(getattr(self.dataset, "__getitems__", None)):
            self.stage = f"while loading the samples at indices {index!r} (__getitems__)"
            data = self.dataset.__getitems__(index)
        else:
            data = []
            for i in index:
                self.stage = f"while loading sample index {i!r}"
                data.append(self.dataset[i])
        self.stage = f"in collate_fn, for the samples at indices {index!r}"
        return self.collate_fn(data)


class IterableFetcher:
    """For IterableDatasets: ``fetch(placeholders)`` takes the next ``len(placeholders)`` items of
    the dataset's iterator (the next one without auto-collation) and collates them; raises
    StopIteration when the iterator is spent, or when only a short batch is left and ``drop_last``.
    ``stage`` as for MapFetcher.
    """

    def __init__(self, dataset: IterableDataset, auto_collation: bool, collate_fn: Callable[[Any], Any],
                 drop_last: bool) -> None:
        self.iterator = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False
        self.stage = "while iterating the dataset"

    def fetch(self, index: Any) -> Any:
        if self.ended:
            raise StopIteration
        self.stage = "while iterating the dataset"
        if self.auto_collation:
            data = []
            for _ in index:
                try:
                    data.append(next(self.iterator))
                except StopIteration:
                    self.ended = True
                    break
            if not data or (self.drop_last and len(data) < len(index)):
                raise StopIteration
        else:
            data = next(self.iterator)
        self.stage = "in collate_fn"
        return self.collate_fn(data)
