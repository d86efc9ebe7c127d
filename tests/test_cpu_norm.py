"""kernels/cpu_norm.py (training batch norm in fused Numba loops) equals the readable NumPy path.

F.batch_norm (and F.batch_norm_relu) runs forward and backward once on the Numba path and once
with TINYPIX_KERNELS=reference; outputs, the three gradients and the running statistics must
agree, on drawn shapes (with and without spatial dims), dtypes, with or without weight and bias.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
import tinypix.nn.functional as F
from tinypix import kernels

shapes = st.tuples(st.integers(1, 4), st.integers(1, 5)).flatmap(
    lambda nc: st.lists(st.integers(1, 6), max_size=2).map(lambda sp: (*nc, *sp))).filter(
    lambda s: s[0] * int(np.prod(s[2:])) > 1)  # training needs two values per channel


def _run(kernel_choice, x, w, b, dy, affine, relu=False):
    with pytest.MonkeyPatch.context() as m:
        m.setenv(kernels.ENV_VAR, kernel_choice)
        tx = tinypix.tensor(x, requires_grad=True)
        tw, tb = (tinypix.tensor(a, requires_grad=True) for a in (w, b))
        rm, rv = tinypix.zeros(x.shape[1], dtype=x.dtype), tinypix.ones(x.shape[1], dtype=x.dtype)
        norm = F.batch_norm_relu if relu else F.batch_norm
        y = norm(tx, rm, rv, tw if affine else None, tb if affine else None,
                 training=True, momentum=0.3, eps=1e-3)
        (y * tinypix.tensor(dy)).sum().backward()
        grads = (tx.grad, tw.grad, tb.grad) if affine else (tx.grad,)
        return [a.detach().numpy() for a in (y, rm, rv, *grads)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=shapes, affine=st.booleans(), relu=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fused_batch_norm_matches_readable(dtype, shape, affine, relu, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)  # a mean far from 0, as after a conv
    w, b = rng.standard_normal((2, shape[1])).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    for fast, readable in zip(_run("", x, w, b, dy, affine, relu),
                              _run("reference", x, w, b, dy, affine, relu)):
        assert fast.dtype == readable.dtype and fast.shape == readable.shape
        np.testing.assert_allclose(fast, readable, rtol=tol, atol=tol)


@pytest.mark.parametrize("kernel_choice", ["", "reference"])
def test_batch_norm_relu_keeps_nan_and_passes_no_gradient_where_it_clips(kernel_choice):
    x = np.array([[[1.0, 2.0, 4.0, 5.0]], [[np.nan, 0.0, 0.0, 0.0]]], np.float32).transpose(1, 0, 2)
    dy = np.full(x.shape, 2.0, np.float32)       # channel 0 clean, channel 1 with a NaN
    unused = np.ones(2, np.float32)
    y, _, _, dx = _run(kernel_choice, x, unused, unused, dy, affine=False, relu=True)
    assert (y[:, 0] >= 0).all() and (y[:, 0] == 0).sum() == 2  # 1 and 2 are below the mean 3
    assert np.isnan(y[:, 1]).all() and np.isnan(dx[:, 1]).all()
    # the gradient reaches x only through the two kept outputs, but every x moves their mean
    assert np.isfinite(dx[:, 0]).all() and np.abs(dx[:, 0]).max() > 0


def test_only_the_numba_path_fuses(monkeypatch):
    assert kernels.fused_batch_norm(np.zeros((2, 1))) is not None
    assert kernels.fused_batch_norm(np.zeros((2, 1), np.float16)) is None  # NumPy handles it
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    assert kernels.fused_batch_norm(np.zeros((2, 1))) is None
