"""Run under mpiexec by tests/test_distributed.py: one rank fails while the others wait in a
collective; the job must end (non-zero) instead of hanging. Usage: faults.py raise|exit"""
import sys

import tinypix
import tinypix.distributed as dist

dist.init_process_group("mpi", exit_grace=2.0)
if dist.get_rank() == 1:
    if sys.argv[1] == "raise":
        raise ValueError("a mistake on rank 1")
    sys.exit(0)  # leaves early, without an error
t = tinypix.ones(3)
dist.all_reduce(t)  # the other ranks wait here for rank 1
print("unreachable: the collective finished without rank 1", flush=True)
