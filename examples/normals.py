"""Surface normals from one picture: three numbers per pixel that must form a unit vector.

Lecture idea: a normal is a direction, not three independent numbers. So the network's raw
3-vector per pixel is divided by its length (the 'normals' head of tinypix.models, an L2
normalisation along the channel dimension), and the loss is the angle's cosine:

    loss = mean over pixels of (1 - cos(angle between predicted and true normal))

which ignores the length and is 0 for a perfect direction, 1 at 90 degrees, 2 when reversed. The
metrics are angles: mean and median error in degrees, and the share of pixels within 11.25,
22.5 and 30 degrees. Two baselines never look at the picture: the mean normal everywhere (most
pixels are floor, facing up) and the mean training normal map (floor below, wall behind). The
control treats the normal as three independent numbers: the same U-Net with a plain output,
trained with the mean squared error to (nx, ny, nz), and divided by its length only to score it.

Normals are in camera coordinates (x right, y up, z towards the camera) and drawn as RGB with
(n + 1) / 2: the floor is greenish (up), the wall blue-violet (towards us), a sphere a rainbow.

Run:  python examples/normals.py           (3 seeds, about 2 minutes on 2 CPU cores)
      python examples/normals.py --quick   (reduced: checks that it runs)
"""
import os

import numpy as np

import common
import tinypix
import tinypix.nn.functional as F
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.metrics import normal_metrics
from tinypix.models import UNet
from tinypix.training import compute_loss
from tinypix.viz import plot_predictions, save

FULL = dict(size=48, train_scenes=400, test_scenes=100, batch=16, steps=400, base=8, lr=2e-3)
QUICK = dict(size=32, train_scenes=8, test_scenes=8, batch=4, steps=3, base=4, lr=2e-3)
METRICS = ["mean", "median", "within_11.25", "within_22.5", "within_30"]


def cosine_loss(model, batch):
    """1 - cos between the predicted and true normal, averaged over pixels (F.cosine_normal_loss)."""
    return compute_loss("normals", model(batch["image"]), batch)


def three_numbers_loss(model, batch):
    """The control: mean squared error between the raw 3-vector and the true normal."""
    return F.mse_loss(model(batch["image"]), batch["normals"])


def unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-3, keepdims=True), 1e-12)


def run_seed(cfg, seed):
    """Both baselines and both networks on one seed's scenes: {arm: metrics}, the unit net's
    predictions (N, 3, H, W), the held-out batch and the training seconds per network."""
    train_set = SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=seed)
    test_set = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=seed + 1000)
    test = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    true_normals = test["normals"].numpy()

    train_normals = np.stack([train_set[i]["normals"] for i in range(len(train_set))])   # (N, 3, H, W)
    mean_normal = unit(train_normals.mean(axis=(0, 2, 3))[:, None, None])               # (3, 1, 1)
    mean_map = unit(train_normals.mean(axis=0))                                          # (3, H, W)
    results = {"mean normal everywhere": normal_metrics(np.broadcast_to(mean_normal, true_normals.shape), true_normals),
               "mean training normal map": normal_metrics(np.broadcast_to(mean_map, true_normals.shape), true_normals)}
    seconds, predictions = {}, {}
    for arm, task, loss_fn in (("U-Net, unit head, 1 - cos", "normals", cosine_loss),
                               ("U-Net, 3 numbers, MSE", "segmentation", three_numbers_loss)):
        tinypix.manual_seed(seed)
        # task="normals" ends in normalize(x, dim=1); "segmentation" leaves the 3 outputs as they are
        model = UNet(3, 3, base_channels=cfg.base, depth=3, task=task)
        loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=seed)
        print(f"seed {seed}: training {arm} ({common.count_parameters(model)} parameters), "
              f"{len(train_set)} scenes {cfg.size}x{cfg.size}", flush=True)
        with common.Stopwatch() as t:
            common.train(model, loader, loss_fn, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr))
        predictions[arm] = common.predict(model, test["image"]).numpy()
        results[arm] = normal_metrics(predictions[arm], true_normals)      # divides by the length to score
        seconds[arm] = t.seconds
    return results, predictions["U-Net, unit head, 1 - cos"], test, seconds


def main():
    cfg = common.setup("normals", __doc__, FULL, QUICK)
    per_seed, lengths, train_seconds = [], [], []
    for seed in cfg.seeds:
        results, unit_pred, test, seconds = run_seed(cfg, seed)
        per_seed.append(results)
        train_seconds += list(seconds.values())
        lengths.append(np.linalg.norm(unit_pred, axis=1))
        if seed == cfg.seeds[0]:
            path = os.path.join(cfg.out, "predictions.png")
            save(plot_predictions("normals", test["image"].numpy(), test["normals"].numpy(), unit_pred, max_rows=4),
                 path)
            print(f"wrote {path}  (input | true normals | predicted, as RGB = (n + 1) / 2)")

    arms = list(per_seed[0])
    values = {arm: {m: [r[arm][m] for r in per_seed] for m in METRICS} for arm in arms}
    common.print_table(["prediction", "mean deg", "median deg", "<11.25", "<22.5", "<30"],
                       [[arm] + [common.spread(values[arm][m]) for m in METRICS] for arm in arms],
                       title=f"held-out angular error, {cfg.test_scenes} scenes per seed, networks trained "
                             f"{cfg.steps} steps of batch {cfg.batch} (about {np.mean(train_seconds):.0f} s "
                             f"each), mean ± sd over {len(cfg.seeds)} seed(s)")
    unit_arm, three_arm = "U-Net, unit head, 1 - cos", "U-Net, 3 numbers, MSE"
    common.lesson("a U-Net reads surface normals off the picture: it beats the best picture-blind guess, the mean "
                  "training normal map (mean angular error, degrees)",
                  values[unit_arm]["mean"], values["mean training normal map"]["mean"],
                  names=("U-Net", "mean map"), higher=False)
    common.lesson("a normal is a direction: a unit head trained with 1 - cos beats regressing three independent "
                  "numbers with MSE (mean angular error, degrees)",
                  values[unit_arm]["mean"], values[three_arm]["mean"], names=("unit + 1 - cos", "MSE"), higher=False)
    lengths = np.concatenate([v.ravel() for v in lengths])
    shown = bool(np.all(np.abs(lengths - 1) < 1e-4))
    print(f"lesson: the unit head's outputs are unit vectors at every pixel, by construction — "
          f"{'shown' if shown else 'NOT shown'} (lengths {lengths.min():.5f} to {lengths.max():.5f}, "
          f"{lengths.size} pixels)")


if __name__ == "__main__":
    main()
