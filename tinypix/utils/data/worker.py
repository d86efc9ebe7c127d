"""What runs inside a DataLoader worker process, and how its batches travel to the main process.

A worker gets tasks ``(epoch, batch number, indices)`` on its own index queue, fetches and collates
the batch, and puts ``(epoch, batch number, pickled batch)`` on the result queue shared by all
workers. Tensors travel as their NumPy arrays and are rebuilt with ``tinypix.from_numpy`` in the
main process. An exception travels as a ``WorkerError`` (its type and traceback as text) and is
raised again in the main process.
"""
from __future__ import annotations

import io
import os
import pickle
import queue
import random
import sys
import traceback
from typing import Any, Callable, NoReturn

import numpy as np

from ... import creation
from ...creation import from_numpy
from ...kernels import set_num_threads
from ...tensor import Tensor
from .dataset import Dataset
from .fetch import IterableFetcher, MapFetcher

# How often a waiting worker checks that its parent is still alive, and a waiting main process
# that its workers are.
POLL_INTERVAL = 0.5

_worker_info = None


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker: ``id`` (0 .. num_workers - 1),
    ``num_workers``, ``seed`` (this worker's seed: the loader's base seed for this pass + id) and
    ``dataset`` (this process's copy of the dataset). Read-only."""

    __slots__ = ("id", "num_workers", "seed", "dataset")
    id: int
    num_workers: int
    seed: int
    dataset: Dataset

    def __init__(self, id: int, num_workers: int, seed: int, dataset: Dataset) -> None:
        for name, value in zip(self.__slots__, (id, num_workers, seed, dataset)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise RuntimeError(f"WorkerInfo: cannot set {name!r}; a worker's information is read-only")

    def __repr__(self) -> str:
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
                f"dataset={type(self.dataset).__name__})")


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process, its ``WorkerInfo``; in the main process, None.

    Use it in a dataset's ``__iter__`` or in ``worker_init_fn`` to give each worker its share of
    the work or its own random stream."""
    return _worker_info


# -- transport ------------------------------------------------------------------------------------
def _rebuild_tensor(array, device, requires_grad):
    t = from_numpy(array)
    t = t if device == "cpu" else t.to(device)
    return t.requires_grad_() if requires_grad else t


class _Pickler(pickle.Pickler):
    """Pickles a Tensor as its NumPy array, wherever it sits in the batch."""

    def reducer_override(self, obj):
        if not isinstance(obj, Tensor):
            return NotImplemented
        if obj.requires_grad and not obj.is_leaf:
            raise RuntimeError(f"a Tensor of shape {obj.shape} that requires grad and is the result of an op cannot "
                               f"leave the worker with its graph; .detach() it in the dataset or collate_fn")
        array = obj.data if obj.device == "cpu" else obj.cpu().data
        return _rebuild_tensor, (np.asarray(array), obj.device, obj.requires_grad)


def dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


loads = pickle.loads


class KeyErrorMessage(str):
    """A KeyError shows repr() of its message; this keeps the traceback's line breaks readable."""

    def __repr__(self) -> str:
        return self


class WorkerError:
    """An exception raised in a worker, sent to the main process and raised again there."""

    def __init__(self, worker_id: int, where: str) -> None:
        exc_type, exc, _ = sys.exc_info()
        self.exc_type = exc_type
        self.message = (f"Caught {exc_type.__name__} in DataLoader worker process {worker_id} {where}.\n"
                        f"Original {''.join(traceback.format_exc())}")

    def reraise(self) -> NoReturn:
        message = KeyErrorMessage(self.message) if self.exc_type is KeyError else self.message
        try:
            exc = self.exc_type(message)
        except Exception:  # a type that cannot be built from one message, or None (see _send)
            exc = RuntimeError(message)
        raise exc


class StopMarker:
    """The reply of a worker whose IterableDataset has no more items in this pass."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id


# -- the worker process ---------------------------------------------------------------------------
def _seed(seed, base_seed, worker_id):
    """Seed this worker's random generators, so that workers do not all repeat one random stream."""
    random.seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))
    creation.seed_cpu(seed)
    from ...data import transforms  # their own generator, used when called without one
    transforms.manual_seed(np.random.SeedSequence([worker_id, base_seed, 1]))


def _send(result_queue, epoch, idx, reply, worker_id):
    try:
        payload = dumps(reply)
    except Exception:
        if not isinstance(reply, WorkerError):
            reply = WorkerError(worker_id, "while sending the batch to the main process (it must be picklable)")
        try:
            payload = dumps(reply)
        except Exception:  # the exception's own type cannot be pickled: it is raised as RuntimeError
            reply.exc_type = None
            payload = dumps(reply)
    result_queue.put((epoch, idx, payload))


def worker_loop(iterable: bool, dataset: Dataset, index_queue: Any, result_queue: Any, auto_collation: bool,
                collate_fn: Callable[[Any], Any], drop_last: bool, base_seed: int, worker_id: int, num_workers: int,
                worker_init_fn: Callable[[int], None] | None, parent_pid: int) -> None:
    """The body of worker ``worker_id``: answer tasks until it gets None or its parent is gone."""
    global _worker_info
    seed = base_seed + worker_id
    _seed(seed, base_seed, worker_id)
    set_num_threads(1)  # as PyTorch: num_workers processes side by side, not num_workers teams of threads
    _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
    make_fetcher = IterableFetcher if iterable else MapFetcher
    init_error = None
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception:
        init_error = WorkerError(worker_id, "in worker_init_fn")
    fetcher, fetcher_epoch, stopped = None, None, False
    try:
        while True:
            try:
                task = index_queue.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                if os.getppid() != parent_pid:
                    return
                continue
            if task is None:
                return
            epoch, idx, index = task
            if init_error is not None:
                _send(result_queue, epoch, idx, init_error, worker_id)
                continue
            if epoch != fetcher_epoch:  # a new pass: a new iterator over an IterableDataset
                fetcher, fetcher_epoch, stopped = None, epoch, False
            if stopped:
                continue  # this pass's StopMarker went out; the main process expects nothing more
            try:
                if fetcher is None:
                    fetcher = make_fetcher(dataset, auto_collation, collate_fn, drop_last)
                reply = fetcher.fetch(index)
            except StopIteration:
                if not iterable:
                    reply = WorkerError(worker_id, fetcher.stage)
                else:
                    reply, stopped = StopMarker(worker_id), True
            except Exception:
                reply = WorkerError(worker_id, fetcher.stage if fetcher is not None else "in the dataset's __iter__")
            _send(result_queue, epoch, idx, reply, worker_id)
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group; the main process reports it
    finally:
        # Results nobody will read must not keep this process from exiting.
        result_queue.cancel_join_thread()
