"""The boat-or-car scenes: formats, determinism, labels that only context can tell, and the ceiling."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinypix.data.context import BACKGROUND, BOAT, CAR, ContextScenes, context_ceiling, decided, render_context_scene


@pytest.fixture(scope="module")
def scenes():
    return ContextScenes(60, size=32, seed=5)


def test_sample_format(scenes):
    for s in scenes:
        assert set(s) == {"image", "mask"}
        assert s["image"].dtype == np.float32 and s["image"].shape == (3, 32, 32)
        assert s["mask"].dtype == np.int64 and s["mask"].shape == (32, 32)
        assert 0 <= s["image"].min() and s["image"].max() <= 1
        labels = set(np.unique(s["mask"]))
        assert labels in ({BACKGROUND, BOAT}, {BACKGROUND, CAR})  # one object, some surface always shows
    assert ContextScenes.classes == ("background", "boat", "car") and ContextScenes.num_classes == 3


def test_object_is_one_rectangle_within_the_side_limits(scenes):
    for s in scenes:
        rows, cols = np.nonzero(s["mask"])
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h * w == rows.size  # the object fills its bounding box
        assert round(0.25 * 32) <= min(h, w) and max(h, w) <= round(0.9 * 32)


def test_sample_depends_only_on_seed_and_index():
    late = ContextScenes(40, size=24, seed=2)
    late[30], late[3]
    alone = ContextScenes(3, size=24, seed=2)[2]
    for k in alone:
        np.testing.assert_array_equal(late[2][k], alone[k])
    assert not np.array_equal(ContextScenes(3, size=24, seed=3)[2]["image"], alone["image"])


def test_indexing_cache_and_transform():
    ds = ContextScenes(4, size=16)
    assert len(ds) == 4 and ds[0]["image"] is ds[0]["image"]
    np.testing.assert_array_equal(ds[-1]["mask"], ds[3]["mask"])
    with pytest.raises(IndexError, match="out of range for 4 scenes"):
        ds[4]
    with pytest.raises(ValueError):
        ds[0]["mask"][0, 0] = 1
    flipped = ContextScenes(4, size=16, transform=lambda s: {k: a[..., ::-1] for k, a in s.items()})
    np.testing.assert_array_equal(flipped[1]["mask"], ds[1]["mask"][:, ::-1])
    images, masks = ds.arrays()
    assert images.shape == (4, 3, 16, 16) and masks.shape == (4, 16, 16)


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=3), "size must be at least 4"),
    (dict(min_side=0.0), "0 < min_side <= max_side <= 1"),
    (dict(min_side=0.6, max_side=0.5), "0 < min_side <= max_side <= 1"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ContextScenes(2, **kwargs)


def test_the_object_alone_does_not_tell_boat_from_car():
    for i in range(20):
        water, boat = render_context_scene(np.random.default_rng(i), 24, surface="water")
        road, car = render_context_scene(np.random.default_rng(i), 24, surface="road")
        obj = boat > 0
        np.testing.assert_array_equal(obj, car > 0)
        assert set(np.unique(boat[obj])) == {BOAT} and set(np.unique(car[obj])) == {CAR}
        np.testing.assert_array_equal(water[:, obj], road[:, obj])  # the same pixels, another label
        assert not np.allclose(water[:, ~obj], road[:, ~obj])
    with pytest.raises(ValueError, match="surface must be"):
        render_context_scene(np.random.default_rng(0), 24, surface="sand")


def test_boats_and_cars_are_equally_common_and_alike():
    masks = ContextScenes(400, size=16, seed=1).arrays()[1]
    kinds = masks.max(axis=(1, 2))
    assert 0.4 < np.mean(kinds == BOAT) < 0.6
    sizes = (masks > 0).sum(axis=(1, 2))
    assert abs(sizes[kinds == BOAT].mean() - sizes[kinds == CAR].mean()) < 0.15 * sizes.mean()


def test_every_pixel_says_by_its_colour_what_it_shows(scenes):
    # The ceiling assumes a pixel's own colour tells object, water and road apart.
    for s in scenes:
        r, g, b = s["image"].astype(np.float64)
        thing = np.where(r - b > 0.35, 1, np.where(b - r > 0.25, 2, 3))  # object, water, road
        kind = s["mask"].max()
        truth = np.where(s["mask"] > 0, 1, 2 if kind == BOAT else 3)
        np.testing.assert_array_equal(thing, truth)


def brute_force_decided(mask, window):
    H, W = mask.shape
    r = window // 2
    out = np.zeros_like(mask, dtype=bool)
    for i in range(H):
        for j in range(W):
            view = mask[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            out[i, j] = (view == BACKGROUND).any()
    return out


@given(hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=9), elements=st.integers(0, 2)),
       st.integers(0, 5))
def test_decided_matches_a_window_by_window_search(mask, half):
    window = 2 * half + 1
    np.testing.assert_array_equal(decided(mask, window), brute_force_decided(mask, window))
    batch = np.stack([mask, np.flip(mask)])
    np.testing.assert_array_equal(decided(batch, window)[1], brute_force_decided(np.flip(mask), window))


@pytest.mark.parametrize("window", [0, 4, -3, 2.0])
def test_decided_wants_an_odd_positive_int(window):
    with pytest.raises(ValueError, match="odd positive int"):
        decided(np.zeros((4, 4), np.int64), window)


def test_ceiling_by_hand():
    # A 3 x 3 boat in a 5 x 5 scene. With a 1 x 1 view, the 9 boat pixels see only object texture:
    # a fair coin calls half of them boat, half car. With 3 x 3 only the centre must be guessed.
    mask = np.zeros((5, 5), np.int64)
    mask[1:4, 1:4] = BOAT
    one = context_ceiling(mask, 1)
    np.testing.assert_allclose(one.iou(), [1, 4.5 / 9, 0])
    np.testing.assert_allclose(one.pixel_accuracy(), (16 + 4.5) / 25)
    three = context_ceiling(mask, 3)
    np.testing.assert_allclose(three.iou(), [1, 8.5 / 9, 0])
    np.testing.assert_allclose(context_ceiling(mask, 5).iou(), [1, 1, np.nan])


def test_ceiling_grows_with_the_window_and_reaches_one_for_the_whole_picture(scenes):
    masks = scenes.arrays()[1]
    ceilings = [context_ceiling(masks, k).miou() for k in (1, 5, 13, 29, 63)]
    assert ceilings[0] < ceilings[1] < ceilings[2] < ceilings[3] <= ceilings[4]
    assert ceilings[-1] == 1.0  # some surface always shows, so the whole picture decides every pixel
    assert ceilings[1] < 0.75 and ceilings[3] > 0.97  # the design: context up to 29 px matters
    # A bigger picture of the same scenes needs more context for the same ceiling.
    big = ContextScenes(60, size=64, seed=5).arrays()[1]
    assert context_ceiling(big, 29).miou() < ceilings[3] - 0.03
