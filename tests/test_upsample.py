"""interpolate: nearest and bilinear (both align_corners), up and down, sizes and scale factors."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinypix
import tinypix.functional as F
from tinypix.testing import gradcheck

seeds = st.integers(0, 2**32 - 1)
shapes = st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 6), st.integers(1, 6))
sizes = st.tuples(st.integers(1, 9), st.integers(1, 9))
# Integer and non-integer factors, up and down.
factors = st.one_of(st.sampled_from([2, 3, 0.5, 1.5, 1.7, 2.25, 0.75]),
                    st.tuples(st.sampled_from([1, 2, 1.3, 2.5]), st.sampled_from([0.8, 1.5, 3])))
modes = st.sampled_from([("nearest", None), ("bilinear", True), ("bilinear", False), ("bilinear", None)])


@st.composite
def resizes(draw):
    """x shape and interpolate's keyword arguments: a size or a scale factor, a mode."""
    shape = draw(shapes)
    mode, align_corners = draw(modes)
    kw = {"mode": mode, "align_corners": align_corners}
    if draw(st.booleans()):
        kw["size"] = draw(sizes)
    else:
        kw["scale_factor"] = factor = draw(factors)
        pair = factor if isinstance(factor, tuple) else (factor, factor)
        assume(all(n * f >= 1 for n, f in zip(shape[2:], pair)))
    return shape, kw


def _t(a, grad=True):
    return tinypix.tensor(a, requires_grad=grad)


@given(resizes(), seeds)
def test_interpolate_gradcheck(resize, seed):
    shape, kw = resize
    x = np.random.default_rng(seed).standard_normal(shape)
    assert gradcheck(lambda x: F.interpolate(x, **kw), (_t(x),))


@given(resizes(), seeds)
def test_interpolate_matches_torch(resize, seed):
    torch = pytest.importorskip("torch")
    shape, kw = resize
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    a, ta = _t(x), torch.tensor(x, requires_grad=True)
    y, ty = F.interpolate(a, **kw), torch.nn.functional.interpolate(ta, **kw)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-6, rtol=1e-6)
    dy = rng.standard_normal(y.shape)
    y.backward(tinypix.tensor(dy))
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("in_size, out_size", [(6, 9), (3, 5), (7, 3), (5, 10), (10, 5), (4, 4)])
def test_nearest_source_index_matches_torch_on_exact_ratios(in_size, out_size):
    """PyTorch computes src = floor(dst * in/out) in float32; ratios like 6 -> 9 hit exact integers."""
    torch = pytest.importorskip("torch")
    ramp = torch.arange(float(in_size)).reshape(1, 1, 1, in_size)
    expected = torch.nn.functional.interpolate(ramp, size=(1, out_size)).reshape(-1).long().tolist()
    assert F.upsample.nearest_source_index(in_size, out_size).tolist() == expected


def test_lecture_nearest_unpooling():
    """2x nearest-neighbor unpooling of [[8, 6], [4, 3]] copies each value into a 2x2 block."""
    x = tinypix.tensor([[[[8.0, 6.0], [4.0, 3.0]]]], requires_grad=True)
    y = F.interpolate(x, scale_factor=2)
    assert y.tolist() == [[[[8, 8, 6, 6], [8, 8, 6, 6], [4, 4, 3, 3], [4, 4, 3, 3]]]]
    y.sum().backward()
    assert x.grad.tolist() == [[[[4, 4], [4, 4]]]]  # each input fed four outputs


def test_bilinear_align_corners_keeps_the_corners():
    x = tinypix.tensor([[[[0.0, 3.0], [6.0, 9.0]]]])
    y = F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(y.data[0, 0], [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]], atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------
def test_size_and_scale_factor_both_or_neither():
    x = tinypix.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"interpolate: give exactly one of size and scale_factor, "
                                         r"got both \(size=\(8, 8\), scale_factor=2\)"):
        F.interpolate(x, size=(8, 8), scale_factor=2)
    with pytest.raises(ValueError, match=r"interpolate: give exactly one of size and scale_factor, got neither"):
        F.interpolate(x)


def test_align_corners_with_nearest():
    with pytest.raises(ValueError, match=r"interpolate: align_corners=True only applies to mode='bilinear'"):
        F.interpolate(tinypix.randn(1, 1, 4, 4), scale_factor=2, align_corners=True)


def test_non_positive_output_size():
    x = tinypix.randn(1, 1, 3, 4)
    with pytest.raises(ValueError, match=r"interpolate: scale_factor 0.25 turns the 3x4 input into "
                                         r"0x1; the output needs at least one pixel"):
        F.interpolate(x, scale_factor=0.25)
    with pytest.raises(ValueError, match=r"interpolate: size must be at least 1, got \(0, 5\)"):
        F.interpolate(x, size=(0, 5))
    with pytest.raises(ValueError, match=r"interpolate: scale_factor must be a positive number"):
        F.interpolate(x, scale_factor=-2)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match=r"interpolate: mode 'bicubic' is not supported"):
        F.interpolate(tinypix.randn(1, 1, 4, 4), scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"interpolate: expected a 4-D input .* got shape \(1, 4, 4\)"):
        F.interpolate(tinypix.randn(1, 4, 4), scale_factor=2)
