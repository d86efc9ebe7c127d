"""Depth from one picture: per-pixel regression, with a masked loss for the pixels nobody measured.

Lecture idea: depth estimation is pixel labeling with a real number per pixel instead of a class.
Two things change from segmentation:

  * the loss. Depth errors scale with distance (10 cm is a lot at 1 m, nothing at 10 m), so we
    compare log-depths. Two choices are trained side by side:
      - L1 on log-depth:            mean |log p - log t|
      - scale-invariant log loss    mean(d^2) - lambda * mean(d)^2, d = log p - log t, per image
        (Eigen et al., 2014): a prediction that is right up to one global scale factor is
        penalised less -- one picture cannot tell a doll's house from a house.
  * the labels have holes. Real depth sensors miss pixels (shiny, dark or too far surfaces). Here
    every training scene loses a few random rectangles of depth; the loss is averaged over the
    valid pixels only (``mask=``), so the holes teach nothing, right or wrong. The held-out scenes
    are scored against complete depth, so the table also shows that the net fills the holes.

It reports the usual metrics (AbsRel, RMSE, delta < 1.25) next to two baselines that use no
picture at all: one depth everywhere, and the mean training depth map (the scenes share a layout:
floor below, wall behind), and writes input | true depth | predicted depth.

Run:  python examples/depth.py           (full, a few minutes on 2 CPU cores)
      python examples/depth.py --quick   (reduced: checks that it runs)
"""
import os

import numpy as np

import common
import tinypix
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.metrics import depth_metrics
from tinypix.models import UNet
from tinypix.training import compute_loss
from tinypix.viz import plot_predictions, save

FULL = dict(size=48, train_scenes=400, test_scenes=100, batch=16, steps=300, base=8, lr=2e-3)
QUICK = dict(size=32, train_scenes=8, test_scenes=8, batch=4, steps=3, base=4, lr=2e-3)


class WithHoles:
    """Wrap a dataset: each sample gets ``depth_valid`` with a few random rectangles switched off
    (and ``depth`` set to 0 there, as a sensor would report). Fixed per scene index."""

    def __init__(self, dataset, holes=4, seed=0):
        self.dataset, self.holes, self.seed = dataset, holes, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        sample = dict(self.dataset[i])
        S = sample["depth"].shape[-1]
        rng = np.random.default_rng((self.seed, i))
        valid = np.ones((S, S), dtype=bool)
        for _ in range(self.holes):
            h, w = rng.integers(S // 8, S // 3, size=2)
            top, left = rng.integers(0, S - h), rng.integers(0, S - w)
            valid[top:top + h, left:left + w] = False
        sample["depth_valid"] = valid
        sample["depth"] = np.where(valid, sample["depth"], 0).astype(np.float32)
        return sample


def l1_log_loss(model, batch):
    """L1 on log-depth over valid pixels (tinypix.training.compute_loss, as ``tinypix train`` uses)."""
    return compute_loss("depth", model(batch["image"]), batch)


def scale_invariant_loss(model, batch, lam=0.5):
    """Eigen's scale-invariant log loss, per image, over valid pixels:
    mean(d^2) - lam * mean(d)^2 with d = log(pred) - log(true)."""
    valid = batch["depth_valid"].float().unsqueeze(1)                  # (N, 1, H, W)
    target = batch["depth"].unsqueeze(1).clamp(1e-3, None).log()
    d = (model(batch["image"]).log() - target) * valid                 # holes contribute 0
    count = valid.sum(dim=(1, 2, 3)).clamp(1.0, None)                  # valid pixels per image
    mean_d = d.sum(dim=(1, 2, 3)) / count
    mean_d2 = (d * d).sum(dim=(1, 2, 3)) / count
    return (mean_d2 - lam * mean_d * mean_d).mean()


def predict_depth(model, images):
    return common.predict(model, images).numpy()[:, 0]


def main():
    cfg = common.setup("depth", __doc__, FULL, QUICK)
    train_set = WithHoles(SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=cfg.seed))
    test_set = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000)   # complete depth
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=cfg.seed)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    true_depth = test["depth"].numpy()
    valid_frac = np.mean([train_set[i]["depth_valid"].mean() for i in range(len(train_set))])
    print(f"{len(train_set)} training scenes {cfg.size}x{cfg.size} with {100 * (1 - valid_frac):.0f}% "
          f"of their depth pixels missing; {len(test_set)} held-out scenes with complete depth")

    # Baselines that never look at the picture.
    train_depths = np.stack([train_set[i]["depth"] for i in range(len(train_set))])
    train_valid = np.stack([train_set[i]["depth_valid"] for i in range(len(train_set))])
    median = np.median(train_depths[train_valid])
    with np.errstate(invalid="ignore"):
        mean_map = (train_depths * train_valid).sum(0) / np.maximum(train_valid.sum(0), 1)
    mean_map = np.where(train_valid.sum(0) > 0, mean_map, median)
    constant = np.full_like(true_depth, median)
    layout = np.broadcast_to(mean_map, true_depth.shape)
    rows = [["one depth everywhere (median)", "-", *row(depth_metrics(constant, true_depth)), "-"],
            ["mean training depth map", "-", *row(depth_metrics(layout, true_depth)), "-"]]

    results = {}
    for name, loss_fn in (("L1 on log-depth", l1_log_loss), ("scale-invariant log", scale_invariant_loss)):
        tinypix.manual_seed(cfg.seed)                         # the same initial weights for both
        model = UNet(3, 1, base_channels=cfg.base, depth=3, task="depth")
        # The head predicts log-depth (the 'depth' task head takes exp). Starting its bias at the
        # log of the typical depth saves the first hundred steps of learning "about 6 m".
        model.head.bias.data[...] = np.log(median)
        optimizer = optim.Adam(model.parameters(), lr=cfg.lr)
        print(f"\ntraining a U-Net ({common.count_parameters(model)} parameters) with the {name} loss")
        with common.Stopwatch() as t:
            common.train(model, loader, loss_fn, cfg.steps, optimizer, log_every=max(cfg.steps // 5, 1), name=name)
        pred = predict_depth(model, test["image"])
        results[name] = pred
        rows.append([f"U-Net, {name} loss", cfg.steps, *row(depth_metrics(pred, true_depth)), f"{t.seconds:.0f}"])

    common.print_table(["model", "steps", "AbsRel", "RMSE (m)", "delta<1.25", "train s"], rows,
                       title=f"held-out depth, {len(test_set)} scenes (lower AbsRel/RMSE, higher delta is better)")

    for name, pred in results.items():
        filename = "predictions_" + name.split()[0].lower().replace("-", "_") + ".png"
        save(plot_predictions("depth", test["image"].numpy(), true_depth, pred, max_rows=4),
             os.path.join(cfg.out, filename))
        print(f"wrote {os.path.join(cfg.out, filename)}  (input | true depth | predicted, {name})")


def row(metrics):
    return [metrics["AbsRel"], metrics["RMSE"], metrics["delta1"]]


if __name__ == "__main__":
    main()
