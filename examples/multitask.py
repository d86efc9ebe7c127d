"""Multi-task learning: cheap labels of one task teach the features another task needs.

Lecture idea: one network can answer several pixel-labeling questions at once, and the tasks help
each other when they need the same features. Segmentation labels are expensive (someone outlines
every object); surface normals come almost free (from a depth sensor or a renderer). Here there
are many scenes with normals labels and only a few (20) with class labels:

    image -> shared U-Net trunk -+-> segmentation head -> class scores   (cross-entropy, 20 scenes)
                                 +-> normals head      -> unit normals   (1 - cos, 400 scenes)

    loss = CE(segmentation batch) + w * (1 - cos)(normals batch)

Each task has a head of its own, two 3x3 conv layers and a 1x1 output conv on the trunk's
features, so the tasks can read different things from them. The normals of a sphere turn
smoothly, a box's are constant on each face and turn at a crease, a cylinder's turn only
sideways: a trunk that has learned to predict normals has learned to tell these shapes apart. So
the shared network should label held-out scenes better than the same trunk and segmentation head
trained on the 20 segmentation scenes alone, which can learn shapes only from those 20.

Both arms take the same number of optimizer steps on the same segmentation batches; the shared
arm also sees one normals batch per step, so it costs over twice the compute. The
segmentation-only arm is not short of steps: its training mIoU reaches 1 (it memorises its 20
scenes), and a third of the steps gives it nearly the same held-out mIoU. It is short of examples.

Run:  python examples/multitask.py            (full: 3 seeds, a few minutes on 2 CPU cores)
      python examples/multitask.py --quick    (reduced: checks that it runs)
"""
import numpy as np

import common
import tinypix
import tinypix.nn as nn
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.models import TaskHead, UNet
from tinypix.models.heads import init_output_bias
from tinypix.models.unet import ConvBlock
from tinypix.training import Scorer, compute_loss
from tinypix.viz import colorize_labels, colorize_normals

FULL = dict(size=32, seg_scenes=20, normals_scenes=400, test_scenes=100, seg_batch=10, normals_batch=16,
            steps=600, base=8, depth=3, lr=2e-3, normals_weight=1.0)
QUICK = dict(size=32, seg_scenes=4, normals_scenes=8, test_scenes=8, seg_batch=2, normals_batch=4,
             steps=2, base=4, depth=3, lr=2e-3, normals_weight=1.0)
OUT_CHANNELS = {"segmentation": 4, "normals": 3}


class TaskBranch(nn.Sequential):
    """One task's head of its own: (3x3 conv, BatchNorm, ReLU) x 2, a 1x1 conv to the task's
    channels and its output activation. (N, base, H, W) features -> (N, out_channels, H, W)."""

    def __init__(self, base, task):
        out = nn.Conv2d(base, OUT_CHANNELS[task], 1)
        init_output_bias(out, task)          # normals start facing the camera, not as zero vectors
        super().__init__(ConvBlock(base, base), out, TaskHead(task))


class SharedTrunkNet(nn.Module):
    """A U-Net trunk (encoder and decoder, without its 1x1 output conv) shared by the tasks, and a
    TaskBranch per task. ``model(x, task)``: x (N, 3, H, W) -> that task's (N, C, H, W) output."""

    def __init__(self, base, depth, tasks):
        super().__init__()
        self.trunk = UNet(3, 1, base_channels=base, depth=depth)
        self.trunk.head = nn.Identity()      # the trunk ends in the U-Net's (N, base, H, W) ReLU features
        self.heads = nn.ModuleDict({task: TaskBranch(base, task) for task in tasks})

    def forward(self, x, task="segmentation"):
        return self.heads[task](self.trunk(x))


def segmentation_loss(model, batch):
    return compute_loss("segmentation", model(batch["image"], "segmentation"), batch)


def shared_loss(weight):
    """The multi-task loss of a (segmentation batch, normals batch) pair."""
    def loss(model, batches):
        seg, normals = batches
        return segmentation_loss(model, seg) + weight * compute_loss("normals", model(normals["image"], "normals"),
                                                                     normals)
    return loss


class Pairs:
    """An endless loader of (segmentation batch, normals batch) pairs, for common.train."""

    def __init__(self, seg_loader, normals_loader):
        self.seg, self.normals = common.forever(seg_loader), common.forever(normals_loader)

    def __iter__(self):
        while True:
            yield next(self.seg), next(self.normals)


def predict(model, x, task):
    """The model's output for ``task``, in eval mode and without a graph."""
    model.eval()
    with tinypix.no_grad():
        y = model(x, task)
    model.train()
    return y


def scores(model, batch, task):
    """(held-out metrics, output) of one task on one batch."""
    output = predict(model, batch["image"], task)
    scorer = Scorer(task, 4)
    scorer.update(output, batch)
    return scorer.result(), output


def run(cfg, seed, tasks):
    """Train a SharedTrunkNet with heads for ``tasks``; return held-out scores and outputs."""
    seg_set = SyntheticScenes(cfg.seg_scenes, size=cfg.size, seed=seed)
    normals_set = SyntheticScenes(cfg.normals_scenes, size=cfg.size, seed=seed + 500)
    test = next(iter(DataLoader(SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=seed + 1000),
                                batch_size=cfg.test_scenes)))
    # Both arms draw the same segmentation batches, in the same order.
    loader = DataLoader(seg_set, batch_size=cfg.seg_batch, shuffle=True, drop_last=True, seed=seed)
    loss = segmentation_loss
    if "normals" in tasks:
        loader = Pairs(loader, DataLoader(normals_set, batch_size=cfg.normals_batch, shuffle=True, drop_last=True,
                                          seed=seed))
        loss = shared_loss(cfg.normals_weight)
    tinypix.manual_seed(seed)
    model = SharedTrunkNet(cfg.base, cfg.depth, tasks)
    name = f"seed {seed}, {' + '.join(tasks)}:"
    with common.Stopwatch() as t:
        common.train(model, loader, loss, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr),
                     log_every=max(cfg.steps // 2, 1), name=name)
    result = {"seconds": t.seconds, "params": common.count_parameters(model)}
    seg, result["segmentation"] = scores(model, test, "segmentation")
    result["miou"] = seg["miou"]
    train_batch = next(iter(DataLoader(seg_set, batch_size=len(seg_set))))
    result["train_miou"] = scores(model, train_batch, "segmentation")[0]["miou"]
    if "normals" in tasks:
        normals, result["normals"] = scores(model, test, "normals")
        result["normal_deg"] = normals["mean"]
    return result, test


def main():
    cfg = common.setup("multitask", __doc__, FULL, QUICK)
    arms = {"segmentation only": ("segmentation",), "shared trunk": ("segmentation", "normals")}
    results, test = {arm: [] for arm in arms}, None
    for seed in cfg.seeds:
        for arm, tasks in arms.items():
            result, test_batch = run(cfg, seed, tasks)
            results[arm].append(result)
            test = test if test is not None else test_batch
    value = lambda arm, key: [r[key] for r in results[arm]]  # noqa: E731  one number per seed

    rows = [[arm, results[arm][0]["params"], common.spread(value(arm, "miou")),
             common.spread(value(arm, "train_miou")),
             common.spread(value(arm, "normal_deg")) if "normals" in arms[arm] else "",
             f"{np.mean(value(arm, 'seconds')):.0f}"] for arm in arms]
    common.print_table(["model", "params", "held-out mIoU", "train mIoU", "normals mean deg", "train s per seed"],
                       rows, title=f"{cfg.seg_scenes} scenes with class labels, {cfg.normals_scenes} with normals; "
                                   f"{cfg.test_scenes} held-out scenes {cfg.size}x{cfg.size}, {cfg.steps} steps, "
                                   f"{len(cfg.seeds)} seed(s), mean ± sd")
    common.print_table(["held-out mIoU, seed"] + [str(seed) for seed in cfg.seeds],
                       [[arm] + value(arm, "miou") for arm in arms])
    common.lesson(f"a trunk shared with a normals task ({cfg.normals_scenes} scenes) segments better than "
                  f"segmentation-only training on {cfg.seg_scenes} labelled scenes (held-out mIoU)",
                  value("shared trunk", "miou"), value("segmentation only", "miou"),
                  names=("shared", "segmentation only"))

    plt = common.pyplot()
    first = {arm: results[arm][0] for arm in arms}
    n = min(4, cfg.test_scenes)
    titles = ["input", "true labels", "segmentation\nonly", "shared\ntrunk", "true normals", "shared:\nnormals"]
    fig, axes = plt.subplots(n, len(titles), figsize=(2.0 * len(titles), 2.1 * n), squeeze=False)
    for r in range(n):
        pictures = [common.as_rgb(test["image"].numpy()[r]), colorize_labels(test["mask"].numpy()[r]),
                    colorize_labels(first["segmentation only"]["segmentation"].numpy()[r].argmax(0)),
                    colorize_labels(first["shared trunk"]["segmentation"].numpy()[r].argmax(0)),
                    colorize_normals(test["normals"].numpy()[r]),
                    colorize_normals(first["shared trunk"]["normals"].numpy()[r])]
        for ax, pic, title in zip(axes[r], pictures, titles):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=9)
    common.save_figure(fig, cfg.out, "predictions.png")


if __name__ == "__main__":
    main()
