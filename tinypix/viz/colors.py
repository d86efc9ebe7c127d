"""Maps as pictures: labels, depth and normals turned into (H, W, 3) RGB arrays.

Each function takes a NumPy array, a CuPy array or a Tensor and returns a NumPy array that
``matplotlib``'s ``imshow`` draws and ``tinypix.viz.save`` writes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backend import to_device
from ..tensor import Tensor

if TYPE_CHECKING:
    from ..typing import Array

# One colour per class, fixed, so class k looks the same in every picture; labels past the end
# wrap around. 255 (the usual ignore_index) is drawn white.
PALETTE = np.array([[40, 40, 40], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                    [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
                    [170, 255, 195], [128, 128, 0], [255, 215, 180], [0, 0, 128], [128, 128, 128],
                    [255, 225, 25]], dtype=np.uint8)
IGNORED = 255
TASKS = ("segmentation", "depth", "normals")


def as_numpy(x: Tensor | Array) -> np.ndarray:
    """A NumPy array of a Tensor (detached, copied off the GPU), a CuPy array or anything array-like."""
    if isinstance(x, Tensor):
        x = x.detach().data
    return np.asarray(to_device(x, "cpu"))


def label_color(k: int) -> np.ndarray:
    """The (3,) uint8 colour of class ``k`` in every picture (white for 255, ignored)."""
    return np.full(3, 255, np.uint8) if k == IGNORED else PALETTE[max(k, 0) % len(PALETTE)]


def colorize_labels(labels: Tensor | Array) -> np.ndarray:
    """Class labels as colours: (H, W) ints -> (H, W, 3) uint8, with the fixed palette; 255 is white."""
    labels = as_numpy(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "iub":
        raise ValueError(f"colorize_labels: expected an (H, W) map of integer labels, got shape "
                         f"{labels.shape} of {labels.dtype}; for scores (C, H, W) pass scores.argmax(0)")
    rgb = PALETTE[np.clip(labels, 0, None) % len(PALETTE)]
    rgb[labels == IGNORED] = 255
    return rgb


def colorize_depth(depth: Tensor | Array, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Depth as colours: (H, W) or (1, H, W) -> (H, W, 3) floats in [0, 1], near dark, far yellow.

    The 'viridis' colour map spans ``vmin`` .. ``vmax`` (by default the map's own range); give two
    maps the same range to compare them.
    """
    import matplotlib  # the colour map registry only: importing it changes no backend

    depth = as_numpy(depth)
    depth = depth[0] if depth.ndim == 3 and depth.shape[0] == 1 else depth
    if depth.ndim != 2:
        raise ValueError(f"colorize_depth: expected an (H, W) or (1, H, W) depth map, got shape {depth.shape}")
    depth = depth.astype(np.float64)
    vmin = float(np.nanmin(depth)) if vmin is None else vmin
    vmax = float(np.nanmax(depth)) if vmax is None else vmax
    scaled = np.clip((depth - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    return matplotlib.colormaps["viridis"](scaled)[..., :3]


def colorize_normals(normals: Tensor | Array) -> np.ndarray:
    """Unit normals as colours: (3, H, W) -> (H, W, 3) floats in [0, 1], RGB = (n + 1) / 2."""
    normals = as_numpy(normals)
    if normals.ndim != 3 or normals.shape[0] != 3:
        raise ValueError(f"colorize_normals: expected (3, H, W) normals, got shape {normals.shape}; "
                         f"an (H, W, 3) map needs .transpose(2, 0, 1) first")
    return np.clip((np.transpose(normals, (1, 2, 0)) + 1) / 2, 0, 1)


def to_picture(task: str, target: Tensor | Array) -> np.ndarray:
    """Any task's map as an (H, W, 3) picture: labels (H, W), depth (H, W) or (1, H, W), normals (3, H, W)."""
    if task == "segmentation":
        return colorize_labels(target)
    if task == "depth":
        return colorize_depth(target)
    if task == "normals":
        return colorize_normals(target)
    raise ValueError(f"to_picture: task must be one of {TASKS}, got {task!r}")
