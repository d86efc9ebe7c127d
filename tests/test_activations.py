"""Activations: erf (the new primitive) to float64 round-off, gelu / elu / silu / hardtanh / relu6
gradchecks on drawn shapes, PyTorch agreement of values and gradients, and the layers."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
import tinypix.nn as nn
from tinypix.functional.activation import elu, erf, gelu, hardtanh, relu6, silu
from tinypix.testing import gradcheck
from tinypix.testing import strategies as tst


def _away_from(x, kinks, gap=1e-3):
    """x with entries closer than ``gap`` to a kink moved 0.1 off it (finite differences
    straddling a kink measure neither side's slope)."""
    a = x.detach().numpy()
    for k in kinks:
        a = np.where(np.abs(a - k) < gap, a + 0.1, a)
    return tinypix.tensor(a, requires_grad=True)


@given(st.lists(st.floats(-40, 40, allow_nan=False), min_size=1, max_size=50))
def test_erf_is_accurate_to_round_off(values):
    grid = np.concatenate([values, np.linspace(-7, 7, 2001), [0.46875, 4.0, 27.0, 1e-300, 5e-324]])
    got = erf(tinypix.tensor(grid)).numpy()
    want = np.array([math.erf(v) for v in grid])
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_erf_special_values_dtypes_and_shapes():
    x = tinypix.tensor([[0.0, -0.0, np.inf], [-np.inf, np.nan, -1e300]], dtype=tinypix.float64)
    y = erf(x).numpy()
    np.testing.assert_array_equal(y[0], [0.0, -0.0, 1.0])
    assert np.signbit(y[0, 1]) and y[1, 0] == -1.0 and np.isnan(y[1, 1]) and y[1, 2] == -1.0
    x32 = tinypix.randn(3, 4)
    assert erf(x32).dtype == np.float32 and erf(x32).shape == (3, 4)
    np.testing.assert_allclose(erf(x32).numpy(), [[math.erf(v) for v in row] for row in x32.tolist()],
                               rtol=1e-6, atol=1e-7)
    assert erf(tinypix.tensor(0.5)).shape == ()
    with pytest.raises(TypeError, match="erf: expected a floating-point tensor, got dtype int64"):
        erf(tinypix.tensor([1, 2]))


@given(tst.tensors(shape=tst.shapes(max_dims=3)))
def test_erf_gradcheck(x):
    gradcheck(erf, (x,))


ACTIVATIONS = {
    "gelu": (lambda x: gelu(x), lambda t, x: t.nn.functional.gelu(x), []),
    "gelu_tanh": (lambda x: gelu(x, approximate="tanh"),
                  lambda t, x: t.nn.functional.gelu(x, approximate="tanh"), []),
    "elu": (lambda x: elu(x), lambda t, x: t.nn.functional.elu(x), [0.0]),
    "elu_alpha": (lambda x: elu(x, alpha=0.3), lambda t, x: t.nn.functional.elu(x, alpha=0.3), [0.0]),
    "silu": (lambda x: silu(x), lambda t, x: t.nn.functional.silu(x), []),
    "hardtanh": (lambda x: hardtanh(x, -0.5, 2.0), lambda t, x: t.nn.functional.hardtanh(x, -0.5, 2.0),
                 [-0.5, 2.0]),
    "relu6": (lambda x: relu6(x * 3), lambda t, x: t.nn.functional.relu6(x * 3), [0.0, 2.0]),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(x=tst.tensors(shape=tst.shapes(max_dims=3)))
def test_activation_gradcheck(name, x):
    fn, _, kinks = ACTIVATIONS[name]
    gradcheck(fn, (_away_from(x, kinks),))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(x=tst.arrays(tst.shapes(min_dims=1, max_dims=3), min_value=-8.0, max_value=8.0))
def test_activation_matches_pytorch(name, x):
    torch = pytest.importorskip("torch")
    fn, torch_fn, _ = ACTIVATIONS[name]
    # Exactly at a kink PyTorch's and our gradients agree too: include the kinks themselves.
    x = np.concatenate([x.reshape(-1), [0.0, -0.5, 2.0 / 3, 2.0, -1e-9, 30.0, -30.0]])
    ours, theirs = tinypix.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = fn(ours), torch_fn(torch, theirs)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    dy = np.random.default_rng(0).standard_normal(x.shape)
    y.backward(tinypix.tensor(dy))
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        gelu(tinypix.randn(2), approximate="fast")
    with pytest.raises(ValueError, match="GELU: approximate"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="hardtanh: min_val=2 must not exceed max_val=1"):
        hardtanh(tinypix.randn(2), 2, 1)


LAYERS = [(lambda nn: nn.ReLU(), {}), (lambda nn: nn.ReLU(inplace=True), {}),
          (lambda nn: nn.LeakyReLU(0.2, inplace=True), {}), (lambda nn: nn.ReLU6(inplace=True), {}),
          (lambda nn: nn.Hardtanh(-2.0, 1.5), {}), (lambda nn: nn.GELU(), {}),
          (lambda nn: nn.GELU("tanh"), {}), (lambda nn: nn.ELU(0.5, True), {}),
          (lambda nn: nn.SiLU(inplace=True), {}), (lambda nn: nn.Softmax(dim=1), {}),
          (lambda nn: nn.LogSoftmax(dim=-1), {}), (lambda nn: nn.Sigmoid(), {}), (lambda nn: nn.Tanh(), {})]


@pytest.mark.parametrize("make, _", LAYERS)
def test_activation_layers_match_pytorch(make, _):
    """Values, input gradients and repr of each layer, including the inplace=True variants
    (whose values and gradients are what PyTorch's in-place versions give)."""
    torch = pytest.importorskip("torch")
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    xs = np.random.default_rng(1).standard_normal((3, 4, 5)) * 4
    x = tinypix.tensor(xs, requires_grad=True)
    xt = torch.tensor(xs, requires_grad=True)
    h, ht = x * 1.0, xt * 1.0  # non-leaf inputs: in-place ops on a leaf that requires grad fail
    y, yt = ours(h), theirs(ht)
    assert (y is h) == (yt is ht)  # in place: the input is the result
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    dy = np.random.default_rng(2).standard_normal(xs.shape)
    y.backward(tinypix.tensor(dy))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
def test_softmax_layers_without_dim_pick_pytorchs_dim_and_warn(cls, ndim):
    torch = pytest.importorskip("torch")
    xs = np.random.default_rng(ndim).standard_normal((2, 3, 4, 5)[:ndim])
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        y = getattr(nn, cls)()(tinypix.tensor(xs))
    with pytest.warns(UserWarning):
        yt = getattr(torch.nn, cls)()(torch.tensor(xs))
    np.testing.assert_allclose(y.numpy(), yt.numpy(), rtol=1e-12, atol=1e-14)
    assert repr(getattr(nn, cls)()) == f"{cls}(dim=None)"


@pytest.mark.parametrize("make", [lambda nn: nn.ReLU(True), lambda nn: nn.ELU(inplace=True),
                                  lambda nn: nn.SiLU(True), lambda nn: nn.ReLU6(True),
                                  lambda nn: nn.Hardtanh(inplace=True), lambda nn: nn.Dropout(0.5, True)])
def test_inplace_layers_follow_pytorchs_rules(make):
    """A leaf that requires grad cannot be changed in place; without grad the array itself is."""
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        make(nn)(tinypix.randn(3, requires_grad=True))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        make(torch.nn)(torch.randn(3, requires_grad=True))
    x = tinypix.tensor([-2.0, 0.5, 7.0])
    before = x.data
    assert make(nn).eval()(x) is x and x.data is before
    if not isinstance(make(nn), nn.Dropout):
        np.testing.assert_allclose(x.numpy(), make(torch.nn)(torch.tensor([-2.0, 0.5, 7.0])).numpy(),
                                   rtol=1e-6)
