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
- BLAS threads: while shares run, NumPy's BLAS is held at one thread through threadpoolctl (in
  NumPy's OpenBLAS that count is process-wide), and the count the user left is put back when
  the last overlapping call ends.
- Results: how a call is cut depends on the team's size; what is computed does not. A sum over
  shares (a weight gradient) is added up in another order, nothing more.

The team's size: ``set_num_threads(n)`` (also ``tinypix.set_num_threads``), else the environment
variable TINYPIX_NUM_THREADS, else the number of cores this process may run on. With 1 there is
no team: every call runs on the calling thread, with the BLAS threads the user left.
"""
import os
import queue
import threading

ENV_VAR = "TINYPIX_NUM_THREADS"
MIN_SHARE = 1 << 15  # elements read or written per share, at least: waking a thread costs more

_size = None                 # set_num_threads's count, or None
_helpers = []                # the helpers' inboxes; the list only grows (up to size - 1)
_local = threading.local()   # .on_team: this thread is working on a share
_making = threading.Lock()   # held while helpers are started
_holding = threading.Lock()  # guards _held and _limiter
_held, _limiter = 0, None    # calls holding BLAS at one thread; threadpoolctl's limiter
_controller = None           # threadpoolctl's ThreadpoolController for the BLAS libraries


def set_num_threads(n):
    """Use ``n`` threads (the calling one included) for tinypix's CPU kernels; 1 turns the team off."""
    global _size
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a whole number of threads, 1 or more, got {n!r}")
    _size = n


def get_num_threads():
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
    if len(pieces) == 1:
        return [fn(0, n)]
    inboxes = _inboxes(len(pieces) - 1)
    done = queue.SimpleQueue()
    _hold_blas()
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
    """A helper's life: run the shares put in its inbox."""
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


def _hold_blas():
    """Hold NumPy's BLAS at one thread while any call runs; the first call in saves the count."""
    global _held, _limiter, _controller
    with _holding:
        if _held == 0:
            if _controller is None:
                from threadpoolctl import ThreadpoolController
                _controller = ThreadpoolController().select(user_api="blas")
            _free_blas_control()
            _limiter = _controller.limit(limits=1)
        _held += 1


def _release_blas():
    """The last call out, on whichever thread, gives BLAS the count it had before the first in."""
    global _held, _limiter
    with _holding:
        _held -= 1
        if _held == 0:
            _free_blas_control()
            _limiter.restore_original_limits()
            _limiter = None
            _free_blas_control()


def _free_blas_control():
    """threadpoolctl (3.6 and later) lets only one thread set a process-wide OpenBLAS count and
    ignores the others; let go of that, so that the thread holding or releasing now may set it,
    and any thread afterwards (the user's too)."""
    from threadpoolctl import OpenBLASController
    if hasattr(OpenBLASController, "clear_controlling_thread"):
        OpenBLASController.clear_controlling_thread(force=True)


def _after_fork_in_child():
    """The child has only the thread that forked: no helpers, and no call in flight."""
    global _making, _holding, _held, _limiter
    _helpers.clear()
    _making, _holding = threading.Lock(), threading.Lock()
    _local.on_team = False
    if _held:  # forked while a call held BLAS at one thread: the child gets the count back
        _free_blas_control()
        _limiter.restore_original_limits()
        _free_blas_control()
    _held, _limiter = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
