"""``torch.utils.data`` for tinypix: datasets, samplers, collation and the DataLoader.

    from tinypix.utils.data import DataLoader, TensorDataset, random_split
    train, val = random_split(TensorDataset(x, y), [0.8, 0.2])
    for xb, yb in DataLoader(train, batch_size=32, shuffle=True, num_workers=2):
        ...                                  # xb (32, ...), yb (32,) Tensors

Names, arguments, defaults and errors are PyTorch's. Randomness comes from NumPy generators: a
``generator=`` argument takes a ``numpy.random.Generator``; without one, tinypix's global generator
(``tinypix.manual_seed``) is used.
"""
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .distributed import DistributedSampler
from .dataset import ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler
from .worker import WorkerInfo, get_worker_info

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "ConcatDataset", "ChainDataset", "Subset", "random_split",
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler",
    "DistributedSampler",
    "DataLoader", "default_collate", "default_convert", "get_worker_info", "WorkerInfo",
]
