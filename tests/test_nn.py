"""Module, Parameter, containers and layers: registration, state_dict, devices, gradchecks."""
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix.testing import gradcheck
from tinypix.testing import strategies as tst


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.heads = nn.ModuleDict({"seg": nn.Conv2d(4, 5, 1), "depth": nn.Conv2d(4, 1, 1, bias=False)})
        self.scale = nn.Parameter(tinypix.ones(1))
        self.register_buffer("calls", tinypix.zeros(1))
        self.register_buffer("scratch", tinypix.zeros(2), persistent=False)

    def forward(self, x):
        h = self.enc(x) * self.scale
        return self.heads["seg"](h), self.heads["depth"](h)


def test_registration_and_state_dict_names_follow_pytorch():
    net = Block()
    assert list(net.state_dict()) == [
        "scale", "calls", "enc.0.weight", "enc.0.bias", "enc.1.weight", "enc.1.bias",
        "enc.1.running_mean", "enc.1.running_var", "enc.1.num_batches_tracked",
        "heads.seg.weight", "heads.seg.bias", "heads.depth.weight"]
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "enc.0.weight", "enc.0.bias", "enc.1.weight", "enc.1.bias",
        "heads.seg.weight", "heads.seg.bias", "heads.depth.weight"]
    assert [n for n, _ in net.named_buffers()] == [
        "calls", "scratch", "enc.1.running_mean", "enc.1.running_var", "enc.1.num_batches_tracked"]
    assert [type(m).__name__ for m in net.children()] == ["Sequential", "ModuleDict"]
    assert len(list(net.modules())) == 8
    assert all(p.requires_grad for p in net.parameters())
    seg, depth = net(tinypix.randn(2, 3, 5, 5))
    assert seg.shape == (2, 5, 5, 5) and depth.shape == (2, 1, 5, 5)


def test_state_dict_names_match_a_pytorch_twin():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.Linear(3, 4)))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                 torch.nn.Sequential(torch.nn.Linear(3, 4)))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())  # torch tensors convert through their __array__
    np.testing.assert_array_equal(ours[0].weight.detach().numpy(), theirs[0].weight.detach().numpy())


def test_assigning_none_or_plain_values():
    m = nn.Linear(2, 3)
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="nn.Parameter"):
        m.weight = tinypix.ones(3, 2)
    m.layer = nn.ReLU()
    m.layer = 3  # a plain value replaces the submodule
    assert list(m.children()) == [] and m.layer == 3
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'missing'"):
        m.missing

    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tinypix.ones(1))
    with pytest.raises(AttributeError, match="before Module.__init__"):
        Forgot()


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(net.parameters())) == 2


def test_load_state_dict_takes_arrays_and_reports_problems_by_name():
    net = Block()
    sd = {k: v.numpy().copy() + 1 for k, v in net.state_dict().items()}
    other = Block()
    assert other.load_state_dict(sd) == ([], [])
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k])
    bad = dict(sd)
    del bad["enc.0.bias"]
    bad["extra.weight"] = np.zeros(3)
    bad["heads.seg.weight"] = np.zeros((5, 4, 3, 3))
    with pytest.raises(RuntimeError) as err:
        other.load_state_dict(bad)
    msg = str(err.value)
    assert 'Missing key(s) in state_dict: "enc.0.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for heads.seg.weight: copying a param with shape (5, 4, 3, 3)" in msg
    del bad["heads.seg.weight"]
    assert other.load_state_dict(bad, strict=False) == (["enc.0.bias", "heads.seg.weight"], ["extra.weight"])


def test_train_eval_zero_grad_and_to():
    net = Block()
    assert net.eval() is net and not any(m.training for m in net.modules())
    assert all(m.training for m in net.train().modules())
    seg, depth = net(tinypix.randn(2, 3, 4, 4))
    (seg.sum() + depth.sum()).backward()
    w = net.enc[0].weight
    assert w.grad is not None
    net.zero_grad(set_to_none=False)
    assert (w.grad.numpy() == 0).all()
    net.zero_grad()
    assert w.grad is None
    net.double()
    assert net.enc[0].weight is w and w.dtype == np.float64  # in place: optimizers keep working
    assert net.enc[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype
    assert net.to("cpu") is net
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


def test_repr_is_an_indented_tree():
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                    pool=nn.MaxPool2d(2)))
    assert repr(net) == (
        "Sequential(\n"
        "  (conv): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)\n"
        "  (pool): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        ")")
    assert repr(nn.ReLU()) == "ReLU()"


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2
    assert seq(tinypix.randn(4, 2)).shape == (4, 1)
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    layers.append(nn.Linear(2, 2))
    layers.insert(0, nn.Identity())
    assert len(layers) == 4 and isinstance(layers[0], nn.Identity)
    assert [n for n, _ in layers.named_parameters()][:2] == ["1.weight", "1.bias"]
    heads = nn.ModuleDict()
    heads["a"] = nn.Linear(1, 1)
    assert "a" in heads and list(heads.keys()) == ["a"]
    with pytest.raises(IndexError, match="out of range for 3"):
        seq[3]
    seq[1] = nn.Tanh()  # replaced where it stands, as in PyTorch (it used to move to the end)
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "Linear"]
    assert seq(tinypix.randn(4, 2)).shape == (4, 1)
    seq[0].weight = nn.Parameter(tinypix.zeros(3, 2))  # and so is a parameter
    assert [n for n, _ in seq.named_parameters()][:2] == ["0.weight", "0.bias"]
    with pytest.raises(NotImplementedError, match="iterate over it"):
        layers(tinypix.randn(1))


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.booleans())
def test_linear_gradcheck(N, fin, fout, bias):
    layer = nn.Linear(fin, fout, bias=bias).double()
    x = tinypix.randn(N, fin, dtype=tinypix.float64, requires_grad=True)
    params = [layer.weight] + ([layer.bias] if bias else [])

    def fn(x, w, b=None):
        return F.linear(x, w, b)
    gradcheck(fn, (x, *params))


def test_activation_and_shape_layers():
    x = tinypix.tensor([[-2.0, 0.5]])
    assert nn.ReLU()(x).tolist() == [[0.0, 0.5]]
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x).numpy(), [[-0.2, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp([[2.0, -0.5]])), rtol=1e-6)
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh([[-2.0, 0.5]]), rtol=1e-6)
    assert nn.Identity(7, key=1)(x) is x
    assert nn.Flatten()(tinypix.randn(2, 3, 4, 5)).shape == (2, 60)
    assert nn.Flatten(0, 1)(tinypix.randn(2, 3, 4)).shape == (6, 4)
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"


def test_dropout_scales_survivors_and_is_identity_in_eval():
    tinypix.manual_seed(0)
    x = tinypix.ones(200, 100)
    drop = nn.Dropout(0.3)
    y = drop(x).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02
    assert drop.eval()(x) is x
    y2 = nn.Dropout2d(0.5)(tinypix.ones(8, 16, 3, 3)).numpy()
    per_channel = y2.reshape(8, 16, -1)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()  # whole planes
    assert F.dropout(x, 1.0).numpy().max() == 0
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        nn.Dropout(1.5)


@given(tst.tensors(shape=tst.shapes(min_dims=3, max_dims=4, max_side=3)), st.sampled_from([0.2, 0.5]),
       st.booleans())
def test_dropout_gradcheck_with_a_fixed_mask(x, p, channels):
    def fn(x):
        tinypix.manual_seed(123)  # the same mask in every evaluation
        return F.dropout2d(x, p) if channels else F.dropout(x, p)
    gradcheck(fn, (x,))


def test_conv_layers_default_init_and_shapes():
    conv = nn.Conv2d(4, 6, (3, 5), stride=2, padding=(1, 2), groups=2)
    assert conv.weight.shape == (6, 2, 3, 5) and (conv.bias.detach().numpy() == 0).all()
    tconv = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2)
    assert tconv.weight.shape == (4, 3, 4, 4)
    x = tinypix.randn(1, 4, 7, 9)
    assert conv(x).shape == (1, 6, 4, 5)
    y = tinypix.randn(1, 4, 5, 5)
    assert tconv(y).shape == (1, 6, 10, 10)
    assert tconv(y, output_size=(11, 11)).shape == (1, 6, 11, 11)
    with pytest.raises(ValueError, match=r"output_size \(13, 11\) is not reachable"):
        tconv(y, output_size=(13, 11))
    with pytest.raises(ValueError, match=r"Conv2d\(4, 6.*expected input of shape \(N, 4, H, W\), "
                                         r"got \(4, 7, 9\).*unsqueeze"):
        conv(x[0])
    with pytest.raises(ValueError, match="out_channels=5 is not divisible by groups=2"):
        nn.Conv2d(4, 5, 3, groups=2)


def test_pool_unpool_upsample_layers():
    pool = nn.MaxPool2d(2, return_indices=True)
    unpool = nn.MaxUnpool2d(2)
    x = tinypix.randn(2, 3, 5, 5)
    y, idx = pool(x)
    back = unpool(y, idx, output_size=x.shape)
    assert back.shape == x.shape
    picked = np.take_along_axis(back.numpy().reshape(2, 3, -1), idx.numpy().reshape(2, 3, -1), axis=2)
    np.testing.assert_array_equal(picked, y.numpy().reshape(2, 3, -1))
    assert np.count_nonzero(back.numpy()) <= y.numel()
    assert nn.AvgPool2d(2, stride=1)(x).shape == (2, 3, 4, 4)
    assert nn.Upsample(scale_factor=2)(x).shape == (2, 3, 10, 10)
    assert nn.Upsample(size=(7, 8), mode="bilinear", align_corners=False)(x).shape == (2, 3, 7, 8)
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"


def test_layers_match_pytorch_with_the_same_weights():
    torch = pytest.importorskip("torch")
    pairs = [(nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2),
              torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)),
             (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
              torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)),
             (nn.Linear(5, 3), torch.nn.Linear(5, 3))]
    xs = np.random.default_rng(0).standard_normal((2, 4, 5, 5))
    for ours, theirs in pairs:
        ours.double().load_state_dict(theirs.double().state_dict())
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(tinypix.tensor(xs)).detach().numpy(),
                                   theirs(torch.tensor(xs)).detach().numpy(), rtol=1e-10, atol=1e-12)


def _with_parameters(module, tensors):
    """Run ``module`` with its parameters replaced by ``tensors`` (gradcheck's float64 copies)."""
    slots = [(m, name) for _, m in module.named_modules() for name, p in m._parameters.items()
             if p is not None]
    for (m, name), t in zip(slots, tensors):
        m._parameters[name] = t
    return module


LAYERS = [lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), lambda: nn.ConvTranspose2d(2, 3, 3, stride=2),
          lambda: nn.MaxPool2d(2), lambda: nn.AvgPool2d(3, stride=1, padding=1),
          lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
          lambda: nn.BatchNorm2d(2), lambda: nn.BatchNorm2d(2).eval(), lambda: nn.LeakyReLU(0.1),
          lambda: nn.Sigmoid(), lambda: nn.Tanh(), lambda: nn.Flatten(), lambda: nn.Identity(),
          lambda: nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Linear(3, 2)),
          lambda: nn.Conv2d(2, 3, (2, 3), padding="same", padding_mode="reflect"),
          lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), lambda: nn.LayerNorm(3),
          lambda: nn.LayerNorm((3, 3), bias=False), lambda: nn.GroupNorm(2, 2), lambda: nn.GELU(),
          lambda: nn.ELU(0.5), lambda: nn.SiLU(), lambda: nn.AdaptiveAvgPool2d((2, None)),
          lambda: nn.AdaptiveMaxPool2d(2), lambda: nn.Sequential(nn.Flatten(), nn.Unflatten(1, (2, 9))),
          lambda: nn.Softmax(dim=1), lambda: nn.LogSoftmax(dim=-1)]


@pytest.mark.parametrize("make", LAYERS)
def test_every_layer_passes_gradcheck(make):
    tinypix.manual_seed(0)
    layer = make().double()
    x = tinypix.randn(2, 2, 3, 3, dtype=tinypix.float64, requires_grad=True)
    params = list(layer.parameters())

    def fn(x, *ps):
        return _with_parameters(layer, ps)(x)
    gradcheck(fn, (x, *params))
