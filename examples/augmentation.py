"""Data augmentation for pixel labeling: change the picture, move the labels with it.

Lecture idea: with few labelled images a network memorises them. Augmentation shows it a new
variant of each image at every step -- mirrored, cropped and zoomed, recoloured -- so it must
learn what stays the same. For pixel labels the spatial changes must hit the image and every
label map identically (the same flip, the same crop window, the same resize); a horizontal flip
must also negate the x component of each surface normal. Colour jitter changes the image only.
tinypix's joint transforms draw their random numbers once per sample and apply them to all keys.

The script
  1. draws one scene through the augmentation several times and writes a grid: image with the
     class outlines drawn on top, mask, depth, normals -- they must stay aligned;
  2. trains the same small U-Net on only a few scenes, with and without augmentation, for the
     same number of steps, and reports mIoU on the training scenes and on held-out scenes, over
     3 seeds (each seed draws its own scenes and initial weights).

Run:  python examples/augmentation.py           (3 seeds, about 1 minute on 2 CPU cores)
      python examples/augmentation.py --quick   (reduced: checks that it runs)
"""
import numpy as np

import common
import tinypix
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.data import transforms as T
from tinypix.models import UNet
from tinypix.training import compute_loss
from tinypix.viz import colorize_depth, colorize_labels, colorize_normals

FULL = dict(size=32, train_scenes=16, test_scenes=100, batch=8, steps=400, base=8, lr=2e-3, draws=5)
QUICK = dict(size=32, train_scenes=4, test_scenes=8, batch=4, steps=2, base=4, lr=2e-3, draws=3)


def augmentation(size):
    return T.Compose([
        T.RandomHorizontalFlip(p=0.5),                      # mirror (normals' x flips sign)
        T.RandomResizedCrop(size, scale=(0.4, 1.0)),        # a random window, zoomed back to size
        T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),   # the image only
    ])


def outlines(image, mask):
    """(H, W, 3) picture: the image with the mask's boundary band (label 255, 'ignore') painted white."""
    rgb = common.as_rgb(image).copy()
    rgb[mask == 255] = 1.0
    return rgb


def picture_grid(cfg, scenes):
    """One scene, augmented cfg.draws times: rows = draws, columns = image+outlines, mask, depth, normals."""
    transform, rng = augmentation(cfg.size), np.random.default_rng(cfg.seed)
    sample = scenes[0]
    draws = [sample] + [transform(sample, rng) for _ in range(cfg.draws)]
    plt = common.pyplot()
    fig, axes = plt.subplots(len(draws), 4, figsize=(8, 2 * len(draws)), squeeze=False)
    lo, hi = float(sample["depth"].min()), float(sample["depth"].max())
    for r, s in enumerate(draws):
        pics = [outlines(s["image"], s["mask"]), colorize_labels(s["mask"]),
                colorize_depth(s["depth"], lo, hi), colorize_normals(s["normals"])]
        for ax, pic, title in zip(axes[r], pics, ["image + mask outlines", "mask", "depth", "normals"]):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=8)
    fig.suptitle("top row: the scene; below: augmented draws (outlines, mask, depth and normals must agree)",
                 fontsize=8)
    return common.save_figure(fig, cfg.out, "augmented_samples.png")


def segmentation_loss(model, batch):
    return compute_loss("segmentation", model(batch["image"]), batch)


def train_and_score(cfg, train_set, test_set, transform, seed, name):
    """Train a fresh U-Net on ``train_set`` (augmented by ``transform``, or not); return its mIoU
    on the training scenes and on the held-out ones, and the training seconds."""
    tinypix.manual_seed(seed)
    model = UNet(3, 4, base_channels=cfg.base, depth=3)
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=seed, transform=transform)
    print(f"seed {seed}: training on {len(train_set)} scenes, augmentation: {name}", flush=True)
    with common.Stopwatch() as t:
        common.train(model, loader, segmentation_loss, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr))
    _, on_train = common.evaluate(model, DataLoader(train_set, batch_size=cfg.batch), "segmentation")
    _, on_test = common.evaluate(model, DataLoader(test_set, batch_size=50), "segmentation")
    return on_train["miou"], on_test["miou"], t.seconds


def main():
    cfg = common.setup("augmentation", __doc__, FULL, QUICK)
    picture_grid(cfg, SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=cfg.seed))

    arms = {"none": None, "flip + resized crop + colour jitter": augmentation(cfg.size)}
    train_miou, test_miou, seconds = ({name: [] for name in arms} for _ in range(3))
    for seed in cfg.seeds:
        train_set = SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=seed)
        test_set = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=seed + 1000)
        for name, transform in arms.items():
            on_train, on_test, s = train_and_score(cfg, train_set, test_set, transform, seed, name)
            train_miou[name].append(on_train)
            test_miou[name].append(on_test)
            seconds[name].append(s)
    gap = {name: np.subtract(train_miou[name], test_miou[name]) for name in arms}
    common.print_table(["augmentation", "train mIoU", "held-out mIoU", "gap", "train s"],
                       [[name, common.spread(train_miou[name]), common.spread(test_miou[name]),
                         common.spread(gap[name]), f"{np.mean(seconds[name]):.0f}"] for name in arms],
                       title=f"{cfg.train_scenes} training scenes, {cfg.test_scenes} held-out, {cfg.size}x{cfg.size}, "
                             f"{cfg.steps} steps of batch {cfg.batch}, mean ± sd over {len(cfg.seeds)} seed(s)")
    augmented = "flip + resized crop + colour jitter"
    common.lesson(f"with {cfg.train_scenes} labelled scenes, augmentation raises held-out mIoU",
                  test_miou[augmented], test_miou["none"], names=("augmented", "none"))
    common.lesson("without augmentation the network memorises its scenes: a wider gap between training and "
                  "held-out mIoU", gap[augmented], gap["none"], names=("augmented", "none"), higher=False)

if __name__ == "__main__":
    main()
