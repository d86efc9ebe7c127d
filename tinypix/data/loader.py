"""Datasets and the DataLoader that turns their samples into batches of tensors.

A sample is a dict of NumPy arrays, e.g. ``{'image': (3, H, W), 'mask': (H, W)}``. A batch is the
same dict with every array stacked along a new first axis and turned into a tinypix Tensor:
``{'image': (N, 3, H, W), 'mask': (N, H, W)}``.
"""
import abc
import math

import numpy as np


class Dataset(abc.ABC):
    """A sized collection of samples; subclasses define ``__len__`` and ``__getitem__``.

    ``dataset[i]`` for ``0 <= i < len(dataset)`` returns one sample, a dict mapping names
    (``'image'``, ``'mask'``, ``'depth'``, ``'normals'``, ...) to NumPy arrays; every sample of a
    dataset has the same keys, and, for batching, the same shapes. Indices out of range raise
    IndexError, which also makes ``for sample in dataset`` work.
    """

    @abc.abstractmethod
    def __len__(self):
        """The number of samples."""

    @abc.abstractmethod
    def __getitem__(self, i):
        """Sample ``i``: a dict of NumPy arrays."""


def collate(samples):
    """Stack a list of sample dicts into one dict of arrays with a new leading batch axis.

    Raises ValueError when the samples do not share their keys or their shapes.
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


class DataLoader:
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
            have this signature.

    ``len(loader)`` is the number of batches per pass. Each batch is a dict mapping every sample
    key to ``tinypix.from_numpy`` of the stacked arrays: (N, ...) with N = ``batch_size``, or fewer
    for the last batch.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, transform=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        # Two independent streams, so that switching shuffling on or off leaves augmentation alone.
        shuffle_seed, transform_seed = np.random.SeedSequence(seed).spawn(2)
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self._transform_rng = np.random.default_rng(transform_seed)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        # from_numpy is imported here, not at the top: tinypix/__init__.py may import this package.
        from tinypix import from_numpy

        n = len(self.dataset)
        order = self._shuffle_rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            samples = []
            for i in order[b * self.batch_size:(b + 1) * self.batch_size]:
                sample = self.dataset[int(i)]
                if self.transform is not None:
                    sample = self.transform(sample, self._transform_rng)
                samples.append(sample)
            yield {k: from_numpy(np.ascontiguousarray(a)) for k, a in collate(samples).items()}
