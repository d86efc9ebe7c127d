"""Processes that train together over MPI, with ``torch.distributed``'s names.

    mpiexec -n 4 python train.py           # four processes, one program

    import tinypix.distributed as dist
    dist.init_process_group("mpi")          # rank and world size come from MPI
    dist.get_rank(), dist.get_world_size()  # 0..3, 4
    dist.all_reduce(t)                      # t becomes the sum of every rank's t, in place

A plain ``python train.py`` is a world of one, where every collective leaves its tensors as they
are, so the same program runs with and without ``mpiexec``. MPI comes from mpi4py (the
``distributed`` extra: ``pip install tinypix[distributed]`` brings mpi4py and an MPICH wheel).

NumPy arrays go to MPI as buffers, without copies. CuPy arrays are staged through the host (a
copy each way; the log says so once), since this module does not set up NCCL.

Faults: a collective waits for every rank, so one rank that dies or stops early would leave the
others waiting for ever. ``init_process_group`` therefore makes the process part of the job: an
exception that ends a rank's program aborts the whole job (``MPI_Abort``, which mpiexec turns
into a non-zero exit for all), with a line naming the rank; a rank whose program ends while the
others do not reach their end within ``exit_grace`` seconds aborts the job too. Call
``destroy_process_group()`` at the end of a program to leave the job cleanly.
"""
from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import get_array_module

if TYPE_CHECKING:
    from .tensor import Tensor

log = logging.getLogger(__name__)

# Environment variables by which MPI launchers (MPICH's hydra, Open MPI, PMIx) tell a process
# the size of its job.
_LAUNCHER_SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


class ReduceOp:
    """How ``all_reduce`` combines the ranks' tensors (PyTorch's ``dist.ReduceOp``)."""
    SUM, AVG, PRODUCT, MIN, MAX = "sum", "avg", "product", "min", "max"


class _World:
    """The job this process belongs to: an MPI communicator, or a world of one (``comm`` None)."""

    def __init__(self, comm: Any, exit_grace: float) -> None:
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self.exit_grace = exit_grace
        self.staged_logged = False


_world: _World | None = None
_previous_excepthook = None


def is_available() -> bool:
    """Whether mpi4py can be imported (the ``distributed`` extra is installed)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def launched_size() -> int:
    """The job size an MPI launcher announced to this process (1 when started without one)."""
    for name in _LAUNCHER_SIZES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def init_process_group(backend: str = "mpi", *, exit_grace: float = 10.0) -> None:
    """Join the job: rank and world size from MPI (a world of one without a launcher).

    Args:
        backend: 'mpi' (the only one).
        exit_grace: seconds a rank whose program has ended waits for the others to end theirs
            before it aborts the job (see the module's docstring on faults).
    """
    global _world, _previous_excepthook
    if backend != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not supported; use 'mpi' "
                         f"(launch with mpiexec -n N)")
    if _world is not None:
        raise RuntimeError("init_process_group: this process is already in a process group; "
                           "call destroy_process_group() first")
    size = launched_size()
    if not is_available():
        if size > 1:
            raise RuntimeError(f"init_process_group: launched as one of {size} processes, but mpi4py is not "
                               f"installed; install the extra: pip install tinypix[distributed]")
        _world = _World(None, exit_grace)
        return
    from mpi4py import MPI
    _world = _World(MPI.COMM_WORLD.Dup(), exit_grace)
    if _world.size > 1:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_exception
        atexit.register(_leave_at_exit)


def destroy_process_group() -> None:
    """Leave the job: wait until every rank gets here, then free the communicator."""
    global _world
    world = _require("destroy_process_group")
    if world.comm is not None:
        world.comm.Barrier()
        world.comm.Free()
    _restore_hooks()
    _world = None


def is_initialized() -> bool:
    return _world is not None


def get_rank() -> int:
    """This process's rank, 0 .. world size - 1."""
    return _require("get_rank").rank


def get_world_size() -> int:
    return _require("get_world_size").size


def barrier() -> None:
    """Wait until every rank has called barrier."""
    world = _require("barrier")
    if world.comm is not None:
        world.comm.Barrier()


def all_reduce(tensor: Tensor, op: str = ReduceOp.SUM) -> None:
    """Combine every rank's ``tensor`` (same shape and dtype on all) into each, in place."""
    world = _require("all_reduce")
    if op not in (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX):
        raise ValueError(f"all_reduce: unknown op {op!r}; use dist.ReduceOp.SUM, AVG, PRODUCT, MIN or MAX")
    if world.comm is None:
        return
    from mpi4py import MPI
    mpi_op = {"sum": MPI.SUM, "avg": MPI.SUM, "product": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}[op]
    with _host_buffer(world, tensor, "all_reduce") as buf:
        world.comm.Allreduce(MPI.IN_PLACE, buf, op=mpi_op)
        if op == ReduceOp.AVG:
            buf /= world.size


def broadcast(tensor: Tensor, src: int = 0) -> None:
    """Copy rank ``src``'s ``tensor`` into every rank's, in place."""
    world = _require("broadcast")
    _check_rank("broadcast", src, world)
    if world.comm is None:
        return
    with _host_buffer(world, tensor, "broadcast") as buf:
        world.comm.Bcast(buf, root=src)


def all_gather(tensor_list: list[Tensor], tensor: Tensor) -> None:
    """Fill ``tensor_list[r]`` with rank r's ``tensor``, on every rank (list of world-size tensors)."""
    world = _require("all_gather")
    if len(tensor_list) != world.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors; give one per rank "
                         f"({world.size})")
    for t in tensor_list:
        if t.shape != tensor.shape or t.dtype != tensor.dtype:
            raise ValueError(f"all_gather: every tensor of tensor_list must have the shape {tensor.shape} and "
                             f"dtype {tensor.dtype} of the tensor sent, got {t.shape} {t.dtype}")
    if world.comm is None:
        tensor_list[0].data[...] = tensor.data
        return
    gathered = np.empty((world.size,) + tensor.shape, dtype=tensor.dtype)
    with _host_buffer(world, tensor, "all_gather") as buf:
        world.comm.Allgather(buf, gathered)
    for t, part in zip(tensor_list, gathered):
        t.data[...] = get_array_module(t.data).asarray(part)


def all_gather_object(object_list: list[Any], obj: Any) -> None:
    """Fill ``object_list[r]`` with rank r's ``obj`` (pickled between the job's own processes)."""
    world = _require("all_gather_object")
    if len(object_list) != world.size:
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries; give one per "
                         f"rank ({world.size})")
    object_list[:] = [obj] if world.comm is None else world.comm.allgather(obj)


# -- internals ------------------------------------------------------------------------------------
def _require(op: str) -> _World:
    if _world is None:
        raise RuntimeError(f"{op}: no process group; call tinypix.distributed.init_process_group() first")
    return _world


def _check_rank(op: str, rank: int, world: _World) -> None:
    if not 0 <= rank < world.size:
        raise ValueError(f"{op}: rank {rank} is outside the world of {world.size} processes")


class _host_buffer:
    """The tensor's array as an MPI buffer: itself where it is a contiguous NumPy array; else a
    host copy (CuPy, or a strided view), written back on leaving the block."""

    def __init__(self, world: _World, tensor: Any, op: str) -> None:
        self.tensor, self.array = tensor, tensor.data
        if not isinstance(self.array, np.ndarray) and not world.staged_logged:
            log.info("%s: CuPy arrays go through host memory (no NCCL set up)", op)
            world.staged_logged = True

    def __enter__(self) -> np.ndarray:
        a = self.array
        self.direct = isinstance(a, np.ndarray) and a.flags.c_contiguous
        self.buf = a if self.direct else np.ascontiguousarray(get_array_module(a).asnumpy(a)
                                                              if not isinstance(a, np.ndarray) else a)
        return self.buf

    def __exit__(self, *exc: object) -> None:
        if not self.direct:
            self.array[...] = get_array_module(self.array).asarray(self.buf)


def _abort(reason: str, status: int = 1) -> None:
    """End every rank of the job (they would otherwise wait for ever in their next collective)."""
    world = _world
    if world is not None and world.comm is not None and world.size > 1:
        sys.stderr.write(f"tinypix.distributed: rank {world.rank} of {world.size} {reason}; aborting the job\n")
        sys.stderr.flush()
        world.comm.Abort(status)


def _abort_on_exception(kind, value, tb):
    """sys.excepthook while in a job: report, then end every rank."""
    (_previous_excepthook or sys.__excepthook__)(kind, value, tb)
    _abort(f"failed ({kind.__name__}: {value})")


def _leave_at_exit():
    """At a rank's exit without destroy_process_group: wait for the others to end too (a
    non-blocking barrier), or abort the job when they do not within exit_grace seconds."""
    world = _world
    if world is None or world.comm is None:
        return
    request, deadline = world.comm.Ibarrier(), time.monotonic() + world.exit_grace
    while not request.Test():
        if time.monotonic() > deadline:
            _abort(f"ended its program, and the others did not end theirs within {world.exit_grace:g} s")
        time.sleep(0.01)


def _restore_hooks():
    global _previous_excepthook
    if sys.excepthook is _abort_on_exception:
        sys.excepthook = _previous_excepthook or sys.__excepthook__
    _previous_excepthook = None
    atexit.unregister(_leave_at_exit)


__all__ = ["ReduceOp", "all_gather", "all_gather_object", "all_reduce", "barrier", "broadcast",
           "destroy_process_group", "get_rank", "get_world_size", "init_process_group", "is_available",
           "is_initialized", "launched_size"]
