"""Transfer learning: features learned on a cheap task help an expensive one when labels are scarce.

Lecture idea: segmentation labels are expensive (someone paints every pixel); surface normals come
almost for free (a depth camera records depth with the picture, and normals follow from it). So
pre-train a U-Net to predict normals on many scenes, then use it for segmentation with only a few
labelled scenes (20 here). Two ways:

  1. Linear probe of frozen features (hypercolumns). Freeze the pre-trained network; take the
     feature maps of every encoder level (full resolution, 1/2, 1/4, 1/8), upsample each to full
     resolution and stack them, so every pixel gets one long vector that describes it at all
     scales (Hariharan et al., 2015); fit a per-pixel linear classifier, a 1x1 convolution, on top.
     Only the 1x1 convolution learns. The control is the same probe on the same architecture with
     random weights, frozen: its features are random filters of the picture at the same scales.
     If pre-training on normals taught the encoder what surfaces are curved, flat, round or
     upright, the pre-trained hypercolumns separate spheres, boxes and cylinders better than
     random ones. Random features are no straw man: a linear layer on them does clearly better
     than the same layer on the raw pixels (the first row of the table).
  2. Fine-tuning: start from the pre-trained weights, put a new 1x1 head on top and train the
     whole network on the 20 labelled scenes, against the same U-Net trained from scratch on
     them for the same number of steps.

Every arm is repeated over seeds (3 by default): each seed draws its own pre-training and labelled
scenes and its own initial weights. The held-out scenes are the same for all.

Run:  python examples/transfer.py           (full: 3 seeds, a few minutes on 2 CPU cores)
      python examples/transfer.py --quick   (reduced: checks that it runs)
"""
import os
import textwrap

import numpy as np

import common
import tinypix
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.metrics import ConfusionMatrix
from tinypix.models import UNet
from tinypix.training import compute_loss
from tinypix.viz import colorize_labels

FULL = dict(size=32, pretrain_scenes=400, pretrain_steps=300, pretrain_batch=16, labelled=20, test_scenes=100,
            batch=8, steps=200, probe_steps=300, base=8, lr=2e-3, probe_lr=1e-2)
QUICK = dict(size=32, pretrain_scenes=8, pretrain_steps=2, pretrain_batch=4, labelled=4, test_scenes=8,
             batch=4, steps=2, probe_steps=2, base=4, lr=2e-3, probe_lr=1e-2)


def unet(cfg, out_channels, task):
    return UNet(3, out_channels, base_channels=cfg.base, depth=3, task=task)


@tinypix.no_grad()
def hypercolumns(model, images, batch=50):
    """Per-pixel features of every encoder level of a frozen U-Net, upsampled to full resolution and
    stacked: images (N, 3, H, W) -> (N, base * (1 + 2 + 4 + 8), H, W) as a NumPy array."""
    model.eval()
    H, W = images.shape[-2:]
    out = []
    for start in range(0, len(images), batch):
        h, levels = images[start:start + batch], []
        for i, enc in enumerate(model.encoders):
            h = enc(h if i == 0 else model.pool(h))
            levels.append(F.interpolate(h, size=(H, W), mode="bilinear", align_corners=False))
        out.append(tinypix.cat(levels, dim=1).numpy())
    return np.concatenate(out)


def linear_probe(cfg, features, masks, test_features, seed):
    """Fit a 1x1 convolution on standardised features (full batch, Adam); return held-out labels."""
    mean = features.mean(axis=(0, 2, 3), keepdims=True)
    std = features.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    x = tinypix.tensor((features - mean) / std)
    x_test = tinypix.tensor((test_features - mean) / std)
    tinypix.manual_seed(seed)
    probe = nn.Conv2d(features.shape[1], SyntheticScenes.num_classes, 1)
    optimizer = optim.Adam(probe.parameters(), lr=cfg.probe_lr)
    for _ in range(cfg.probe_steps):
        loss = F.cross_entropy(probe(x), masks, ignore_index=SyntheticScenes.ignore_index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return common.predict(probe, x_test).numpy().argmax(1)


def miou(labels, masks):
    cm = ConfusionMatrix(SyntheticScenes.num_classes)
    cm.update(labels, masks)
    return cm.miou()


def segmentation_loss(model, batch):
    return compute_loss("segmentation", model(batch["image"]), batch)


def normals_loss(model, batch):
    return compute_loss("normals", model(batch["image"]), batch)


def run_seed(cfg, seed, test):
    """All arms for one seed: {arm: held-out labels (N, H, W)} and {arm: CPU seconds}."""
    labels, cpu = {}, {}

    def timed(name, fn):
        start = os.times()
        labels[name] = fn()
        cpu[name] = sum(os.times()[:2]) - sum(start[:2])

    unlabelled = SyntheticScenes(cfg.pretrain_scenes, size=cfg.size, seed=seed + 500)
    labelled = SyntheticScenes(cfg.labelled, size=cfg.size, seed=seed)
    few = next(iter(DataLoader(labelled, batch_size=len(labelled))))

    # Pre-train on normals: labels that cost no painting.
    tinypix.manual_seed(seed)
    pretrained = unet(cfg, 3, "normals")
    start = os.times()
    common.train(pretrained, DataLoader(unlabelled, batch_size=cfg.pretrain_batch, shuffle=True, drop_last=True,
                                        seed=seed),
                 normals_loss, cfg.pretrain_steps, optim.Adam(pretrained.parameters(), lr=cfg.lr))
    pretrain_cpu = sum(os.times()[:2]) - sum(start[:2])
    pretrained.eval()

    # The control: the same architecture as the pre-trained net started, random weights, frozen
    # as they are (BatchNorm with its initial statistics, mean 0 and variance 1, passes values
    # through). Measuring its BatchNorm statistics on the pictures first gave worse probes, so
    # this is the stronger random control.
    tinypix.manual_seed(seed)
    random_net = unet(cfg, 3, "normals")

    timed("probe: pixels (RGB)", lambda: linear_probe(cfg, few["image"].numpy(), few["mask"],
                                                       test["image"].numpy(), seed))
    for name, net in (("probe: random frozen net", random_net), ("probe: normals-pre-trained frozen net", pretrained)):
        timed(name, lambda: linear_probe(cfg, hypercolumns(net, few["image"]), few["mask"],
                                         hypercolumns(net, test["image"]), seed))

    loader = DataLoader(labelled, batch_size=min(cfg.batch, cfg.labelled), shuffle=True, drop_last=True, seed=seed)

    def fine_tune():
        tinypix.manual_seed(seed)
        pretrained.head = nn.Conv2d(cfg.base, SyntheticScenes.num_classes, 1)   # a new head: classes
        pretrained.activation = nn.Identity()                                   # logits, not unit vectors
        common.train(pretrained, loader, segmentation_loss, cfg.steps, optim.Adam(pretrained.parameters(), lr=cfg.lr))
        return common.predict(pretrained, test["image"]).numpy().argmax(1)

    def from_scratch():
        tinypix.manual_seed(seed)
        scratch = unet(cfg, SyntheticScenes.num_classes, "segmentation")
        common.train(scratch, loader, segmentation_loss, cfg.steps, optim.Adam(scratch.parameters(), lr=cfg.lr))
        return common.predict(scratch, test["image"]).numpy().argmax(1)

    timed("fine-tuned from normals", fine_tune)
    timed("from scratch", from_scratch)
    cpu["pre-training on normals"] = pretrain_cpu
    return labels, cpu


def main():
    cfg = common.setup("transfer", __doc__, FULL, QUICK)
    test_set = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    masks = test["mask"].numpy()
    print(f"pre-training on normals: {cfg.pretrain_scenes} scenes, {cfg.pretrain_steps} steps; segmentation: "
          f"{cfg.labelled} labelled scenes, {cfg.probe_steps} probe steps, {cfg.steps} steps for fine-tuning and "
          f"scratch; {len(test_set)} held-out scenes {cfg.size}x{cfg.size}; seeds {cfg.seeds}")

    scores, cpu = {}, {}
    for seed in cfg.seeds:
        labels, seconds = run_seed(cfg, seed, test)
        for name in labels:
            scores.setdefault(name, []).append(miou(labels[name], masks))
        for name, s in seconds.items():
            cpu.setdefault(name, []).append(s)
        print(f"  seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in scores.items()), flush=True)

    rows = [[name, common.spread(scores[name]) if name in scores else "-", f"{np.mean(cpu[name]):.0f}"]
            for name in ["pre-training on normals", *scores]]
    common.print_table(["arm", "held-out mIoU", "CPU s/seed"], rows,
                       title=f"segmentation from {cfg.labelled} labelled scenes, "
                             f"mean ± sd over {len(cfg.seeds)} seeds")
    plot(test, labels, cfg.out)

    common.lesson("a linear probe of all encoder levels (hypercolumns) of a normals-pre-trained frozen net "
                  "beats the same probe of a random frozen net",
                  scores["probe: normals-pre-trained frozen net"], scores["probe: random frozen net"],
                  names=("mIoU pre-trained", "random"))
    common.lesson(f"with {cfg.labelled} labelled scenes, fine-tuning the normals-pre-trained net beats training "
                  "from scratch", scores["fine-tuned from normals"], scores["from scratch"],
                  names=("mIoU fine-tuned", "scratch"))


def plot(test, labels, out, rows=3):
    """input | truth | each arm's held-out labels (the last seed's)."""
    plt = common.pyplot()
    names = list(labels)
    fig, axes = plt.subplots(rows, 2 + len(names), figsize=(2 * (2 + len(names)), 2.2 * rows), squeeze=False)
    for r in range(min(rows, len(test["mask"]))):
        pictures = [common.as_rgb(test["image"].numpy()[r]), colorize_labels(test["mask"].numpy()[r])]
        pictures += [colorize_labels(labels[name][r]) for name in names]
        for c, (ax, pic) in enumerate(zip(axes[r], pictures)):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(textwrap.fill(["input", "truth", *names][c], 20, break_on_hyphens=False), fontsize=8)
    common.save_figure(fig, out, "predictions.png")


if __name__ == "__main__":
    main()
