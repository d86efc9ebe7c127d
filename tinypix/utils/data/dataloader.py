"""DataLoader: batches from a dataset, in the main process or in worker processes.
PyTorch's ``torch.utils.data.DataLoader``, with its arguments, defaults and checks.
"""
from __future__ import annotations

import multiprocessing
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset
from .fetch import IterableFetcher, MapFetcher, batch_count
from .sampler import (BatchSampler, InfiniteConstantSampler, RandomSampler, Sampler, SequentialSampler, draw_seed,
                      numpy_generator)
from .multiprocess import MultiProcessIter

if TYPE_CHECKING:
    import numpy as np


class DataLoader:
    """Iterate over a dataset in batches.

    Args:
        dataset: a map-style ``Dataset`` (``len`` and ``dataset[i]``) or an ``IterableDataset``.
        batch_size: samples per batch; None turns batching off (each sample goes through
            ``collate_fn``, by default ``default_convert``, alone).
        shuffle: a new random order every pass (a ``RandomSampler``).
        sampler: the order of the indices (a Sampler or any iterable of indices); excludes shuffle.
        batch_sampler: yields whole lists of indices; excludes batch_size, shuffle, sampler and
            drop_last.
        num_workers: 0 loads in the main process; more starts that many worker processes that
            load and collate batches in parallel (the batches still come in order). Workers are
            forked where the platform allows it (not on macOS, where forking is unsafe); elsewhere
            they are spawned: the dataset, collate_fn and worker_init_fn must then be picklable, and
            the script's own code must sit under ``if __name__ == "__main__":``, since each worker
            imports the script again.
        collate_fn: turns a list of samples into a batch; default ``default_collate``.
        pin_memory: accepted for PyTorch code; tinypix has no pinned memory, so it changes nothing.
        drop_last: leave out the last batch when it would be smaller than ``batch_size``.
        timeout: seconds to wait for a worker's batch before raising (0: wait as long as the
            workers are alive).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after seeding.
        multiprocessing_context: a start method ('fork', 'spawn', 'forkserver') or a context from
            ``multiprocessing.get_context``, instead of the default described above.
        generator: a ``numpy.random.Generator`` for the random sampler and the workers' base seed;
            None uses tinypix's global generator, so ``tinypix.manual_seed(s)`` makes every pass
            repeatable (each pass draws from it, so two passes differ).
        prefetch_factor: batches each worker loads ahead (default 2 with workers).
        persistent_workers: keep the workers alive between passes instead of starting new ones.

    Seeds: every pass draws a base seed from ``generator``; worker ``i`` seeds Python's
    ``random``, tinypix's global generator and the transforms' generator with ``base_seed + i``,
    and NumPy's global generator from (i, base_seed), as PyTorch does.

    ``len(loader)`` is the number of batches per pass. ``loader = DataLoader(TensorDataset(x, y),
    batch_size=32, shuffle=True)`` gives ``[x (32, ...), y (32,)]`` per step.
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable[Any] | None = None,
                 batch_sampler: Sampler[list[Any]] | Iterable[list[Any]] | None = None, num_workers: int = 0,
                 collate_fn: Callable[[list[Any]], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: str | multiprocessing.context.BaseContext | None = None,
                 generator: np.random.Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers option should be non-negative; use num_workers=0 to disable "
                             f"multiprocessing (got {num_workers!r})")
        if timeout < 0:
            raise ValueError(f"timeout option should be non-negative (got {timeout})")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and (not isinstance(prefetch_factor, int) or prefetch_factor < 1):
            raise ValueError(f"prefetch_factor option should be a positive integer (got {prefetch_factor!r})")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        generator = numpy_generator(generator, "DataLoader")

        if isinstance(dataset, IterableDataset):
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")

        if sampler is None:
            if isinstance(dataset, IterableDataset):
                sampler = InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn or (default_convert if batch_sampler is None else default_collate)
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = self._context(multiprocessing_context, num_workers)
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._iterator = None
        self._initialized = True

    @staticmethod
    def _context(context, num_workers):
        if context is None:
            if num_workers == 0:
                return None
            fork = "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"
            return multiprocessing.get_context("fork" if fork else "spawn")
        if num_workers == 0:
            raise ValueError(f"multiprocessing_context can only be used with multi-process loading "
                             f"(num_workers > 0), but got num_workers={num_workers}")
        if isinstance(context, str):
            methods = multiprocessing.get_all_start_methods()
            if context not in methods:
                raise ValueError(f"multiprocessing_context option should specify a valid start method in "
                                 f"{methods!r}, but got multiprocessing_context={context!r}")
            return multiprocessing.get_context(context)
        if not isinstance(context, multiprocessing.context.BaseContext):
            raise TypeError(f"multiprocessing_context option should be a valid context object or a string "
                            f"specifying the start method, but got multiprocessing_context={context!r}")
        return context

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_initialized", False) and name in (
                "batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers"):
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        return batch_count(self.dataset, self._index_sampler, self.batch_size, self.drop_last)

    def __iter__(self) -> SingleProcessIter | MultiProcessIter:
        if self.num_workers == 0:
            return SingleProcessIter(self)
        if not self.persistent_workers:
            return MultiProcessIter(self)
        if self._iterator is None or not self._iterator.alive:  # none yet, or stopped by an error
            self._iterator = MultiProcessIter(self)
        else:
            self._iterator.reset()
        return self._iterator


class SingleProcessIter:
    """One pass over a DataLoader with ``num_workers=0``: each batch is loaded when asked for."""

    def __init__(self, loader: DataLoader) -> None:
        draw_seed(loader.generator)  # drawn as with workers, so that both see the same shuffled order
        self._sampler_iter = iter(loader._index_sampler)
        fetcher = IterableFetcher if isinstance(loader.dataset, IterableDataset) else MapFetcher
        self._fetcher = fetcher(loader.dataset, loader._auto_collation, loader.collate_fn, loader.drop_last)
        self._length_of = (loader.dataset, loader._index_sampler, loader.batch_size, loader.drop_last)

    def __iter__(self) -> SingleProcessIter:
        return self

    def __next__(self) -> Any:
        return self._fetcher.fetch(next(self._sampler_iter))

    def __len__(self) -> int:
        return batch_count(*self._length_of)
