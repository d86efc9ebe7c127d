"""Run every CPU benchmark, side by side with PyTorch where it is installed:

    python -m benchmarks [--record]        (or: python benchmarks/run.py)

conv2d / conv_transpose2d forward+backward (conv.py), the other ops of a segmentation net
(ops.py), a U-Net training step at two sizes (unet.py), start-up time and peak memory
(startup.py). With --record each part puts its table, dated, into RESULTS.md.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ["conv.py", "ops.py", "unet.py", "startup.py"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--record", action="store_true", help="record each table in RESULTS.md")
    args = p.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from tinypix.tuning import blas_coretype_advice
    env = {**os.environ, **blas_coretype_advice()}  # as the tinypix command starts itself
    for part in PARTS:  # one process each, so one part's threads and caches don't time the next
        print(f"== {part}", flush=True)
        subprocess.run([sys.executable, str(HERE / part)] + (["--record"] if args.record else []),
                       check=True, env=env)


if __name__ == "__main__":
    main()
