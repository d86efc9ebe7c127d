"""kernels/cpu_relu.py ((leaky) ReLU in one pass on every core) equals the readable NumPy path.

F.leaky_relu runs forward and backward once on the Numba path and once with
TINYPIX_KERNELS=reference, on drawn shapes, dtypes and slopes, with values that include 0,
-0.0, infinities and NaN; output and gradient must be identical, bit for bit where finite.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
import tinypix.nn.functional as F
from tinypix import kernels
from tinypix.kernels import cpu_team

SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30])


def _run(kernel_choice, x, dy, slope):
    with pytest.MonkeyPatch.context() as m:
        m.setenv(kernels.ENV_VAR, kernel_choice)
        tx = tinypix.tensor(x, requires_grad=True)
        y = F.leaky_relu(tx, slope)
        y.backward(tinypix.tensor(dy))
        return y.detach().numpy(), tx.grad.numpy()


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")  # -inf * 0
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4),
       slope=st.sampled_from([0.0, 1e-50, 0.01, 0.2, 1.0, 3.0, -0.5]),  # 1e-50 is 0 in float32
       seed=st.integers(0, 2**32 - 1), share_small_work=st.booleans())
def test_one_pass_relu_matches_readable(dtype, shape, slope, seed, share_small_work):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x.flat[rng.integers(0, x.size, x.size // 3)] = rng.choice(SPECIAL, x.size // 3)
    x, dy = x.astype(dtype), rng.standard_normal(shape).astype(dtype)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_team, "MIN_SHARE", 1 if share_small_work else cpu_team.MIN_SHARE)
        fast = _run("", x, dy, slope)
    for a, b in zip(fast, _run("reference", x, dy, slope)):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)  # NaN where NaN; 0.0 == -0.0


def test_one_pass_relu_takes_a_non_contiguous_input():
    x = np.arange(-12.0, 12.0).reshape(4, 6).T  # a transposed view
    y = F.relu(tinypix.tensor(x)).numpy()
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_only_float32_and_float64_take_the_single_pass(monkeypatch):
    assert "runs cpu_relu" in kernels.explain("leaky_relu", np.zeros(2), 0.0)
    assert "runs cpu_relu" in kernels.explain("leaky_relu", np.zeros(2, np.float32), -0.5)
    assert "runs readable" in kernels.explain("leaky_relu", np.zeros(2, np.float16), 0.0)
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    assert "runs readable" in kernels.explain("leaky_relu", np.zeros(2), 0.0)
