"""Benchmark: what a student waits for on every run, and the memory a training step holds.

    python benchmarks/startup.py [--record]

- ``import tinypix`` time, in a fresh process;
- the first conv2d forward+backward in a fresh process, with a cold Numba cache (an empty
  NUMBA_CACHE_DIR: compiling) and with a warm one (the same directory again: loading);
- peak resident memory of a process that runs U-Net training steps, tinypix and PyTorch.
"""
import argparse
import os
import subprocess
import sys
import tempfile

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from benchmarks.common import record, table, torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IMPORT = "import time; t = time.perf_counter(); import tinypix; print(time.perf_counter() - t)"
FIRST_CONV = """
import time; t = time.perf_counter()
import numpy as np, tinypix, tinypix.nn.functional as F
x = tinypix.randn(2, 3, 32, 32, requires_grad=True); w = tinypix.randn(8, 3, 3, 3, requires_grad=True)
F.conv2d(x, w, padding=1).sum().backward()
print(time.perf_counter() - t)
"""
PEAK_RSS = """
import resource, sys
sys.path.insert(0, {repo!r})
from benchmarks.unet import steps
mine, theirs = steps({batch}, {size}, {base}, {depth})
step = mine if {lib!r} == "tinypix" else theirs
for _ in range(3):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # kilobytes -> MB
"""


def fresh(code, env=None):
    """Run ``code`` in a new Python process; its last printed line as a float."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir(),
                         env={**os.environ, **(env or {})}, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run():
    rows = [("import tinypix", f"{fresh(IMPORT):.2f} s")]
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        rows.append(("first conv2d fwd+bwd, cold Numba cache", f"{fresh(FIRST_CONV, env):.2f} s"))
        rows.append(("first conv2d fwd+bwd, warm Numba cache", f"{fresh(FIRST_CONV, env):.2f} s"))
    text = table(("start-up", "time"), rows)
    mem = []
    for batch, size, base, depth in [(16, 64, 16, 3), (8, 128, 32, 3)]:
        args = dict(repo=REPO, batch=batch, size=size, base=base, depth=depth)
        mine = fresh(PEAK_RSS.format(lib="tinypix", **args), {"TINYPIX_BENCH_NO_TORCH": "1"})
        theirs = fresh(PEAK_RSS.format(lib="torch", **args)) if torch is not None else None
        mem.append((f"U-Net step {batch}x3x{size}x{size}, base {base}", f"{mine:.0f}",
                    f"{theirs:.0f}" if theirs else "-", f"{mine / theirs:.2f}" if theirs else "-"))
    text += "\n\n" + table(("peak resident memory, 3 steps", "tinypix MB", "PyTorch MB", "ratio"), mem)
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--record", action="store_true", help="record the table in RESULTS.md")
    args = p.parse_args()
    text = run()
    print(text)
    if args.record:
        record("Start-up and memory (CPU)", text)


if __name__ == "__main__":
    main()
