"""lr schedulers: the lr (and OneCycleLR's momentum) epoch by epoch against PyTorch's for drawn
hyperparameters, and state_dict / load_state_dict resuming exactly."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
from tinypix import optim
from tinypix.nn import Parameter
from tinypix.optim import lr_scheduler

torch = pytest.importorskip("torch")

factors = st.floats(0.05, 1.0)


def _optimizer(lib, kind, lrs=(0.5, 0.05)):
    """An optimizer with two parameter groups, in tinypix or PyTorch."""
    if lib is optim:
        groups = [{"params": [Parameter(tinypix.ones(2))], "lr": lr} for lr in lrs]
    else:
        groups = [{"params": [torch.nn.Parameter(torch.ones(2))], "lr": lr} for lr in lrs]
    if kind == "sgd":
        return lib.SGD(groups, lr=lrs[0], momentum=0.9)
    return lib.Adam(groups, lr=lrs[0], betas=(0.9, 0.99))


def _run(lib, make, steps, kind="sgd", metrics=None):
    """The lrs (and momentum / beta1) after construction and after each of ``steps`` steps."""
    opt = _optimizer(lib, kind)
    sched = make(lib.lr_scheduler, opt)
    trace = []
    for i in range(steps + 1):
        if i:
            opt.step()
            sched.step(*([metrics[i - 1]] if metrics is not None else []))
        momenta = [g["momentum"] if kind == "sgd" else g["betas"][0] for g in opt.param_groups]
        trace.append([g["lr"] for g in opt.param_groups] + list(sched.get_last_lr()) + momenta)
    return np.array(trace, dtype=np.float64)


def _assert_same(make, steps, kind="sgd", metrics=None):
    ours = _run(optim, make, steps, kind, metrics)
    theirs = _run(torch.optim, make, steps, kind, metrics)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-300)


@given(st.lists(st.integers(0, 12), max_size=5), factors)
def test_multistep_lr(milestones, gamma):
    _assert_same(lambda L, o: L.MultiStepLR(o, milestones, gamma), 15)


@given(factors, st.floats(0.0, 2.0))
def test_lambda_and_multiplicative_lr(a, b):
    _assert_same(lambda L, o: L.LambdaLR(o, [lambda e: a ** e, lambda e: 1 / (1 + b * e)]), 12)
    _assert_same(lambda L, o: L.LambdaLR(o, lambda e: a ** e), 6)
    _assert_same(lambda L, o: L.MultiplicativeLR(o, lambda e: a), 8)


@given(factors)
def test_exponential_lr(gamma):
    _assert_same(lambda L, o: L.ExponentialLR(o, gamma), 12)


@given(st.floats(0.01, 1.0), st.floats(0.0, 1.0), st.integers(1, 8))
def test_linear_constant_and_polynomial_lr(start, end, total):
    _assert_same(lambda L, o: L.LinearLR(o, start, end, total), 12)
    _assert_same(lambda L, o: L.ConstantLR(o, max(end, 0.01), total), 12)  # both divide by it
    _assert_same(lambda L, o: L.PolynomialLR(o, total, power=start * 3), 12)


@given(st.integers(2, 40), st.floats(0.05, 0.95), st.sampled_from(["cos", "linear"]), st.booleans(),
       st.booleans(), st.sampled_from(["sgd", "adam"]), st.floats(0.01, 2.0))
def test_one_cycle_lr(total_steps, pct_start, anneal, three_phase, cycle_momentum, kind, max_lr):
    if three_phase:
        # Both libraries divide by zero when the middle phase has no steps; stay clear of that.
        pct_start = max(pct_start, 1.5 / total_steps)
        if float(2 * pct_start * total_steps) - 2 == float(pct_start * total_steps) - 1:
            pct_start += 0.01
    _assert_same(lambda L, o: L.OneCycleLR(o, [max_lr, max_lr / 3], total_steps=total_steps,
                                           pct_start=pct_start, anneal_strategy=anneal,
                                           three_phase=three_phase, cycle_momentum=cycle_momentum,
                                           div_factor=10.0, final_div_factor=50.0), total_steps, kind)


def test_one_cycle_lr_options_and_errors():
    _assert_same(lambda L, o: L.OneCycleLR(o, 1.0, epochs=3, steps_per_epoch=4, base_momentum=[0.8, 0.7],
                                           max_momentum=0.9), 12)
    opt = _optimizer(optim, "sgd")
    sched = lr_scheduler.OneCycleLR(opt, 1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="tried to step 4 times; the schedule has total_steps=3"):
        sched.step()
    with pytest.raises(ValueError, match="give total_steps, or both epochs and steps_per_epoch"):
        lr_scheduler.OneCycleLR(opt, 1.0, epochs=3)
    with pytest.raises(ValueError, match="anneal_strategy must be 'cos' or 'linear'"):
        lr_scheduler.OneCycleLR(opt, 1.0, total_steps=3, anneal_strategy="exp")
    no_momentum = optim.SGD([Parameter(tinypix.ones(1))], lr=0.1)
    lr_scheduler.OneCycleLR(no_momentum, 1.0, total_steps=3)  # SGD has the momentum option
    assert no_momentum.param_groups[0]["max_momentum"] == 0.95
    assert 0.85 <= no_momentum.param_groups[0]["momentum"] <= 0.95


@given(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=30), st.sampled_from(["min", "max"]),
       st.floats(0.05, 0.9), st.integers(0, 4), st.floats(0.0, 0.3), st.sampled_from(["rel", "abs"]),
       st.integers(0, 3), st.sampled_from([0.0, 1e-3, [0.01, 0.0]]), st.sampled_from([1e-8, 1e-2]))
def test_reduce_lr_on_plateau(metrics, mode, factor, patience, threshold, threshold_mode, cooldown,
                              min_lr, eps):
    rounded = [round(m, 1) for m in metrics]  # repeated values: plateaus, the case that matters
    _assert_same(lambda L, o: L.ReduceLROnPlateau(o, mode, factor, patience, threshold, threshold_mode,
                                                  cooldown, min_lr, eps), len(rounded), metrics=rounded)


def test_reduce_lr_on_plateau_takes_a_tensor_and_checks_its_arguments():
    opt = _optimizer(optim, "sgd")
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    sched.step(tinypix.tensor(1.0))
    sched.step(tinypix.tensor(2.0))
    assert sched.get_last_lr() == [0.25, 0.025]
    with pytest.raises(ValueError, match="factor must be < 1.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="min_lr must have one value per parameter group"):
        lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1])


@given(st.integers(1, 6), factors)
def test_sequential_and_chained(warmup, gamma):
    _assert_same(lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=warmup),
                                                 L.ExponentialLR(o, gamma)], milestones=[warmup]), 12)
    _assert_same(lambda L, o: L.SequentialLR(o, [L.ConstantLR(o, 0.5, total_iters=2),
                                                 L.StepLR(o, 2, gamma), L.CosineAnnealingLR(o, 5)],
                                             milestones=[warmup, warmup + 3]), 14)
    _assert_same(lambda L, o: L.ChainedScheduler([L.ConstantLR(o, 0.5, total_iters=warmup),
                                                  L.ExponentialLR(o, gamma)]), 10)


class Halving:
    """A callable object: its attributes are saved by LambdaLR.state_dict (a lambda's cannot be)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, epoch):
        return self.base ** epoch


RESUMABLE = {
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, [2, 5, 5], 0.5),
    "LambdaLR": lambda L, o: L.LambdaLR(o, Halving(0.5)),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, 0.8),
    "LinearLR": lambda L, o: L.LinearLR(o, 0.2, 0.9, 6),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, 1.0, total_steps=12, three_phase=True),
    "SequentialLR": lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=3),
                                                    L.ExponentialLR(o, 0.7)], milestones=[3]),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler([L.ExponentialLR(o, 0.9), L.StepLR(o, 3)]),
}


@pytest.mark.parametrize("name", sorted(RESUMABLE) + ["ReduceLROnPlateau"])
def test_state_dict_resumes_exactly(name):
    """Run 10 steps straight, or 4, save the scheduler and optimizer, restore both into new ones
    and run 6 more: the same lrs. The saved state is plain numbers and lists."""
    metrics = [3.0, 2.0, 2.0, 2.0, 2.5, 1.0, 1.0, 1.0, 1.0, 0.5]
    make = RESUMABLE.get(name, lambda L, o: L.ReduceLROnPlateau(o, patience=1, cooldown=1))
    args = (lambda i: [metrics[i]]) if name == "ReduceLROnPlateau" else (lambda i: [])
    opt = _optimizer(optim, "sgd")
    sched = make(lr_scheduler, opt)
    straight = []
    for i in range(10):
        opt.step()
        sched.step(*args(i))
        straight.append(sched.get_last_lr())
    opt = _optimizer(optim, "sgd")
    sched = make(lr_scheduler, opt)
    resumed = []
    for i in range(4):
        opt.step()
        sched.step(*args(i))
        resumed.append(sched.get_last_lr())
    saved, saved_opt = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in saved
    opt = _optimizer(optim, "sgd")
    sched = make(lr_scheduler, opt)
    opt.load_state_dict(saved_opt)
    sched.load_state_dict(saved)
    for i in range(4, 10):
        opt.step()
        sched.step(*args(i))
        resumed.append(sched.get_last_lr())
    np.testing.assert_array_equal(resumed, straight)


def test_lambda_state_dict_saves_callable_objects_not_functions():
    opt = _optimizer(optim, "sgd")
    sched = lr_scheduler.LambdaLR(opt, [Halving(0.5), lambda e: 1.0])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"base": 0.5}, None]
    state["lr_lambdas"][0]["base"] = 0.25
    sched.load_state_dict(state)
    assert sched.lr_lambdas[0].base == 0.25 and "lr_lambdas" in state
    with pytest.raises(ValueError, match="lr_lambda must have one value per parameter group"):
        lr_scheduler.LambdaLR(opt, [Halving(0.5)])
    assert math.isclose(lr_scheduler.LambdaLR(opt, Halving(0.5)).get_last_lr()[0], 0.5)
