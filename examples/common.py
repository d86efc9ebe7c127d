"""Small helpers shared by the example scripts: settings, output folder, a training loop, tables.

Every example script starts the same way::

    FULL = dict(size=48, train_scenes=400, steps=600)     # what the lesson needs
    QUICK = dict(size=32, train_scenes=16, steps=4)       # only checks that the script runs
    cfg = common.setup("depth", __doc__, FULL, QUICK)
    cfg.size, cfg.steps, cfg.out                          # settings, and the folder for pictures

``--quick`` on the command line (or ``TINYPIX_EXAMPLES_QUICK=1`` in the environment) picks the
QUICK settings; the tests run every script that way. Pictures go to ``examples/out/<script>/``,
or to ``$TINYPIX_EXAMPLES_OUT/<script>/`` when that variable is set.

The training loop here is deliberately plain -- forward, loss, backward, step -- so a script can
show what it trains without hiding it in a framework; held-out metrics come from
``tinypix.training`` (``evaluate`` and ``Scorer``), the code the ``tinypix`` command uses.
"""
import argparse
import os
import time
import types

import numpy as np

import tinypix
from tinypix.training import evaluate as _evaluate

HERE = os.path.dirname(os.path.abspath(__file__))


def setup(name, doc, full, quick):
    """Parse the command line, seed everything, make the output folder; return the settings.

    Returns a namespace holding every key of ``full`` (or of ``quick`` in reduced mode), plus
    ``quick`` (bool), ``out`` (the folder for this script's pictures), ``seed`` and ``seeds`` (the
    seeds a lesson repeats its runs over: 3 by default, 1 with ``--quick``).
    """
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="reduced mode: tiny data and a few steps (also TINYPIX_EXAMPLES_QUICK=1)")
    parser.add_argument("--out", default=None, help="folder for the pictures (default examples/out/<script>)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per lesson, from --seed on (default 3; 1 with --quick)")
    args = parser.parse_args()
    is_quick = args.quick or os.environ.get("TINYPIX_EXAMPLES_QUICK", "") not in ("", "0")
    root = os.environ.get("TINYPIX_EXAMPLES_OUT") or os.path.join(HERE, "out")
    out = args.out or os.path.join(root, name)
    os.makedirs(out, exist_ok=True)
    # A training script may opt its own process in to tinypix's tunings (the library never does):
    # malloc keeps freed memory, so each step's large temporaries are not fresh pages every time.
    tinypix.tune_process()
    tinypix.manual_seed(args.seed)
    np.random.seed(args.seed)
    cfg = types.SimpleNamespace(**(quick if is_quick else full))
    cfg.quick, cfg.out, cfg.seed = is_quick, out, args.seed
    cfg.seeds = list(range(args.seed, args.seed + (args.seeds or (1 if is_quick else 3))))
    print(f"{name}: {'reduced (--quick)' if is_quick else 'full'} mode, pictures in {out}")
    return cfg


def forever(loader):
    """Batches from ``loader``, pass after pass (each pass reshuffles when the loader shuffles)."""
    while True:
        yield from loader


def train(model, loader, loss_fn, steps, optimizer, log_every=None, name=""):
    """Train ``model`` for ``steps`` optimizer steps; return the list of training losses.

    Args:
        loss_fn: ``loss_fn(model, batch) -> scalar Tensor``; it runs the model itself, so a
            multi-task or a frozen-encoder model computes its loss its own way.
        log_every: print the mean loss of the last ``log_every`` steps that often.
    """
    model.train()
    losses = []
    batches = forever(loader)
    for step in range(1, steps + 1):
        loss = loss_fn(model, next(batches))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps):
            print(f"  {name} step {step:4d}/{steps}  loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    return losses


def evaluate(model, loader, task, num_classes=4):
    """Held-out (mean loss, metrics dict) of a single-task model, via tinypix.training.evaluate."""
    return _evaluate(model, loader, {"task": task, "num_classes": num_classes, "device": "cpu"})


def predict(model, x):
    """The model's output for the input Tensor ``x``, in eval mode and without a graph."""
    model.eval()
    with tinypix.no_grad():
        y = model(x)
    model.train()
    return y


def count_parameters(model):
    return int(sum(p.numel() for p in model.parameters()))


class Stopwatch:
    """``with Stopwatch() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def fmt(v):
    """Numbers for tables: 3 significant digits for floats, ints as they are."""
    if isinstance(v, (float, np.floating)):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def print_table(headers, rows, title=None):
    """Print rows (lists of values) under headers, in aligned columns (markdown-friendly)."""
    cells = [[str(h) for h in headers]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(line(r))
    print(flush=True)


def spread(values, digits=3):
    """'mean ± standard deviation' of one arm's values over seeds, e.g. '0.712 ± 0.013'."""
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.{digits}g} ± {v.std():.2g}" if v.size > 1 else f"{v.mean():.{digits}g}"


def lesson(claim, better, worse, names=("A", "B"), higher=True, margin=0.0, digits=3):
    """Print the lesson line, and return whether it was shown.

    ``better`` and ``worse`` hold one number per seed for the arm the lecture says wins and for the
    one it says loses (paired: the same seeds, in the same order). The lesson is shown when the
    claimed winner wins on every seed, by more than ``margin`` on average::

        lesson: a U-Net beats a stack of the same cost — shown (mIoU 0.81 ± 0.01 vs 0.62 ± 0.03, 3 seeds)
    """
    b, w = np.asarray(better, dtype=np.float64), np.asarray(worse, dtype=np.float64)
    if b.shape != w.shape or b.ndim != 1 or b.size == 0:
        raise ValueError(f"lesson: give one number per seed for both arms, got {b.shape} and {w.shape}")
    gain = b - w if higher else w - b
    shown = bool(np.all(gain > 0) and gain.mean() > margin)
    detail = (f"{names[0]} {spread(b, digits)} vs {names[1]} {spread(w, digits)}, "
              f"{b.size} seed{'s' if b.size > 1 else ''}")
    print(f"lesson: {claim} — {'shown' if shown else 'NOT shown'} ({detail})", flush=True)
    return shown


def pyplot():
    """matplotlib.pyplot on the file-only backend (no window ever opens)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, out, filename):
    """Save a matplotlib figure as PNG in ``out``, close it, and say where it went."""
    plt = pyplot()
    path = os.path.join(out, filename)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")
    return path


def as_rgb(image):
    """(3, H, W) image in [0, 1] -> (H, W, 3) for imshow."""
    return np.clip(np.transpose(np.asarray(image), (1, 2, 0)), 0, 1)
