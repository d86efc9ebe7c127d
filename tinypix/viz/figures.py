"""Figures of a training run -- input | truth | prediction rows, loss and metric curves -- and
``save``, which writes a figure or a picture to a file.

Figures are built on ``matplotlib.figure.Figure`` directly, never through pyplot: no backend is
chosen, no window opens, no global list of figures keeps them alive (nothing needs closing), and
matplotlib's settings stay as the user left them.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import uuid
from typing import TYPE_CHECKING, Any, Sequence

import matplotlib.figure
import numpy as np
from matplotlib.patches import Patch

from .colors import IGNORED, TASKS, as_numpy, colorize_depth, label_color, to_picture

if TYPE_CHECKING:
    from ..tensor import Tensor
    from ..typing import Array

DPI = 100
LEGEND_COLUMNS = 4


class Figure(matplotlib.figure.Figure):
    """A matplotlib Figure that Jupyter shows when a cell returns it, as PNG.

    Jupyter draws figures through a hook that importing pyplot (or ``%matplotlib inline``) installs;
    a figure made without pyplot would otherwise show as the text ``<Figure size ...>``. Where the
    hook is installed, Jupyter uses it instead of this method.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        return buffer.getvalue()


def save(figure_or_picture: matplotlib.figure.Figure | Tensor | Array, path: str | os.PathLike[str]) -> str:
    """Write a figure, or an (H, W, 3) picture, to ``path`` atomically; returns the path written.

    Args:
        figure_or_picture: a matplotlib Figure (from a ``plot_*`` function, or your own), or an
            (H, W, 3) picture: uint8, or floats in [0, 1] (what ``colorize_*`` return).
        path: the file. Its extension picks the format: .png, .svg, .pdf, .jpg, ... for a figure,
            the formats Pillow writes for a picture; without one, '.png' is appended. Missing
            folders are made.

    The file is written under a temporary name in the same folder and then renamed over ``path``
    (``os.replace``), so a reader -- say an image viewer refreshing curves.png during training --
    never sees half a file, and a crash leaves the previous file whole.
    """
    path = os.fspath(path)
    if not os.path.splitext(path)[1]:
        path += ".png"
    ext = os.path.splitext(path)[1].lower()
    if isinstance(figure_or_picture, matplotlib.figure.Figure):
        figure, image = figure_or_picture, None
        formats = figure.canvas.get_supported_filetypes()
        if ext[1:] not in formats:
            raise ValueError(f"save: matplotlib cannot write {ext} files ({path!r}); use one of "
                             f"{', '.join('.' + f for f in sorted(formats))}")
    else:
        from PIL import Image
        figure, image = None, Image.fromarray(_picture_uint8(figure_or_picture))
        image_format = Image.registered_extensions().get(ext)
        if image_format not in Image.SAVE:
            raise ValueError(f"save: Pillow cannot write {ext} files ({path!r}); use .png or .jpg")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            if figure is not None:
                figure.savefig(f, format=ext[1:], dpi=DPI, bbox_inches="tight")
            else:
                image.save(f, format=image_format)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    return path


def _picture_uint8(picture: Tensor | Array) -> np.ndarray:
    """An (H, W, 3) picture as uint8: floats in [0, 1] are scaled to 0..255."""
    array = as_numpy(picture)
    if array.ndim != 3 or array.shape[2] != 3:
        channels_first = array.ndim == 3 and array.shape[0] == 3
        hint = "; a (3, H, W) image needs .transpose(1, 2, 0) first" if channels_first else ""
        raise ValueError(f"save: expected a matplotlib Figure or an (H, W, 3) picture, got "
                         f"{type(picture).__name__} of shape {array.shape}{hint}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype.kind != "f":
        raise ValueError(f"save: a picture must be uint8 (0..255) or floats in [0, 1], got {array.dtype}")
    return (np.clip(np.nan_to_num(array), 0, 1) * 255).round().astype(np.uint8)


def _rgb(image: np.ndarray) -> np.ndarray:
    """A network's input (3, H, W) or (1, H, W), in [0, 1], as an (H, W, 3) picture."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"plot_predictions: expected images (N, 3, H, W) or (N, 1, H, W), got one of "
                         f"shape {image.shape}")
    return np.clip(np.repeat(image, 3 // image.shape[0], axis=0).transpose(1, 2, 0), 0, 1)


def _class_name(k: int, class_names: Sequence[str] | None) -> str:
    if k == IGNORED:
        return "ignored"
    if class_names is None:
        return f"class {k}"
    if not 0 <= k < len(class_names):
        raise ValueError(f"plot_predictions: label {k} is drawn but class_names has {len(class_names)} "
                         f"names (labels 0..{len(class_names) - 1} and 255); pass a name for every class")
    return str(class_names[k])


def plot_predictions(task: str, images: Tensor | Array, targets: Tensor | Array, predictions: Tensor | Array,
                     max_rows: int = 6, class_names: Sequence[str] | None = None) -> Figure:
    """One row per sample: input | ground truth | prediction; for segmentation, a legend of classes.

    Args:
        task: 'segmentation', 'depth' or 'normals'.
        images: (N, 3, H, W) in [0, 1], or (N, 1, H, W) gray.
        targets: labels (N, H, W) ints (255 = ignored), depth (N, H, W) or (N, 1, H, W), or unit
            normals (N, 3, H, W).
        predictions: shaped as ``targets``; for segmentation also scores (N, C, H, W), drawn as
            their argmax over C.
        max_rows: draw the first ``max_rows`` samples.
        class_names: names of classes 0, 1, ... for the legend; None names them 'class 0', ...

    Returns:
        A Figure of 3 image axes a row. For segmentation one more axes below them holds the
        legend: a patch of each class that appears in the drawn truths or predictions, and 255 as
        'ignored'. A row's depth truth and prediction share one colour scale, the truth's range.
    """
    if task not in TASKS:
        raise ValueError(f"plot_predictions: task must be one of {TASKS}, got {task!r}")
    images, targets, predictions = as_numpy(images), as_numpy(targets), as_numpy(predictions)
    if not len(images) == len(targets) == len(predictions):
        raise ValueError(f"plot_predictions: got {len(images)} images, {len(targets)} targets and "
                         f"{len(predictions)} predictions; pass one of each per sample")
    if task == "segmentation" and predictions.ndim == 4:
        predictions = predictions.argmax(1)
    n = min(len(images), max_rows)
    classes = []
    if task == "segmentation":
        classes = sorted(int(k) for k in np.union1d(np.unique(targets[:n]), np.unique(predictions[:n])))
    legend_height = 0.3 * math.ceil(len(classes) / LEGEND_COLUMNS) + 0.2 if classes else 0
    fig = Figure(figsize=(6, 2 * n + legend_height), layout="constrained")
    grid = fig.add_gridspec(n + bool(classes), 3, height_ratios=[2] * n + ([legend_height] if classes else []))
    for r in range(n):
        truth, pred = targets[r], predictions[r]
        if task == "depth":
            lo, hi = float(np.nanmin(truth)), float(np.nanmax(truth))
            pictures = [colorize_depth(truth, lo, hi), colorize_depth(pred, lo, hi)]
        else:
            pictures = [to_picture(task, truth), to_picture(task, pred)]
        for c, (picture, title) in enumerate(zip([_rgb(images[r])] + pictures,
                                                 ["input", "ground truth", "prediction"])):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(picture, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    if classes:
        ax = fig.add_subplot(grid[n, :])
        ax.set_axis_off()
        patches = [Patch(facecolor=label_color(k) / 255, edgecolor="0.6", label=_class_name(k, class_names))
                   for k in classes]
        ax.legend(handles=patches, loc="center", ncol=min(len(patches), LEGEND_COLUMNS), frameon=False)
    return fig


def plot_curves(history: Sequence[dict[str, Any]], metric_name: str) -> Figure:
    """Training and held-out loss, and the main held-out metric, per epoch, side by side.

    Args:
        history: one dict per epoch with keys 'epoch', 'train_loss', 'val_loss' and ``metric_name``
            (what ``tinypix train`` writes to metrics.json).
        metric_name: the metric to draw on the right, e.g. 'miou'.

    Returns:
        A Figure with two axes: losses, then the metric.
    """
    needed = {"epoch", "train_loss", "val_loss", metric_name}
    missing = sorted({key for h in history for key in needed - set(h)})
    if missing:
        raise ValueError(f"plot_curves: the history lacks the keys {missing}; each epoch's dict needs "
                         f"{sorted(needed)}")
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    loss, metric = fig.subplots(1, 2)
    loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="held-out")
    loss.set_xlabel("epoch")
    loss.set_ylabel("loss")
    loss.legend()
    metric.plot(epochs, [h[metric_name] for h in history], "o-", color="C2")
    metric.set_xlabel("epoch")
    metric.set_ylabel(f"held-out {metric_name}")
    return fig
