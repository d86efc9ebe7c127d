"""batch_norm (hand-written backward) and normalize: gradchecks, PyTorch
agreement, errors."""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import tinypix
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix import kernels
from tinypix.testing import gradcheck
from tinypix.testing import strategies as tst


@st.composite
def bn_inputs(draw, min_values=2):
    """x: (N, C, *spatial) with at least ``min_values`` values per channel, plus (C,) params."""
    C = draw(st.integers(1, 3))
    spatial = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    N = draw(st.integers(1, 3))
    if N * int(np.prod(spatial)) < min_values:
        N = min_values
    x = draw(tst.tensors(shape=(N, C, *spatial)))
    weight = draw(tst.tensors(shape=(C,), min_value=0.5, max_value=2.0))
    bias = draw(tst.tensors(shape=(C,)))
    return x, weight, bias


@given(bn_inputs(), st.booleans())
def test_batch_norm_training_gradcheck(inputs, affine):
    x, weight, bias = inputs
    C = x.shape[1]
    args = (x, weight, bias) if affine else (x,)

    def fn(x, weight=None, bias=None):
        rm, rv = tinypix.zeros(C, dtype=tinypix.float64), tinypix.ones(C, dtype=tinypix.float64)
        return F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=0.1, eps=1e-3)
    gradcheck(fn, args, atol=1e-4)


@given(bn_inputs(min_values=1), tst.tensors(shape=(3,), requires_grad=False))
def test_batch_norm_eval_gradcheck(inputs, stats):
    x, weight, bias = inputs
    C = x.shape[1]
    rm = stats[:C].detach()
    rv = (stats[:C].abs() + 0.5).detach()
    gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), (x, weight, bias))


def _torch_bn(torch, C, momentum):
    bn = torch.nn.BatchNorm2d(C, momentum=momentum).double()
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 2.0, C, dtype=torch.float64))
        bn.bias.copy_(torch.linspace(-1.0, 1.0, C, dtype=torch.float64))
    return bn


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_matches_pytorch_train_and_eval(momentum):
    torch = pytest.importorskip("torch")
    C = 3
    ref = _torch_bn(torch, C, momentum)
    bn = nn.BatchNorm2d(C, momentum=momentum).double()
    bn.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    rng = np.random.default_rng(0)
    for step in range(4):  # several steps: the running statistics accumulate
        xs = rng.normal(2.0, 3.0, (4, C, 5, 6))
        x = tinypix.tensor(xs, requires_grad=True)
        xt = torch.tensor(xs, requires_grad=True)
        dy = rng.standard_normal(xs.shape)
        y, yt = bn(x), ref(xt)
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        y.backward(tinypix.tensor(dy))
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(bn.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-8)
        np.testing.assert_allclose(bn.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-8)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(bn, name).numpy(), getattr(ref, name).numpy(), rtol=1e-12)
        assert bn.num_batches_tracked.item() == ref.num_batches_tracked.item() == step + 1
    bn.eval()
    ref.eval()
    xs = rng.normal(0.0, 1.0, (2, C, 3, 3))
    x, xt = tinypix.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
    y, yt = bn(x), ref(xt)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-10)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10)
    before = bn.running_mean.numpy().copy()
    bn(x)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)  # eval never updates them


@pytest.mark.parametrize("kernel_choice", ["", "reference"])
def test_relu_gradients_select_as_pytorch_does(monkeypatch, kernel_choice):
    """ReLU's backward (PyTorch's threshold_backward) is 0 where the output is <= 0, else dy: a
    NaN output passes dy, and an infinite dy on a clipped output gives 0, not NaN. Both
    implementations agree, after a batch norm too."""
    monkeypatch.setenv(kernels.ENV_VAR, kernel_choice)
    x = tinypix.tensor([-1.0, np.nan, 2.0], requires_grad=True)
    F.relu(x).backward(tinypix.tensor([np.inf, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 3.0, 4.0])

    x = tinypix.tensor(np.array([[1.0], [2.0], [4.0], [5.0]], np.float32), requires_grad=True)
    y = F.relu(F.batch_norm(x, None, None, training=True))  # 1 and 2 fall below the mean: clipped
    y.backward(tinypix.tensor(np.array([[np.inf], [np.inf], [1.0], [-1.0]], np.float32)))
    assert (y.detach().numpy()[:2] == 0).all() and np.isfinite(x.grad.numpy()).all()
    torch = pytest.importorskip("torch")
    xt = torch.tensor([[1.0], [2.0], [4.0], [5.0]], requires_grad=True)
    torch.relu(torch.nn.functional.batch_norm(xt, None, None, training=True)).backward(
        torch.tensor([[np.inf], [np.inf], [1.0], [-1.0]]))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_batchnorm2d_without_running_stats_uses_batch_statistics_in_eval():
    bn = nn.BatchNorm2d(2, affine=False, track_running_stats=False).eval()
    x = tinypix.randn(3, 2, 4, 4) * 5 + 3
    y = bn(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)
    assert list(bn.state_dict()) == []


def test_batch_norm_errors_name_the_problem():
    bn = nn.BatchNorm2d(4)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4.*\(N, 4, H, W\).*\(2, 3, 5, 5\)"):
        bn(tinypix.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(tinypix.randn(1, 4, 1, 1))
    with pytest.raises(ValueError, match=r"weight has shape \(2,\).*C = 3"):
        F.batch_norm(tinypix.randn(2, 3, 4), None, None, tinypix.ones(2), training=True)
    with pytest.raises(ValueError, match="needs running_mean"):
        F.batch_norm(tinypix.randn(2, 3), None, None, training=False)


@st.composite
def away_from_zero(draw, shape):
    """Entries with |x| in [0.2, 3]: the norm is smooth there (no kink at 0 or at eps)."""
    magnitude = draw(tst.arrays(shape, min_value=0.2, max_value=3.0))
    negative = draw(hnp.arrays(bool, shape))
    return tinypix.tensor(np.where(negative, -magnitude, magnitude), requires_grad=True)


@given(tst.shapes(min_dims=2, max_dims=3, max_side=4).flatmap(away_from_zero),
       st.sampled_from([1.0, 2.0, 3.0]))
def test_normalize_gradcheck(x, p):
    gradcheck(lambda x: F.normalize(x, p=p, dim=1), (x,))


def test_normalize_matches_pytorch_including_zero_vectors():
    torch = pytest.importorskip("torch")
    xs = np.random.default_rng(1).standard_normal((4, 3, 2, 2))
    xs[0, :, 0, 0] = 0.0  # a zero vector: clamped by eps, finite gradient
    for p in (2.0, 1.0):
        x, xt = tinypix.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
        y, yt = F.normalize(x, p=p, dim=1), torch.nn.functional.normalize(xt, p=p, dim=1)
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
        w = np.random.default_rng(2).standard_normal(xs.shape)
        (y * tinypix.tensor(w)).sum().backward()
        (yt * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
