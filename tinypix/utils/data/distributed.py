"""DistributedSampler: each rank's share of a dataset for data-parallel training (PyTorch's)."""
from __future__ import annotations

import math
from typing import Iterator, Sized

import numpy as np

from ... import distributed as dist
from .sampler import Sampler

class DistributedSampler(Sampler[int]):
    """Rank ``rank``'s indices of ``dataset``: every ``num_replicas``-th one of an order that is the
    same on every rank, so the shares of one epoch are disjoint and together cover the dataset.

    Args:
        dataset: the dataset (only its length is used).
        num_replicas, rank: the world size and this rank (default: the process group's).
        shuffle: a new order each epoch, drawn from ``seed + epoch`` (call ``set_epoch`` before
            each epoch, or every epoch repeats the first one's order).
        seed: the same on every rank.
        drop_last: leave out the last ``len(dataset) % num_replicas`` indices of the order, so the
            shares are equal without repeats; otherwise the order is padded with its first indices
            up to a multiple of ``num_replicas`` (a few samples then count twice in an epoch).
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: no process group to take num_replicas and rank from; "
                                   "call tinypix.distributed.init_process_group() or pass both")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        self.epoch = 0
        n = len(dataset)
        self.num_samples = n // self.num_replicas if drop_last else math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        order = (np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle
                 else np.arange(n))
        if self.total_size > n:  # pad with the order's first indices (wrapping round if needed)
            order = np.resize(order, self.total_size)
        order = order[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order from the next pass on."""
        self.epoch = int(epoch)
