"""Edges to image: a U-Net turns a line sketch of a scene back into the picture, with an L1 loss.

Lecture idea: the output of a pixel-labeling network can be a whole picture. The input is an edge
sketch (1 channel: 1 on lines, 0 elsewhere, drawn from the scene's class outlines and creases) and
the target is the RGB picture itself:

    loss = mean | U-Net(sketch) - picture |

A sketch has no colours, so the network can only paint what the lines predict. Two versions of
the same scenes (the same cameras and objects, so the same sketches) make the point:

  * class colours (``SyntheticScenes(colors='by_class')``): every sphere is red, every box blue,
    every cylinder yellow (each channel jittered by at most 0.05), with a fixed wall, floor and
    light. A shape's outline tells its class, so it tells its colour, and shading follows from
    the surface's orientation: the network should beat any picture that ignores the sketch.
  * random colours (the default scenes): every surface's colour and the light are drawn at random,
    whatever the class. Nothing in the sketch predicts the colour, so the best an L1 loss can do
    at a pixel is the median of the colours it could have -- L1's minimiser is the median, as
    squared error's is the mean. The network learns that median: the washed-out greys that made
    pix2pix add an adversarial loss. It cannot beat the median training image by much.

The scores are L1 over object pixels (spheres, boxes, cylinders) of held-out scenes, against two
pictures that ignore the input: the mean and the per-pixel median of the training pictures (the
median is what an L1 loss learns when the input tells nothing).

Run:  python examples/edges_to_image.py            (full: 3 seeds, a few minutes on 2 CPU cores)
      python examples/edges_to_image.py --quick    (reduced: checks that it runs)
"""
import numpy as np

import common
import tinypix
import tinypix.nn.functional as F
from tinypix import optim
from tinypix.data import DataLoader, Dataset, SyntheticScenes
from tinypix.models import UNet

FULL = dict(size=32, train_scenes=400, test_scenes=100, batch=16, steps=400, base=8, lr=3e-3)
QUICK = dict(size=32, train_scenes=8, test_scenes=8, batch=4, steps=2, base=4, lr=3e-3)
OBJECTS = (1, 2, 3)  # sphere, box, cylinder: the pixels whose colour the lesson is about


def sketch(sample, crease_degrees=30.0):
    """A line drawing of a scene, (1, H, W) float32: 1 on lines, 0 elsewhere.

    Lines are drawn where the renderer's geometry changes, as an artist would outline a scene:
      * outlines between classes (the mask's one-pixel 'ignore' band, label 255);
      * creases, where the surface normal turns by more than ``crease_degrees`` from one pixel
        to the next (box edges, a cylinder's rim, the line where floor meets wall).
    Colour, shading and the floor's texture are left out: the picture must be imagined from lines.
    (An object in front of another of the same class gets no outline where they overlap, unless a
    crease happens to run there.)
    """
    normals = sample["normals"]
    lines = sample["mask"] == 255
    cos_limit = np.cos(np.radians(crease_degrees))
    lines[:-1, :] |= (normals[:, :-1, :] * normals[:, 1:, :]).sum(0) < cos_limit   # pixel vs the one below
    lines[:, :-1] |= (normals[:, :, :-1] * normals[:, :, 1:]).sum(0) < cos_limit   # pixel vs the one right
    return lines.astype(np.float32)[None]


class Sketches(Dataset):
    """Scenes as (sketch, picture) pairs: {'edges': (1, H, W), 'image': (3, H, W), 'mask': (H, W)}."""

    def __init__(self, scenes):
        self.scenes = scenes

    def __len__(self):
        return len(self.scenes)

    def __getitem__(self, i):
        sample = self.scenes[i]
        return {"edges": sketch(sample), "image": sample["image"], "mask": sample["mask"]}


def l1_to_picture(model, batch):
    return F.l1_loss(model(batch["edges"]).sigmoid(), batch["image"])


def l1_on_objects(pictures, truth, mask):
    """Mean |pictures - truth| over the object pixels of ``mask``; pictures (N, 3, H, W) or (3, H, W)."""
    on = np.isin(mask, OBJECTS)[:, None]                      # (N, 1, H, W)
    error = np.abs(pictures - truth)                          # broadcasts a single (3, H, W) picture
    return float((error * on).sum() / (on.sum() * truth.shape[1]))


def run(cfg, seed, colors):
    """Train one U-Net on sketches of scenes coloured ``colors``; return its scores and pictures."""
    train_set = Sketches(SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=seed, colors=colors))
    test_set = Sketches(SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=seed + 1000, colors=colors))
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=seed)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    truth, mask = test["image"].numpy(), test["mask"].numpy()

    tinypix.manual_seed(seed)
    model = UNet(1, 3, base_channels=cfg.base, depth=3)       # the output goes through a sigmoid: [0, 1]
    with common.Stopwatch() as t:
        common.train(model, loader, l1_to_picture, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr),
                     log_every=max(cfg.steps // 2, 1), name=f"seed {seed}, {colors} colours:")
    output = common.predict(model, test["edges"]).sigmoid().numpy()
    train_pictures = np.stack([train_set.scenes[i]["image"] for i in range(len(train_set))])
    mean_image, median_image = train_pictures.mean(0), np.median(train_pictures, axis=0)
    on = np.isin(mask, OBJECTS)
    return {"network": l1_on_objects(output, truth, mask), "mean": l1_on_objects(mean_image, truth, mask),
            "median": l1_on_objects(median_image, truth, mask), "seconds": t.seconds,
            # How much the colours of object pixels vary from pixel to pixel, per channel, averaged.
            "truth_sd": float(truth.transpose(1, 0, 2, 3)[:, on].std(1).mean()),
            "network_sd": float(output.transpose(1, 0, 2, 3)[:, on].std(1).mean()),
            "pictures": (test["edges"].numpy(), output, truth, median_image)}


def main():
    cfg = common.setup("edges_to_image", __doc__, FULL, QUICK)
    results = {colors: [run(cfg, seed, colors) for seed in cfg.seeds] for colors in ("by_class", "random")}
    score = lambda colors, key: [r[key] for r in results[colors]]  # noqa: E731  one number per seed

    rows = [[name, common.spread(score(colors, "mean")), common.spread(score(colors, "median")),
             common.spread(score(colors, "network")), common.spread(score(colors, "truth_sd")),
             common.spread(score(colors, "network_sd")), f"{np.mean(score(colors, 'seconds')):.0f}"]
            for colors, name in (("by_class", "class colours"), ("random", "random colours"))]
    common.print_table(["scenes", "L1 mean image", "L1 median image", "L1 U-Net", "colour sd: truth", "U-Net",
                        "train s per seed"], rows,
                       title=f"held-out object pixels ([0, 1] scale), {cfg.test_scenes} scenes "
                             f"{cfg.size}x{cfg.size}, {cfg.steps} steps, {len(cfg.seeds)} seed(s), mean ± sd")

    common.lesson("with class colours, shape predicts colour: the network beats the mean image on L1 "
                  "over object pixels", score("by_class", "network"), score("by_class", "mean"),
                  names=("U-Net", "mean image"), higher=False)
    common.lesson("with class colours, the network beats the median image too (what L1 learns from no "
                  "input)", score("by_class", "network"), score("by_class", "median"),
                  names=("U-Net", "median image"), higher=False)
    # Share of the median image's L1 that the network removes: its gain from reading the sketch.
    gain = lambda colors: 1 - np.divide(score(colors, "network"), score(colors, "median"))  # noqa: E731
    common.lesson("with random colours, L1 regresses to the median: the network removes little of the median "
                  "image's L1, with class colours a large share (share removed; margin 0.25)",
                  gain("by_class"), gain("random"), names=("class colours", "random colours"), margin=0.25)

    plt = common.pyplot()
    edges, by_class, by_class_truth, _ = results["by_class"][0]["pictures"]
    _, random, random_truth, random_median = results["random"][0]["pictures"]
    n = min(4, len(edges))
    titles = ("sketch", "class colours:\nU-Net", "truth", "random colours:\nU-Net", "truth", "median image")
    fig, axes = plt.subplots(n, len(titles), figsize=(1.8 * len(titles), 1.9 * n), squeeze=False)
    for r in range(n):
        pictures = (np.repeat(edges[r], 3, 0), by_class[r], by_class_truth[r], random[r], random_truth[r],
                    random_median)
        for ax, pic, title in zip(axes[r], pictures, titles):
            ax.imshow(common.as_rgb(pic), interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=9)
    common.save_figure(fig, cfg.out, "sketch_output_truth.png")


if __name__ == "__main__":
    main()
