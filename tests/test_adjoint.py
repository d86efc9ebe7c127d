"""tinypix.testing.check_adjoint (the dot-product test) on the lecture's pairs, and
assert_gradients_match's failure reports; examples/test_my_op.py keeps passing."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given

import tinypix
import tinypix.nn.functional as F
from tinypix.autograd import Function
from tinypix.testing import AdjointError, GradcheckError, assert_gradients_match, check_adjoint
from tinypix.testing import strategies as tst

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def f64(*shape, seed=0):
    return tinypix.tensor(np.random.default_rng(seed).standard_normal(shape))


# -- the dot-product test ---------------------------------------------------------------------------
@given(tst.conv_geometries())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(g):
    w = f64(g["F"], g["C"] // g["groups"], *g["kernel_size"])
    out_hw = [tinypix.conv_output_size(n, k, s, p, d) for n, k, s, p, d in
              zip((g["H"], g["W"]), g["kernel_size"], g["stride"], g["padding"], g["dilation"])]
    # The sizes a strided conv2d rounded away, which conv_transpose2d must give back.
    extra = [(n + 2 * p - d * (k - 1) - 1) % s for n, k, s, p, d in
             zip((g["H"], g["W"]), g["kernel_size"], g["stride"], g["padding"], g["dilation"])]
    geometry = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"], groups=g["groups"])
    check_adjoint(lambda x: F.conv2d(x, w, **geometry),
                  lambda y: F.conv_transpose2d(y, w, output_padding=tuple(extra), **geometry),
                  (g["N"], g["C"], g["H"], g["W"]), (g["N"], g["F"], *out_hw))


def test_max_pool_with_fixed_indices_and_max_unpool_are_adjoint():
    N, C, H, W = 2, 3, 6, 8
    _, indices = F.max_pool2d(f64(N, C, H, W, seed=1), 2, return_indices=True)  # fixed once
    n, c = np.arange(N)[:, None, None], np.arange(C)[None, :, None]
    flat = indices.numpy().reshape(N, C, -1)

    def pool(x):  # max-pooling once the winners are known: a gather, which is linear
        return x.reshape(N, C, H * W)[n, c, flat].reshape(N, C, H // 2, W // 2)

    check_adjoint(pool, lambda y: F.max_unpool2d(y, indices, 2, output_size=(H, W)),
                  (N, C, H, W), (N, C, H // 2, W // 2))


def test_average_pooling_and_nearest_upsampling_are_adjoint_up_to_the_window_size():
    check_adjoint(lambda x: F.avg_pool2d(x, 2), lambda y: F.interpolate(y, scale_factor=2) / 4,
                  (1, 2, 6, 4), (1, 2, 3, 2))
    check_adjoint(lambda x: F.interpolate(x, scale_factor=2), lambda y: F.avg_pool2d(y, 2) * 4,
                  (1, 2, 3, 2), (1, 2, 6, 4))


@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_upsampling_backward_is_its_adjoint(align_corners):
    def up(x):
        return F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=align_corners)

    def backward_of_up(y):  # the vector-Jacobian product of a linear map is its transpose
        x = tinypix.zeros(1, 2, 3, 4, dtype=tinypix.float64, requires_grad=True)
        with tinypix.enable_grad():
            (up(x) * y).sum().backward()
        return x.grad

    check_adjoint(up, backward_of_up, (1, 2, 3, 4), (1, 2, 7, 9))


def test_a_wrong_pair_fails():
    w = f64(4, 3, 3, 3)
    with pytest.raises(AdjointError, match=r"<f\(x\), y> = .* but <x, f_t\(y\)> = "):
        check_adjoint(lambda x: F.conv2d(x, w, padding=1),
                      lambda y: F.conv_transpose2d(y, w * 1.01, padding=1), (1, 3, 5, 5), (1, 4, 5, 5))
    with pytest.raises(AdjointError, match="divides by the window size"):
        check_adjoint(lambda x: F.avg_pool2d(x, 2), lambda y: F.interpolate(y, scale_factor=2),
                      (1, 1, 4, 4), (1, 1, 2, 2))
    with pytest.raises(AdjointError, match=r"f_t\(y\) should be a Tensor of shape \(1, 3, 5, 5\)"):
        check_adjoint(lambda x: F.conv2d(x, w), lambda y: F.conv_transpose2d(y, w, stride=2),
                      (1, 3, 5, 5), (1, 4, 3, 3))


# -- readable gradient reports ----------------------------------------------------------------------
class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return 2 * x * dy


def broken(backward):
    return type("Broken", (Square,), {"backward": staticmethod(backward)}).apply


class Product(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        return dy * a, dy * b  # swapped: d(ab)/da is b


@pytest.mark.parametrize("fn, inputs, hint", [
    (broken(lambda ctx, dy: -2 * ctx.saved_tensors[0] * dy), (f64(3, 4),), "sign error"),
    (broken(lambda ctx, dy: ctx.saved_tensors[0] * dy), (f64(3, 4),), "0.5 x numeric everywhere"),
    (broken(lambda ctx, dy: 0 * dy), (f64(3, 4),), "returns zero"),
    (Product.apply, (f64(3, 4, seed=1), f64(3, 4, seed=2)), "wrong order"),
])
def test_failures_name_the_input_the_worst_element_and_a_hint(fn, inputs, hint):
    with pytest.raises(GradcheckError, match=rf"(?s)input 0, shape \(3, 4\): \d+ of 12 elements off; "
                                             rf"worst at \[\d, \d\]: analytic .*Hint: .*{hint}"):
        assert_gradients_match(fn, *inputs)


def test_large_inputs_are_sampled_and_correct_ops_pass():
    assert assert_gradients_match(Square.apply, f64(30, 40)) is True
    with pytest.raises(GradcheckError, match=r"elements off \(of 100 sampled\)"):
        assert_gradients_match(broken(lambda ctx, dy: dy), f64(30, 40), max_elements=100)


def test_the_students_example_file_passes():
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             os.path.join("examples", "test_my_op.py")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "4 passed" in result.stdout
