"""Figures of what a network learned and computes: the filters of a convolution, and the
feature maps of chosen layers on one image."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .. import creation
from ..autograd import no_grad
from ..summary import wrap_forwards
from ..tensor import Tensor
from .colors import as_numpy
from .figures import Figure

if TYPE_CHECKING:
    from ..nn import Module
    from ..typing import Array


def _scaled(a: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
    """``a`` stretched to [0, 1] over ``axes``: each tile shows its own pattern, not its size."""
    lo, hi = a.min(axis=axes, keepdims=True), a.max(axis=axes, keepdims=True)
    return (a - lo) / np.maximum(hi - lo, 1e-12)


def _mosaic(tiles: np.ndarray, cols: int) -> np.ndarray:
    """(n, h, w, 3) tiles -> one (H, W, 3) image, ``cols`` tiles a row, 1-pixel white gaps."""
    n, h, w, _ = tiles.shape
    rows = math.ceil(n / cols)
    img = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, 3))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        img[1 + r * (h + 1):(r + 1) * (h + 1), 1 + c * (w + 1):(c + 1) * (w + 1)] = tile
    return img


def plot_kernels(conv_layer: Module | Tensor | Array, max_filters: int = 64) -> Figure:
    """A convolution's filters as a grid of small pictures.

    Args:
        conv_layer: a Conv2d / ConvTranspose2d, or a weight (F, C, kh, kw) as Tensor or array.
        max_filters: draw at most this many filters (the first ones).

    Returns:
        A Figure with one axes showing one image. With 3 input channels (a first layer on RGB
        images) each filter is one colour tile: the image patch that excites it most. Otherwise
        each row is a filter, one gray tile per input channel (at most 16). Each filter is
        stretched to [0, 1] on its own.
    """
    weight = getattr(conv_layer, "weight", conv_layer)
    if not isinstance(weight, (Tensor, np.ndarray)) or weight.ndim != 4:
        raise ValueError(f"plot_kernels: expected a convolution layer or a (F, C, kh, kw) weight, got "
                         f"{type(conv_layer).__name__} with weight shape {getattr(weight, 'shape', None)}")
    w = _scaled(as_numpy(weight)[:max_filters].astype(np.float64), (1, 2, 3))
    F, C, kh, kw = w.shape
    if C == 3:
        tiles, cols = w.transpose(0, 2, 3, 1), math.ceil(math.sqrt(F))
    else:
        cols = min(C, 16)
        tiles = np.repeat(w[:, :cols].reshape(F * cols, kh, kw, 1), 3, axis=3)
    img = _mosaic(tiles, cols)
    fig = Figure(figsize=(min(12, 1 + img.shape[1] / 12), min(12, 1 + img.shape[0] / 12)))
    ax = fig.add_subplot()
    ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"{F} filters, {C} input channels, {kh}x{kw}" + (" (RGB)" if C == 3 else ""))
    return fig


def _run_and_capture(model: Module, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """The outputs of ``layers`` when ``model`` runs on ``x`` (eval mode, no graph; modes restored)."""
    maps = {}

    def capture(name, module, forward):
        if name not in layers:
            return forward

        def recorded(*args, **kwargs):
            out = forward(*args, **kwargs)
            maps[name] = next(o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, Tensor))
            return out
        return recorded

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad(), wrap_forwards(model, capture):
            model(x)
    finally:
        for m, training in modes:
            m.training = training
    return maps


def plot_feature_maps(model: Module, image: Tensor | Array, layers: Sequence[str] | None = None,
                      max_maps: int = 8) -> Figure:
    """Run ``model`` on one image and draw the activations of chosen layers.

    Args:
        model: a ``tinypix.nn.Module`` (run in eval mode, without a graph; its mode is restored).
        image: (C, H, W) or (1, C, H, W), a Tensor or an array (taking the model's dtype and device).
        layers: module names as in ``model.named_modules()``; by default up to 6 convolutions,
            spread from the first to the last.
        max_maps: channels drawn per layer: the most active ones (largest mean |activation|).

    Returns:
        A Figure of (len(layers) + 1) x max_maps axes: the input top left, then one row per layer.
    """
    modules = dict(model.named_modules())
    if layers is None:
        convs = [n for n, m in modules.items() if type(m).__name__ in ("Conv2d", "ConvTranspose2d")]
        layers = [convs[round(i * (len(convs) - 1) / 5)] for i in range(6)] if len(convs) > 6 else convs
        layers = list(dict.fromkeys(layers))
    missing = [n for n in layers if n not in modules]
    if missing:
        raise ValueError(f"plot_feature_maps: no layers named {missing} in {type(model).__name__}; "
                         f"names look like {[n for n in modules if n][:12]}")
    first = next(model.parameters(), None)
    dtype, device = (first.dtype, first.device) if first is not None else (np.float32, "cpu")
    x = image if isinstance(image, Tensor) else creation.tensor(image, dtype=dtype, device=device)
    x = x.unsqueeze(0) if x.ndim == 3 else x
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"plot_feature_maps: expected one image (C, H, W) or (1, C, H, W), got {x.shape}")
    maps = _run_and_capture(model, x, layers)
    silent = [n for n in layers if n not in maps]
    if silent:
        raise ValueError(f"plot_feature_maps: layers {silent} did not run in {type(model).__name__}.forward")
    flat = {n: maps[n].shape for n in layers if maps[n].ndim != 4}
    if flat:
        raise ValueError(f"plot_feature_maps: these layers give no (N, C, H, W) maps to draw: {flat}")

    picture = _scaled(as_numpy(x)[0].astype(np.float64), None)
    picture = picture.transpose(1, 2, 0) if picture.shape[0] == 3 else picture.mean(axis=0)
    fig = Figure(figsize=(1.6 * max_maps, 1.7 * (len(layers) + 1)))
    axes = fig.subplots(len(layers) + 1, max_maps, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    axes[0, 0].imshow(picture, cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    for row, name in enumerate(layers, start=1):
        a = as_numpy(maps[name])[0].astype(np.float64)  # (C, h, w)
        strongest = np.argsort(-np.abs(a).mean(axis=(1, 2)))[:max_maps]
        for col, c in enumerate(strongest):
            axes[row, col].imshow(_scaled(a[c], None), cmap="viridis")
            axes[row, col].set_title(f"{name} [{c}]" if col == 0 else f"[{c}]", fontsize=8)
        label = f"{type(modules[name]).__name__}\n" + "x".join(map(str, a.shape))
        axes[row, 0].text(-0.1, 0.5, label, transform=axes[row, 0].transAxes, ha="right", va="center",
                          fontsize=8)
    return fig
