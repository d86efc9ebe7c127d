"""A team of threads, one per core, each working through its own share of a batch.

Inside a U-Net the matrix products of a convolution are narrow (16 to 128 rows) and, for a
chunk of images, short. OpenBLAS splits every product over all cores, so each core gets a
sliver and the cores wait for one another after every product; between products, im2col's
copies, the Winograd transforms and col2im run on one core while the others idle. The images of
a batch are independent, so here each core gets whole images instead: one thread per core
unfolds, multiplies and folds back its own images, and the threads meet once, at the end.
Measured on 2 cores (benchmarks/RESULTS.md): conv2d 16x64x64x64 forward+backward went from
90-95 to 67-72 ms, and a U-Net training step at 16x3x64x64 from 195-226 to 147-171 ms.

While a call runs, every share's products and Numba loops are single-threaded, so the cores
are never oversubscribed; afterwards the calling thread gets its OpenBLAS and Numba counts
back (OpenBLAS's "per-thread" count turned out to be process-wide in NumPy's wheels, so it is
held at 1 from before the first share starts until the last one ends, and then restored).
There is no team -- ``run`` calls its function once, on the calling thread, for the whole
range -- where that cannot be arranged: NumPy's BLAS is not an OpenBLAS with that setting,
Numba's threading layer is not thread-safe (``workqueue``), only one core is available, or
TEAM_ENV says 1.
"""
import itertools
import os
import queue
import threading
import time

import numba
import numpy as np
from numba.core import cgutils
from numba.extending import intrinsic

from .. import _blas

TEAM_ENV = "TINYPIX_TEAM"  # how many threads; default: the cores this process may run on
MIN_WORK = 1 << 16         # fewer elements than this: not worth waking the team (~55 us)
AWAKE_SECONDS = 5e-4       # how long a caller done with its share waits for the others awake
WATCH_SECONDS = 1e-3       # how long a helper done with a share watches for the next one awake
_team = None               # (process id, _Team or None, its size), made on first use
_member = threading.local()  # .on_team is True while a thread works on a share
_making = threading.Lock()   # held while the team is made


def _wanted():
    """TEAM_ENV's count, or the cores this process may run on."""
    text = os.environ.get(TEAM_ENV, "")
    if not text:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{TEAM_ENV}={text!r}: expected a whole number of threads, 1 or more "
                         f"(1 runs every convolution on the calling thread)")
    return int(text)


class _Team:
    """The calling thread and n - 1 helpers, each helper waiting on its own inbox.

    A call puts shares 1.. in the helpers' inboxes, works through share 0 itself, and collects
    the helpers' results from a queue of its own (which keeps calls from different threads
    apart). The caller working, rather than waiting for n helpers, wakes one thread fewer per
    call: the small U-Net step of benchmarks/unet.py ran 127-131 ms against 133-135 (medians,
    alternating steps), with fewer slow steps. A ThreadPoolExecutor, whose threads all wait on
    one shared queue, cost twice as much per call (110 us against 55).

    Waiting costs most where a thread goes to sleep: on a virtual machine a sleeping thread
    takes 50-200 us to wake, and a U-Net step makes about 100 calls. So between calls a helper
    first watches its bell (``bells[k]``, rung after each put) for WATCH_SECONDS, and a caller
    done with its share watches the helpers' ``finished`` marks for AWAKE_SECONDS, each in
    ``_watch``, which holds no GIL while it loops. The queues stay the truth: a missed bell or
    mark only means a wait on the queue."""

    def __init__(self, n, set_blas_threads):
        self.set_blas_threads = set_blas_threads
        self.lock, self.calls, self.blas_threads = threading.Lock(), 0, None
        self.inboxes = [queue.SimpleQueue() for _ in range(n - 1)]
        # one row of 128 bytes per helper, so that no two threads write to one cache line
        self.bells, self.finished = np.zeros((n - 1, 16), np.int64), np.zeros((n - 1, 16), np.int64)
        self.ids = itertools.count(1)  # call numbers (next() on it is atomic under the GIL)
        self.watch_loops = _loops_per_second() * WATCH_SECONDS
        for k, inbox in enumerate(self.inboxes):
            threading.Thread(target=self._serve, args=(k, inbox), name=f"tinypix-team-{k + 1}",
                             daemon=True).start()

    def _serve(self, k, inbox):
        """A helper's life: run shares, its Numba loops and products on itself."""
        numba.set_num_threads(1)
        _member.on_team = True
        bell, finished, call = self.bells[k:k + 1], self.finished[k:k + 1], 0
        while True:
            rung = int(bell[0, 0])
            if inbox.empty():  # mark the last call finished, then watch for the next one
                _watch(bell, rung + 1, int(self.watch_loops), finished, call)
            fn, (start, stop), call, done = inbox.get()
            self.set_blas_threads(1)  # (needed where the count really is per thread)
            done.put((k + 1,) + _outcome(fn, start, stop))

    def _hold_blas(self, hold):
        """Hold OpenBLAS at one thread while any call runs (hold), or let go (not hold). In
        some builds (NumPy's wheels among them) the "thread-local" count is process-wide, so
        calls from several threads that overlap share one hold: the first in saves the count,
        the last out gives it back. (Where the count really is per thread, a thread that joins
        a hold keeps 1 afterwards: slower products on it, not wrong ones.)"""
        with self.lock:
            if hold:
                threads = self.set_blas_threads(1)
                if self.calls == 0:
                    self.blas_threads = threads
                self.calls += 1
            else:
                self.calls -= 1
                if self.calls == 0:
                    self.set_blas_threads(self.blas_threads)

    def run(self, fn, pieces):
        # Every share runs single-threaded, the caller's too; the caller gets its counts back.
        self._hold_blas(True)
        numba_threads = numba.get_num_threads()
        if numba_threads != 1:  # (asking is cheaper than setting: ~10 us a call, 200 a step)
            numba.set_num_threads(1)
        _member.on_team = True
        done, call, helpers = queue.SimpleQueue(), next(self.ids), len(pieces) - 1
        try:
            for k, (inbox, piece) in enumerate(zip(self.inboxes, pieces[1:])):
                inbox.put((fn, piece, call, done))
                self.bells[k, 0] += 1  # (two callers at once may lose a ring: a wait on the queue)
            results = [_outcome(fn, *pieces[0])] + [None] * helpers
            # watch for the helpers' marks; they set theirs with the GIL let go
            _watch(self.finished[:helpers], call,
                   int(self.watch_loops * AWAKE_SECONDS / WATCH_SECONDS / helpers))  # (a loop reads each)
            for _ in pieces[1:]:  # every share ends before anything is raised
                k, ok, value = done.get()
                results[k] = (ok, value)
        finally:
            _member.on_team = False
            if numba_threads != 1:
                numba.set_num_threads(numba_threads)
            self._hold_blas(False)
        for ok, value in results:
            if not ok:
                raise value
        return [value for _, value in results]


@intrinsic
def _read_fresh(typingctx, flags, i):
    """flags[i], read from memory every time it is asked for (an atomic load with acquire
    order): a plain read in a loop that never writes may be done once, before the loop."""
    sig = flags.dtype(flags, i)

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        where = cgutils.get_item_pointer(context, builder, sig.args[0], array, [args[1]])
        return builder.load_atomic(where, "acquire", 8)
    return sig, codegen


@intrinsic
def _write_through(typingctx, flags, i, value):
    """flags[i] = value, stored at once (an atomic store with release order), so that what
    this thread wrote before is seen by a thread that reads the new value with _read_fresh."""
    sig = numba.types.void(flags, i, value)

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        where = cgutils.get_item_pointer(context, builder, sig.args[0], array, [args[1]])
        builder.store_atomic(context.cast(builder, args[2], sig.args[2], sig.args[0].dtype),
                             where, "release", 8)
        return context.get_dummy_value()
    return sig, codegen


@numba.njit(nogil=True, cache=True)
def _watch(flags, value, loops, mark=None, mark_value=0):
    """Set mark[0, 0] = mark_value first (if mark is given); then loop, holding no GIL, until
    every flags[k, 0] is at least value, at most ``loops`` times. True if they got there.
    flags and mark: int64 (rows, 16) arrays."""
    if mark is not None:
        _write_through(mark[0], 0, mark_value)
    for _ in range(loops):
        ready = True
        for k in range(flags.shape[0]):
            ready &= _read_fresh(flags[k], 0) >= value
        if ready:
            return True
    return False


def _loops_per_second():
    """How many of _watch's loops (over one flag that stays unset) run in a second here."""
    idle, loops = np.zeros((1, 16), np.int64), 20000
    _watch(idle, 1, 1)  # compiled (or loaded from the cache) first
    start = time.perf_counter()
    _watch(idle, 1, loops)
    return loops / max(time.perf_counter() - start, 1e-9)


def _outcome(fn, start, stop):
    """(True, fn(start, stop)), or (False, the exception it raised)."""
    try:
        return True, fn(start, stop)
    except BaseException as error:  # raised on the calling thread, by run
        return False, error


def size():
    """How many threads the team has, the calling one included; 1 means there is no team."""
    global _team
    if _team is None or _team[0] != os.getpid():  # (a forked child has none of the threads)
        with _making:  # (threads that arrive together make one team)
            if _team is None or _team[0] != os.getpid():
                n = _wanted()
                setting = _blas.thread_local_setting()
                numba.get_num_threads()  # starts Numba's threading layer, so it can be asked for
                if setting is None or numba.threading_layer() == "workqueue":
                    n = 1
                _team = (os.getpid(), _Team(n, setting) if n > 1 else None, n)
    return _team[2]


def shares(n):
    """range(n) cut into at most size() contiguous (start, stop) pieces whose lengths differ by
    at most one."""
    parts = max(1, min(size(), n))
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


def run(fn, n, work):
    """[fn(start, stop) for (start, stop) in shares(n)], the shares on the team's threads at once.

    work is about how many elements the whole call reads and writes. Below MIN_WORK, with one
    share, or when called from inside a share (a nested call), fn runs on the calling thread
    for all of range(n). An exception raised by fn is raised here, once every share ended."""
    if work < MIN_WORK or getattr(_member, "on_team", False):
        return [fn(0, n)]
    pieces = shares(n)
    if len(pieces) == 1:
        return [fn(0, n)]
    return _team[1].run(fn, pieces)
