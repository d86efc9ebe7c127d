"""Pictures written by training runs: loss/metric curves and input | truth | prediction grids."""
import os

import numpy as np

# A fixed palette, so class k has the same colour in every picture (255 = ignored, shown white).
PALETTE = np.array([[40, 40, 40], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                    [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
                    [170, 255, 195], [128, 128, 0], [255, 215, 180], [0, 0, 128], [128, 128, 128],
                    [255, 225, 25]], dtype=np.uint8)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt
    return plt


def colorize_labels(labels):
    """labels: (H, W) ints -> (H, W, 3) uint8 RGB with the fixed palette; 255 becomes white."""
    labels = np.asarray(labels)
    rgb = PALETTE[np.clip(labels, 0, None) % len(PALETTE)]
    rgb[labels == 255] = 255
    return rgb


def colorize_depth(depth, vmin=None, vmax=None):
    """depth: (H, W) -> (H, W, 3) floats in [0, 1] through the 'viridis' colour map (near = dark)."""
    plt = _pyplot()
    vmin = np.min(depth) if vmin is None else vmin
    vmax = np.max(depth) if vmax is None else vmax
    return plt.get_cmap("viridis")(np.clip((depth - vmin) / max(vmax - vmin, 1e-8), 0, 1))[..., :3]


def colorize_normals(normals):
    """normals: (3, H, W) unit vectors -> (H, W, 3) RGB in [0, 1] as (n + 1) / 2."""
    return np.clip((np.transpose(normals, (1, 2, 0)) + 1) / 2, 0, 1)


def to_picture(task, target):
    """Any task's (H, W) / (3, H, W) map as an (H, W, 3) picture."""
    if task == "segmentation":
        return colorize_labels(target)
    if task == "depth":
        return colorize_depth(np.squeeze(target))
    return colorize_normals(target)


def _save(fig, path):
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    os.replace(tmp, path)  # atomic: a reader never sees half a PNG


def save_picture(path, picture):
    """Write an (H, W, 3) picture (uint8, or floats in [0, 1]) as a PNG, atomically."""
    from PIL import Image
    if picture.dtype != np.uint8:
        picture = (np.clip(picture, 0, 1) * 255).round().astype(np.uint8)
    tmp = f"{path}.tmp.png"
    Image.fromarray(picture).save(tmp)
    os.replace(tmp, path)


def save_predictions(path, task, images, targets, predictions, max_rows=6):
    """One row per sample: input | ground truth | prediction. images: (N, 3, H, W) in [0, 1]."""
    plt = _pyplot()
    n = min(len(images), max_rows)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    for r in range(n):
        truth, pred = targets[r], predictions[r]
        if task == "depth":  # one colour scale for truth and prediction
            lo, hi = float(np.min(truth)), float(np.max(truth))
            pics = [colorize_depth(np.squeeze(truth), lo, hi), colorize_depth(np.squeeze(pred), lo, hi)]
        else:
            pics = [to_picture(task, truth), to_picture(task, pred)]
        for ax, pic, title in zip(axes[r], [np.clip(np.transpose(images[r], (1, 2, 0)), 0, 1)] + pics,
                                  ["input", "ground truth", "prediction"]):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    _save(fig, path)
    plt.close(fig)


def save_curves(path, history, metric_name):
    """Training/validation loss and the main metric per epoch, side by side."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(epochs, [h["val_loss"] for h in history], "o-", label="held-out")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.legend()
    b.plot(epochs, [h[metric_name] for h in history], "o-", color="C2")
    b.set_xlabel("epoch")
    b.set_ylabel(f"held-out {metric_name}")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
