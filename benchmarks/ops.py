"""Benchmark: the non-conv ops of a segmentation net, forward+backward, tinypix next to PyTorch.

    python benchmarks/ops.py [--record]
"""
import argparse
import sys

import numpy as np

import tinypix
import tinypix.nn.functional as F

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from benchmarks.common import record, fmt_ms, ratio, setup, side_by_side, table, torch


def cases(rng):
    """(name, input arrays, tinypix fn, torch fn) for each row."""
    x = rng.standard_normal((16, 64, 64, 64), dtype=np.float32)
    labels = rng.integers(0, 21, (16, 64, 64))
    logits = rng.standard_normal((16, 21, 64, 64), dtype=np.float32)
    small = rng.standard_normal((16, 64, 32, 32), dtype=np.float32)
    tf = torch.nn.functional if torch is not None else None

    def pool_unpool(f, xx):
        y, idx = f.max_pool2d(xx, 2, return_indices=True)
        return f.max_unpool2d(y, idx, 2)

    def bn(lib, xx):
        c = xx.shape[1]
        if lib is tinypix:
            return F.batch_norm(xx, tinypix.zeros(c), tinypix.ones(c), tinypix.ones(c, requires_grad=True),
                                tinypix.zeros(c, requires_grad=True), training=True)
        return tf.batch_norm(xx, torch.zeros(c), torch.ones(c), torch.ones(c, requires_grad=True),
                             torch.zeros(c, requires_grad=True), training=True)

    yield ("max_pool2d 2x2 + max_unpool2d, 16x64x64x64", x,
           lambda t: pool_unpool(F, t), lambda t: pool_unpool(tf, t))
    yield ("interpolate bilinear 2x, 16x64x32x32", small,
           lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False),
           lambda t: tf.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False))
    yield ("batch_norm (train), 16x64x64x64", x, lambda t: bn(tinypix, t), lambda t: bn(torch, t))
    yield ("cross_entropy per pixel, 16x21x64x64", logits,
           lambda t: F.cross_entropy(t, tinypix.tensor(labels)),
           lambda t: tf.cross_entropy(t, torch.from_numpy(labels)))


def timed(fn, array, lib):
    """Forward+backward closure: the input requires grad; the output's gradient is all ones."""
    if lib == "tinypix":
        t = tinypix.tensor(array, requires_grad=True)

        def step():
            t.grad = None
            y = fn(t)
            y.backward(tinypix.ones_like(y))
    else:
        t = torch.tensor(array, requires_grad=True)

        def step():
            t.grad = None
            y = fn(t)
            y.backward(torch.ones_like(y))
    return step


def run(repeats=5):
    rng = np.random.default_rng(0)
    rows = []
    for name, array, mine, theirs in cases(rng):
        ms, tms = side_by_side(timed(mine, array, "tinypix"),
                               timed(theirs, array, "torch") if torch is not None else None, repeats)
        rows.append((name, fmt_ms(ms), fmt_ms(tms), ratio(ms, tms) if tms else "-"))
        print(rows[-1], flush=True)
    return table(("op, forward+backward", "tinypix ms", "PyTorch ms", "ratio"), rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--record", action="store_true", help="record the table in RESULTS.md")
    args = p.parse_args()
    setup()
    text = run()
    print(text)
    if args.record:
        record("Pooling, upsampling, batch norm, cross-entropy (CPU)", text)


if __name__ == "__main__":
    main()
