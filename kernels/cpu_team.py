"""A team of threads for the CPU engine: each call's work is cut into shares, one per thread.

The matrix products inside a small network's convolutions are narrow (16 to 128 rows). Left to
OpenBLAS, each product is split over all cores, every core gets a sliver, and the cores wait for
one another after each product; the copies and loops between products (im2col, the Winograd
transforms, batch norm) would run on one core. The images of a batch, and the channels of a
norm, are independent, so here each thread takes whole images (or channels): it unfolds,
multiplies and folds back its own, its products on one BLAS thread, and the threads meet once,
at the end of the call.

Why this is safe to use anywhere:
- The team is plain Python threads. They run Numba functions compiled with ``nogil=True`` and
  NumPy's products, both of which let go of the GIL. No Numba parallel loop is used, so no
  OpenMP runtime is ever started, and Numba's settings are never touched.
- fork: a child process has none of its parent's threads, so it starts with no team and makes
  its own on its first call (``os.register_at_fork``).
- Calls from several threads at once: every call collects its results on a queue of its own,
  no share waits for another, and a call made from inside a share runs on that thread.
- BLAS threads: while shares run, NumPy's BLAS is held at one thread through threadpoolctl.
  In NumPy's OpenBLAS that count is process-wide: the first call in saves it, the last one out
  (on whichever thread) puts it back. Where another thread holds threadpoolctl's control of
  it (threadpoolctl lets one thread at a time set it), tinypix leaves it alone and runs the
  call on the calling thread. A BLAS whose count is per thread (OpenMP-based) is set to one
  thread in each helper, and in the caller for the length of each call. A threadpoolctl limit
  that another thread enters while a call holds the count sees one thread, and puts back one
  thread when it ends: that is threadpoolctl's rule of one controlling thread at work.
- Results: how a call is cut depends on the team's size; what is computed does not. A sum over
  shares (a weight gradient) is added up in another order, nothing more (cpu_winograd's, in
  chunks that the shapes fix: in the same order).

The team's size: ``set_num_threads(n)`` (also ``tinypix.set_num_threads``), else the environment
variable TINYPIX_NUM_THREADS, else the number of cores this process may run on. With 1 there is
no team: every call runs on the calling thread, with the BLAS threads the user left.
"""
from __future__ import annotations

import os
import queue
import threading

ENV_VAR = "TINYPIX_NUM_THREADS"
MIN_SHARE = 1 << 15  # elements read or written per share, at least: waking a thread costs more

_size = None                 # set_num_threads's count, or None
_helpers = []                # the helpers' inboxes; the list only grows (up to size - 1)
_local = threading.local()   # .on_team: this thread is working on a share
_making = threading.Lock()   # held while helpers are started
_holding = threading.Lock()  # guards _held, _limiter and _holder
_held, _limiter = 0, None    # calls holding BLAS at one thread; threadpoolctl's limiter
_holder = None               # the thread that set it to one
_controller = None           # threadpoolctl's ThreadpoolController for the BLAS libraries
_per_thread = False          # whether that count is per thread (an OpenMP-based BLAS)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (the calling one included) for tinypix's CPU kernels; 1 turns the team off."""
    global _size
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a whole number of threads, 1 or more, got {n!r}")
    _size = n


def get_num_threads() -> int:
    """How many threads tinypix's CPU kernels use, the calling one included."""
    if _size is not None:
        return _size
    text = os.environ.get(ENV_VAR, "")
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{ENV_VAR}={text!r}: expected a whole number of threads, 1 or more "
                             f"(1 runs every kernel on the calling thread)")
        return int(text)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def shares(n, work):
    """range(n) cut into contiguous (start, stop) pieces, as many as there are threads but no
    more than ``work // MIN_SHARE`` (work: about how many elements the call reads and writes),
    their lengths differing by at most one."""
    parts = max(1, min(get_num_threads(), n, work // MIN_SHARE))
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


def run(fn, n, work):
    """[fn(start, stop) for each share of range(n)], the shares on the team's threads at once.

    A call made from inside a share, or with one share, runs fn(0, n) on the calling thread.
    An exception raised by fn is raised here, once every share has ended."""
    pieces = [(0, n)] if getattr(_local, "on_team", False) else shares(n, work)
    if len(pieces) == 1 or not _hold_blas():
        return [fn(0, n)]
    inboxes = _inboxes(len(pieces) - 1)
    done = queue.SimpleQueue()
    try:
        for k, (inbox, piece) in enumerate(zip(inboxes, pieces[1:]), 1):
            inbox.put((fn, piece, k, done))
        outcomes = [_share(fn, *pieces[0])] + [None] * len(inboxes)
        for _ in inboxes:  # every share ends before anything is raised
            k, outcome = done.get()
            outcomes[k] = outcome
    finally:
        _release_blas()
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]


def run_and_add(fn, n, work):
    """The sum of run(fn, n, work)'s results (arrays of one shape, each share's own), added in
    place into the first share's."""
    parts = run(fn, n, work)
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total


def run_chunks(fn, n, chunk, work):
    """[fn(start, stop) for each chunk of range(n)] -- [0, chunk), [chunk, 2*chunk), ... -- in
    order, with runs of whole chunks as the team's shares. Where results are summed, summing
    them in this order gives the same numbers whatever the team's size."""
    starts = range(0, n, chunk)

    def share(first, last):
        return [fn(starts[k], min(starts[k] + chunk, n)) for k in range(first, last)]
    return [result for part in run(share, len(starts), work) for result in part]


def _share(fn, start, stop):
    """(True, fn(start, stop)) or (False, the exception), run as a share: nested calls stay here."""
    _local.on_team = True
    try:
        return True, fn(start, stop)
    except BaseException as error:  # raised on the calling thread, by run
        return False, error
    finally:
        _local.on_team = False


def _serve(inbox):
    """A helper's life: run the shares put in its inbox, its products on one BLAS thread."""
    if _per_thread:
        _controller.limit(limits=1)  # (for good: the thread is tinypix's own)
    while True:
        fn, (start, stop), k, done = inbox.get()
        done.put((k, _share(fn, start, stop)))


def _inboxes(count):
    """The inboxes of ``count`` helpers, started on first need."""
    if len(_helpers) < count:
        with _making:
            while len(_helpers) < count:
                inbox = queue.SimpleQueue()
                threading.Thread(target=_serve, args=(inbox,), daemon=True,
                                 name=f"tinypix-team-{len(_helpers) + 1}").start()
                _helpers.append(inbox)
    return _helpers[:count]


def _blas():
    """threadpoolctl's controller of the BLAS libraries, made on first use."""
    global _controller, _per_thread
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        controller = ThreadpoolController().select(user_api="blas")
        _per_thread = any(lib.threading_layer == "openmp" for lib in controller.lib_controllers
                          if hasattr(lib, "threading_layer"))
        _controller = controller
    return _controller


def _hold_blas():
    """Hold BLAS at one thread for a call; False, changing nothing, where another thread holds
    threadpoolctl's control of the count (the call then runs on the calling thread alone)."""
    global _held, _limiter, _holder
    with _holding:
        controller = _blas()
        if _per_thread or _held == 0:
            limiter = controller.limit(limits=1)
            if any(lib.get_num_threads() != 1 for lib in controller.lib_controllers):
                return False  # threadpoolctl ignored us: another thread controls the count
            _local.limiter = limiter
            if not _per_thread:
                _limiter, _holder = limiter, threading.current_thread()
        _held += 1
        return True


def _release_blas():
    """The end of a call: a per-thread count goes back on this thread; a process-wide one when
    the last call ends, on whichever thread, and then no thread is left in control of it."""
    global _held, _limiter, _holder
    with _holding:
        _held -= 1
        if _per_thread:
            _local.limiter.restore_original_limits()
        elif _held == 0:
            if _holder is not threading.current_thread():
                _let_go_of_blas(force=True)  # take the control over from our own thread that set it
            _limiter.restore_original_limits()
            _let_go_of_blas()
            _limiter = _holder = None


def _let_go_of_blas(force=False):
    """threadpoolctl (3.6 and later) lets one thread at a time set OpenBLAS's process-wide count:
    the first to set it, until that thread lets go. Let go on this thread, or (force) for the
    thread that set it."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # an older threadpoolctl: any thread may set the count
        return
    if hasattr(OpenBLASController, "clear_controlling_thread"):
        OpenBLASController.clear_controlling_thread(force=force)


def _after_fork_in_child():
    """The child has only the thread that forked: no helpers, and no call in flight."""
    global _making, _holding, _held, _limiter, _holder
    _helpers.clear()
    _making, _holding = threading.Lock(), threading.Lock()
    _local.on_team = False
    if _held and not _per_thread:  # forked while a call held BLAS at one thread: the count back
        _let_go_of_blas(force=True)
        _limiter.restore_original_limits()
        _let_go_of_blas()
    _held, _limiter, _holder = 0, None, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
