"""Depth from one picture: a doll's house and a house look the same, so let the loss forgive scale.

Lecture idea: depth estimation is pixel labeling with a real number per pixel instead of a class.
The lecture's first loss is the plain distance ||z - z_hat|| between predicted and true depth. But
one picture fixes depth only up to a global factor: scale a whole scene by s about the camera and
every ray meets the same surface point s times as far, with the same colour, so the picture does
not change. A network cannot know s; a loss that charges it for s teaches it noise.

This script makes the ambiguity real: every scene's depth labels are multiplied by its own random
factor s, log-uniform in [1/4, 4] (``tinypix.data.transforms.RandomDepthScale``; drawn once per
scene), while its picture stays as rendered. Four losses train the same U-Net on the same scenes,
with the same learning rate and steps:

  * L2 on depth, the lecture's plain ||z - z_hat||^2:  mean (p - t)^2;
  * L1 on log-depth (what ``tinypix train`` uses):      mean |log p - log t|;
  * the scale-invariant log loss (Eigen et al., 2014): mean(d^2) - lambda * mean(d)^2 per image,
    d = log p - log t. A prediction off by one factor for the whole picture has a constant d; the
    second term gives back lambda of what the first charged for it. lambda = 1 forgives the factor
    completely (the loss is the variance of d over the picture) and leaves the net's global scale
    free; lambda = 0.5, Eigen's choice for training, still charges half of it.

With the per-scene factor, the plain losses see labels that jump by up to 4x between pictures that
look alike. For L1 on log-depth, wherever the scene's log s is larger than the error in the
scene's shape, every pixel's residual has the same sign, so the gradient says "everything nearer"
or "everything farther" and nothing about which pixel is nearer than which. L2 on depth has the
same trouble, and weighs each scene by s^2 besides, so the scenes scaled up dominate its
gradient. The scale-invariant loss subtracts the scene's mean residual first, so the shape is
what it learns.

A control trains L1 on log-depth and the scale-invariant loss (lambda = 1) once more on the true
labels, with no random factor. If the scale-invariant loss won only by being a better loss in
general, it would win there too; the third lesson line compares its lead with and without.

Held-out scenes (with their own random factors) are scored on scale-invariant errors, which ask
only for depth up to one factor per picture: Eigen's scale-invariant log RMSE,
sqrt(mean(d^2) - mean(d)^2), and AbsRel and delta < 1.25 after scaling each prediction by
median(truth) / median(prediction). Absolute AbsRel is shown too: no method can recover s from the
picture, so it stays poor for all. Training labels also have holes, as a real depth sensor leaves
(shiny, dark or far surfaces): every loss averages over the valid pixels only (``mask=``).

Run:  python examples/depth.py           (full: 3 seeds and the control, about 4 minutes on 2 CPU cores)
      python examples/depth.py --quick   (reduced: checks that it runs)
"""
import functools
import os

import numpy as np

import common
import tinypix
import tinypix.nn.functional as F
from tinypix import optim
from tinypix.data import DataLoader, Dataset, SyntheticScenes
from tinypix.data.transforms import RandomDepthScale
from tinypix.metrics import depth_metrics
from tinypix.models import UNet
from tinypix.training import compute_loss
from tinypix.viz import colorize_depth

FULL = dict(size=32, train_scenes=300, test_scenes=100, batch=16, steps=300, base=8, lr=5e-3,
            scale=(0.25, 4.0))
QUICK = dict(size=32, train_scenes=8, test_scenes=8, batch=4, steps=3, base=4, lr=5e-3, scale=(0.25, 4.0))


class PerScene(Dataset):
    """Apply a joint ``transform`` with a generator seeded by (seed, i, 1): every scene keeps one
    draw (one depth scale per scene, as a dataset that mixes rooms and doll's houses has).

    The 1 gives the draws a stream of their own. SyntheticScenes draws scene i from (seed, i); a
    generator seeded the same way would repeat its first number, the camera's azimuth, and the
    scale would be written in the picture."""

    def __init__(self, dataset, transform, seed=0):
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.transform(self.dataset[i], np.random.default_rng((self.seed, i, 1)))


class WithHoles(Dataset):
    """Wrap a dataset: each sample gets ``depth_valid`` with a few random rectangles switched off
    (and ``depth`` set to 0 there, as a sensor would report). Fixed per scene index, drawn from a
    stream of their own, (seed, i, 2), not from the scene's or the scale's."""

    def __init__(self, dataset, holes=4, seed=0):
        self.dataset, self.holes, self.seed = dataset, holes, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        sample = dict(self.dataset[i])
        S = sample["depth"].shape[-1]
        rng = np.random.default_rng((self.seed, i, 2))
        valid = np.ones((S, S), dtype=bool)
        for _ in range(self.holes):
            h, w = rng.integers(S // 8, S // 3, size=2)
            top, left = rng.integers(0, S - h), rng.integers(0, S - w)
            valid[top:top + h, left:left + w] = False
        sample["depth_valid"] = valid
        sample["depth"] = np.where(valid, sample["depth"], 0).astype(np.float32)
        return sample


def l2_depth_loss(model, batch):
    """The lecture's plain loss: squared error on depth itself, over the valid pixels."""
    valid = batch["depth_valid"].unsqueeze(1)
    return F.mse_loss(model(batch["image"]), batch["depth"].unsqueeze(1), mask=valid)


def l1_log_loss(model, batch):
    """L1 on log-depth over valid pixels (tinypix.training.compute_loss, as ``tinypix train`` uses)."""
    return compute_loss("depth", model(batch["image"]), batch)


def scale_invariant_loss(model, batch, lam=1.0):
    """Eigen's scale-invariant log loss, per image, over valid pixels:
    mean(d^2) - lam * mean(d)^2 with d = log(pred) - log(true). lam = 1 is exactly invariant: it is
    the variance of d over the picture, so one factor for the whole picture costs nothing."""
    valid = batch["depth_valid"].float().unsqueeze(1)                  # (N, 1, H, W)
    target = batch["depth"].unsqueeze(1).clamp(1e-3, None).log()
    d = (model(batch["image"]).log() - target) * valid                 # holes contribute 0
    count = valid.sum(dim=(1, 2, 3)).clamp(1.0, None)                  # valid pixels per image
    mean_d = d.sum(dim=(1, 2, 3)) / count
    mean_d2 = (d * d).sum(dim=(1, 2, 3)) / count
    return (mean_d2 - lam * mean_d * mean_d).mean()


LOSSES = {"L2 on depth (plain)": l2_depth_loss, "L1 on log-depth": l1_log_loss,
          "scale-invariant, lambda 0.5": functools.partial(scale_invariant_loss, lam=0.5),
          "scale-invariant, lambda 1": scale_invariant_loss}


def scores(pred, true):
    """Held-out errors of depth maps ``pred, true: (N, H, W)``: the scale-invariant ones (si-RMSE
    log, median-scaled AbsRel and delta<1.25) and absolute AbsRel."""
    d = np.log(np.maximum(pred, 1e-3)) - np.log(true)
    si_rmse = np.sqrt(np.maximum((d ** 2).mean(axis=(1, 2)) - d.mean(axis=(1, 2)) ** 2, 0)).mean()
    aligned = pred * (np.median(true, axis=(1, 2)) / np.median(pred, axis=(1, 2)))[:, None, None]
    scaled = depth_metrics(aligned, true)
    return {"si-RMSE log": si_rmse, "AbsRel (median-scaled)": scaled["AbsRel"],
            "delta<1.25 (median-scaled)": scaled["delta1"], "AbsRel": depth_metrics(pred, true)["AbsRel"]}


def train_one(cfg, loss_fn, loader, seed, typical_depth):
    tinypix.manual_seed(seed)                                  # the same initial weights for every loss
    model = UNet(3, 1, base_channels=cfg.base, depth=3, task="depth")
    # The head predicts log-depth (the 'depth' task head takes exp). Starting its bias at the log of
    # the typical depth saves the first hundred steps of learning "about 6 m".
    model.head.bias.data[...] = np.log(typical_depth)
    common.train(model, loader, loss_fn, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr))
    return model


def experiment(cfg, scale, losses):
    """Train one U-Net per loss and seed on scenes whose depth labels are scaled by one random
    factor per scene, drawn log-uniformly from ``scale``; score them on held-out scenes scaled the
    same way. Returns ({row: [scores dict per seed]}, {loss: CPU s per run}, the held-out batch,
    {loss: the last seed's held-out depth predictions})."""
    transform = RandomDepthScale(scale)
    test_set = PerScene(SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000), transform,
                        seed=cfg.seed + 1000)                  # complete depth, its own scales
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    true_depth = test["depth"].numpy()
    results = {name: [] for name in ["mean training depth map", *losses]}   # one scores dict per seed
    cpu = dict.fromkeys(losses, 0.0)
    last = {}
    for seed in cfg.seeds:
        train_set = WithHoles(PerScene(SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=seed), transform,
                                       seed=seed), seed=seed)
        depths = np.stack([train_set[i]["depth"] for i in range(len(train_set))])
        valid = np.stack([train_set[i]["depth_valid"] for i in range(len(train_set))])
        typical = float(np.exp(np.log(depths[valid]).mean()))
        # A baseline that never looks at the picture: the scenes share a layout (floor below, wall
        # behind), so the mean training depth map already has a shape.
        mean_map = (depths * valid).sum(0) / np.maximum(valid.sum(0), 1)
        mean_map = np.where(valid.sum(0) > 0, mean_map, typical)
        results["mean training depth map"].append(scores(np.broadcast_to(mean_map, true_depth.shape), true_depth))
        loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=seed)
        for name, loss_fn in losses.items():
            start = os.times()
            model = train_one(cfg, loss_fn, loader, seed, typical)
            cpu[name] += (sum(os.times()[:2]) - sum(start[:2])) / len(cfg.seeds)
            last[name] = common.predict(model, test["image"]).numpy()[:, 0]
            results[name].append(scores(last[name], true_depth))
            print(f"  seed {seed}  {name:27s}  " + "  ".join(f"{k} {v:.3f}" for k, v in results[name][-1].items()),
                  flush=True)
    return results, cpu, test, last


def print_results(results, cpu, title):
    metrics = list(next(iter(results.values()))[0])
    rows = [[name, *(common.spread([r[k] for r in runs]) for k in metrics),
             f"{cpu[name]:.0f}" if name in cpu else "-"] for name, runs in results.items()]
    common.print_table(["training loss", *metrics, "CPU s/run"], rows, title=title)


def main():
    cfg = common.setup("depth", __doc__, FULL, QUICK)
    lo, hi = cfg.scale
    print(f"{cfg.train_scenes} training scenes {cfg.size}x{cfg.size} with holes in their depth; "
          f"{cfg.test_scenes} held-out scenes; {cfg.steps} steps per run, seeds {cfg.seeds}")

    print(f"\ndepth labels scaled by one random factor in [{lo:g}, {hi:g}] per scene")
    results, cpu, test, last = experiment(cfg, cfg.scale, LOSSES)
    print_results(results, cpu, f"held-out depth, {cfg.test_scenes} scenes with random scales, mean ± sd over "
                                f"{len(cfg.seeds)} seeds (lower errors, higher delta are better)")
    plot(test, last, cfg.out)

    # The control: the same two losses with no random factor. If the scale-invariant loss won only
    # because it is a better loss in general, it would win here too.
    control = {name: LOSSES[name] for name in ("L1 on log-depth", "scale-invariant, lambda 1")}
    print("\ncontrol: the true depth labels (no random factor)")
    control_results, control_cpu, _, _ = experiment(cfg, (1.0, 1.0), control)
    print_results(control_results, control_cpu, f"control: held-out depth without random scales, mean ± sd over "
                                                f"{len(cfg.seeds)} seeds")

    def si(runs, name):
        return [r["si-RMSE log"] for r in runs[name]]

    common.lesson("with one random scale per scene, the scale-invariant loss beats L1 on log-depth on the "
                  "scale-invariant error", si(results, "scale-invariant, lambda 1"), si(results, "L1 on log-depth"),
                  names=("si-RMSE log: scale-invariant", "L1 log"), higher=False)
    common.lesson("with one random scale per scene, the scale-invariant loss beats the plain ||z - z_hat|| "
                  "on the scale-invariant error", si(results, "scale-invariant, lambda 1"),
                  si(results, "L2 on depth (plain)"), names=("si-RMSE log: scale-invariant", "L2 on depth"),
                  higher=False)
    gain = np.subtract(si(results, "L1 on log-depth"), si(results, "scale-invariant, lambda 1"))
    control_gain = np.subtract(si(control_results, "L1 on log-depth"), si(control_results, "scale-invariant, lambda 1"))
    common.lesson("the scale-invariant loss wins because of the ambiguity: its lead over L1 on log-depth is larger "
                  "with the random scale than without it", gain, control_gain,
                  names=("si-RMSE lead with random scale", "without"))


def plot(test, predictions, out, rows=4):
    """input | truth | each loss's prediction scaled by median(truth) / median(prediction), on the
    truth's colour scale: the scale-invariant metrics compare exactly these pictures."""
    plt = common.pyplot()
    images, truth = test["image"].numpy(), test["depth"].numpy()
    names = list(predictions)
    fig, axes = plt.subplots(rows, 2 + len(names), figsize=(2 * (2 + len(names)), 2.1 * rows), squeeze=False)
    for r in range(min(rows, len(truth))):
        lo, hi = float(truth[r].min()), float(truth[r].max())
        pictures = [common.as_rgb(images[r]), colorize_depth(truth[r], lo, hi)]
        for name in names:
            p = predictions[name][r]
            pictures.append(colorize_depth(p * np.median(truth[r]) / np.median(p), lo, hi))
        for c, (ax, pic) in enumerate(zip(axes[r], pictures)):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(["input", "true depth", *names][c], fontsize=8)
    common.save_figure(fig, out, "predictions.png")


if __name__ == "__main__":
    main()
