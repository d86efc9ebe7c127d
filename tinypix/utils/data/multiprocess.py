"""The main process's side of multi-process loading: start the workers, hand out batches, put the
results back in order, notice errors, dead workers and time-outs, and shut the workers down.

Bookkeeping for one pass: batch number ``n`` goes to a worker as ``(epoch, n, indices)``, the next
worker round the circle; ``prefetch_factor * num_workers`` batches are out at any time. Results
arrive in any order and wait in ``_reorder`` until their turn. ``epoch`` counts passes, so that a
persistent worker's late answers from an abandoned pass are recognised and dropped.
"""
from __future__ import annotations

import itertools
import os
import queue
import time
import weakref
from typing import TYPE_CHECKING, Any

from .dataset import IterableDataset
from .fetch import batch_count
from .sampler import draw_seed
from .worker import POLL_INTERVAL, StopMarker, WorkerError, loads, worker_loop

if TYPE_CHECKING:
    from .dataloader import DataLoader  # which imports this module


class MultiProcessIter:
    """One pass (or, with persistent workers, every pass) over a DataLoader with ``num_workers > 0``."""

    def __init__(self, loader: DataLoader) -> None:
        self._index_sampler = loader._index_sampler
        # What len() needs, not the loader itself: a persistent loader holds its iterator.
        self._length_of = (loader.dataset, loader._index_sampler, loader.batch_size, loader.drop_last)
        self._num_workers = loader.num_workers
        self._prefetch = loader.prefetch_factor * loader.num_workers
        self._persistent = loader.persistent_workers
        self._timeout = loader.timeout
        self._iterable = isinstance(loader.dataset, IterableDataset)
        base_seed = draw_seed(loader.generator)
        context = loader.multiprocessing_context
        self._result_queue = context.Queue()
        self._index_queues, self._workers = [], []
        # Called when this object is collected, at exit, or by _shutdown_workers. Not __del__: when
        # the iterator dies in a reference cycle, its queues die with it and stop sending first.
        self._finalizer = weakref.finalize(self, _stop_workers, os.getpid(), self._workers, self._index_queues,
                                           self._result_queue)
        for worker_id in range(self._num_workers):
            index_queue = context.Queue()
            worker = context.Process(
                target=worker_loop, daemon=True,
                args=(self._iterable, loader.dataset, index_queue, self._result_queue, loader._auto_collation,
                      loader.collate_fn, loader.drop_last, base_seed, worker_id, self._num_workers,
                      loader.worker_init_fn, os.getpid()))
            self._index_queues.append(index_queue)
            try:
                worker.start()
            except Exception as e:
                self._shutdown_workers(wait=False)
                if context.get_start_method() == "fork":
                    raise  # nothing was pickled: e.g. the system refused a new process
                raise RuntimeError(
                    f"DataLoader: could not start worker {worker_id} with the "
                    f"'{context.get_start_method()}' start method, which pickles the dataset, collate_fn and "
                    f"worker_init_fn to send them to the worker: {type(e).__name__}: {e}. Define them at the top "
                    f"level of a module (no lambdas or functions defined inside functions), or use num_workers=0"
                ) from e
            self._workers.append(worker)
        self._epoch = 0
        self.reset()

    def reset(self) -> None:
        """Start a new pass: a new sampler iterator, and the first batches sent out."""
        self._epoch += 1
        self._sampler_iter = iter(self._index_sampler)
        self._send_idx = self._rcvd_idx = 0
        self._task_worker = {}  # batch number -> the worker it went to, until its result is used
        self._reorder = {}  # batch number -> result that came early
        self._active = [True] * self._num_workers  # False once a worker's IterableDataset has ended
        self._next_worker = itertools.cycle(range(self._num_workers))
        for _ in range(self._prefetch):
            self._try_put_index()

    def _try_put_index(self):
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._next_worker)
            if self._active[worker_id]:
                break
        else:
            return  # every worker's IterableDataset has ended
        self._index_queues[worker_id].put((self._epoch, self._send_idx, index))
        self._task_worker[self._send_idx] = worker_id
        self._send_idx += 1

    def __iter__(self) -> MultiProcessIter:
        return self

    def __len__(self) -> int:
        return batch_count(*self._length_of)

    @property
    def alive(self) -> bool:
        """Whether the workers are still there (a persistent loader reuses them)."""
        return self._finalizer.alive

    def __next__(self) -> Any:
        while True:
            # Batches sent to a worker whose IterableDataset has ended will not come: skip them.
            while (self._rcvd_idx < self._send_idx and self._rcvd_idx not in self._reorder
                   and not self._active[self._task_worker[self._rcvd_idx]]):
                del self._task_worker[self._rcvd_idx]
                self._rcvd_idx += 1
            if self._rcvd_idx >= self._send_idx:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            if self._rcvd_idx in self._reorder:
                return self._process(self._reorder.pop(self._rcvd_idx))
            epoch, idx, payload = self._get()
            if epoch != self._epoch:
                continue  # a late answer from an abandoned pass (persistent workers)
            data = loads(payload)
            if isinstance(data, StopMarker):
                self._active[data.worker_id] = False  # its batch number is skipped above
                self._try_put_index()
            elif idx == self._rcvd_idx:
                return self._process(data)
            else:
                self._reorder[idx] = data

    def _process(self, data):
        del self._task_worker[self._rcvd_idx]
        self._rcvd_idx += 1
        self._try_put_index()
        if isinstance(data, WorkerError):
            data.reraise()
        return data

    def _get(self):
        """The next result from any worker; raises if a worker died or ``timeout`` passed."""
        if not self.alive:
            raise RuntimeError("DataLoader: the workers of this pass were shut down after an error; "
                               "start a new pass with iter(loader)")
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = POLL_INTERVAL if deadline is None else max(0.0, min(POLL_INTERVAL, deadline - time.monotonic()))
            try:
                return self._result_queue.get(timeout=wait)
            except queue.Empty:
                pass
            dead = [(i, w) for i, w in enumerate(self._workers) if w.exitcode is not None]
            if dead:
                self._shutdown_workers(wait=False)
                raise RuntimeError("DataLoader: worker process " + ", ".join(
                    f"{i} (pid {w.pid}) exited unexpectedly with "
                    + (f"signal {-w.exitcode}" if w.exitcode < 0 else f"exit code {w.exitcode}")
                    for i, w in dead) + ". It may have run out of memory or crashed in native code; "
                    "num_workers=0 runs the loading in this process, where the error shows")
            if deadline is not None and time.monotonic() >= deadline:
                self._shutdown_workers(wait=False)
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds waiting for a batch "
                                   f"from its workers")

    def _shutdown_workers(self, wait=True):
        """Stop the workers; ``wait=False`` ends them at once (after an error: nothing they do counts)."""
        if not wait and self.alive:
            for worker in self._workers:
                worker.terminate()
        self._finalizer()


def _stop_workers(owner, workers, index_queues, result_queue):
    """Ask the workers to exit, give each a moment to, end those still busy, close the queues."""
    if os.getpid() != owner:  # a forked child holds a copy of the iterator: the workers are not its own
        return
    for index_queue in index_queues:
        index_queue.put(None)
    for worker in workers:
        worker.join(timeout=2 * POLL_INTERVAL)
        if worker.is_alive():  # busy with a long batch: its results are not wanted any more
            worker.terminate()
            worker.join()
    for q in index_queues + [result_queue]:
        q.cancel_join_thread()
        q.close()
