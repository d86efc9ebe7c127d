"""kernels/cpu_norm.py (training batch norm in fused Numba loops) equals the readable NumPy path.

F.batch_norm runs forward and backward once on the Numba path and once with
TINYPIX_KERNELS=reference; outputs, the three gradients and the running statistics must
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


def _run(kernel_choice, x, w, b, dy, affine):
    with pytest.MonkeyPatch.context() as m:
        m.setenv(kernels.ENV_VAR, kernel_choice)
        tx = tinypix.tensor(x, requires_grad=True)
        tw, tb = (tinypix.tensor(a, requires_grad=True) for a in (w, b))
        rm, rv = tinypix.zeros(x.shape[1], dtype=x.dtype), tinypix.ones(x.shape[1], dtype=x.dtype)
        y = F.batch_norm(tx, rm, rv, tw if affine else None, tb if affine else None,
                         training=True, momentum=0.3, eps=1e-3)
        (y * tinypix.tensor(dy)).sum().backward()
        grads = (tx.grad, tw.grad, tb.grad) if affine else (tx.grad,)
        return [a.detach().numpy() for a in (y, rm, rv, *grads)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=shapes, affine=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fused_batch_norm_matches_readable(dtype, shape, affine, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)  # a mean far from 0, as after a conv
    w, b = rng.standard_normal((2, shape[1])).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    for fast, readable in zip(_run("", x, w, b, dy, affine), _run("reference", x, w, b, dy, affine)):
        assert fast.dtype == readable.dtype and fast.shape == readable.shape
        np.testing.assert_allclose(fast, readable, rtol=tol, atol=tol)


def test_only_float32_and_float64_take_the_fused_loops(monkeypatch):
    x, w = np.zeros((2, 1)), np.ones(1)
    assert "runs cpu_norm" in kernels.explain("batch_norm", x, w, w, 1e-5)
    assert "runs readable" in kernels.explain("batch_norm", x.astype(np.float16), w, w, 1e-5)
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    assert "runs readable" in kernels.explain("batch_norm", x, w, w, 1e-5)
