"""Edges to image: a U-Net turns a line sketch of a scene back into the picture.

Lecture idea: the output of a pixel-labeling network can be a whole picture. Here the input is an
edge sketch (1 channel: 1 on lines, 0 elsewhere; drawn from the scene's class outlines and
creases) and the target is the RGB picture itself, trained with an L1 loss:

    loss = mean | U-Net(sketch) - picture |

The sketch keeps the outlines but throws away every colour, all shading and the floor's
texture, so the network can only guess them from what scenes usually look like. It can learn
the layout (floor, wall, shading of round and flat surfaces); colours it can only guess, and an
L1 loss on an ambiguous colour gives the per-pixel median of the plausible colours -- the
washed-out look that made pix2pix add an adversarial loss. (Colours in these scenes are random,
so by L1 the U-Net hardly beats the mean training image; look at the pictures.)

Run:  python examples/edges_to_image.py           (full, a few minutes on 2 CPU cores)
      python examples/edges_to_image.py --quick   (reduced: checks that it runs)
"""
import numpy as np

import common
import tinypix.nn.functional as F
from tinypix import optim
from tinypix.data import DataLoader, Dataset, SyntheticScenes
from tinypix.models import UNet

FULL = dict(size=32, train_scenes=400, test_scenes=100, batch=16, steps=400, base=8, lr=2e-3)
QUICK = dict(size=32, train_scenes=8, test_scenes=8, batch=4, steps=2, base=4, lr=2e-3)


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
    """Scenes as (sketch, picture) pairs: {'edges': (1, H, W), 'image': (3, H, W)}."""

    def __init__(self, scenes):
        self.scenes = scenes

    def __len__(self):
        return len(self.scenes)

    def __getitem__(self, i):
        sample = self.scenes[i]
        return {"edges": sketch(sample), "image": sample["image"]}


def l1_to_picture(model, batch):
    return F.l1_loss(model(batch["edges"]).sigmoid(), batch["image"])


def main():
    cfg = common.setup("edges_to_image", __doc__, FULL, QUICK)
    train_set = Sketches(SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=cfg.seed))
    test_set = Sketches(SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000))
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=cfg.seed)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))

    model = UNet(1, 3, base_channels=cfg.base, depth=3)      # the output goes through a sigmoid: [0, 1]
    edge_share = float(test["edges"].numpy().mean())
    print(f"U-Net {common.count_parameters(model)} parameters; sketches mark {100 * edge_share:.0f}% of pixels as edges")
    with common.Stopwatch() as t:
        common.train(model, loader, l1_to_picture, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr),
                     log_every=max(cfg.steps // 5, 1), name="edges->image")
    output = common.predict(model, test["edges"]).sigmoid().numpy()
    truth = test["image"].numpy()
    mean_image = np.mean([train_set[i]["image"] for i in range(len(train_set))], axis=0)
    rows = [["mean training image", float(np.abs(mean_image - truth).mean()), "-"],
            [f"U-Net from the sketch, {cfg.steps} steps", float(np.abs(output - truth).mean()), f"{t.seconds:.0f}"]]
    common.print_table(["prediction", "held-out L1 (per channel, [0, 1] scale)", "train s"], rows,
                       title=f"{len(test_set)} held-out scenes {cfg.size}x{cfg.size}")

    plt = common.pyplot()
    n = min(5, len(truth))
    fig, axes = plt.subplots(n, 3, figsize=(5.4, 1.9 * n), squeeze=False)
    for r in range(n):
        for ax, pic, title in zip(axes[r], (np.repeat(test["edges"].numpy()[r], 3, 0), output[r], truth[r]),
                                  ("sketch", "output", "truth")):
            ax.imshow(common.as_rgb(pic), interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    common.save_figure(fig, cfg.out, "sketch_output_truth.png")


if __name__ == "__main__":
    main()
