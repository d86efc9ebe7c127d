"""Transfer learning: features learned on one task help another when labels are scarce.

Lecture idea: segmentation labels are expensive (someone paints every pixel), depth is cheap (a
depth camera records it with the picture). So:

  1. pre-train a U-Net to predict depth on many scenes;
  2. for segmentation with only a few labelled scenes (a "label budget" of 20 or 100), either
     (a) freeze the pre-trained network and fit a per-pixel linear model -- a 1x1 convolution --
         on its last feature maps ("linear probe": only 4 x (base + 1) numbers are learned), or
     (b) fine-tune: start from the pre-trained weights, put a new 1x1 head on top and train
         everything;
  3. and compare both with (c) the same U-Net trained from scratch on the same few scenes, for
     the same number of steps.

If the depth features already separate spheres from boxes from floor, (a) works with a handful
of labels and (b) starts far ahead of (c). With many labels the gap should shrink.

Run:  python examples/transfer.py           (full, a few minutes on 2 CPU cores)
      python examples/transfer.py --quick   (reduced: checks that it runs)
"""

import numpy as np

import common
import tinypix
import tinypix.nn as nn
from tinypix import optim
from tinypix.data import DataLoader, Dataset, SyntheticScenes
from tinypix.models import UNet
from tinypix.training import compute_loss
from tinypix.viz import colorize_labels

FULL = dict(size=32, pretrain_scenes=400, pretrain_steps=400, budgets=(20, 100), test_scenes=100,
            batch=8, steps=200, probe_steps=300, base=8, lr=2e-3)
QUICK = dict(size=32, pretrain_scenes=8, pretrain_steps=2, budgets=(4, 8), test_scenes=8,
             batch=4, steps=2, probe_steps=2, base=4, lr=2e-3)


class Features(Dataset):
    """Per-pixel features of a frozen network, computed once, with the segmentation labels."""

    def __init__(self, features, masks):
        self.features, self.masks = features, masks

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        return {"image": self.features[i], "mask": self.masks[i]}


def segmentation_loss(model, batch):
    return compute_loss("segmentation", model(batch["image"]), batch)


def depth_loss(model, batch):
    return compute_loss("depth", model(batch["image"]), batch)


def miou(model, images, masks):
    from tinypix.metrics import ConfusionMatrix
    cm = ConfusionMatrix(4)
    cm.update(common.predict(model, images), masks)
    return cm.miou()


def trunk_of(unet):
    """The U-Net without its 1x1 head and its output activation (exp, for depth):
    x -> (N, base, H, W), the ReLU features of its last decoder block."""
    unet.head = nn.Identity()
    unet.activation = nn.Identity()
    return unet


def main():
    cfg = common.setup("transfer", __doc__, FULL, QUICK)
    test_set = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))

    # 1. Pre-train on depth, on scenes whose segmentation we never look at.
    depth_set = SyntheticScenes(cfg.pretrain_scenes, size=cfg.size, seed=cfg.seed + 500)
    tinypix.manual_seed(cfg.seed)
    pretrained = UNet(3, 1, base_channels=cfg.base, depth=3, task="depth")
    pretrained.head.bias.data[...] = np.log(6.0)   # a typical depth, in log space
    print(f"pre-training a U-Net ({common.count_parameters(pretrained)} parameters) on depth, "
          f"{len(depth_set)} scenes, {cfg.pretrain_steps} steps")
    with common.Stopwatch() as t:
        common.train(pretrained, DataLoader(depth_set, batch_size=16 if not cfg.quick else 4, shuffle=True,
                                            drop_last=True, seed=cfg.seed),
                     depth_loss, cfg.pretrain_steps, optim.Adam(pretrained.parameters(), lr=cfg.lr),
                     log_every=max(cfg.pretrain_steps // 4, 1), name="depth")
    print(f"pre-training took {t.seconds:.0f} s")
    pretrained_state = pretrained.state_dict()

    def fresh_pretrained():
        net = UNet(3, 1, base_channels=cfg.base, depth=3, task="depth")
        net.load_state_dict(pretrained_state)
        return trunk_of(net)

    rows, pictures = [], {}
    for budget in cfg.budgets:
        labelled = SyntheticScenes(budget, size=cfg.size, seed=cfg.seed)   # the few labelled scenes
        loader = DataLoader(labelled, batch_size=min(cfg.batch, budget), shuffle=True, drop_last=True, seed=cfg.seed)
        results = {}

        # (a) Frozen features + a per-pixel linear model (1x1 conv).
        frozen = fresh_pretrained()
        for p in frozen.parameters():
            p.requires_grad = False
        batch = next(iter(DataLoader(labelled, batch_size=budget)))
        features = common.predict(frozen, batch["image"]).numpy()          # (budget, base, H, W)
        probe = nn.Conv2d(cfg.base, 4, 1)
        with common.Stopwatch() as t:
            common.train(probe, DataLoader(Features(features, batch["mask"].numpy()), batch_size=min(cfg.batch, budget),
                                           shuffle=True, drop_last=True, seed=cfg.seed),
                         segmentation_loss, cfg.probe_steps, optim.Adam(probe.parameters(), lr=1e-2))
        probed = nn.Sequential(frozen, probe)
        results["(a) frozen depth features + 1x1 conv"] = (miou(probed, test["image"], test["mask"]), t.seconds, probed)

        # (b) Fine-tune everything from the depth weights, with a new 1x1 head.
        tinypix.manual_seed(cfg.seed)
        finetuned = nn.Sequential(fresh_pretrained(), nn.Conv2d(cfg.base, 4, 1))
        with common.Stopwatch() as t:
            common.train(finetuned, loader, segmentation_loss, cfg.steps, optim.Adam(finetuned.parameters(), lr=cfg.lr))
        results["(b) fine-tuned from depth"] = (miou(finetuned, test["image"], test["mask"]), t.seconds, finetuned)

        # (c) The same architecture from random weights.
        tinypix.manual_seed(cfg.seed)
        scratch = UNet(3, 4, base_channels=cfg.base, depth=3)
        with common.Stopwatch() as t:
            common.train(scratch, loader, segmentation_loss, cfg.steps, optim.Adam(scratch.parameters(), lr=cfg.lr))
        results["(c) from scratch"] = (miou(scratch, test["image"], test["mask"]), t.seconds, scratch)

        for name, (score, seconds, model) in results.items():
            rows.append([budget, name, score, f"{seconds:.0f}"])
            pictures[(budget, name)] = common.predict(model, test["image"]).numpy().argmax(1)
        print(f"label budget {budget}: " + ", ".join(f"{k.split()[0]} {v[0]:.3f}" for k, v in results.items()), flush=True)

    common.print_table(["labelled scenes", "method", "held-out mIoU", "train s"], rows,
                       title=f"segmentation with few labels, {len(test_set)} held-out scenes {cfg.size}x{cfg.size} "
                             f"({cfg.steps} steps for (b) and (c), {cfg.probe_steps} for the probe)")

    plt = common.pyplot()
    n = min(3, len(test_set))
    names = list(pictures)
    fig, axes = plt.subplots(n, 2 + len(names), figsize=(2 * (2 + len(names)), 2.2 * n), squeeze=False)
    for r in range(n):
        cols = [common.as_rgb(test["image"].numpy()[r]), colorize_labels(test["mask"].numpy()[r])]
        cols += [colorize_labels(pictures[k][r]) for k in names]
        for c, (ax, pic) in enumerate(zip(axes[r], cols)):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(["input", "truth"][c] if c < 2 else f"{names[c - 2][1].split()[0]} {names[c - 2][0]} labels",
                             fontsize=8)
    common.save_figure(fig, cfg.out, "predictions.png")


if __name__ == "__main__":
    main()
