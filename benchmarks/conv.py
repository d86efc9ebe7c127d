"""Benchmark: conv2d and conv_transpose2d forward+backward in float32, tinypix next to PyTorch.

    python benchmarks/conv.py             # print the table
    python benchmarks/conv.py --record    # and record it, dated, in benchmarks/RESULTS.md

Both libraries run in this one process on the same number of threads (all cores), one after the
other, in three alternating rounds with a pause between (see common.side_by_side). Each row is
the median of all timed repeats after warm-up, of one forward pass and one backward pass
computing the gradients of input, weight and bias. ratio = tinypix time / PyTorch time (1.0 is
parity, lower is better). GFLOP/s counts 3 matrix products' worth of multiply-adds (forward,
input gradient, weight gradient), 2 FLOPs each. The PyTorch columns are left empty when torch
is not installed. Other processes on the machine skew both columns (tinypix's more: its BLAS
and its team's threads both wait for cores), so the load average before and after is reported too.
"""
import argparse
import os
import pathlib
import sys

import numpy as np

import tinypix
import tinypix.functional as F

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, cpu_model, matmul_gflops, record, setup, side_by_side, torch  # noqa: E402

# (N, C, H, K): batch, input channels, height = width, output channels.
CONV_SHAPES = [(16, 64, 64, 64), (16, 128, 32, 128), (8, 3, 128, 32), (4, 256, 16, 256)]
# U-Net decoder upsampling (2x2, stride 2) from a base-64 U-Net's bottom to its top.
DECODER_SHAPES = [(4, 512, 8, 256), (8, 256, 16, 128), (16, 128, 32, 64), (8, 64, 64, 32)]


def cases():
    """(op name, (N, C, H, K), kernel, stride, padding) for every row of the table."""
    for shape in CONV_SHAPES:
        yield "conv2d", shape, 3, 1, 1
        yield "conv_transpose2d", shape, 3, 1, 1
    for shape in DECODER_SHAPES:
        yield "conv_transpose2d", shape, 2, 2, 0


def make_steps(op, shape, k, s, p, rng, device="cpu", with_torch=True):
    """One forward+backward step for each library on ``device`` ('cpu' or 'cuda'), on the same
    float32 data; and the FLOPs. The PyTorch step is None without PyTorch or ``with_torch``."""
    N, C, H, K = shape
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    w_shape = (K, C, k, k) if op == "conv2d" else (C, K, k, k)
    w = rng.standard_normal(w_shape, dtype=np.float32) * np.float32((C * k * k) ** -0.5)
    b = rng.standard_normal(K, dtype=np.float32)
    out = (H + 2 * p - k) // s + 1 if op == "conv2d" else (H - 1) * s - 2 * p + k
    dy = rng.standard_normal((N, K, out, out), dtype=np.float32)
    pixels = out * out if op == "conv2d" else H * H  # where the kernel is applied
    flops = 3 * 2 * N * K * C * k * k * pixels

    fn = getattr(F, op)
    tx, tw, tb = (tinypix.tensor(a, requires_grad=True, device=device) for a in (x, w, b))
    tdy = tinypix.tensor(dy, device=device)

    def tinypix_step():
        tx.grad = tw.grad = tb.grad = None
        fn(tx, tw, tb, stride=s, padding=p).backward(tdy)

    torch_step = None
    if torch is not None and with_torch:
        torch_fn = getattr(torch.nn.functional, op)
        px, pw, pb = (torch.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
        pdy = torch.tensor(dy, device=device)

        def torch_step():
            px.grad = pw.grad = pb.grad = None
            torch_fn(px, pw, pb, stride=s, padding=p).backward(pdy)

    return tinypix_step, torch_step, flops


def run(repeats, warmup):
    rng = np.random.default_rng(0)
    rows = []
    for op, shape, k, s, p in cases():
        tinypix_step, torch_step, flops = make_steps(op, shape, k, s, p, rng)
        t_ms, p_ms = side_by_side(tinypix_step, torch_step, repeats, warmup)
        rows.append((op, shape, f"{k}x{k} s{s} p{p}", t_ms, p_ms, flops))
        print(format_row(rows[-1]), flush=True)
    return rows


HEADER = ("| op | N,C,H,K | kernel | tinypix ms | torch ms | ratio | tinypix GFLOP/s | torch GFLOP/s |\n"
          "|---|---|---|---:|---:|---:|---:|---:|")


def format_row(row):
    op, shape, kernel, t_ms, p_ms, flops = row
    torch_cols = (f"{p_ms:.1f} | {t_ms / p_ms:.2f} | " if p_ms else " |  | ")
    torch_rate = f"{flops / (p_ms * 1e6):.1f}" if p_ms else ""
    return (f"| {op} | {','.join(map(str, shape))} | {kernel} | {t_ms:.1f} | {torch_cols}"
            f"{flops / (t_ms * 1e6):.1f} | {torch_rate} |")


def load():
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def record_block(rows, machine_gflops, threads, loads):
    record("conv2d and conv_transpose2d, forward+backward (CPU)",
           f"{threads} threads; float32 matmul {machine_gflops:.0f} GFLOP/s; load average (1/5/15 min) "
           f"{loads[0]} before, {loads[1]} after. Forward+backward, float32, median ms.\n\n"
           + "\n".join([HEADER, *map(format_row, rows)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per row (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--record", action="store_true", help=f"record the table in {RESULTS}")
    args = parser.parse_args()

    setup()
    threads = tinypix.get_num_threads()
    before = load()
    machine = matmul_gflops()
    print(f"{cpu_model()}, {threads} threads; float32 matmul (NumPy BLAS) {machine:.0f} GFLOP/s; "
          f"load average {before}" + ("" if torch else "; torch not installed: its columns stay empty"))
    print(HEADER)
    rows = run(args.repeats, args.warmup)
    after = load()
    print(f"load average after: {after}")
    if args.record:
        record_block(rows, machine, threads, (before, after))
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
