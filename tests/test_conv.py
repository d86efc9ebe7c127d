"""conv2d, conv_transpose2d and conv_matrix: gradients, PyTorch, the adjoint pair, the lecture."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinypix
import tinypix.functional as F
from tinypix.testing import gradcheck
from tinypix.testing.strategies import conv_geometries

small = conv_geometries(max_size=7, max_channels=4)
small_t = conv_geometries(max_size=6, max_channels=4, transpose=True)
seeds = st.integers(0, 2**32 - 1)


def _t(a, grad=True):
    return tinypix.tensor(a, requires_grad=grad)


def _conv_args(g, rng, transpose=False):
    """x: (N, C, H, W), w in the op's layout, b: (out channels,), and the keyword geometry."""
    (kh, kw), G = g["kernel_size"], g["groups"]
    x = rng.standard_normal((g["N"], g["C"], g["H"], g["W"]))
    w_shape = (g["C"], g["F"] // G, kh, kw) if transpose else (g["F"], g["C"] // G, kh, kw)
    kw_args = {k: g[k] for k in ("stride", "padding", "dilation", "groups")}
    if transpose:
        kw_args["output_padding"] = g["output_padding"]
    return x, rng.standard_normal(w_shape), rng.standard_normal(g["F"]), kw_args


def _transpose_output_hw(g):
    return tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in
                 zip((g["H"], g["W"]), g["stride"], g["padding"], g["dilation"], g["kernel_size"],
                     g["output_padding"]))


def _adjoint_output_padding(g):
    """The output_padding that makes conv_transpose2d map conv2d's output size back to (H, W)."""
    return tuple((n + 2 * p - d * (k - 1) - 1) % s for n, s, p, d, k in
                 zip((g["H"], g["W"]), g["stride"], g["padding"], g["dilation"], g["kernel_size"]))


# -- gradients ---------------------------------------------------------------------------------
@given(small, seeds)
def test_conv2d_gradcheck(g, seed):
    x, w, b, kw = _conv_args(g, np.random.default_rng(seed))
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), (_t(x), _t(w), _t(b)))


@given(small_t, seeds)
def test_conv_transpose2d_gradcheck(g, seed):
    assume(min(_transpose_output_hw(g)) >= 1)
    x, w, b, kw = _conv_args(g, np.random.default_rng(seed), transpose=True)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), (_t(x), _t(w), _t(b)))


def test_gradients_keep_float32():
    x = tinypix.randn(2, 3, 5, 5, requires_grad=True)
    w = tinypix.randn(4, 3, 3, 3, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == np.float32


def test_no_weight_grad_keeps_no_input():
    x = tinypix.randn(1, 2, 5, 5, requires_grad=True)
    w = tinypix.randn(3, 2, 3, 3)
    y = F.conv2d(x, w)
    assert y.grad_fn.saved_tensors[1] is None  # x is only kept for the weight gradient
    y.sum().backward()
    assert x.grad.shape == x.shape and w.grad is None


# -- PyTorch -----------------------------------------------------------------------------------
def _compare_with_torch(op, torch_op, x, w, b, kw, rng):
    torch = pytest.importorskip("torch")
    xs, ts = [_t(a) for a in (x, w, b)], [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y, ty = op(*xs, **kw), torch_op(*ts, **kw)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-6, rtol=1e-6)
    dy = rng.standard_normal(y.shape)
    y.backward(tinypix.tensor(dy))
    ty.backward(torch.tensor(dy))
    for a, ta in zip(xs, ts):
        np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), atol=1e-6, rtol=1e-6)


@given(small, seeds)
def test_conv2d_matches_torch(g, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    _compare_with_torch(F.conv2d, torch.nn.functional.conv2d, *_conv_args(g, rng), rng)


@given(small_t, seeds)
def test_conv_transpose2d_matches_torch(g, seed):
    torch = pytest.importorskip("torch")
    assume(min(_transpose_output_hw(g)) >= 1)
    rng = np.random.default_rng(seed)
    _compare_with_torch(F.conv_transpose2d, torch.nn.functional.conv_transpose2d,
                        *_conv_args(g, rng, transpose=True), rng)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's note about its own copy
@given(conv_geometries(max_size=7, max_channels=4, max_stride=1), st.sampled_from(["same", "valid"]),
       seeds)
def test_string_padding_gradcheck_and_torch(g, padding, seed):
    """padding='same' keeps H x W (an odd total padding puts the extra pixel bottom / right, as
    PyTorch does); 'valid' is no padding."""
    rng = np.random.default_rng(seed)
    x, w, b, kw = _conv_args(g, rng)
    kw["padding"] = padding
    if padding == "valid":
        assume(all(d * (k - 1) < n for n, d, k in zip((g["H"], g["W"]), g["dilation"], g["kernel_size"])))
    y = F.conv2d(_t(x), _t(w), _t(b), **kw)
    if padding == "same":
        assert y.shape[2:] == x.shape[2:]
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), (_t(x), _t(w), _t(b)))
    torch = pytest.importorskip("torch")
    _compare_with_torch(F.conv2d, torch.nn.functional.conv2d, x, w, b, kw, rng)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding, kernel_size, dilation", [(1, 3, 1), ((2, 1), (3, 2), 1),
                                                           ("same", (4, 3), 1), ("same", 3, 2),
                                                           ("valid", 2, 1)])
def test_conv2d_layer_padding_modes_match_pytorch(padding_mode, padding, kernel_size, dilation):
    torch = pytest.importorskip("torch")
    args = (3, 4, kernel_size)
    kwargs = dict(padding=padding, dilation=dilation, padding_mode=padding_mode)
    ours, theirs = tinypix.nn.Conv2d(*args, **kwargs).double(), torch.nn.Conv2d(*args, **kwargs).double()
    ours.load_state_dict(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    xs = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
    x, xt = _t(xs), torch.tensor(xs, requires_grad=True)
    y, yt = ours(x), theirs(xt)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(tinypix.tensor(dy))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10)


def test_string_padding_and_padding_mode_errors():
    x, w = tinypix.randn(1, 2, 5, 5), tinypix.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: padding='same' is not supported for strided "
                                         r"convolutions \(stride \(2, 1\)\)"):
        F.conv2d(x, w, stride=(2, 1), padding="same")
    with pytest.raises(ValueError, match="conv2d: padding must be 'valid', 'same', an int or a pair"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="Conv2d: padding='same' is not supported for strided"):
        tinypix.nn.Conv2d(2, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Conv2d: padding_mode must be one of"):
        tinypix.nn.Conv2d(2, 3, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="ConvTranspose2d: only padding_mode='zeros'"):
        tinypix.nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect")
    conv = tinypix.nn.Conv2d(2, 3, 3, device="cpu", dtype=tinypix.float64)
    assert conv.weight.dtype == conv.bias.dtype == np.float64


# -- the adjoint pair and the matrix ------------------------------------------------------------
@given(conv_geometries(max_size=9, max_channels=4), seeds)
def test_conv_transpose_is_the_adjoint_of_conv(g, seed):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for every x and y."""
    rng = np.random.default_rng(seed)
    x, w, _, kw = _conv_args(g, rng)
    with tinypix.no_grad():
        y_shape = F.conv2d(_t(x), _t(w), **kw).shape
        y = rng.standard_normal(y_shape)
        lhs = float((F.conv2d(_t(x), _t(w), **kw).data * y).sum())
        back = F.conv_transpose2d(_t(y), _t(w), output_padding=_adjoint_output_padding(g), **kw)
    assert back.shape == x.shape
    rhs = float((x * back.data).sum())
    scale = float(np.abs(x * back.data).sum())  # relative to the size of the terms summed
    assert abs(lhs - rhs) <= 1e-10 * scale


@given(conv_geometries(max_batch=1, max_size=6, max_channels=3), seeds)
def test_conv_matrix_reproduces_conv_and_its_transpose(g, seed):
    rng = np.random.default_rng(seed)
    x, w, _, kw = _conv_args(g, rng)
    C = F.conv_matrix(_t(w, grad=False), x.shape[1:], **kw)
    with tinypix.no_grad():
        y = F.conv2d(_t(x), _t(w), **kw)
        np.testing.assert_allclose((C @ _t(x[0]).flatten()).data, y.data.ravel(), atol=1e-12)
        u = rng.standard_normal(y.shape)
        back = F.conv_transpose2d(_t(u), _t(w), output_padding=_adjoint_output_padding(g), **kw)
    np.testing.assert_allclose(C.data.T @ u.ravel(), back.data.ravel(), atol=1e-12)


def test_lecture_1d_example():
    """Pixels a b c d, filter x y z: the padded convolution and the transpose of the unpadded one."""
    a, b, c, d = 2.0, 3.0, 5.0, 7.0
    x, y, z = 11.0, 13.0, 17.0
    w = tinypix.tensor([[[[x, y, z]]]], dtype=np.float64)
    pixels = tinypix.tensor([[[[a, b, c, d]]]], dtype=np.float64)

    padded = F.conv2d(pixels, w, padding=(0, 1))
    expected = [a * y + b * z, a * x + b * y + c * z, b * x + c * y + d * z, c * x + d * y]
    np.testing.assert_allclose(padded.data.ravel(), expected)
    C = F.conv_matrix(w, (1, 1, 4), padding=(0, 1))
    np.testing.assert_allclose(C.data, [[y, z, 0, 0], [x, y, z, 0], [0, x, y, z], [0, 0, x, y]])

    tiles = [a * x, a * y + b * x, a * z + b * y + c * x, b * z + c * y + d * x, c * z + d * y, d * z]
    np.testing.assert_allclose(F.conv_transpose2d(pixels, w).data.ravel(), tiles)
    C6 = F.conv_matrix(w, (1, 1, 6))  # the unpadded convolution: six values to four
    assert C6.shape == (4, 6)
    np.testing.assert_allclose(C6.data.T @ np.array([a, b, c, d]), tiles)


# -- kernels: the readable path gives the same answers -------------------------------------------
def test_reference_kernels_match_the_default_path(monkeypatch):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    dy = rng.standard_normal((2, 6, 5, 3))

    def run():
        xs = [_t(a) for a in (x, w, b)]
        y = F.conv2d(*xs, stride=2, padding=1, dilation=(1, 2), groups=2)
        y.backward(tinypix.tensor(dy))
        return [y.data] + [a.grad.data for a in xs]

    monkeypatch.delenv("TINYPIX_KERNELS", raising=False)
    fast = run()
    monkeypatch.setenv("TINYPIX_KERNELS", "reference")
    slow = run()
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(f, s, atol=1e-12)


@pytest.mark.parametrize("kernels", ["reference", ""])
@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_an_empty_batch(monkeypatch, kernels, op):
    """An empty batch gives an empty output, an empty input gradient and zero weight and bias
    gradients, on both paths (as in PyTorch)."""
    monkeypatch.setenv("TINYPIX_KERNELS", kernels)
    x, w, b = _t(np.zeros((0, 4, 6, 5))), _t(np.ones((4, 2, 3, 3))), _t(np.ones(4))
    y = getattr(F, op)(x, w, b, padding=1, groups=2)
    assert y.shape[0] == 0 and y.shape[1] == b.shape[0]
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert w.grad.shape == w.shape and not w.grad.data.any() and not b.grad.data.any()


# -- bad input ---------------------------------------------------------------------------------
def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"conv2d: the 5x5 kernel .* larger than the padded input 4x4"):
        F.conv2d(tinypix.randn(1, 1, 2, 2), tinypix.randn(1, 1, 5, 5), padding=1)
    with pytest.raises(ValueError, match=r"spans 5x1\) is larger than the padded input 3x3"):
        F.conv2d(tinypix.randn(1, 1, 3, 3), tinypix.randn(1, 1, 3, 1), dilation=2)


def test_non_positive_output_size():
    with pytest.raises(ValueError, match=r"conv_transpose2d: output size would be 0x0 for input 1x1"):
        F.conv_transpose2d(tinypix.randn(1, 1, 1, 1), tinypix.randn(1, 1, 2, 2), padding=1)


def test_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=r"conv2d: input channels 3 are not divisible by groups=2"):
        F.conv2d(tinypix.randn(1, 3, 5, 5), tinypix.randn(4, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: output channels 3 .* not divisible by groups=2"):
        F.conv2d(tinypix.randn(1, 4, 5, 5), tinypix.randn(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: input channels 5 are not divisible by groups=2"):
        F.conv_transpose2d(tinypix.randn(1, 5, 5, 5), tinypix.randn(5, 1, 3, 3), groups=2)


def test_weight_of_the_wrong_rank_or_size():
    with pytest.raises(ValueError, match=r"conv2d: weight must be a 4-D tensor of shape "
                                         r"\(F, C/groups, kh, kw\), got shape \(4, 3, 3\)"):
        F.conv2d(tinypix.randn(1, 3, 5, 5), tinypix.randn(4, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels but a weight of shape "
                                         r"\(4, 2, 3, 3\) .* expects 2"):
        F.conv2d(tinypix.randn(1, 3, 5, 5), tinypix.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels .* expects 4"):
        F.conv_transpose2d(tinypix.randn(1, 3, 5, 5), tinypix.randn(4, 2, 3, 3))


def test_other_bad_arguments():
    x, w = tinypix.randn(1, 3, 5, 5), tinypix.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-D input .* got shape \(3, 5, 5\); "
                                         r"add a batch dimension"):
        F.conv2d(tinypix.randn(3, 5, 5), w)
    with pytest.raises(ValueError, match=r"conv2d: stride must be at least 1, got 0"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(TypeError, match=r"conv2d: padding must be an int or a pair of ints"):
        F.conv2d(x, w, padding=(1, 1, 1))
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(4,\)"):
        F.conv2d(x, w, tinypix.randn(3))
    with pytest.raises(TypeError, match=r"conv2d: input has dtype float32 but weight has dtype float64"):
        F.conv2d(x, w.double())
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2, 2\) must be smaller "
                                         r"than stride \(2, 2\) or dilation \(1, 1\)"):
        F.conv_transpose2d(x, tinypix.randn(3, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_matrix: input_shape must be \(C, H, W\)"):
        F.conv_matrix(w, (5, 5))
