"""Benchmark: the U-Net training step data-parallel over MPI, and a model of scaling it out.

    python -m benchmarks.distributed [--record]

Runs the step of benchmarks/unet.py (16x3x64x64, base 16, depth 3; SGD with momentum) as
- one process on all cores (tinypix's team of threads), the reference;
- ``mpiexec -n 1`` and ``-n 2``, one thread per rank (tinypix.set_num_threads(1)), the global batch of 16 split over the ranks,
  through DistributedDataParallel (SyncBatchNorm) with buckets of 1 MB, so several all-reduces run
  while backward goes on.
Each rank reports: the step's median time; the time to start the buckets' all-reduces and the
time backward's end waits for them ("exposed", which also holds any wait for a slower rank); and,
measured apart, one blocking all-reduce of every gradient ("all-reduce"). Overlap =
1 - exposed / all-reduce: the share of the communication hidden behind the backward pass.

The model (written into RESULTS.md with --record): data parallelism keeps the compute per rank
at t_c (this machine's step on its share) and adds a ring all-reduce of the gradient's B bytes,
2 (N - 1) / N * B / bandwidth + 2 (N - 1) * latency, less the part hidden behind backward.
SyncBatchNorm adds three small all-reduces per layer and step (two forward, one backward), each
about 2 log2(N) latencies. Predicted efficiency = t_c / (t_c + exposed communication).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from benchmarks.common import record, table

BATCH, SIZE, BASE, DEPTH, CLASSES = 16, 64, 16, 3, 4
BUCKET_MB = 1.0


def worker(repeats):
    """One rank's measurements (run under mpiexec, or alone as the single-process reference)."""
    import tinypix
    import tinypix.distributed as dist
    import tinypix.nn.functional as F
    from tinypix.models import UNet
    from tinypix.nn import SyncBatchNorm
    from tinypix.nn.parallel import DistributedDataParallel

    tinypix.tune_process()
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    if os.environ.get("BENCH_ONE_THREAD"):
        tinypix.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 3, SIZE, SIZE), dtype=np.float32)
    y = rng.integers(0, CLASSES, (BATCH, SIZE, SIZE))
    share = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    tx, ty = tinypix.tensor(x[share]), tinypix.tensor(y[share])
    tinypix.manual_seed(0)
    model = UNet(3, CLASSES, base_channels=BASE, depth=DEPTH)
    net = DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(model), bucket_cap_mb=BUCKET_MB)
    opt = tinypix.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step():
        loss = F.cross_entropy(net(tx), ty)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    times, starts, waits = [], [], []
    for _ in range(repeats):
        dist.barrier()
        net.comm_seconds = net.wait_seconds = 0.0
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        starts.append(net.comm_seconds)
        waits.append(net.wait_seconds)
    grads = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    blocking = []
    for _ in range(repeats):
        t = tinypix.tensor(grads.copy())
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        blocking.append(time.perf_counter() - t0)
    result = {"rank": rank, "world": world, "threads": tinypix.get_num_threads(),
              "step_ms": 1e3 * statistics.median(times), "start_ms": 1e3 * statistics.median(starts),
              "exposed_ms": 1e3 * statistics.median(waits), "allreduce_ms": 1e3 * statistics.median(blocking),
              "gradient_bytes": int(grads.nbytes), "buckets": len(net._buckets),
              "syncbn_layers": sum(isinstance(m, SyncBatchNorm) for m in model.modules())}
    everyone = [None] * world
    dist.all_gather_object(everyone, result)
    if rank == 0:
        print("RESULT " + json.dumps(everyone), flush=True)
    dist.destroy_process_group()


def launch(ranks, repeats, one_thread=False):
    """The ranks' results of one configuration (``ranks`` 0: one process without mpiexec)."""
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    command = [sys.executable, "-m", "benchmarks.distributed", "--worker", "--repeats", str(repeats)]
    if ranks:
        command = [mpiexec, "-n", str(ranks), *command]
    # One thread per rank means NumPy's BLAS too (its threads would spin against the other rank's).
    env = dict(os.environ, **({"BENCH_ONE_THREAD": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
                              if one_thread else {}))
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}")
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def efficiency(compute_ms, gradient_bytes, ranks, gbit, latency_us, hidden, sync_collectives):
    """Predicted step efficiency of ``ranks`` ranks: ring all-reduce time of the gradient over a
    ``gbit`` Gb/s network with ``latency_us`` per message, of which the share ``hidden`` overlaps
    the compute of ``compute_ms``; plus SyncBatchNorm's ``sync_collectives`` small all-reduces
    per step, on the critical path, each 2 log2(N) latencies (recursive doubling)."""
    ring_ms = 1e3 * (2 * (ranks - 1) / ranks * gradient_bytes * 8 / (gbit * 1e9)
                     + 2 * (ranks - 1) * latency_us * 1e-6)
    sync_ms = 1e-3 * sync_collectives * 2 * math.ceil(math.log2(ranks)) * latency_us
    exposed = ring_ms * (1 - hidden) + sync_ms
    return compute_ms / (compute_ms + exposed), ring_ms, sync_ms


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--record", action="store_true", help="record the tables in RESULTS.md")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.repeats)
    runs = {"one process, all cores": launch(0, args.repeats),
            "mpiexec -n 1": launch(1, args.repeats, one_thread=True),
            "mpiexec -n 2": launch(2, args.repeats, one_thread=True)}
    rows = []
    for name, ranks in runs.items():
        r = max(ranks, key=lambda r: r["step_ms"])  # the slowest rank sets the pace
        rows.append((name, r["threads"], f"{BATCH // r['world']}", f"{r['step_ms']:.1f}",
                     f"{1e3 * BATCH / r['step_ms']:.0f}",
                     f"{r['allreduce_ms']:.2f}" if r["world"] > 1 else "-",
                     f"{r['start_ms']:.2f}" if r["world"] > 1 else "-",
                     f"{r['exposed_ms']:.2f}" if r["world"] > 1 else "-",
                     f"{max(0.0, 1 - r['exposed_ms'] / r['allreduce_ms']):.0%}" if r["world"] > 1 else "-"))
    measured = table(("run", "threads per rank", "images per rank", "step ms", "images/s", "all-reduce ms",
                      "bucket starts ms", "exposed wait ms", "overlap"), rows)
    two = max(runs["mpiexec -n 2"], key=lambda r: r["step_ms"])
    compute = two["step_ms"] - two["exposed_ms"] - two["start_ms"]
    hidden = max(0.0, 1 - two["exposed_ms"] / two["allreduce_ms"])
    model_rows = []
    for gbit, latency in ((10, 20), (100, 5)):
        for n in (8, 64, 512):
            eff, ring, sync = efficiency(compute, two["gradient_bytes"], n, gbit, latency, hidden,
                                         3 * two["syncbn_layers"])
            model_rows.append((f"{gbit} Gb/s, {latency} us", n, f"{ring:.2f}", f"{sync:.2f}", f"{eff:.1%}"))
    model = table(("network", "ranks", "ring all-reduce ms", "SyncBatchNorm ms", "predicted efficiency"), model_rows)
    note = (f"Weak scaling: every rank keeps 8 images and one thread, so its compute stays t_c = {compute:.1f} ms "
            f"(the measured 2-rank step less its communication); the gradient is "
            f"{two['gradient_bytes'] / 2**20:.2f} MB in {two['buckets']} buckets, and the measured overlap "
            f"({hidden:.0%}) is assumed to hold at scale; the {two['syncbn_layers']} SyncBatchNorm layers add "
            f"{3 * two['syncbn_layers']} latency-bound all-reduces per step that nothing hides.")
    print(measured, model, note, sep="\n\n")
    if args.record:
        record("Data-parallel U-Net step over MPI (CPU)", measured)
        record("Scaling model: ring all-reduce against the measured step", model + "\n\n" + note)


if __name__ == "__main__":
    main()
