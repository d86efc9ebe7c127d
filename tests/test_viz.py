"""tinypix.viz: the autograd graph as DOT (and rendered when Graphviz is installed); figures of
predictions, curves, filters and feature maps; colourized maps; atomic saving; and that none of it
touches matplotlib's backend or pyplot."""
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import typing

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import tinypix
import tinypix.nn.functional as F
from tinypix import nn, viz
from tinypix.models import UNet

PNG = b"\x89PNG\r\n\x1a\n"


def unet_loss():
    tinypix.manual_seed(0)
    model = UNet(base_channels=2, depth=2)
    x = tinypix.randn(1, 3, 16, 16)
    y = tinypix.randint(0, 4, (1, 16, 16))
    return model, F.cross_entropy(model(x), y)


def op_classes(t):
    """Names of the Function classes in the graph that made ``t`` (an independent walk)."""
    names, stack, seen = set(), [t._ctx], set()
    while stack:
        ctx = stack.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        names.add(type(ctx).__name__)
        stack += [i._ctx for i in ctx.inputs if i is not None]
    return names, len(seen)


def test_unet_loss_graph_names_every_op_and_parameter():
    model, loss = unet_loss()
    dot = viz.graph(loss, params=dict(model.named_parameters()))
    ops, count = op_classes(loss)
    assert {"Conv2d", "ConvTranspose2d", "MaxPool2d", "Cat", "BatchNorm"} <= ops
    for name in ops:
        assert f'label="{name}\\n' in dot, name
    assert dot.count("shape=box") == count                      # one box per op call
    for name, p in model.named_parameters():
        assert f'label="{name}\\n{p.shape}\\nrequires grad"' in dot
    assert 'label="tensor\\n(1, 16, 16)\\nno grad"' in dot        # the target
    assert dot.startswith("digraph autograd {") and dot.endswith("}")
    edges = re.findall(r"^  (n\d+) -> (n\d+);$", dot, flags=re.M)
    nodes = set(re.findall(r"^  (n\d+) \[", dot, flags=re.M))
    assert {a for a, _ in edges} | {b for _, b in edges} == nodes  # every node is connected


def test_a_deep_chain_is_walked_without_recursion():
    x = tinypix.ones(2, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    assert viz.graph(y).count("Mul") == 3000


def test_graph_of_a_leaf_and_bad_arguments():
    assert "requires grad" in viz.graph(tinypix.zeros(3, requires_grad=True))
    with pytest.raises(TypeError, match="Tensor"):
        viz.graph(np.zeros(3))
    with pytest.raises(ValueError, match="format"):
        viz.graph(tinypix.zeros(3), format="jpg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_is_rendered_when_graphviz_is_installed(tmp_path):
    _, loss = unet_loss()
    viz.graph(loss, tmp_path / "g.png")
    viz.graph(loss, tmp_path / "g", format="svg")
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG
    assert b"<svg" in (tmp_path / "g.svg").read_bytes()


def test_without_graphviz_the_dot_text_is_written_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.dot.shutil, "which", lambda name: None)
    _, loss = unet_loss()
    with pytest.warns(UserWarning, match=r"dot -Tpng .*g\.dot -o .*g\.png"):
        dot = viz.graph(loss, tmp_path / "g.png")
    assert (tmp_path / "g.dot").read_text() == dot and not (tmp_path / "g.png").exists()
    viz.graph(loss, tmp_path / "h.dot")
    assert (tmp_path / "h.dot").read_text() == dot


def test_graph_after_an_inplace_op_draws_each_edge_from_where_the_input_came():
    """nn.ReLU(inplace=True) rebinds its input tensor to the ReLU's node: the graph must still
    run Linear -> ReLU -> Linear, with no op feeding itself."""
    model = tinypix.nn.Sequential(tinypix.nn.Linear(3, 4), tinypix.nn.ReLU(inplace=True),
                                  tinypix.nn.Linear(4, 1))
    text = viz.graph(model(tinypix.randn(2, 3)).sum())
    edges = [line.strip(" ;").split(" -> ") for line in text.splitlines() if " -> " in line]
    assert edges and all(a != b for a, b in edges)
    assert any("LeakyReLU" in line or "ReLU" in line for line in text.splitlines())


# -- figures ---------------------------------------------------------------------------------------
HISTORY = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.5 / e, "miou": 0.2 * e} for e in (1, 2, 3)]


def batch(task, n=4, size=8):
    """images (n, 3, size, size), targets and predictions as ``task``'s pictures take them."""
    rng = np.random.default_rng(0)
    images = rng.random((n, 3, size, size))
    if task == "segmentation":  # labels, and scores drawn as their argmax
        return images, rng.integers(0, 3, (n, size, size)), rng.standard_normal((n, 3, size, size))
    if task == "depth":         # (n, 1, H, W) and (n, H, W) are both depth maps
        return images, rng.random((n, 1, size, size)) + 1, rng.random((n, size, size)) + 1
    return images, rng.standard_normal((n, 3, size, size)), rng.standard_normal((n, 3, size, size))


def drawn(ax):
    """The array the single image on ``ax`` shows."""
    (image,) = ax.images
    return np.asarray(image.get_array())


@pytest.mark.parametrize("task", ["segmentation", "depth", "normals"])
def test_plot_predictions_draws_input_truth_and_prediction_rows(task):
    images, targets, predictions = batch(task)
    fig = viz.plot_predictions(task, images, targets, predictions, max_rows=3)
    legend = task == "segmentation"  # one more axes, below the rows, holds the legend
    assert isinstance(fig, Figure)
    assert [len(ax.images) for ax in fig.axes] == [1] * 9 + [0] * legend
    assert [ax.get_title() for ax in fig.axes[:4]] == ["input", "ground truth", "prediction", ""]
    truth, pred = targets[1], predictions[1]
    if task == "segmentation":
        expected = viz.colorize_labels(truth), viz.colorize_labels(pred.argmax(0))
    elif task == "depth":  # one colour scale for both: the truth's
        lo, hi = truth.min(), truth.max()
        expected = viz.colorize_depth(truth, lo, hi), viz.colorize_depth(pred, lo, hi)
    else:
        expected = viz.colorize_normals(truth), viz.colorize_normals(pred)
    np.testing.assert_allclose(drawn(fig.axes[3]), images[1].transpose(1, 2, 0))
    np.testing.assert_allclose(drawn(fig.axes[4]), expected[0])
    np.testing.assert_allclose(drawn(fig.axes[5]), expected[1])


def legend_of(fig):
    legend = fig.axes[-1].get_legend()
    colours = [tuple(int(round(c * 255)) for c in patch.get_facecolor()[:3]) for patch in legend.get_patches()]
    return [text.get_text() for text in legend.get_texts()], colours


def test_the_segmentation_legend_lists_the_classes_drawn():
    images = np.random.default_rng(0).random((3, 3, 6, 6))
    targets, predictions = np.zeros((3, 6, 6), np.int64), np.zeros((3, 6, 6), np.int64)
    targets[0, 0], targets[0, 1], predictions[1, 2] = 255, 2, 4
    predictions[2] = 3  # the third row is not drawn with max_rows=2, so class 3 is not listed
    names = ["background", "sphere", "box", "cylinder", "cone"]
    fig = viz.plot_predictions("segmentation", tinypix.tensor(images), tinypix.tensor(targets), predictions,
                               max_rows=2, class_names=names)
    assert len(fig.axes) == 7
    labels, colours = legend_of(fig)
    assert labels == ["background", "box", "cone", "ignored"]
    assert colours == [tuple(int(c) for c in viz.PALETTE[k]) for k in (0, 2, 4)] + [(255, 255, 255)]
    labels, _ = legend_of(viz.plot_predictions("segmentation", images, targets, predictions))
    assert labels == ["class 0", "class 2", "class 3", "class 4", "ignored"]
    with pytest.raises(ValueError, match="label 2 is drawn but class_names has 2 names"):
        viz.plot_predictions("segmentation", images, targets, predictions, class_names=["a", "b"])


def test_plot_predictions_says_what_is_wrong_with_its_input():
    images, targets, predictions = batch("normals")
    with pytest.raises(ValueError, match="task must be one of"):
        viz.plot_predictions("edges", images, targets, predictions)
    with pytest.raises(ValueError, match="4 images, 3 targets and 4 predictions"):
        viz.plot_predictions("normals", images, targets[:3], predictions)
    with pytest.raises(ValueError, match=r"images \(N, 3, H, W\)"):
        viz.plot_predictions("normals", images.transpose(0, 2, 3, 1), targets, predictions)


def test_plot_curves_draws_losses_and_the_metric():
    fig = viz.plot_curves(HISTORY, "miou")
    loss, metric = fig.axes
    assert [line.get_label() for line in loss.lines] == ["train", "held-out"]
    np.testing.assert_allclose(loss.lines[1].get_ydata(), [1.5, 0.75, 0.5])
    np.testing.assert_allclose(metric.lines[0].get_ydata(), [0.2, 0.4, 0.6])
    assert metric.get_ylabel() == "held-out miou" and list(metric.lines[0].get_xdata()) == [1, 2, 3]
    with pytest.raises(ValueError, match=r"lacks the keys \['miou'\]"):
        viz.plot_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}], "miou")


def test_plot_kernels():
    rgb = viz.plot_kernels(nn.Conv2d(3, 8, 5))  # 8 colour tiles of 5x5, 3 a row, 1-pixel gaps
    assert isinstance(rgb, Figure) and [len(ax.images) for ax in rgb.axes] == [1]
    assert drawn(rgb.axes[0]).shape == (19, 19, 3)
    gray = viz.plot_kernels(nn.Conv2d(4, 2, 3).weight)  # a row of 4 gray 3x3 tiles per filter
    tiles = drawn(gray.axes[0])
    assert tiles.shape == (9, 17, 3) and np.all(tiles[..., 0] == tiles[..., 2])
    weight = np.random.default_rng(0).standard_normal((2, 1, 3, 3))
    assert drawn(viz.plot_kernels(weight).axes[0]).shape == (9, 5, 3)
    with pytest.raises(ValueError, match="convolution layer"):
        viz.plot_kernels(nn.ReLU())


def test_plot_feature_maps():
    tinypix.manual_seed(0)
    small = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 2, 3))
    image = np.random.default_rng(0).random((3, 16, 16), dtype=np.float32)
    fig = viz.plot_feature_maps(small, image, max_maps=4)  # the input, then layers "0" and "2"
    assert isinstance(fig, Figure) and len(fig.axes) == 3 * 4
    assert [len(ax.images) for ax in fig.axes] == [1, 0, 0, 0] + [1] * 4 + [1, 1, 0, 0]
    assert fig.axes[4].get_title().startswith("0 [") and fig.axes[8].get_title().startswith("2 [")
    model = UNet(base_channels=2, depth=2)
    fig = viz.plot_feature_maps(model, tinypix.tensor(image[None]), layers=["pool", "head"])
    assert len(fig.axes) == 3 * 8
    assert all(m.training and "forward" not in m.__dict__ for m in model.modules())
    with pytest.raises(ValueError, match="no layers named \\['nope'\\]"):
        viz.plot_feature_maps(model, image, layers=["nope"])
    with pytest.raises(ValueError, match="one image"):
        viz.plot_feature_maps(model, np.zeros((2, 3, 16, 16), np.float32))


def test_a_figure_draws_itself_for_jupyter_without_pyplot():
    assert viz.plot_curves(HISTORY, "miou")._repr_png_()[:8] == PNG


# -- pictures and saving ---------------------------------------------------------------------------
def test_colorize_maps():
    labels = np.array([[0, 1, 255], [21, -1, 2]])
    rgb = viz.colorize_labels(tinypix.tensor(labels))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, [[viz.PALETTE[0], viz.PALETTE[1], [255] * 3],
                                        [viz.PALETTE[0], viz.PALETTE[0], viz.PALETTE[2]]])  # 21 wraps
    viridis = matplotlib.colormaps["viridis"]
    depth = np.linspace(1, 5, 12).reshape(1, 3, 4)
    picture = viz.colorize_depth(depth)
    assert picture.shape == (3, 4, 3)
    np.testing.assert_allclose(picture[[0, -1], [0, -1]], viridis(np.array([0.0, 1.0]))[:, :3])
    np.testing.assert_allclose(viz.colorize_depth(depth, vmin=0, vmax=10)[0, 0], viridis(0.1)[:3])
    normals = np.array([1.0, 0.0, -1.0]).reshape(3, 1, 1)
    np.testing.assert_allclose(viz.colorize_normals(normals), [[[1.0, 0.5, 0.0]]])
    np.testing.assert_array_equal(viz.to_picture("segmentation", labels), rgb)
    np.testing.assert_array_equal(viz.to_picture("depth", depth), picture)
    np.testing.assert_array_equal(viz.to_picture("normals", normals), [[[1.0, 0.5, 0.0]]])
    with pytest.raises(ValueError, match="argmax"):
        viz.colorize_labels(np.zeros((3, 4, 4), np.int64))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(1, H, W\)"):
        viz.colorize_depth(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"transpose\(2, 0, 1\)"):
        viz.colorize_normals(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="task must be one of"):
        viz.to_picture("edges", labels)


def test_save_writes_readable_files_atomically(tmp_path):
    folder = tmp_path / "run"  # made by save
    path = viz.save(viz.plot_curves(HISTORY, "miou"), folder / "curves")  # no extension: PNG
    assert path == str(folder / "curves.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100
    viz.save(viz.plot_curves(HISTORY, "miou"), folder / "curves.svg")
    assert b"<svg" in (folder / "curves.svg").read_bytes()
    labels = viz.colorize_labels(np.arange(12).reshape(3, 4))
    viz.save(labels, folder / "labels.png")
    normals = viz.colorize_normals(np.random.default_rng(0).standard_normal((3, 5, 6)))
    viz.save(normals, str(folder / "normals.png"))
    with Image.open(folder / "labels.png") as a, Image.open(folder / "normals.png") as b:
        np.testing.assert_array_equal(np.asarray(a.convert("RGB")), labels)
        np.testing.assert_array_equal(np.asarray(b.convert("RGB")), (normals * 255).round())
    assert sorted(os.listdir(folder)) == ["curves.png", "curves.svg", "labels.png", "normals.png"]


def test_a_failed_save_leaves_the_old_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    fig = viz.plot_curves(HISTORY, "miou")
    target = tmp_path / "curves.png"
    viz.save(fig, target)
    before = target.read_bytes()

    def crash_half_way(self, f, **kwargs):
        f.write(before[:100])
        raise OSError("disk full")
    monkeypatch.setattr(viz.Figure, "savefig", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        viz.save(fig, target)
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["curves.png"]


def test_save_says_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match=r"\(H, W, 3\) picture.*transpose\(1, 2, 0\)"):
        viz.save(np.zeros((3, 4, 4)), tmp_path / "a.png")
    with pytest.raises(ValueError, match="uint8.*int64"):
        viz.save(np.zeros((4, 4, 3), np.int64), tmp_path / "a.png")
    with pytest.raises(ValueError, match="matplotlib cannot write .xyz"):
        viz.save(viz.plot_curves(HISTORY, "miou"), tmp_path / "a.xyz")
    with pytest.raises(ValueError, match="Pillow cannot write .svg"):
        viz.save(np.zeros((4, 4, 3), np.uint8), tmp_path / "a.svg")
    assert os.listdir(tmp_path) == []


def test_public_functions_have_annotations_that_resolve():
    namespace = {**vars(importlib.import_module("tinypix.typing")), "Tensor": tinypix.Tensor, "Module": nn.Module}
    functions = [getattr(viz, name) for name in viz.__all__ if inspect.isfunction(getattr(viz, name))]
    assert len(functions) == 10
    for function in functions:
        signature = inspect.signature(function)
        assert all(p.annotation is not p.empty for p in signature.parameters.values()), function.__name__
        assert signature.return_annotation is not signature.empty, function.__name__
        typing.get_type_hints(function, globalns={**namespace, **function.__globals__})


EVERY_PICTURE = """
import sys
import matplotlib
matplotlib.use("svg")
settings = dict(matplotlib.rcParams)
import numpy as np
import tinypix
from tinypix import nn, viz

rng = np.random.default_rng(0)
images, out = rng.random((2, 3, 8, 8)), sys.argv[1]
drawn = {
    "segmentation": viz.plot_predictions("segmentation", images, rng.integers(0, 3, (2, 8, 8)),
                                         rng.standard_normal((2, 3, 8, 8))),
    "depth": viz.plot_predictions("depth", images, rng.random((2, 8, 8)) + 1, rng.random((2, 1, 8, 8)) + 1),
    "normals": viz.plot_predictions("normals", images, rng.standard_normal((2, 3, 8, 8)),
                                    rng.standard_normal((2, 3, 8, 8))),
    "curves": viz.plot_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "miou": 0.3}], "miou"),
    "kernels": viz.plot_kernels(nn.Conv2d(3, 4, 3)),
    "maps": viz.plot_feature_maps(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), images[0]),
    "labels": viz.colorize_labels(rng.integers(0, 3, (8, 8))),
    "depth_map": viz.colorize_depth(rng.random((8, 8))),
    "normals_map": viz.colorize_normals(rng.standard_normal((3, 8, 8))),
    "picture": viz.to_picture("depth", rng.random((1, 8, 8))),
}
for name, figure_or_picture in drawn.items():
    viz.save(figure_or_picture, f"{out}/{name}.png")
    if hasattr(figure_or_picture, "_repr_png_"):
        figure_or_picture._repr_png_()
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert dict(matplotlib.rcParams) == settings, "matplotlib's settings changed"
print("untouched")
"""


def test_drawing_and_saving_every_picture_leaves_matplotlib_as_it_was(tmp_path):
    result = subprocess.run([sys.executable, "-c", EVERY_PICTURE, str(tmp_path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "untouched" in result.stdout, result.stderr[-3000:]
    for name in os.listdir(tmp_path):
        assert (tmp_path / name).read_bytes()[:8] == PNG, name
    assert len(os.listdir(tmp_path)) == 10
