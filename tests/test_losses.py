"""Losses: gradchecks on drawn shapes and options, PyTorch agreement, masks, label errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinypix
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix.testing import gradcheck
from tinypix.testing import strategies as tst

REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


@st.composite
def label_problems(draw):
    """Scores (N, C) or (N, C, H, W), labels with some ignored, optional class weights."""
    N, C = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    x = draw(tst.tensors(shape=(N, C) + spatial))
    labels = draw(hnp.arrays(np.int64, (N,) + spatial, elements=st.integers(-1, C - 1)))  # -1: ignored
    target = tinypix.tensor(labels)
    weight = draw(st.none() | tst.tensors(shape=(C,), min_value=0.2, max_value=2.0, requires_grad=False))
    return x, target, weight


@given(label_problems(), REDUCTIONS, st.sampled_from([0.0, 0.2]))
def test_cross_entropy_gradcheck(problem, reduction, smoothing):
    x, target, weight = problem
    if reduction == "mean" and not (target.numpy() != -1).any():
        target = tinypix.zeros_like(target)  # the mean over no labels is 0/0
    gradcheck(lambda x: F.cross_entropy(x, target, weight, ignore_index=-1, reduction=reduction,
                                        label_smoothing=smoothing), (x,))


@given(label_problems(), REDUCTIONS)
def test_nll_loss_gradcheck(problem, reduction):
    x, target, weight = problem
    if reduction == "mean" and not (target.numpy() != -1).any():
        target = tinypix.zeros_like(target)
    gradcheck(lambda x: F.nll_loss(F.log_softmax(x, dim=1), target, weight, ignore_index=-1,
                                   reduction=reduction), (x,))


def _both(torch, *arrays, grad=True):
    return ([tinypix.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays],
            [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays])


def _assert_same(torch, ours, theirs, inputs, t_inputs):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(5).standard_normal(ours.shape)
    (ours * tinypix.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    for a, b in zip(inputs, t_inputs):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 3, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_and_nll_match_pytorch(shape, reduction, weighted, smoothing):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xs = rng.standard_normal(shape) * 3
    labels = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    labels.reshape(-1)[::3] = 255  # ignored pixels, as in VOC masks
    weight = rng.uniform(0.2, 2.0, shape[1]) if weighted else None
    kwargs = dict(ignore_index=255, reduction=reduction)
    (x,), (xt,) = _both(torch, xs)
    w, wt = (tinypix.tensor(weight), torch.tensor(weight)) if weighted else (None, None)
    ours = F.cross_entropy(x, tinypix.tensor(labels), w, label_smoothing=smoothing, **kwargs)
    theirs = torch.nn.functional.cross_entropy(xt, torch.tensor(labels), wt, label_smoothing=smoothing,
                                               **kwargs)
    _assert_same(torch, ours, theirs, [x], [xt])
    (x,), (xt,) = _both(torch, np.log(np.exp(xs) / np.exp(xs).sum(1, keepdims=True)))
    ours = F.nll_loss(x, tinypix.tensor(labels), w, **kwargs)
    theirs = torch.nn.functional.nll_loss(xt, torch.tensor(labels), wt, **kwargs)
    _assert_same(torch, ours, theirs, [x], [xt])


def test_cross_entropy_all_ignored_is_nan_like_pytorch_with_zero_gradient():
    x = tinypix.randn(2, 3, requires_grad=True)
    loss = F.cross_entropy(x, tinypix.tensor([-100, -100]))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)


@pytest.mark.parametrize("bad", [5, -3])
def test_label_out_of_range_names_the_label_and_C(bad):
    x = tinypix.randn(2, 5, 3, 3)
    target = tinypix.zeros(2, 3, 3, dtype=tinypix.int64)
    target[1, 2, 0] = bad
    for fn in (F.cross_entropy, F.nll_loss):
        with pytest.raises(ValueError, match=rf"label {bad}, outside \[0, 5\) for C = 5"):
            fn(x, target)
    target[1, 2, 0] = 255
    F.cross_entropy(x, target, ignore_index=255)  # the ignore label is not an error


def test_label_loss_shape_and_dtype_errors():
    x = tinypix.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match=r"needs a target of shape \(2, 3, 3\).*got \(2, 3\)"):
        F.cross_entropy(x, tinypix.zeros(2, 3, dtype=tinypix.int64))
    with pytest.raises(TypeError, match="integer class labels"):
        F.cross_entropy(x, tinypix.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.cross_entropy(x, tinypix.zeros(2, 3, 3, dtype=tinypix.int64), weight=tinypix.ones(3))
    with pytest.raises(ValueError, match="reduction must be"):
        F.cross_entropy(x, tinypix.zeros(2, 3, 3, dtype=tinypix.int64), reduction="avg")


@st.composite
def regression_problem(draw):
    shape = draw(tst.shapes(min_dims=1, max_dims=3, max_side=4))
    x = draw(tst.tensors(shape=shape))
    y = draw(tst.tensors(shape=shape, requires_grad=False))
    mask = draw(st.none() | hnp.arrays(bool, shape))
    return x, y, mask


@given(regression_problem(), REDUCTIONS, st.sampled_from(["mse", "l1", "smooth_l1"]),
       st.sampled_from([0.0, 0.5, 1.0]))
def test_regression_losses_gradcheck(problem, reduction, kind, beta):
    x, y, mask = problem
    # |x - y| must stay away from the kinks (0 for l1, beta for smooth_l1) for finite differences.
    d = np.abs(x.detach().numpy() - y.numpy())
    x = tinypix.tensor(np.where((d < 1e-3) | (np.abs(d - beta) < 1e-3), x.detach().numpy() + 0.01,
                                x.detach().numpy()), requires_grad=True)
    fn = {"mse": lambda x: F.mse_loss(x, y, reduction, mask=mask),
          "l1": lambda x: F.l1_loss(x, y, reduction, mask=mask),
          "smooth_l1": lambda x: F.smooth_l1_loss(x, y, reduction, beta=beta, mask=mask)}[kind]
    gradcheck(fn, (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_match_pytorch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    xs, ys = rng.standard_normal((3, 1, 4, 5)) * 2, rng.standard_normal((3, 1, 4, 5)) * 2
    pairs = [(F.mse_loss, torch.nn.functional.mse_loss, {}), (F.l1_loss, torch.nn.functional.l1_loss, {}),
             (F.smooth_l1_loss, torch.nn.functional.smooth_l1_loss, {"beta": 0.7}),
             (F.smooth_l1_loss, torch.nn.functional.smooth_l1_loss, {"beta": 0.0})]
    for ours_fn, torch_fn, kw in pairs:
        (x, y), (xt, yt) = _both(torch, xs, ys)
        _assert_same(torch, ours_fn(x, y, reduction, **kw), torch_fn(xt, yt, reduction=reduction, **kw),
                     [x, y], [xt, yt])


def test_masked_losses_average_valid_pixels_and_ignore_nan_holes():
    rng = np.random.default_rng(4)
    pred = rng.standard_normal((2, 1, 3, 3))
    depth = rng.uniform(1, 5, (2, 1, 3, 3))
    valid = rng.random((2, 1, 3, 3)) > 0.3
    holes = np.where(valid, depth, np.nan)  # a sensor leaves NaNs where it saw nothing
    for fn, ref in ((F.mse_loss, lambda d: d * d), (F.l1_loss, np.abs)):
        x = tinypix.tensor(pred, requires_grad=True)
        loss = fn(x, tinypix.tensor(holes), mask=tinypix.tensor(valid))
        np.testing.assert_allclose(loss.item(), ref(pred - depth)[valid].mean(), rtol=1e-12)
        loss.backward()
        assert np.isfinite(x.grad.numpy()).all()
        np.testing.assert_array_equal(x.grad.numpy()[~valid], 0)
    x = tinypix.tensor(pred, requires_grad=True)
    empty = F.l1_loss(x, tinypix.tensor(holes), mask=np.zeros((2, 1, 3, 3), bool))
    empty.backward()
    assert empty.item() == 0 and (x.grad.numpy() == 0).all()  # no valid pixel: 0, not NaN
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3, 3\) does not broadcast"):
        F.mse_loss(x, tinypix.tensor(depth), mask=np.ones((2, 3, 3), bool))
    with pytest.raises(ValueError, match="differ"):
        F.mse_loss(x, tinypix.tensor(depth[:1]))


@given(tst.shapes(min_dims=1, max_dims=3, max_side=4).flatmap(
    lambda s: st.tuples(tst.tensors(shape=s), tst.tensors(shape=s, min_value=0.0, max_value=1.0),
                        st.none() | tst.tensors(shape=s[-1:], min_value=0.5, max_value=3.0))), REDUCTIONS)
def test_bce_with_logits_gradcheck(args, reduction):
    x, y, pos_weight = args
    inputs = (x, y) + ((pos_weight,) if pos_weight is not None else ())

    def fn(x, y, pw=None):
        return F.binary_cross_entropy_with_logits(x, y, reduction=reduction, pos_weight=pw)
    gradcheck(fn, inputs)


def test_bce_with_logits_matches_pytorch_and_is_stable():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    xs = rng.standard_normal((4, 3, 2, 2)) * 5
    xs[0, 0, 0] = [800.0, -800.0]  # e^800 overflows; the loss must not
    ys = (rng.random((4, 3, 2, 2)) > 0.5).astype(np.float64)
    ws, pws = rng.uniform(0.5, 2, (3, 1, 1)), rng.uniform(0.5, 3, (3, 1, 1))
    for reduction in ("mean", "sum", "none"):
        (x, y), (xt, yt) = _both(torch, xs, ys)  # PyTorch has no gradient for (pos_)weight
        ours = F.binary_cross_entropy_with_logits(x, y, tinypix.tensor(ws), reduction,
                                                  pos_weight=tinypix.tensor(pws))
        theirs = torch.nn.functional.binary_cross_entropy_with_logits(
            xt, yt, torch.tensor(ws), reduction=reduction, pos_weight=torch.tensor(pws))
        assert np.isfinite(ours.detach().numpy()).all()
        _assert_same(torch, ours, theirs, [x, y], [xt, yt])


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.booleans(), REDUCTIONS)
def test_cosine_normal_loss_gradcheck(N, H, W, masked, reduction):
    rng = np.random.default_rng(N * 100 + H * 10 + W)
    pred = tinypix.tensor(rng.standard_normal((N, 3, H, W)) + 0.1, requires_grad=True)
    target = F.normalize(tinypix.tensor(rng.standard_normal((N, 3, H, W))), dim=1)
    mask = tinypix.tensor(rng.random((N, H, W)) > 0.3) if masked else None
    gradcheck(lambda p: F.cosine_normal_loss(p, target, mask, reduction), (pred,))


def test_cosine_normal_loss_values():
    n = np.zeros((1, 3, 1, 3))
    n[0, 2] = 1.0  # all normals point along +z
    pred = np.zeros((1, 3, 1, 3))
    pred[0, :, 0, 0] = [0, 0, 5]   # same direction, any length: loss 0
    pred[0, :, 0, 1] = [1, 0, 0]   # perpendicular: loss 1
    pred[0, :, 0, 2] = [0, 0, -2]  # opposite: loss 2
    loss = F.cosine_normal_loss(tinypix.tensor(pred), tinypix.tensor(n), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [[[0.0, 1.0, 2.0]]], atol=1e-12)
    target = n.copy()
    target[0, :, 0, 2] = np.nan  # a hole in the ground truth
    x = tinypix.tensor(pred, requires_grad=True)
    mask = np.array([[[[True, True, False]]]])  # (N, 1, H, W) masks work too
    loss = F.cosine_normal_loss(x, tinypix.tensor(target), tinypix.tensor(mask))
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_loss_modules_call_the_functions():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    xs, labels = rng.standard_normal((4, 3, 2, 2)), rng.integers(0, 3, (4, 2, 2))
    w = rng.uniform(0.5, 2, 3)
    ours = nn.CrossEntropyLoss(weight=tinypix.tensor(w), ignore_index=1, label_smoothing=0.1)
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), ignore_index=1, label_smoothing=0.1)
    assert ours(tinypix.tensor(xs), tinypix.tensor(labels)).item() == pytest.approx(
        theirs(torch.tensor(xs), torch.tensor(labels)).item(), rel=1e-12)
    assert "weight" in ours.state_dict()  # class weights are buffers: they move with .to()
    logp = np.log(np.exp(xs) / np.exp(xs).sum(1, keepdims=True))
    assert nn.NLLLoss(reduction="sum")(tinypix.tensor(logp), tinypix.tensor(labels)).item() == pytest.approx(
        torch.nn.NLLLoss(reduction="sum")(torch.tensor(logp), torch.tensor(labels)).item(), rel=1e-12)
    ys = rng.standard_normal(xs.shape)
    for ours_m, theirs_m in ((nn.MSELoss(), torch.nn.MSELoss()), (nn.L1Loss(), torch.nn.L1Loss()),
                             (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5)),
                             (nn.BCEWithLogitsLoss(pos_weight=tinypix.tensor(w.reshape(3, 1, 1))),
                              torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w.reshape(3, 1, 1))))):
        target = (ys > 0).astype(np.float64) if isinstance(ours_m, nn.BCEWithLogitsLoss) else ys
        assert ours_m(tinypix.tensor(xs), tinypix.tensor(target)).item() == pytest.approx(
            theirs_m(torch.tensor(xs), torch.tensor(target)).item(), rel=1e-12)
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"
    with pytest.raises(ValueError, match="L1Loss: reduction must be"):
        nn.L1Loss(reduction="avg")


# -- binary_cross_entropy, huber_loss, and the loss modules' PyTorch signatures ----------------
@given(tst.shapes(min_dims=1, max_dims=3, max_side=4).flatmap(
    lambda s: st.tuples(tst.tensors(shape=s, min_value=0.02, max_value=0.98),
                        tst.tensors(shape=s, min_value=0.0, max_value=1.0),
                        st.none() | tst.tensors(shape=s[-1:], min_value=0.5, max_value=2.0,
                                                requires_grad=False))), REDUCTIONS)
def test_binary_cross_entropy_gradcheck(args, reduction):
    p, y, weight = args
    gradcheck(lambda p, y: F.binary_cross_entropy(p, y, weight, reduction=reduction), (p, y))


def test_binary_cross_entropy_matches_pytorch_including_saturated_probabilities():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    ps = rng.uniform(0.01, 0.99, (4, 3, 5))
    ps[0, 0, :3] = [0.0, 1.0, 1e-50]  # log clamped at -100: a finite loss, as in PyTorch
    ys = rng.random((4, 3, 5))
    ws = rng.uniform(0.5, 2, (3, 1))
    for reduction in ("mean", "sum", "none"):
        (p, y), (pt, yt) = _both(torch, ps, ys)
        ours = F.binary_cross_entropy(p, y, tinypix.tensor(ws), reduction=reduction)
        theirs = torch.nn.functional.binary_cross_entropy(pt, yt, torch.tensor(ws), reduction=reduction)
        assert np.isfinite(ours.detach().numpy()).all()
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
        w = np.random.default_rng(5).standard_normal(ours.shape)
        (ours * tinypix.tensor(w)).sum().backward()
        (theirs * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(y.grad.numpy(), yt.grad.numpy(), rtol=1e-10)  # +-inf at p = 0, 1
    bce, bce_t = nn.BCELoss(weight=tinypix.tensor(ws)), torch.nn.BCELoss(weight=torch.tensor(ws))
    assert bce(tinypix.tensor(ps), tinypix.tensor(ys)).item() == pytest.approx(
        bce_t(torch.tensor(ps), torch.tensor(ys)).item(), rel=1e-12)
    assert "weight" in bce.state_dict()


def test_binary_cross_entropy_rejects_scores_and_mismatched_shapes():
    with pytest.raises(ValueError, match="binary_cross_entropy: all elements of input must be "
                                         "probabilities in \\[0, 1\\].*binary_cross_entropy_with_logits"):
        F.binary_cross_entropy(tinypix.tensor([0.5, 1.5]), tinypix.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target of shape \(3,\) must have the input's shape \(2,\)"):
        F.binary_cross_entropy(tinypix.tensor([0.5, 0.5]), tinypix.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not broadcast"):
        F.binary_cross_entropy(tinypix.tensor([0.5, 0.5]), tinypix.tensor([0.0, 1.0]), tinypix.ones(3))


@given(regression_problem(), REDUCTIONS, st.sampled_from([0.5, 1.0, 2.0]), st.booleans())
def test_huber_loss_gradcheck(problem, reduction, delta, weighted):
    x, y, mask = problem
    d = np.abs(x.detach().numpy() - y.numpy())  # away from the kink at |d| = delta
    x = tinypix.tensor(np.where(np.abs(d - delta) < 1e-3, x.detach().numpy() + 0.01, x.detach().numpy()),
                       requires_grad=True)
    weight = tinypix.tensor(np.linspace(0.5, 2.0, x.numel()).reshape(x.shape)) if weighted else None
    gradcheck(lambda x: F.huber_loss(x, y, reduction, delta=delta, weight=weight, mask=mask), (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_huber_loss_matches_pytorch(reduction, delta):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    xs, ys, ws = rng.standard_normal((3, 2, 4)) * 2, rng.standard_normal((3, 2, 4)), rng.random((3, 2, 4))
    for weight in (None, ws):
        (x, y), (xt, yt) = _both(torch, xs, ys)
        ours = F.huber_loss(x, y, reduction, delta, None if weight is None else tinypix.tensor(weight))
        theirs = torch.nn.functional.huber_loss(xt, yt, reduction, delta,
                                                None if weight is None else torch.tensor(weight))
        _assert_same(torch, ours, theirs, [x, y], [xt, yt])
    ours_m, theirs_m = nn.HuberLoss(reduction, delta), torch.nn.HuberLoss(reduction, delta)
    np.testing.assert_allclose(ours_m(tinypix.tensor(xs), tinypix.tensor(ys)).numpy(),
                               theirs_m(torch.tensor(xs), torch.tensor(ys)).numpy(), rtol=1e-12)


@pytest.mark.parametrize("size_average, reduce", [(None, False), (False, None), (True, True), (False, True)])
def test_loss_modules_take_pytorchs_positional_arguments_and_legacy_flags(size_average, reduce):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    xs, labels = rng.standard_normal((5, 3)), np.array([0, 2, 1, 2, 0])
    w = rng.uniform(0.5, 2, 3)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        ours = nn.CrossEntropyLoss(tinypix.tensor(w), size_average, 2, reduce)
    with pytest.warns(UserWarning):
        theirs = torch.nn.CrossEntropyLoss(torch.tensor(w), size_average, 2, reduce)
    assert ours.reduction == theirs.reduction and ours.ignore_index == 2
    np.testing.assert_allclose(ours(tinypix.tensor(xs), tinypix.tensor(labels)).numpy(),
                               theirs(torch.tensor(xs), torch.tensor(labels)).numpy(), rtol=1e-12)
    with pytest.warns(UserWarning):
        assert nn.MSELoss(size_average, reduce).reduction == torch.nn.MSELoss(size_average, reduce).reduction
    assert nn.SmoothL1Loss(None, None, "sum", 0.5).beta == 0.5
