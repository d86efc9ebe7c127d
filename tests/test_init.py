"""nn.init: the formulas, the fans, the seeding, and the layers' default initialization."""
import math

import numpy as np
import pytest

import tinypix
import tinypix.nn as nn
from tinypix.nn import init


def test_kaiming_std_on_a_large_tensor():
    w = tinypix.empty(512, 256, 3, 3)
    init.kaiming_normal_(w, nonlinearity="relu")
    fan_in = 256 * 9
    assert abs(w.numpy().std() / math.sqrt(2 / fan_in) - 1) < 0.03
    assert abs(w.numpy().mean()) < 0.01 * math.sqrt(2 / fan_in)


def test_default_init_of_conv_transpose_conv_and_linear_is_kaiming_for_relu():
    tinypix.manual_seed(0)
    cases = [(nn.Conv2d(64, 256, 3), 64 * 9), (nn.Linear(2048, 512), 2048),
             # ConvTranspose2d stores (C, F/groups, kh, kw): fan_in is dim 1 * kh * kw, as in PyTorch
             (nn.ConvTranspose2d(256, 64, 4, groups=2), 32 * 16)]
    for layer, fan_in in cases:
        std = layer.weight.detach().numpy().std()
        assert abs(std / math.sqrt(2 / fan_in) - 1) < 0.03, type(layer).__name__
        assert (layer.bias.detach().numpy() == 0).all()


@pytest.mark.parametrize("fn, mode, expected_var", [
    (init.kaiming_uniform_, "fan_out", lambda fi, fo: 2 / fo),
    (init.kaiming_normal_, "fan_out", lambda fi, fo: 2 / fo),
    (init.xavier_uniform_, None, lambda fi, fo: 2 / (fi + fo)),
    (init.xavier_normal_, None, lambda fi, fo: 2 / (fi + fo)),
])
def test_variance_formulas(fn, mode, expected_var):
    w = tinypix.empty(300, 200, 3, 3)
    if mode:
        fn(w, mode=mode, nonlinearity="relu")
    else:
        fn(w)
    fan_in, fan_out = 200 * 9, 300 * 9
    assert abs(w.numpy().var() / expected_var(fan_in, fan_out) - 1) < 0.03


def test_uniform_bounds_constant_and_in_place_on_parameters():
    p = nn.Parameter(tinypix.empty(1000))
    assert init.uniform_(p, -2, 3) is p
    assert p.detach().numpy().min() >= -2 and p.detach().numpy().max() < 3
    init.constant_(p, 0.5)
    assert (p.detach().numpy() == 0.5).all()
    assert (init.ones_(p).detach().numpy() == 1).all() and (init.zeros_(p).detach().numpy() == 0).all()
    w = tinypix.empty(40, 60, dtype=tinypix.float64)
    init.normal_(w, mean=3.0, std=0.5)
    assert w.dtype == np.float64 and abs(w.numpy().mean() - 3) < 0.05


def test_seed_makes_init_repeatable():
    tinypix.manual_seed(7)
    a = nn.Conv2d(3, 4, 3).weight.detach().numpy().copy()
    tinypix.manual_seed(7)
    b = nn.Conv2d(3, 4, 3).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def test_calculate_gain_matches_pytorch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
    with pytest.raises(ValueError, match="unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match=r"at least 2 dims, got shape \(5,\)"):
        init.kaiming_normal_(tinypix.empty(5))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(tinypix.empty(5, 5), mode="fan")
