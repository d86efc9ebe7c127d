"""Pictures of what a network built and learned: the autograd graph (Graphviz DOT), the filters of
a convolution, and the feature maps of chosen layers.

    loss = F.cross_entropy(model(x), y)
    tinypix.viz.graph(loss, "out/graph.png", params=dict(model.named_parameters()))
    tinypix.viz.show_kernels(model.encoders[0][0], "out/kernels.png")
    tinypix.viz.show_feature_maps(model, x[0], "out/maps.png")

Pictures are drawn with matplotlib's Agg canvas (files only, no window, no pyplot state);
rendering the graph needs Graphviz's ``dot`` program, and without it the DOT text is written.
"""
import math
import os
import shutil
import subprocess
import warnings

import numpy as np

from .autograd import no_grad
from .backend import to_device
from . import creation
from .summary import wrap_forwards
from .tensor import Tensor

_FORMATS = ("png", "svg", "pdf", "dot")
_STYLE = {"op": 'shape=box, style="rounded,filled", fillcolor="#dbe8f6"',
          "param": 'shape=ellipse, style=filled, fillcolor="#fdf1c7"',
          "grad": 'shape=ellipse, style=filled, fillcolor="#d9f2d9"',
          "const": 'shape=ellipse, style=filled, fillcolor="#eeeeee"',
          "output": 'shape=doubleoctagon, style=filled, fillcolor="#f6d5d5"'}


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph(tensor, path=None, format="png", params=None):
    """The autograd graph that produced ``tensor``, as Graphviz DOT text.

    One box per op call (its Function class and output shape), one ellipse per leaf tensor (its
    shape and whether it requires grad; parameters by name when ``params`` is given). Arrows
    follow the forward pass; backward runs them in reverse.

    Args:
        tensor: where to start, usually the loss.
        path: a file to write, or None. Its extension (.png, .svg, .pdf, or .dot for the text
            itself) picks the format; without one ``format`` is used and appended. Rendering needs
            Graphviz's ``dot``; without it the DOT text is written to ``<path stem>.dot`` and a
            warning says how to render it.
        format: 'png', 'svg', 'pdf' or 'dot'.
        params: {name: Tensor} to label leaves, e.g. ``dict(model.named_parameters())`` (add
            ``model.named_buffers()`` for batch-norm statistics, and the input and target).

    Returns:
        The DOT text.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph: expected a Tensor, got {type(tensor).__name__}")
    if format not in _FORMATS:
        raise ValueError(f"graph: format must be one of {_FORMATS}, got {format!r}")
    names = {id(t): name for name, t in (params or {}).items()}
    lines, ids = [], {}

    def node(obj, label, kind):
        if id(obj) not in ids:  # the walk holds every object, so ids stay unique
            ids[id(obj)] = f"n{len(ids)}"
            lines.append(f"  {ids[id(obj)]} [label={_quote(label)}, {_STYLE[kind]}];")
        return ids[id(obj)]

    def leaf(t):
        kind = ("param" if id(t) in names else "grad") if t.requires_grad else "const"
        grad = "requires grad" if t.requires_grad else "no grad"
        return node(t, f"{names.get(id(t), 'tensor')}\n{t.shape}\n{grad}", kind)

    def op(ctx):
        shapes = ", ".join(str(tuple(shape)) for shape, _ in ctx._out_meta)
        return node(ctx, f"{type(ctx).__name__}\n{shapes}", "op")

    if tensor._ctx is None:  # no op recorded: the graph is the tensor alone
        leaf(tensor)
    else:
        out = node(tensor, f"output\n{tensor.shape}", "output")
        lines.append(f"  {op(tensor._ctx)} -> {out};")
    stack, seen = [tensor._ctx] if tensor._ctx is not None else [], set()
    while stack:  # iterative: a 10,000-op chain must not hit Python's recursion limit
        ctx = stack.pop()
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        for t, (parent, _) in zip(ctx.inputs, ctx.edges):  # the node each input came from when
            if t is None:                                    # the op ran (an in-place op may
                continue                                     # have rebound the tensor since)
            if parent is None:
                lines.append(f"  {leaf(t)} -> {op(ctx)};")
            else:
                lines.append(f"  {op(parent)} -> {op(ctx)};")
                stack.append(parent)
    text = "\n".join(["digraph autograd {", "  graph [ranksep=0.3, nodesep=0.25];",
                      '  node [fontname="Helvetica", fontsize=10];'] + lines + ["}"])
    if path is not None:
        _write_graph(text, os.fspath(path), format)
    return text


def _write_graph(text, path, format):
    stem, ext = os.path.splitext(path)
    fmt = ext[1:].lower() if ext else format
    path = path if ext else f"{path}.{format}"
    if fmt not in _FORMATS:
        raise ValueError(f"graph: cannot write {path!r}; use an extension among {_FORMATS}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    dot = shutil.which("dot")
    if fmt == "dot" or dot is None:
        with open(f"{stem}.dot", "w") as f:
            f.write(text)
        if fmt != "dot":
            warnings.warn(f"graph: Graphviz's `dot` program was not found, so the graph was written as "
                          f"DOT text to {stem}.dot; install Graphviz (apt-get install graphviz, brew "
                          f"install graphviz or conda install graphviz) and run "
                          f"`dot -T{fmt} {stem}.dot -o {path}` to draw it", stacklevel=3)
        return
    subprocess.run([dot, f"-T{fmt}", "-o", path], input=text.encode(), check=True, capture_output=True)


# -- pictures of weights and activations -----------------------------------------------------------
def _array(x):
    """A float64 NumPy copy of a Tensor or array (moved off the GPU)."""
    return np.array(to_device(x.detach().data if isinstance(x, Tensor) else x, "cpu"), dtype=np.float64)


def _scaled(a, axes):
    """``a`` stretched to [0, 1] over ``axes``: each tile shows its own pattern, not its size."""
    lo, hi = a.min(axis=axes, keepdims=True), a.max(axis=axes, keepdims=True)
    return (a - lo) / np.maximum(hi - lo, 1e-12)


def _mosaic(tiles, cols):
    """(n, h, w, 3) tiles -> one (H, W, 3) image, ``cols`` tiles a row, 1-pixel white gaps."""
    n, h, w, _ = tiles.shape
    rows = math.ceil(n / cols)
    img = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, 3))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        img[1 + r * (h + 1):(r + 1) * (h + 1), 1 + c * (w + 1):(c + 1) * (w + 1)] = tile
    return img


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def show_kernels(conv_layer, path, max_filters=64):
    """Draw a convolution's filters as a grid of small pictures (PNG); returns ``path``.

    Args:
        conv_layer: a Conv2d / ConvTranspose2d, or a weight (F, C, kh, kw) as Tensor or array.
        path: the PNG to write.
        max_filters: draw at most this many filters (the first ones).

    With 3 input channels (a first layer on RGB images) each filter is one colour tile: the
    image patch that excites it most. Otherwise each row is a filter, one gray tile per input
    channel (at most 16). Each filter is stretched to [0, 1] on its own.
    """
    from matplotlib.figure import Figure
    weight = getattr(conv_layer, "weight", conv_layer)
    if not isinstance(weight, (Tensor, np.ndarray)) or weight.ndim != 4:
        raise ValueError(f"show_kernels: expected a convolution layer or a (F, C, kh, kw) weight, got "
                         f"{type(conv_layer).__name__} with weight shape {getattr(weight, 'shape', None)}")
    w = _scaled(_array(weight)[:max_filters], (1, 2, 3))
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
    return _save(fig, path)


def show_feature_maps(model, image, path, layers=None, max_maps=8):
    """Run ``model`` on one image and draw the activations of chosen layers (PNG); returns ``path``.

    Args:
        model: a ``tinypix.nn.Module`` (run in eval mode, without a graph; its mode is restored).
        image: (C, H, W) or (1, C, H, W), a Tensor or array of the model's dtype.
        path: the PNG to write.
        layers: module names as in ``model.named_modules()``; by default up to 6 convolutions,
            spread from the first to the last.
        max_maps: channels drawn per layer: the most active ones (largest mean |activation|).
    """
    from matplotlib.figure import Figure
    modules = dict(model.named_modules())
    if layers is None:
        convs = [n for n, m in modules.items() if type(m).__name__ in ("Conv2d", "ConvTranspose2d")]
        layers = [convs[round(i * (len(convs) - 1) / 5)] for i in range(6)] if len(convs) > 6 else convs
        layers = list(dict.fromkeys(layers))
    missing = [n for n in layers if n not in modules]
    if missing:
        raise ValueError(f"show_feature_maps: no layers named {missing} in {type(model).__name__}; "
                         f"names look like {[n for n in modules if n][:12]}")
    first = next(model.parameters(), None)  # an array image takes the model's dtype and device
    dtype, device = (first.dtype, first.device) if first is not None else (np.float32, "cpu")
    x = image if isinstance(image, Tensor) else creation.tensor(image, dtype=dtype, device=device)
    x = x.unsqueeze(0) if x.ndim == 3 else x
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"show_feature_maps: expected one image (C, H, W) or (1, C, H, W), got {x.shape}")
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
    silent = [n for n in layers if n not in maps]
    if silent:
        raise ValueError(f"show_feature_maps: layers {silent} did not run in {type(model).__name__}.forward")
    flat = {n: maps[n].shape for n in layers if maps[n].ndim != 4}
    if flat:
        raise ValueError(f"show_feature_maps: these layers give no (N, C, H, W) maps to draw: {flat}")

    picture = _scaled(_array(x)[0], None)
    picture = picture.transpose(1, 2, 0) if picture.shape[0] == 3 else picture.mean(axis=0)
    fig = Figure(figsize=(1.6 * max_maps, 1.7 * (len(layers) + 1)))
    axes = fig.subplots(len(layers) + 1, max_maps, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    axes[0, 0].imshow(picture, cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    for row, name in enumerate(layers, start=1):
        a = _array(maps[name])[0]  # (C, h, w)
        strongest = np.argsort(-np.abs(a).mean(axis=(1, 2)))[:max_maps]
        for col, c in enumerate(strongest):
            axes[row, col].imshow(_scaled(a[c], None), cmap="viridis")
            axes[row, col].set_title(f"{name} [{c}]" if col == 0 else f"[{c}]", fontsize=8)
        label = f"{type(modules[name]).__name__}\n" + "x".join(map(str, a.shape))
        axes[row, 0].text(-0.1, 0.5, label, transform=axes[row, 0].transAxes, ha="right", va="center",
                          fontsize=8)
    return _save(fig, path)
