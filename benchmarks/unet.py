"""Benchmark: one U-Net training step (forward, per-pixel cross-entropy, backward, SGD with
momentum and weight decay), tinypix next to an identical PyTorch twin on the same weights/data.

    python benchmarks/unet.py [--record] [--threads 2,4,8,16]

The twin has the same layers in the same order (conv3x3 + BatchNorm + ReLU blocks, max-pool
down, 2x2 transpose conv up, concatenated skips, 1x1 head), and is loaded with tinypix's
initial weights, so both do the same arithmetic.
"""
import argparse
import sys

import numpy as np

import tinypix
import tinypix.nn.functional as F
from tinypix.models import UNet

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from benchmarks.common import record, fmt_ms, ratio, setup, side_by_side, table, torch

# (batch, size, base channels, depth) -- the sizes issue 7 names.
CONFIGS = [(16, 64, 16, 3), (8, 128, 32, 3)]
CLASSES = 4


def torch_twin(model, depth):
    """A PyTorch U-Net with the same structure as tinypix's, holding the same weights."""
    nn = torch.nn

    class Block(nn.Sequential):
        def __init__(self, a, b):
            super().__init__(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(),
                             nn.Conv2d(b, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU())

    class TwinUNet(nn.Module):
        def __init__(self, widths, out):
            super().__init__()
            self.encoders = nn.ModuleList([Block(3, widths[0])] + [Block(widths[i - 1], widths[i])
                                                                   for i in range(1, len(widths))])
            self.pool = nn.MaxPool2d(2)
            self.ups = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                      for i in reversed(range(len(widths) - 1))])
            self.decoders = nn.ModuleList([Block(2 * widths[i], widths[i])
                                           for i in reversed(range(len(widths) - 1))])
            self.head = nn.Conv2d(widths[0], out, 1)

        def forward(self, x):
            skips = []
            for i, enc in enumerate(self.encoders):
                x = enc(x if i == 0 else self.pool(x))
                skips.append(x)
            x = skips.pop()
            for up, dec in zip(self.ups, self.decoders):
                x = dec(torch.cat([skips.pop(), up(x)], 1))
            return self.head(x)

    widths = [model.encoders[0][0].out_channels * 2 ** i for i in range(depth + 1)]
    twin = TwinUNet(widths, CLASSES)
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()}
    twin.load_state_dict(state)
    return twin


def steps(batch, size, base, depth, seed=0):
    """A training-step closure for each library on the same data and initial weights."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    target = rng.integers(0, CLASSES, (batch, size, size))
    tinypix.manual_seed(seed)
    model = UNet(3, CLASSES, base_channels=base, depth=depth)
    opt = tinypix.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    tx, tt = tinypix.tensor(x), tinypix.tensor(target)

    def tinypix_step():
        loss = F.cross_entropy(model(tx), tt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    torch_step = None
    if torch is not None:
        twin = torch_twin(model, depth)
        topt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        px, pt = torch.from_numpy(x), torch.from_numpy(target)

        def torch_step():
            loss = torch.nn.functional.cross_entropy(twin(px), pt)
            topt.zero_grad()
            loss.backward()
            topt.step()
    return tinypix_step, torch_step


def run(repeats=5, threads=None):
    """The table; with ``threads`` (a list of counts), one row per configuration and count, each
    library set to that many threads (tinypix.set_num_threads, torch.set_num_threads)."""
    rows = []
    for count in threads or [None]:
        if count is not None:
            tinypix.set_num_threads(count)
            if torch is not None:
                torch.set_num_threads(count)
        for batch, size, base, depth in CONFIGS:
            mine, theirs = steps(batch, size, base, depth)
            ms, tms = side_by_side(mine, theirs, repeats)
            rows.append(((count,) if threads else ()) + (
                f"U-Net step {batch}x3x{size}x{size}, base {base}, depth {depth}",
                fmt_ms(ms), fmt_ms(tms), ratio(ms, tms) if tms else "-"))
            print(rows[-1], flush=True)
    header = ("training step", "tinypix ms", "PyTorch ms", "ratio")
    return table((("threads",) if threads else ()) + header, rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--record", action="store_true", help="record the table in RESULTS.md")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", help="thread counts to run at, e.g. 2,4,8,16 (default: every core)")
    args = p.parse_args()
    setup()
    threads = [int(n) for n in args.threads.split(",")] if args.threads else None
    text = run(args.repeats, threads)
    print(text)
    if args.record:
        record("U-Net training step at several thread counts (CPU)" if threads else
               "U-Net training step (CPU)", text)


if __name__ == "__main__":
    main()
