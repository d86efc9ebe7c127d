"""How to test your own op: property-based gradient checks with hypothesis -- a file to copy.

An op is a ``Function`` with ``forward`` and ``backward`` side by side (see examples/custom_op.py).
A gradient check compares your backward with central finite differences; hypothesis draws the
inputs (many shapes, many values), so the check covers the cases you did not think of -- a
size-1 dimension, a 0-d tensor, broadcasting -- and shrinks a failure to the smallest input
that still fails.

Run:  pytest examples/test_my_op.py            (needs pytest and hypothesis: pip install tinypix[test])

Copy this file, replace the ops by yours, and keep the three kinds of test:
  1. the gradient matches finite differences  (assert_gradients_match, on drawn float64 inputs);
  2. forward agrees with a slower, obviously right version;
  3. a deliberately broken backward is caught -- proof that test 1 can fail.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinypix
from tinypix.autograd import Function, unbroadcast
from tinypix.testing import GradcheckError, assert_gradients_match
from tinypix.testing import strategies as tst

# Each property below runs on 25 drawn examples; more find rarer bugs, fewer run faster.
# deadline=None: the first call can be slow while NumPy warms up, which is not a failure.
SETTINGS = settings(max_examples=25, deadline=None)


class SiLU(Function):
    """y = x * sigmoid(x) ("swish"), a smooth ReLU.  x: any shape -> y: the same shape.

    dy/dx = s + x * s * (1 - s) with s = sigmoid(x), by the product rule.
    """

    @staticmethod
    def forward(ctx, x):
        s = 1 / (1 + np.exp(-x))
        ctx.save_for_backward(x, s)  # keep s: backward needs it, and recomputing costs an exp
        return x * s

    @staticmethod
    def backward(ctx, dy):
        x, s = ctx.saved_tensors
        return dy * (s + x * s * (1 - s))


class Hypot(Function):
    """y = sqrt(a^2 + b^2), with NumPy broadcasting.  a, b: broadcastable shapes -> y: their broadcast.

    dy/da = a / y, dy/db = b / y. Broadcasting copied a smaller input across dimensions, so its
    gradient sums over those copies: that is ``unbroadcast``.
    """

    @staticmethod
    def forward(ctx, a, b):
        y = np.hypot(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, dy):
        a, b, y = ctx.saved_tensors
        return unbroadcast(dy * a / y, a.shape), unbroadcast(dy * b / y, b.shape)


# 1. The gradient matches finite differences, whatever the shape and the values.
@SETTINGS
@given(tst.tensors(shape=tst.shapes(max_dims=3)))
def test_silu_gradient(x):
    assert_gradients_match(SiLU.apply, x)


@SETTINGS
@given(st.data())
def test_hypot_gradient_with_broadcasting(data):
    shape_a, shape_b = data.draw(tst.broadcastable_shapes(max_dims=3, max_side=3))
    a = data.draw(tst.tensors(shape=shape_a))
    b = data.draw(tst.tensors(shape=shape_b))
    # At a = b = 0 the function has a kink (a cone's tip) and no gradient: keep away from it.
    assume(np.all(np.hypot(*np.broadcast_arrays(a.detach().numpy(), b.detach().numpy())) > 0.1))
    assert_gradients_match(Hypot.apply, a, b)


# 2. Forward agrees with the same function composed from tinypix's own ops.
@SETTINGS
@given(tst.tensors(shape=tst.shapes(max_dims=3), requires_grad=False))
def test_silu_forward_matches_composition(x):
    np.testing.assert_allclose(SiLU.apply(x).numpy(), (x * x.sigmoid()).numpy(), rtol=1e-12, atol=1e-12)


# 3. A broken backward must fail the check, with a report that points at the bug.
class SiLUWithoutProductRule(SiLU):
    @staticmethod
    def backward(ctx, dy):
        x, s = ctx.saved_tensors
        return dy * s  # forgot the derivative of the sigmoid factor


def test_a_broken_backward_is_caught():
    x = tinypix.tensor([[-2.0, -0.5, 0.5, 2.0]], dtype=tinypix.float64)
    with pytest.raises(GradcheckError, match="input 0"):
        assert_gradients_match(SiLUWithoutProductRule.apply, x)
