"""Data-parallel training: ``DistributedDataParallel`` (PyTorch's name and behaviour, over MPI).

Every rank holds the same model and runs it on its own share of the batch; after ``backward()``
every parameter's ``.grad`` is the average of the ranks' gradients, so each optimizer step is the
same on all ranks and the ranks stay equal, as one process on the whole batch would be (for a loss
that averages over equal shares).

    dist.init_process_group("mpi")
    model = DistributedDataParallel(model)      # rank 0's weights and buffers, everywhere
    loss = F.cross_entropy(model(x_share), y_share)
    loss.backward()                             # gradients averaged over the ranks
    optimizer.step()

The averaging overlaps the backward pass: parameters are grouped into buckets of about
``bucket_cap_mb`` megabytes in the reverse order of ``parameters()`` (about the order backward
produces their gradients); a bucket's non-blocking all-reduce starts as soon as the last gradient
in it is ready, and the last bucket's arrival waits for all of them.
"""
from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .. import distributed as dist
from ..autograd import no_grad
from ..backend import get_array_module
from .module import Module

if TYPE_CHECKING:
    from ..tensor import Tensor


class _Bucket:
    """Parameters whose gradients travel in one message, and the flat buffer they travel in."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.sizes = [p.numel() for p in params]
        self.buffer = np.empty(sum(self.sizes), dtype=params[0].dtype)
        self.ready = 0
        self.request: Any = None

    def pack(self) -> None:
        """Copy the gradients into the buffer (zeros for a parameter that got none)."""
        offset = 0
        for p, n in zip(self.params, self.sizes):
            part = self.buffer[offset:offset + n]
            part[...] = 0 if p.grad is None else np.asarray(_host(p.grad.data)).reshape(-1)
            offset += n

    def unpack(self, world_size: int) -> None:
        """Write the summed buffer back as each parameter's averaged gradient."""
        self.buffer /= world_size
        offset = 0
        for p, n in zip(self.params, self.sizes):
            xp = get_array_module(p.data)
            averaged = xp.asarray(self.buffer[offset:offset + n].reshape(p.shape))
            if p.grad is None:
                from ..tensor import Tensor
                p.grad = Tensor._wrap(averaged.copy())
            else:
                p.grad.data[...] = averaged
            offset += n


def _host(a: Any) -> Any:
    return a if isinstance(a, np.ndarray) else get_array_module(a).asnumpy(a)


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the ranks of ``tinypix.distributed``.

    Args:
        module: the model; its forward runs unchanged (``ddp.module`` is it).
        broadcast_buffers: copy rank 0's buffers (batch-norm running statistics) to every rank
            before each forward in training, as PyTorch does.
        bucket_cap_mb: the size of a bucket of gradients, in megabytes.

    At construction every rank checks that all hold the same parameter names and shapes (a clear
    error otherwise), then takes rank 0's parameters and buffers. ``no_sync()`` skips the averaging
    for gradient accumulation; the next backward outside it averages the accumulated gradients.
    ``comm_seconds`` and ``wait_seconds`` add up the time spent starting and waiting for the
    all-reduces (for benchmarks).
    """

    def __init__(self, module: Module, broadcast_buffers: bool = True, bucket_cap_mb: float = 25.0) -> None:
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: no process group; call "
                               "tinypix.distributed.init_process_group() first")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self._world = dist.get_world_size()
        self._check_same_model()
        with no_grad():
            for t in [*module.parameters(), *(b for b in module.buffers() if b is not None)]:
                dist.broadcast(t, src=0)
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = self._make_buckets(params[::-1], bucket_cap_mb * 2**20)
        self._bucket_of = {id(p): b for b in self._buckets for p in b.params}
        self._next = 0  # the next bucket to start: buckets start in order, the same on every rank
        self._sync = True
        self.comm_seconds = self.wait_seconds = 0.0
        if self._world > 1:
            for p in params:
                p.register_post_accumulate_grad_hook(self._grad_ready)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if any(b.ready for b in self._buckets):
            raise RuntimeError("DistributedDataParallel: the previous backward did not produce a gradient for "
                               "every parameter, so its averaging never finished; every parameter must take "
                               "part in the loss on every rank")
        if self.training and self.broadcast_buffers and self._world > 1:
            with no_grad():
                for b in self.module.buffers():
                    if b is not None:
                        dist.broadcast(b, src=0)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward inside this block keeps its gradients local (they accumulate in ``.grad``)."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    # -- gradients -------------------------------------------------------------------------------
    def _grad_ready(self, p: Tensor) -> None:
        if not self._sync:
            return
        bucket = self._bucket_of[id(p)]
        bucket.ready += 1
        if self._next:  # MPI moves a message on only inside its calls: let it, between gradients
            from mpi4py import MPI
            MPI.Request.Testall([b.request for b in self._buckets[:self._next]])
        while self._next < len(self._buckets) and \
                self._buckets[self._next].ready == len(self._buckets[self._next].params):
            self._start(self._buckets[self._next])
            self._next += 1
        if self._next == len(self._buckets):
            self._finish()

    def _start(self, bucket: _Bucket) -> None:
        from mpi4py import MPI
        t0 = time.perf_counter()
        bucket.pack()
        bucket.request = dist._world.comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)
        self.comm_seconds += time.perf_counter() - t0

    def _finish(self) -> None:
        from mpi4py import MPI
        t0 = time.perf_counter()
        MPI.Request.Waitall([b.request for b in self._buckets])
        self.wait_seconds += time.perf_counter() - t0
        for b in self._buckets:
            b.unpack(self._world)
            b.ready, b.request = 0, None
        self._next = 0

    # -- construction ----------------------------------------------------------------------------
    @staticmethod
    def _make_buckets(params: list[Tensor], cap_bytes: float) -> list[_Bucket]:
        buckets, current, size = [], [], 0
        for p in params:
            if current and (size + p.numel() * p.dtype.itemsize > cap_bytes or p.dtype != current[0].dtype):
                buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += p.numel() * p.dtype.itemsize
        if current:
            buckets.append(_Bucket(current))
        return buckets

    def _check_same_model(self) -> None:
        mine = [(name, tuple(p.shape), str(p.dtype)) for name, p in self.module.named_parameters()]
        mine += [(name, tuple(b.shape), str(b.dtype)) for name, b in self.module.named_buffers() if b is not None]
        everyone: list[Any] = [None] * self._world
        dist.all_gather_object(everyone, mine)
        for rank, theirs in enumerate(everyone):
            if theirs != mine:
                diff = next(((a, b) for a, b in zip(mine, theirs) if a != b), None)
                where = (f"{diff[0]} here against {diff[1]} on rank {rank}" if diff
                         else f"{len(mine)} tensors here against {len(theirs)} on rank {rank}")
                raise RuntimeError(f"DistributedDataParallel: rank {dist.get_rank()} and rank {rank} hold "
                                   f"different models ({where}); build the same model on every rank")


__all__ = ["DistributedDataParallel"]
