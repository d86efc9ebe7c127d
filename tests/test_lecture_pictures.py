"""The numbers behind the lecture's pictures (examples/lecture_pictures.py, transpose_conv.py) are
right, and the written-out training loop of examples/from_scratch.py is optim.SGD's."""
import os
import sys
import types

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import tinypix
import tinypix.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import from_scratch  # noqa: E402
import lecture_pictures as lp  # noqa: E402
import transpose_conv as tc  # noqa: E402


# -- 1. unpooling ----------------------------------------------------------------------------------
def test_the_lecture_unpooling_grids():
    g = lp.unpooling()
    assert g["pooled"].tolist() == [[8, 6], [4, 3]]
    assert g["indices"].tolist() == [[5, 2], [12, 11]]             # flat h*4 + w of 8, 6, 4 and 3
    assert g["nearest"].tolist() == [[8, 8, 6, 6], [8, 8, 6, 6], [4, 4, 3, 3], [4, 4, 3, 3]]
    assert g["bed_of_nails"].tolist() == [[8, 0, 6, 0], [0, 0, 0, 0], [4, 0, 3, 0], [0, 0, 0, 0]]
    assert g["max_unpool"].tolist() == [[0, 0, 6, 0], [0, 8, 0, 0], [0, 0, 0, 3], [4, 0, 0, 0]]


@given(half=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_unpooling_puts_values_back_at_each_window_maximum(half, seed):
    side = 2 * half
    x = np.random.default_rng(seed).permutation(side * side).reshape(side, side).astype(np.float32)
    g = lp.unpooling(x)
    windows = x.reshape(half, 2, half, 2).transpose(0, 2, 1, 3).reshape(half, half, 4)
    np.testing.assert_array_equal(g["pooled"], windows.max(-1))
    np.testing.assert_array_equal(g["nearest"], np.kron(g["pooled"], np.ones((2, 2))))
    expected = np.where(x == np.kron(g["pooled"], np.ones((2, 2))), x, 0)   # values are distinct
    np.testing.assert_array_equal(g["max_unpool"], expected)
    np.testing.assert_array_equal(g["bed_of_nails"][::2, ::2], g["pooled"])
    assert g["bed_of_nails"].sum() == g["pooled"].sum()


# -- 2. the conv matrix and its transpose ----------------------------------------------------------
def test_the_lecture_1d_conv_matrix_in_symbols():
    C, T = tc.matrices_1d(4, stride=1, padding=1)
    assert [[tc.taps(v) for v in row] for row in C] == [["y", "z", "", ""], ["x", "y", "z", ""],
                                                         ["", "x", "y", "z"], ["", "", "x", "y"]]
    assert tc.product(C, "abcd") == ["ay+bz", "ax+by+cz", "bx+cy+dz", "cx+dy"]
    C, T = tc.matrices_1d(5, stride=2, padding=1)
    assert tc.product(C, "abcde") == ["ay+bz", "bx+cy+dz", "dx+ey"]
    assert tc.product(T, "abc") == ["ay", "az+bx", "by", "bz+cx", "cy"]   # 3 values -> 5: upsampling
    assert [tc.taps(v) for v in (0, 1, 2, 4, 6, 7)] == ["", "x", "y", "z", "y+z", "x+y+z"]


@given(n=st.integers(1, 9), stride=st.integers(1, 3), padding=st.integers(0, 2))
def test_conv_matrix_is_its_definition_and_conv_transpose_is_its_transpose(n, stride, padding):
    if n + 2 * padding < 3:
        return
    C, T = tc.matrices_1d(n, stride, padding)
    expected = np.zeros(C.shape)
    for o in range(C.shape[0]):
        for i in range(n):
            t = i - (o * stride - padding)                              # the tap that meets pixel i
            if 0 <= t < 3:
                expected[o, i] = tc.BITS[t]
    np.testing.assert_array_equal(C, expected)
    np.testing.assert_array_equal(T, C.T)


# -- 3. transpose-conv tiles -----------------------------------------------------------------------
@given(i=st.integers(0, 3), j=st.integers(0, 3), stride=st.integers(1, 3), value=st.integers(1, 9))
def test_one_input_pixel_lays_a_scaled_copy_of_the_kernel(i, j, stride, value):
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, i, j] = value
    w = tinypix.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = F.conv_transpose2d(tinypix.tensor(x), w, stride=stride).numpy()[0, 0]
    expected = np.zeros_like(y)
    expected[stride * i:stride * i + 3, stride * j:stride * j + 3] = value * w.numpy()[0, 0]
    np.testing.assert_array_equal(y, expected)


def test_tile_overlap_counts_make_a_checkerboard():
    panels = tc.tile_panels(seed=0)
    one, two, counts, even = (p for _, p in panels[:4])
    kernel = np.arange(1.0, 10.0).reshape(3, 3)
    np.testing.assert_array_equal(one[2:5, 2:5], 2 * kernel)
    np.testing.assert_array_equal(two - one, np.pad(kernel, ((2, 4), (4, 2))))     # the neighbour's tile
    axis = np.array([1 + (k % 2 == 0 and 0 < k < 8) for k in range(9)])
    np.testing.assert_array_equal(counts, np.outer(axis, axis))                   # 1, 2, 4: a checkerboard
    assert np.unique(even[2:-2, 2:-2]).tolist() == [4]


# -- 4. receptive fields ---------------------------------------------------------------------------
def test_receptive_fields_from_the_gradient_are_2n_plus_1_and_agree_with_summary():
    cfg = types.SimpleNamespace(stack_depths=(1, 2, 3, 5), rf_input=48)
    rows, maps = lp.receptive_fields(cfg)
    plain, pooled = rows[:4], rows[4:]
    assert [r[3] for r in plain] == [r[4] for r in plain] == [2 * n + 1 for n in (1, 2, 3, 5)]
    assert [r[3] for r in pooled] == [r[4] for r in pooled] == [r[5] for r in pooled] == [5, 6, 14, 16, 32]
    g = maps[0][1]                                            # one 3x3 conv of ones: a 3x3 block of ones
    c = cfg.rf_input // 2
    np.testing.assert_array_equal(g[c - 1:c + 2, c - 1:c + 2], np.ones((3, 3)))
    assert g.sum() == 9


def test_max_pooling_gradient_reaches_only_the_winners():
    """Why the picture pools by averaging: max pooling looks at the same window, but its gradient
    reaches one pixel per window, so the gradient's support would understate the receptive field."""
    model = lp.layer_stack("p", tinypix.nn.MaxPool2d)
    x = tinypix.randn(1, 1, 8, 8, requires_grad=True)
    model(x)[0, 0, 2, 2].backward()
    assert int((x.grad.numpy() != 0).sum()) == 1 and tinypix.receptive_field(model, (1, 8, 8)) == 2


# -- 5. patch windows ------------------------------------------------------------------------------
@given(k=st.sampled_from([1, 3, 5]), size=st.integers(3, 8), seed=st.integers(0, 2 ** 16))
def test_windows_cut_by_conv2d_are_the_padded_patches(k, size, seed):
    image = np.random.default_rng(seed).random((1, 2, size, size)).astype(np.float32)
    cut = lp.windows(tinypix.tensor(image), k).numpy()[0]
    padded = np.pad(image[0], ((0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    for i in range(size):
        for j in range(size):
            np.testing.assert_array_equal(cut[:, i, j].reshape(2, k, k), padded[:, i:i + k, j:j + k])
    # Pixel i is read by the windows centred within k // 2 of it, on each axis.
    r = np.arange(size)
    per_axis = np.minimum(r + k // 2, size - 1) - np.maximum(r - k // 2, 0) + 1
    np.testing.assert_array_equal(lp.reads_per_pixel(size, k), np.outer(per_axis, per_axis))


# -- from_scratch: the written-out loop --------------------------------------------------------------
TINY = types.SimpleNamespace(size=16, base=4, depth=1, batch=4, lr=0.3, check_epochs=2)


def test_written_out_sgd_step_gives_optim_sgd_weights_bit_for_bit():
    images, masks = from_scratch.load(8, TINY.size, seed=0)
    initial = from_scratch.make_model(TINY, 3).state_dict()
    worst, trained, steps = from_scratch.same_as_sgd(TINY, images, masks, seed=3)
    assert (worst, steps) == (0.0, 4)
    assert all(not np.array_equal(initial[k].numpy(), v.numpy()) for k, v in trained.items()
               if "num_batches" not in k)                    # every tensor moved: the equality says something


def test_a_different_step_gives_different_weights():
    images, masks = from_scratch.load(8, TINY.size, seed=0)
    a, b = from_scratch.make_model(TINY, 1), from_scratch.make_model(TINY, 1)
    from_scratch.train(a, images, masks, 1, TINY.batch, TINY.lr, seed=1)
    from_scratch.train(b, images, masks, 1, TINY.batch, TINY.lr, seed=1,
                       optimizer=tinypix.optim.SGD(b.parameters(), lr=TINY.lr * (1 + 1e-3)))
    other = b.state_dict()
    assert any(not np.array_equal(v.numpy(), other[k].numpy()) for k, v in a.state_dict().items())


def test_written_out_loop_learns_beyond_all_background():
    """The lesson, fast: 8 epochs on 64 scenes of 16x16. Over seeds 0-3 this scored held-out mIoU
    0.29-0.32 against 0.19 for all-background (gain 0.10-0.13); the margin asked is 0.06."""
    cfg = types.SimpleNamespace(size=16, base=8, depth=2)
    images, masks = from_scratch.load(64, cfg.size, seed=0)
    test_images, test_masks = from_scratch.load(40, cfg.size, seed=1000)
    model = from_scratch.make_model(cfg, 0)
    losses = from_scratch.train(model, images, masks, epochs=8, batch_size=8, lr=0.3, seed=0)
    _, miou, _ = from_scratch.evaluate(model, test_images, test_masks)
    base, _ = from_scratch.all_background(test_masks.numpy())
    assert losses[-1] < 0.7 * losses[0]
    assert miou > base + 0.06, (miou, base)
