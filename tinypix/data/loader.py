"""Datasets and the DataLoader of the pixel-labeling toolkit, on ``tinypix.utils.data``.

A sample is a dict of NumPy arrays, e.g. ``{'image': (3, H, W), 'mask': (H, W)}``. A batch is the
same dict with every array stacked along a new first axis and turned into a tinypix Tensor:
``{'image': (N, 3, H, W), 'mask': (N, H, W)}``.

``tinypix.data.DataLoader`` is ``tinypix.utils.data.DataLoader`` plus two things a training script
wants: a ``seed`` that fixes the shuffling and the augmentation of every epoch, and a joint
``transform`` applied to each sample with a generator derived from that seed.
"""
from __future__ import annotations

import abc
import multiprocessing.context
from typing import Any, Callable, Sequence

import numpy as np

from ..utils import data
from ..utils.data import RandomSampler, SequentialSampler, default_collate, default_convert, get_worker_info

# A sample as a Dataset returns it and a joint transform takes it: names ('image', 'mask', ...) to arrays.
Sample = dict[str, np.ndarray]


class Dataset(data.Dataset, abc.ABC):
    """A sized collection of samples; subclasses define ``__len__`` and ``__getitem__``.

    ``dataset[i]`` for ``0 <= i < len(dataset)`` returns one sample, a dict mapping names
    (``'image'``, ``'mask'``, ``'depth'``, ``'normals'``, ...) to NumPy arrays; every sample of a
    dataset has the same keys, and, for batching, the same shapes. Indices out of range raise
    IndexError, which also makes ``for sample in dataset`` work. A ``tinypix.utils.data.Dataset``,
    so ``random_split``, ``Subset`` and ``+`` work on it.
    """

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of samples."""

    @abc.abstractmethod
    def __getitem__(self, i: int) -> Sample:
        """Sample ``i``: a dict of NumPy arrays."""


def collate(samples: Sequence[Sample]) -> Sample:
    """Stack a list of sample dicts into one dict of NumPy arrays with a new leading batch axis.

    The NumPy twin of ``default_collate`` for flat sample dicts (which the DataLoader uses; it
    gives Tensors). Raises ValueError when the samples do not share their keys or their shapes.
    """
    keys = list(samples[0])
    for s in samples[1:]:
        if set(s) != set(keys):
            raise ValueError(f"samples in one batch have different keys: {sorted(keys)} and {sorted(s)}")
    batch = {}
    for k in keys:
        shapes = {np.shape(s[k]) for s in samples}
        if len(shapes) > 1:
            raise ValueError(f"cannot batch '{k}' arrays of different shapes {sorted(shapes)}; "
                             "resize or crop them to one size with a transform")
        batch[k] = np.stack([s[k] for s in samples])
    return batch


class Augment:
    """A collate_fn that first calls ``transform(sample, rng)`` on every sample, then ``collate_fn``.

    In the main process ``rng`` is the loader's transform generator, used sample after sample. A
    worker process holds a copy of it, as every other worker does: so in a worker it is replaced by
    one seeded from the worker's seed, or all workers would draw the same flips and crops.
    """

    def __init__(self, transform: Callable[[Any, np.random.Generator], Any], seed_sequence: np.random.SeedSequence,
                 collate_fn: Callable[[Any], Any], batched: bool) -> None:
        self.transform = transform
        self.seed_sequence = seed_sequence
        self.rng = np.random.default_rng(seed_sequence)
        self.collate_fn = collate_fn
        self.batched = batched
        self._worker_seed = None

    def reseed(self, seed_sequence: np.random.SeedSequence) -> None:
        """Start the generator afresh from ``seed_sequence`` (workers derive theirs from it too)."""
        self.seed_sequence = seed_sequence
        self.rng = np.random.default_rng(seed_sequence)
        self._worker_seed = None

    def __call__(self, samples: Any) -> Any:
        info = get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self._worker_seed = info.seed
            ss = self.seed_sequence
            self.rng = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, info.seed)))
        if not self.batched:
            return self.collate_fn(self.transform(samples, self.rng))
        return self.collate_fn([self.transform(s, self.rng) for s in samples])


class DataLoader(data.DataLoader):
    """Iterate over a dataset in batches of tinypix Tensors.

    Args:
        dataset: a Dataset (anything with ``len`` and integer indexing that returns sample dicts).
        batch_size: samples per batch.
        shuffle: visit the samples in a new random order on every pass (every ``iter(loader)``).
        drop_last: leave out the last batch when it would be smaller than ``batch_size``.
        seed: seeds the shuffling and the transforms; the same seed gives the same sequence of
            epochs. ``None`` draws fresh randomness from the operating system.
        transform: called as ``transform(sample, rng)`` on every sample before batching, with one
            ``numpy.random.Generator`` owned by the loader (derived from ``seed``), so random
            augmentation is reproducible too. The joint transforms of ``tinypix.data.transforms``
            have this signature. With workers, each worker draws from its own generator, derived
            from ``seed`` too (so the augmentation depends on ``num_workers``).
        num_workers, collate_fn, pin_memory, timeout, worker_init_fn, multiprocessing_context,
        prefetch_factor, persistent_workers: as for ``tinypix.utils.data.DataLoader``.
        sampler: the indices to visit instead of the loader's own order (with ``shuffle=False``),
            e.g. a ``DistributedSampler`` for one rank's share; ``set_epoch`` is passed on to it.

    ``len(loader)`` is the number of batches per pass. Each batch is ``default_collate`` of the
    samples: for sample dicts of arrays, a dict mapping every key to a Tensor of the stacked arrays,
    (N, ...) with N = ``batch_size``, or fewer for the last batch.
    """

    def __init__(self, dataset: data.Dataset, batch_size: int | None = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None,
                 transform: Callable[[Any, np.random.Generator], Any] | None = None, *, num_workers: int = 0,
                 collate_fn: Callable[[Any], Any] | None = None, pin_memory: bool = False, timeout: float = 0,
                 worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: str | multiprocessing.context.BaseContext | None = None,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 sampler: data.Sampler[int] | None = None) -> None:
        # Independent streams, so that switching shuffling on or off leaves augmentation alone,
        # and the workers' seeds take nothing from either.
        self._seeds = shuffle_seed, transform_seed, worker_seed = np.random.SeedSequence(seed).spawn(3)
        if sampler is not None:
            if shuffle:
                raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        elif shuffle:
            sampler = RandomSampler(dataset, generator=np.random.default_rng(shuffle_seed))
        else:
            sampler = SequentialSampler(dataset)
        collate_fn = collate_fn or (default_convert if batch_size is None else default_collate)
        if transform is not None:
            collate_fn = Augment(transform, transform_seed, collate_fn, batched=batch_size is not None)
        super().__init__(dataset, batch_size, sampler=sampler, num_workers=num_workers, collate_fn=collate_fn,
                         pin_memory=pin_memory, drop_last=drop_last, timeout=timeout, worker_init_fn=worker_init_fn,
                         multiprocessing_context=multiprocessing_context,
                         generator=np.random.default_rng(worker_seed), prefetch_factor=prefetch_factor,
                         persistent_workers=persistent_workers)
        self.shuffle = shuffle
        self.seed = seed
        self.transform = transform

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch``'s: its order, its augmentation and its workers' seeds
        then depend on (seed, epoch) alone, so a run resumed at any epoch sees the batches of a run
        that never stopped. Without calls, each pass continues the streams of the one before.
        (Persistent workers keep the augmentation generators they started with.)"""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be an int >= 0, got {epoch!r}")
        shuffle_seed, transform_seed, worker_seed = (
            np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, int(epoch))) for ss in self._seeds)
        if self.shuffle:
            self.sampler.generator = np.random.default_rng(shuffle_seed)
        if isinstance(self.collate_fn, Augment):
            self.collate_fn.reseed(transform_seed)
        self.generator = np.random.default_rng(worker_seed)
        if hasattr(self.sampler, "set_epoch"):  # a DistributedSampler: its order is the epoch's too
            self.sampler.set_epoch(epoch)
