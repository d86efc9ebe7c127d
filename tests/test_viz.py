"""tinypix.viz: the autograd graph as DOT (and rendered when Graphviz is installed), pictures of
filters and feature maps."""
import re
import shutil

import numpy as np
import pytest

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
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    _, loss = unet_loss()
    with pytest.warns(UserWarning, match=r"dot -Tpng .*g\.dot -o .*g\.png"):
        dot = viz.graph(loss, tmp_path / "g.png")
    assert (tmp_path / "g.dot").read_text() == dot and not (tmp_path / "g.png").exists()
    viz.graph(loss, tmp_path / "h.dot")
    assert (tmp_path / "h.dot").read_text() == dot


def test_show_kernels(tmp_path):
    rgb = nn.Conv2d(3, 8, 5)
    assert viz.show_kernels(rgb, str(tmp_path / "rgb.png")) == str(tmp_path / "rgb.png")
    viz.show_kernels(nn.Conv2d(4, 2, 3).weight, tmp_path / "gray.png")
    viz.show_kernels(np.random.default_rng(0).standard_normal((2, 1, 3, 3)), tmp_path / "array.png")
    for name in ("rgb.png", "gray.png", "array.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="convolution layer"):
        viz.show_kernels(nn.ReLU(), tmp_path / "no.png")


def test_show_feature_maps(tmp_path):
    model = UNet(base_channels=2, depth=2)
    image = np.random.default_rng(0).random((3, 16, 16), dtype=np.float32)
    viz.show_feature_maps(model, image, tmp_path / "maps.png")
    viz.show_feature_maps(model, tinypix.tensor(image[None]), tmp_path / "two.png", layers=["pool", "head"])
    assert (tmp_path / "maps.png").read_bytes()[:8] == PNG and (tmp_path / "two.png").exists()
    assert all(m.training and "forward" not in m.__dict__ for m in model.modules())
    with pytest.raises(ValueError, match="no layers named \\['nope'\\]"):
        viz.show_feature_maps(model, image, tmp_path / "x.png", layers=["nope"])
    with pytest.raises(ValueError, match="one image"):
        viz.show_feature_maps(model, np.zeros((2, 3, 16, 16), np.float32), tmp_path / "x.png")


def test_graph_after_an_inplace_op_draws_each_edge_from_where_the_input_came():
    """nn.ReLU(inplace=True) rebinds its input tensor to the ReLU's node: the graph must still
    run Linear -> ReLU -> Linear, with no op feeding itself."""
    model = tinypix.nn.Sequential(tinypix.nn.Linear(3, 4), tinypix.nn.ReLU(inplace=True),
                                  tinypix.nn.Linear(4, 1))
    text = viz.graph(model(tinypix.randn(2, 3)).sum())
    edges = [line.strip(" ;").split(" -> ") for line in text.splitlines() if " -> " in line]
    assert edges and all(a != b for a, b in edges)
    assert any("LeakyReLU" in line or "ReLU" in line for line in text.splitlines())
