"""Optimizers and schedulers: PyTorch agreement, the decoupled SGD formula, groups, resuming."""
import math

import numpy as np
import pytest

import tinypix
import tinypix.nn as nn
from tinypix import optim
from tinypix.backend import is_cuda_available
from tinypix.optim import lr_scheduler

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not is_cuda_available(), reason="no GPU"))]
SHAPES = [(3, 4), (4,)]


def _grads(step):
    """Deterministic gradients per step, one per parameter shape."""
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s) for s in SHAPES]


def _run_ours(make, steps, device="cpu"):
    rng = np.random.default_rng(0)
    params = [nn.Parameter(tinypix.tensor(rng.standard_normal(s), device=device)) for s in SHAPES]
    opt = make(params)
    for step in range(steps):
        for p, g in zip(params, _grads(step)):
            p.grad = tinypix.tensor(g, device=device)
        opt.step()
    return [p.detach().cpu().numpy() for p in params], opt


def _run_torch(torch, make, steps):
    rng = np.random.default_rng(0)
    params = [torch.nn.Parameter(torch.tensor(rng.standard_normal(s))) for s in SHAPES]
    opt = make(params)
    for step in range(steps):
        for p, g in zip(params, _grads(step)):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.3),
             dict(lr=0.1, momentum=0.8, nesterov=True), dict(lr=0.1, weight_decay=0.05),
             dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
             dict(lr=0.1, momentum=0.7, dampening=0.1, weight_decay=0.02)]


@pytest.mark.parametrize("kwargs", SGD_CASES)
def test_sgd_matches_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    ours, _ = _run_ours(lambda ps: optim.SGD(ps, **kwargs), 6)
    theirs = _run_torch(torch, lambda ps: torch.optim.SGD(ps, **kwargs), 6)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_decoupled_sgd_follows_the_lecture_formula(device, nesterov):
    lr, mu, wd = 0.1, 0.9, 0.05
    ours, _ = _run_ours(lambda ps: optim.SGD(ps, lr=lr, momentum=mu, weight_decay=wd, nesterov=nesterov,
                                             decoupled_weight_decay=True), 6, device)
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(s) for s in SHAPES]
    vs = [np.zeros(s) for s in SHAPES]
    for step in range(6):
        for i, g in enumerate(_grads(step)):
            vs[i] = mu * vs[i] + g                       # v <- momentum * v + dL/dw
            d = g + mu * vs[i] if nesterov else vs[i]
            ws[i] = ws[i] - lr * wd * ws[i] - lr * d     # w <- w - lr*wd*w - lr*v
    for a, b in zip(ours, ws):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_coupled_and_decoupled_agree_without_momentum_and_differ_with_it():
    def final(**kw):
        return _run_ours(lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.1, **kw), 5)[0][0]
    np.testing.assert_allclose(final(), final(decoupled_weight_decay=True), rtol=1e-12)
    assert not np.allclose(final(momentum=0.9), final(momentum=0.9, decoupled_weight_decay=True))


ADAM_CASES = [("Adam", dict(lr=0.01)), ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
              ("Adam", dict(lr=0.01, eps=1e-3, weight_decay=0.1, decoupled_weight_decay=True)),
              ("AdamW", dict(lr=0.01)), ("AdamW", dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.3))]


@pytest.mark.parametrize("name, kwargs", ADAM_CASES)
def test_adam_and_adamw_match_pytorch(name, kwargs):
    torch = pytest.importorskip("torch")
    has_option = "decoupled_weight_decay" in torch.optim.Adam.__init__.__code__.co_varnames
    if "decoupled_weight_decay" in kwargs and not has_option:
        pytest.skip("this PyTorch has no Adam(decoupled_weight_decay=)")
    ours, _ = _run_ours(lambda ps: getattr(optim, name)(ps, **kwargs), 8)
    theirs = _run_torch(torch, lambda ps: getattr(torch.optim, name)(ps, **kwargs), 8)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("device", DEVICES)
def test_optimizers_step_on_any_device_in_place(device):
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2),
                 lambda ps: optim.AdamW(ps, lr=0.01)):
        cpu, _ = _run_ours(make, 3)
        there, opt = _run_ours(make, 3, device)
        for a, b in zip(cpu, there):
            np.testing.assert_allclose(a, b, rtol=1e-12)
        p = opt.param_groups[0]["params"][0]
        before = p.data
        opt.step()
        assert p.data is before  # updated in place: views and the model see the new values


def test_param_groups_have_their_own_hyperparameters():
    w = nn.Parameter(tinypix.ones(3, dtype=tinypix.float64))
    b = nn.Parameter(tinypix.ones(3, dtype=tinypix.float64))
    groups = [{"params": [w]}, {"params": b, "weight_decay": 0.0, "lr": 0.5}]
    opt = optim.SGD(groups, lr=0.1, weight_decay=0.1)
    w.grad, b.grad = tinypix.zeros_like(w), tinypix.zeros_like(b)
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), 1 - 0.1 * 0.1)  # decayed
    np.testing.assert_allclose(b.detach().numpy(), 1.0)             # left undecayed
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.0
    opt.zero_grad()
    assert w.grad is None
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(ValueError, match="required hyper-parameter 'lr'"):
        optim.SGD([w])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="nesterov momentum requires"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1)])
def test_state_dict_resumes_exactly(make):
    ref, _ = _run_ours(make, 6)
    rng = np.random.default_rng(0)
    params = [nn.Parameter(tinypix.tensor(rng.standard_normal(s))) for s in SHAPES]
    opt = make(params)
    for step in range(3):
        for p, g in zip(params, _grads(step)):
            p.grad = tinypix.tensor(g)
        opt.step()
    saved = opt.state_dict()
    resumed = make(params)
    resumed.load_state_dict(saved)
    for step in range(3, 6):
        for p, g in zip(params, _grads(step)):
            p.grad = tinypix.tensor(g)
        resumed.step()
    for a, p in zip(ref, params):
        np.testing.assert_array_equal(a, p.detach().numpy())
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state but 1 here"):
        make(params[:1]).load_state_dict(saved)


def _lrs_ours(make, steps):
    opt = optim.SGD([nn.Parameter(tinypix.ones(1))], lr=0.5)
    sched = make(opt)
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out, sched


def _lrs_torch(torch, make, steps):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.5)
    sched = make(opt)
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


@pytest.mark.parametrize("name, kwargs", [("StepLR", dict(step_size=3, gamma=0.5)),
                                          ("CosineAnnealingLR", dict(T_max=10)),
                                          ("CosineAnnealingLR", dict(T_max=4, eta_min=0.05))])
def test_schedulers_match_pytorch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours, _ = _lrs_ours(lambda o: getattr(lr_scheduler, name)(o, **kwargs), 25)
    theirs = _lrs_torch(torch, lambda o: getattr(torch.optim.lr_scheduler, name)(o, **kwargs), 25)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_scheduler_closed_forms_and_state():
    lrs, sched = _lrs_ours(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.1), 10)
    for epoch, lr in enumerate(lrs, start=1):
        assert lr == pytest.approx(0.1 + 0.4 * (1 + math.cos(math.pi * epoch / 10)) / 2)
    with pytest.warns(UserWarning, match=r"epoch parameter in `scheduler.step\(\)`"):
        sched.step(epoch=5)  # jump: the closed form (deprecated, as in PyTorch)
    assert sched.get_last_lr()[0] == pytest.approx(0.1 + 0.4 * (1 + math.cos(math.pi / 2)) / 2)
    lrs, step = _lrs_ours(lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.1), 5)
    assert lrs == pytest.approx([0.5, 0.05, 0.05, 0.005, 0.005])
    state = step.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 5
    opt = optim.SGD([nn.Parameter(tinypix.ones(1))], lr=0.5)
    fresh = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    fresh.load_state_dict(state)
    fresh.step()
    assert fresh.last_epoch == 6
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(optim.SGD([nn.Parameter(tinypix.ones(1))], lr=0.1), 2, last_epoch=3)
