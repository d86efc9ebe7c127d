"""Run every CPU benchmark, side by side with PyTorch where it is installed:

    python -m benchmarks [--append]        (or: python benchmarks/run.py)

conv2d / conv_transpose2d forward+backward (conv.py), the other ops of a segmentation net
(ops.py), a U-Net training step at two sizes (unet.py), start-up time and peak memory
(startup.py). With --append each part adds its dated block to RESULTS.md.
"""
import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ["conv.py", "ops.py", "unet.py", "startup.py"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--append", action="store_true", help="append each table to RESULTS.md")
    args = p.parse_args()
    for part in PARTS:  # one process each, so one part's threads and caches don't time the next
        print(f"== {part}", flush=True)
        subprocess.run([sys.executable, str(HERE / part)] + (["--append"] if args.append else []), check=True)


if __name__ == "__main__":
    main()
