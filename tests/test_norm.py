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


# -- layer norm, group norm, BatchNorm1d -------------------------------------------------------
@st.composite
def layer_norm_inputs(draw):
    """x: (*lead, *normalized_shape), normalized_shape of 1 to 3 dims, optional affine params."""
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    assume(int(np.prod(shape)) > 1)  # one value per sample: standardized to 0, eps-dominated
    x = draw(tst.tensors(shape=lead + shape))
    affine = draw(st.booleans())
    weight = draw(tst.tensors(shape=shape, min_value=0.5, max_value=2.0)) if affine else None
    bias = draw(tst.tensors(shape=shape)) if affine and draw(st.booleans()) else None
    return x, shape, weight, bias


@given(layer_norm_inputs())
def test_layer_norm_gradcheck(inputs):
    x, shape, weight, bias = inputs
    params = [t for t in (weight, bias) if t is not None]  # a bias comes only with a weight
    gradcheck(lambda x, *p: F.layer_norm(x, shape, *p, eps=1e-3), (x, *params), atol=1e-4)


@st.composite
def group_norm_inputs(draw):
    G = draw(st.integers(1, 3))
    C = G * draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    assume(C // G * int(np.prod(spatial)) > 1)
    x = draw(tst.tensors(shape=(draw(st.integers(1, 3)), C) + spatial))
    weight = draw(tst.tensors(shape=(C,), min_value=0.5, max_value=2.0))
    bias = draw(tst.tensors(shape=(C,)))
    return x, G, weight, bias


@given(group_norm_inputs(), st.booleans())
def test_group_norm_gradcheck(inputs, affine):
    x, G, weight, bias = inputs
    gradcheck(lambda x, w=None, b=None: F.group_norm(x, G, w, b, eps=1e-3),
              (x, weight, bias) if affine else (x,), atol=1e-4)


@given(layer_norm_inputs(), group_norm_inputs())
def test_layer_norm_and_group_norm_match_pytorch(ln, gn):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x, shape, weight, bias = ln
    xg, G, wg, bg = gn
    cases = [(lambda *a: F.layer_norm(a[0], shape, *a[1:]), lambda *a: tF.layer_norm(a[0], shape, *a[1:]),
              [x, weight, bias]),
             (lambda *a: F.group_norm(a[0], G, *a[1:]), lambda *a: tF.group_norm(a[0], G, *a[1:]),
              [xg, wg, bg])]
    for ours_fn, torch_fn, args in cases:
        ours = [None if a is None else tinypix.tensor(a.detach().numpy(), requires_grad=True) for a in args]
        theirs = [None if a is None else torch.tensor(a.detach().numpy(), requires_grad=True) for a in args]
        y, yt = ours_fn(*ours), torch_fn(*theirs)
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        dy = np.random.default_rng(0).standard_normal(y.shape)
        y.backward(tinypix.tensor(dy))
        yt.backward(torch.tensor(dy))
        for a, b in zip(ours, theirs):
            if a is not None:
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)


CHANNELS_4 = [(3, 4, 5), (6, 4), (2, 4, 4, 5), (3, 4, 5)]  # the last one in eval mode


@pytest.mark.parametrize("make, shapes", [
    (lambda nn: nn.LayerNorm(5), [(3, 4, 5), (5,), (2, 2, 5), (2, 5)]),
    (lambda nn: nn.LayerNorm([4, 5], eps=1e-3, bias=False), [(3, 4, 5), (4, 5), (2, 4, 5)]),
    (lambda nn: nn.LayerNorm((5,), elementwise_affine=False), [(3, 4, 5), (2, 5)]),
    (lambda nn: nn.GroupNorm(2, 4), CHANNELS_4), (lambda nn: nn.GroupNorm(4, 4, affine=False), CHANNELS_4),
    (lambda nn: nn.GroupNorm(1, 4, eps=0.1, bias=False), CHANNELS_4),
    (lambda nn: nn.BatchNorm1d(4), [(3, 4, 5), (6, 4), (2, 4, 3), (3, 4, 5)]),
    (lambda nn: nn.BatchNorm1d(4, momentum=None, affine=False), [(3, 4, 5), (6, 4), (3, 4)])])
def test_norm_layers_match_pytorch_from_the_same_weights(make, shapes):
    """Outputs, gradients and state (running statistics) step by step, the last step in eval."""
    torch = pytest.importorskip("torch")
    ours, theirs = make(nn).double(), make(torch.nn).double()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(rng.uniform(0.5, 2.0, tuple(p.shape))))
    ours.load_state_dict(theirs.state_dict())
    for step, shape in enumerate(shapes):
        if step == len(shapes) - 1:
            ours.eval()
            theirs.eval()
        xs = rng.normal(1.0, 2.0, shape)
        x, xt = tinypix.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
        y, yt = ours(x), theirs(xt)
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        dy = rng.standard_normal(y.shape)
        y.backward(tinypix.tensor(dy))
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
        for (name, p), pt in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
            p.grad, pt.grad = None, None
        for k, v in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-12, err_msg=k)


def test_layer_norm_and_group_norm_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"layer_norm: given normalized_shape=\[4\], expected input "
                                         r"with shape \(\*, 4\), but got input of shape \(2, 3\)"):
        F.layer_norm(tinypix.randn(2, 3), 4)
    with pytest.raises(ValueError, match=r"layer_norm: weight has shape \(3,\); expected "
                                         r"normalized_shape \(2, 3\)"):
        F.layer_norm(tinypix.randn(2, 3), (2, 3), tinypix.ones(3))
    with pytest.raises(ValueError, match=r"group_norm: the 6 channels of input \(2, 6, 3\) cannot be "
                                         r"split into num_groups=4"):
        F.group_norm(tinypix.randn(2, 6, 3), 4)
    with pytest.raises(ValueError, match=r"num_channels=6 must be divisible by num_groups=4"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 6.*expected input of shape \(N, 6, ...\)"):
        nn.GroupNorm(2, 6)(tinypix.randn(2, 4, 3))
    with pytest.raises(TypeError, match="layer_norm: expected a floating-point input"):
        F.layer_norm(tinypix.tensor([[1, 2]]), 2)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3.*\(N, 3\) or \(N, 3, L\), got \(2, 3, 4, 4\)"):
        nn.BatchNorm1d(3)(tinypix.randn(2, 3, 4, 4))
    assert nn.LayerNorm(3, device="cpu", dtype=tinypix.float64).weight.dtype == np.float64
