"""Surface normals from one picture: three numbers per pixel that must form a unit vector.

Lecture idea: a normal is a direction, not three independent numbers. So the network's raw
3-vector per pixel is divided by its length (the 'normals' head of tinypix.models, an L2
normalisation along the channel dimension), and the loss is the angle's cosine:

    loss = mean over pixels of (1 - cos(angle between predicted and true normal))

which ignores the length and is 0 for a perfect direction, 1 at 90 degrees, 2 when reversed. The
metrics are angles: mean and median error in degrees, and the share of pixels within 11.25,
22.5 and 30 degrees. Two baselines never look at the picture: the mean normal everywhere (most
pixels are floor, facing up) and the mean training normal map (floor below, wall behind).

Normals are in camera coordinates (x right, y up, z towards the camera) and drawn as RGB with
(n + 1) / 2: the floor is greenish (up), the wall blue-violet (towards us), a sphere a rainbow.

Run:  python examples/normals.py           (full, a few minutes on 2 CPU cores)
      python examples/normals.py --quick   (reduced: checks that it runs)
"""
import os

import numpy as np

import common
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.metrics import normal_metrics
from tinypix.models import UNet
from tinypix.training import compute_loss
from tinypix.viz import plot_predictions, save

FULL = dict(size=48, train_scenes=400, test_scenes=100, batch=16, steps=400, base=8, lr=2e-3)
QUICK = dict(size=32, train_scenes=8, test_scenes=8, batch=4, steps=3, base=4, lr=2e-3)


def cosine_loss(model, batch):
    """1 - cos between the predicted and true normal, averaged over pixels (F.cosine_normal_loss)."""
    return compute_loss("normals", model(batch["image"]), batch)


def unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-3, keepdims=True), 1e-12)


def main():
    cfg = common.setup("normals", __doc__, FULL, QUICK)
    train_set = SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=cfg.seed)
    test_set = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000)
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=cfg.seed)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    true_normals = test["normals"].numpy()

    train_normals = np.stack([train_set[i]["normals"] for i in range(len(train_set))])   # (N, 3, H, W)
    mean_normal = unit(train_normals.mean(axis=(0, 2, 3))[:, None, None])               # (3, 1, 1)
    mean_map = unit(train_normals.mean(axis=0))                                          # (3, H, W)
    headers = ["model", "steps", "mean deg", "median deg", "<11.25", "<22.5", "<30", "train s"]
    constant = np.broadcast_to(mean_normal, true_normals.shape)
    layout = np.broadcast_to(mean_map, true_normals.shape)
    rows = [["mean normal everywhere", "-", *row(normal_metrics(constant, true_normals)), "-"],
            ["mean training normal map", "-", *row(normal_metrics(layout, true_normals)), "-"]]

    model = UNet(3, 3, base_channels=cfg.base, depth=3, task="normals")   # ends in normalize(x, dim=1)
    optimizer = optim.Adam(model.parameters(), lr=cfg.lr)
    print(f"training a U-Net ({common.count_parameters(model)} parameters), loss 1 - cos, "
          f"{len(train_set)} scenes {cfg.size}x{cfg.size}")
    with common.Stopwatch() as t:
        common.train(model, loader, cosine_loss, cfg.steps, optimizer, log_every=max(cfg.steps // 5, 1), name="normals")
    pred = common.predict(model, test["image"]).numpy()
    lengths = np.linalg.norm(pred, axis=1)
    rows.append(["U-Net, 1 - cos loss", cfg.steps, *row(normal_metrics(pred, true_normals)), f"{t.seconds:.0f}"])
    common.print_table(headers, rows, title=f"held-out angular error, {len(test_set)} scenes")
    print(f"predicted normals have length {lengths.min():.4f} to {lengths.max():.4f} (unit by construction)")

    path = os.path.join(cfg.out, "predictions.png")
    save(plot_predictions("normals", test["image"].numpy(), true_normals, pred, max_rows=4), path)
    print(f"wrote {path}  (input | true normals | predicted, as RGB = (n + 1) / 2)")


def row(m):
    return [m["mean"], m["median"], m["within_11.25"], m["within_22.5"], m["within_30"]]


if __name__ == "__main__":
    main()
