"""One network, three answers: segmentation, depth and normals from one shared trunk.

Lecture idea: the features that find a sphere's outline also tell how far it is and which way its
surface faces. So instead of three networks, train one U-Net trunk (encoder and decoder shared)
whose last feature maps feed three 1x1-convolution heads:

    image -> U-Net trunk -> features (N, base, H, W) -+-> 1x1 conv -> class scores   (cross-entropy)
                                                      +-> 1x1 conv -> exp -> depth   (L1 on log-depth)
                                                      +-> 1x1 conv -> normalize -> normals (1 - cos)

    loss = CE + w_depth * L1(log depth) + w_normals * (1 - cos)

and compare each task with a single-task U-Net of the same size trained for the same number of
steps. The multi-task net costs about a third of the three single ones (parameters and compute);
the question is whether sharing helps, hurts or does not matter for each task. With so many
labels per picture and a small net the answer may be "about the same" -- which is already a win
at a third of the cost. The loss weights are part of the recipe: change them and the balance
between the tasks moves.

Run:  python examples/multitask.py           (full, a few minutes on 2 CPU cores)
      python examples/multitask.py --quick   (reduced: checks that it runs)
"""

import numpy as np

import common
import tinypix
import tinypix.nn as nn
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.models import TaskHead, UNet
from tinypix.training import Scorer, compute_loss
from tinypix.viz import colorize_depth, colorize_labels, colorize_normals

FULL = dict(size=32, train_scenes=400, test_scenes=100, batch=16, steps=300, base=8, lr=2e-3)
QUICK = dict(size=32, train_scenes=8, test_scenes=8, batch=4, steps=2, base=4, lr=2e-3)
WEIGHTS = {"segmentation": 1.0, "depth": 1.0, "normals": 1.0}
OUT_CHANNELS = {"segmentation": 4, "depth": 1, "normals": 3}


class MultiTaskNet(nn.Module):
    """x: (N, 3, H, W) -> {'segmentation': (N, 4, H, W), 'depth': (N, 1, H, W), 'normals': (N, 3, H, W)}."""

    def __init__(self, base_channels):
        super().__init__()
        self.trunk = UNet(3, 1, base_channels=base_channels, depth=3)
        self.trunk.head = nn.Identity()      # keep the trunk's last (N, base, H, W) ReLU features
        self.heads = nn.ModuleDict({task: nn.Sequential(nn.Conv2d(base_channels, c, 1), TaskHead(task))
                                    for task, c in OUT_CHANNELS.items()})
        self.heads["depth"][0].bias.data[...] = np.log(6.0)  # start near a typical depth (log scale)

    def forward(self, x):
        features = self.trunk(x)
        return {task: head(features) for task, head in self.heads.items()}


def multitask_loss(model, batch):
    outputs = model(batch["image"])
    return sum(WEIGHTS[task] * compute_loss(task, outputs[task], batch) for task in outputs)


def single_task_loss(task):
    return lambda model, batch: compute_loss(task, model(batch["image"]), batch)


def scores(outputs, batch):
    """Each task's held-out metrics from a dict of outputs."""
    result = {}
    for task, output in outputs.items():
        scorer = Scorer(task, 4)
        scorer.update(output, batch)
        result[task] = scorer.result()
    return result


def main():
    cfg = common.setup("multitask", __doc__, FULL, QUICK)
    train_set = SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=cfg.seed)
    test_set = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000)
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=cfg.seed)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    log_every = max(cfg.steps // 3, 1)

    rows, outputs_multi = [], None
    tinypix.manual_seed(cfg.seed)
    multi = MultiTaskNet(cfg.base)
    print(f"multi-task net: {common.count_parameters(multi)} parameters, loss weights {WEIGHTS}")
    with common.Stopwatch() as t:
        common.train(multi, loader, multitask_loss, cfg.steps, optim.Adam(multi.parameters(), lr=cfg.lr),
                     log_every=log_every, name="multi-task")
    outputs_multi = common.predict(multi, test["image"])
    s = scores(outputs_multi, test)
    multi_row = ["one trunk, three heads", common.count_parameters(multi), s["segmentation"]["miou"],
                 s["depth"]["AbsRel"], s["depth"]["delta1"], s["normals"]["mean"], s["normals"]["within_22.5"],
                 f"{t.seconds:.0f}"]

    singles_params, singles_seconds, outputs_single = 0, 0.0, {}
    for task in OUT_CHANNELS:
        tinypix.manual_seed(cfg.seed)
        model = UNet(3, OUT_CHANNELS[task], base_channels=cfg.base, depth=3, task=task)
        if task == "depth":
            model.head.bias.data[...] = np.log(6.0)
        print(f"single-task {task}: {common.count_parameters(model)} parameters")
        with common.Stopwatch() as t:
            common.train(model, loader, single_task_loss(task), cfg.steps,
                         optim.Adam(model.parameters(), lr=cfg.lr), log_every=log_every, name=task)
        outputs_single[task] = common.predict(model, test["image"])
        m = scores({task: outputs_single[task]}, test)[task]
        cells = {"segmentation": [m.get("miou"), "", "", "", ""], "depth": ["", m.get("AbsRel"), m.get("delta1"), "", ""],
                 "normals": ["", "", "", m.get("mean"), m.get("within_22.5")]}[task]
        rows.append([f"single-task {task}", common.count_parameters(model), *cells, f"{t.seconds:.0f}"])
        singles_params += common.count_parameters(model)
        singles_seconds += t.seconds
    rows.append(["three single-task nets", singles_params, "", "", "", "", "", f"{singles_seconds:.0f}"])
    rows.append(multi_row)
    common.print_table(["model", "params", "mIoU", "AbsRel", "delta<1.25", "normal mean deg", "<22.5 deg", "train s"],
                       rows, title=f"held-out, {len(test_set)} scenes {cfg.size}x{cfg.size}, {cfg.steps} steps each")

    plt = common.pyplot()
    n = min(4, len(test_set))
    fig, axes = plt.subplots(n, 7, figsize=(14, 2.1 * n), squeeze=False)
    titles = ["input", "true labels", "multi-task", "true depth", "multi-task", "true normals", "multi-task"]
    for r in range(n):
        lo, hi = float(test["depth"].numpy()[r].min()), float(test["depth"].numpy()[r].max())
        pictures = [common.as_rgb(test["image"].numpy()[r]),
                    colorize_labels(test["mask"].numpy()[r]),
                    colorize_labels(outputs_multi["segmentation"].numpy()[r].argmax(0)),
                    colorize_depth(test["depth"].numpy()[r], lo, hi),
                    colorize_depth(outputs_multi["depth"].numpy()[r, 0], lo, hi),
                    colorize_normals(test["normals"].numpy()[r]),
                    colorize_normals(outputs_multi["normals"].numpy()[r])]
        for ax, pic, title in zip(axes[r], pictures, titles):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    common.save_figure(fig, cfg.out, "predictions.png")


if __name__ == "__main__":
    main()
