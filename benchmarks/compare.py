"""Benchmark: this checkout against an earlier commit and PyTorch, in one run, steps interleaved.

    python -m benchmarks.compare --against COMMIT [--rows conv,unet] [--rounds 5] [--record]

Each row (conv2d forward+backward at conv.py's four shapes, the two U-Net steps of unet.py) is
timed in separate worker processes that stay alive for the whole row: PyTorch; the commit's
tinypix; this checkout's tinypix with the library's defaults; and this checkout's tinypix in a
process that opted in to ``tinypix.tune_process()`` and the environment of
``tinypix.tuning.blas_coretype_advice()``, as the `tinypix` command does (the earlier commits
made those settings at import). The workers take turns, a few steps each, for ``--rounds``
rounds, so that a slow phase of a shared machine lands on every column; each figure is the
median of all timed steps. The commit's tinypix is taken from git (``git archive``), its
kernels/ put inside its package so that it imports without being installed.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from benchmarks.common import record, machine, table  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
CONV_SHAPES = [(16, 64, 64, 64), (16, 128, 32, 128), (8, 3, 128, 32), (4, 256, 16, 256)]
UNET_CONFIGS = [(16, 64, 16, 3), (8, 128, 32, 3)]

WORKER = r"""
import sys, time, json
sys.path.append({repo!r})
if {tune!r}:
    import tinypix
    tinypix.tune_process()
kind, args = {kind!r}, {args!r}
if kind == "conv":
    import numpy as np
    from benchmarks.conv import make_steps
    mine, theirs, _ = make_steps("conv2d", tuple(args), 3, 1, 1, np.random.default_rng(0))
else:
    from benchmarks.unet import steps
    mine, theirs = steps(*args)
step = theirs if {torch!r} else mine
if {torch!r}:
    import os, torch
    torch.set_num_threads(len(os.sched_getaffinity(0)))
for _ in range(2):
    step()
print("ready", flush=True)
for line in sys.stdin:
    times = []
    for _ in range(int(line)):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps(times), flush=True)
"""


def checkout(commit, into):
    """The commit's tinypix package, with its kernels/ inside it, under ``into``; its path."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "tinypix", "kernels"],
                             capture_output=True, check=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    shutil.move(os.path.join(into, "kernels"), os.path.join(into, "tinypix", "kernels"))
    return into


def worker(kind, args, path=None, tune=False, torch=False, env=()):
    """A worker process for one row; it answers a line "k" with the times of k steps."""
    code = WORKER.format(repo=str(REPO), kind=kind, args=list(args), tune=tune, torch=torch)
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ.update(dict(env))
    if path is not None:
        environ["PYTHONPATH"] = path
    if not torch:
        environ["TINYPIX_BENCH_NO_TORCH"] = "1"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=environ, cwd=tempfile.gettempdir())
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the worker for {kind} {args} did not start")
    return proc


def time_row(kind, args, columns, rounds, steps):
    """Median ms per column: the workers take turns, ``steps`` steps each, ``rounds`` times."""
    procs = {name: worker(kind, args, **options) for name, options in columns.items()}
    times = {name: [] for name in procs}
    try:
        for _ in range(rounds):
            for name, proc in procs.items():
                proc.stdin.write(f"{steps}\n")
                proc.stdin.flush()
                times[name] += json.loads(proc.stdout.readline())
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", required=True, help="the earlier commit (any git revision)")
    p.add_argument("--rows", default="conv,unet", help="conv, unet or both (comma-separated)")
    p.add_argument("--conv", help="other conv2d rows instead of conv.py's: N,C,H,K;N,C,H,K;...")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3, help="timed steps per worker per round")
    p.add_argument("--record", action="store_true", help="record the table in RESULTS.md")
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    from tinypix.tuning import blas_coretype_advice
    advice = blas_coretype_advice()
    shapes = [tuple(map(int, row.split(","))) for row in args.conv.split(";")] if args.conv else CONV_SHAPES
    rows = [("conv", shape) for shape in shapes] if "conv" in args.rows else []
    rows += [("unet", config) for config in UNET_CONFIGS] if "unet" in args.rows else []
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        base = checkout(args.against, tmp)
        columns = {"torch": dict(torch=True, tune=True), "before": dict(path=base),
                   "now": dict(), "now, opted in": dict(tune=True, env=advice.items())}
        for kind, shape in rows:
            ms = time_row(kind, shape, columns, args.rounds, args.steps)
            name = (f"conv2d {','.join(map(str, shape))} 3x3" if kind == "conv" else
                    f"U-Net step {shape[0]}x3x{shape[1]}x{shape[1]}, base {shape[2]}")
            out.append((name, *(f"{ms[c]:.1f}" for c in columns), f"{ms['now'] / ms['torch']:.2f}",
                        f"{ms['now, opted in'] / ms['torch']:.2f}", f"{ms['before'] / ms['torch']:.2f}",
                        f"{ms['now'] / ms['before']:.2f}", f"{ms['now, opted in'] / ms['before']:.2f}"))
            print(out[-1], flush=True)
    header = ("forward+backward", "PyTorch ms", f"{args.against} ms", "now ms", "now, opted in ms",
              "now / PyTorch", "opted in / PyTorch", f"{args.against} / PyTorch",
              f"now / {args.against}", f"opted in / {args.against}")
    text = (f"Opted in: tinypix.tune_process() and {dict(advice) or 'no OpenBLAS setting'}; "
            f"{args.rounds} rounds of {args.steps} steps per column.\n\n" + table(header, out))
    print(text)
    if args.record:
        record(f"This checkout against {args.against} and PyTorch (CPU)", text)
    print(machine())


if __name__ == "__main__":
    main()
