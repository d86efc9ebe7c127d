"""Joint transforms: one random draw moves the image and every label the same way."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinypix.data import Box, Ground, random_scene, render_scene
from tinypix.data import transforms as T


def rng(seed=0):
    return np.random.default_rng(seed)


def derived_sample(H, W, seed=0):
    """A sample whose labels are functions of its image, so any misalignment shows."""
    image = rng(seed).random((3, H, W), dtype=np.float32)
    normals = image - 0.5
    return {
        "image": image,
        "mask": (image[0] > 0.5).astype(np.int64) + 2 * (image[1] > 0.5),
        "depth": 1 + image[2],
        "normals": normals / np.linalg.norm(normals, axis=0),
        "depth_valid": image[2] > 0.2,
    }


def ramp_sample(H, W):
    """Image channel 0 is the column and channel 1 the row (scaled to [0, 1]); the mask holds the
    column and the depth the row (+1): resampling keeps these relations only if it keeps alignment."""
    rows, cols = np.mgrid[0:H, 0:W].astype(np.float32)
    image = np.stack([cols / W, rows / H, np.zeros_like(rows)])
    return {"image": image, "mask": cols.astype(np.int64), "depth": rows + 1}


def assert_derived_relations(s):
    image = s["image"]
    np.testing.assert_array_equal(s["mask"], (image[0] > 0.5).astype(np.int64) + 2 * (image[1] > 0.5))
    np.testing.assert_array_equal(s["depth"], 1 + image[2])
    np.testing.assert_array_equal(s["depth_valid"], image[2] > 0.2)
    n = image - 0.5
    np.testing.assert_allclose(s["normals"], n / np.linalg.norm(n, axis=0), rtol=1e-6)


def mirror(scene):
    """The scene reflected in the plane x = 0 (so its picture is the original, flipped)."""
    def flip(v):
        return (-v[0], v[1], v[2])

    surfaces = []
    for s in scene.surfaces:
        if isinstance(s, Ground):  # mirroring shifts the checker by one tile: swap its colours
            s = replace(s, color=s.color2, color2=s.color)
        elif isinstance(s, Box):
            s = replace(s, x=-s.x, angle=-s.angle)
        elif hasattr(s, "x"):
            s = replace(s, x=-s.x)
        surfaces.append(s)
    return replace(scene, eye=flip(scene.eye), target=flip(scene.target), light=flip(scene.light),
                   surfaces=surfaces)


def test_flip_flips_every_array_and_negates_normal_x():
    s = derived_sample(6, 9)
    out = T.RandomHorizontalFlip(p=1.0)(s, rng())
    for k in ("image", "mask", "depth", "depth_valid"):
        np.testing.assert_array_equal(out[k], s[k][..., ::-1])
    np.testing.assert_array_equal(out["normals"][0], -s["normals"][0, :, ::-1])
    np.testing.assert_array_equal(out["normals"][1:], s["normals"][1:, :, ::-1])
    kept = T.RandomHorizontalFlip(p=0.0)(s, rng())
    for k in s:
        np.testing.assert_array_equal(kept[k], s[k])


def test_flipped_scene_matches_the_mirrored_scene():
    # Flipping a rendered picture must give what the camera sees of the mirror-image scene: the
    # same shading (so the flipped normals still explain the picture), mask, depth and normals.
    for seed in range(3):
        scene = random_scene(rng(seed))
        flipped = T.RandomHorizontalFlip(p=1.0)(render_scene(scene, size=48), rng())
        mirrored = render_scene(mirror(scene), size=48)
        same = flipped["mask"] == mirrored["mask"]
        assert same.mean() > 0.999  # a ray grazing an edge may round the other way
        for k in ("image", "depth", "normals"):
            np.testing.assert_allclose(flipped[k][..., same], mirrored[k][..., same], atol=1e-4)


def test_flip_keeps_shading_consistent_with_normals():
    # Lambertian shading is albedo * (ambient + (1 - ambient) * max(0, n . light)). Flipped normals
    # explain the flipped picture with the light mirrored in x, exactly as in the original.
    scene = random_scene(rng(5))
    scene = replace(scene, surfaces=[replace(s, color=(0.8, 0.8, 0.8)) if hasattr(s, "x") else s
                                     for s in scene.surfaces])
    s = render_scene(scene, size=32)
    eye, target = np.array(scene.eye), np.array(scene.target)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0, 1, 0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    light = np.array([right, up, -forward]) @ np.array(scene.light)  # camera frame
    out = T.RandomHorizontalFlip(p=1.0)(s, rng())
    for sample, light_x in ((s, light[0]), (out, -light[0])):
        objects = (sample["mask"] > 0) & (sample["mask"] != 255)  # grey; the background is textured
        lit = np.array([light_x, light[1], light[2]]) @ sample["normals"].reshape(3, -1)
        expected = 0.8 * (scene.ambient + (1 - scene.ambient) * np.clip(lit, 0, None))
        np.testing.assert_allclose(sample["image"][0].ravel()[objects.ravel()],
                                   expected[objects.ravel()], atol=1e-5)


@given(st.integers(1, 12), st.integers(1, 12), st.data())
def test_random_crop_keeps_arrays_aligned(H, W, data):
    h, w = data.draw(st.integers(1, H)), data.draw(st.integers(1, W))
    s = derived_sample(H, W, seed=H * 13 + W)
    out = T.RandomCrop((h, w))(s, rng(data.draw(st.integers(0, 100))))
    assert out["image"].shape == (3, h, w) and out["mask"].shape == (h, w)
    assert_derived_relations(out)


@given(st.integers(2, 40), st.integers(2, 40), st.integers(1, 30), st.integers(1, 30), st.integers(0, 1000))
def test_random_resized_crop_keeps_arrays_aligned(H, W, h, w, seed):
    s = ramp_sample(H, W)
    out = T.RandomResizedCrop((h, w), scale=(0.2, 1.0))(s, rng(seed))
    assert out["image"].shape == (3, h, w) and out["mask"].shape == (h, w) and out["depth"].shape == (h, w)
    assert out["mask"].dtype == np.int64 and out["depth"].dtype == np.float32
    # Bilinear image and depth sample the same positions: the row ramps agree exactly.
    np.testing.assert_allclose(out["depth"], 1 + out["image"][1] * H, atol=1e-3)
    # The nearest-neighbour mask takes the column whose centre is within half a pixel.
    assert np.all(np.abs(out["mask"] - out["image"][0] * W) <= 0.5 + 1e-3)


def test_resized_depth_ignores_invalid_pixels_and_normals_stay_unit():
    s = derived_sample(20, 30, seed=1)
    s["depth"] = np.where(s["depth_valid"], np.float32(5.0), np.float32(0.0))
    for t in (T.Resize((13, 41)), T.RandomResizedCrop(17)):
        out = t(s, rng(2))
        np.testing.assert_array_equal(out["depth_valid"], out["depth"] > 0)
        np.testing.assert_allclose(out["depth"][out["depth_valid"]], 5.0, rtol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(out["normals"], axis=0), 1.0, rtol=1e-5)
        assert out["depth_valid"].dtype == bool and out["normals"].dtype == np.float32


def test_resize_to_the_same_size_is_the_identity():
    s = derived_sample(7, 5)
    out = T.Resize((7, 5))(s, rng())
    for k in s:
        np.testing.assert_allclose(out[k], s[k], rtol=1e-6)


def test_color_jitter_changes_only_the_image():
    s = derived_sample(8, 8)
    out = T.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5)(s, rng(3))
    assert not np.allclose(out["image"], s["image"])
    assert 0 <= out["image"].min() and out["image"].max() <= 1 and out["image"].dtype == np.float32
    for k in ("mask", "depth", "normals", "depth_valid"):
        assert out[k] is s[k]
    np.testing.assert_allclose(T.ColorJitter()(s, rng())["image"], s["image"], rtol=1e-6)
    with pytest.raises(ValueError, match="RGB"):
        T.ColorJitter(0.1)({"image": np.zeros((1, 4, 4), np.float32)}, rng())


def test_color_jitter_brightness_scales_by_the_drawn_factor():
    s = derived_sample(8, 8)
    out = T.ColorJitter(brightness=0.5)(s, rng(4))
    factor = rng(4).uniform(0.5, 1.5)  # the first draw; contrast and saturation draw exactly 1
    np.testing.assert_allclose(out["image"], np.clip(s["image"] * factor, 0, 1), rtol=1e-6)


def test_normalize():
    s = derived_sample(4, 4)
    out = T.Normalize(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))(s, rng())
    np.testing.assert_allclose(out["image"][0], (s["image"][0] - 0.5) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(out["image"][2], s["image"][2] / 2.0, rtol=1e-6)
    assert out["image"].dtype == np.float32 and out["mask"] is s["mask"]


def test_transforms_do_not_modify_their_input():
    s = derived_sample(10, 10)
    before = {k: a.copy() for k, a in s.items()}
    pipeline = T.Compose([T.RandomHorizontalFlip(1.0), T.RandomResizedCrop(8), T.RandomCrop(6),
                          T.ColorJitter(0.3, 0.3, 0.3), T.Normalize((0.5,) * 3, (0.2,) * 3)])
    out = pipeline(s, rng())
    assert out is not s and out["image"].shape == (3, 6, 6)
    for k in s:
        np.testing.assert_array_equal(s[k], before[k])


def test_randomness_is_reproducible():
    s = derived_sample(16, 16)
    pipeline = T.Compose([T.RandomHorizontalFlip(), T.RandomResizedCrop(8), T.ColorJitter(0.4, 0.4, 0.4)])
    a, b = pipeline(s, rng(7)), pipeline(s, rng(7))
    for k in s:
        np.testing.assert_array_equal(a[k], b[k])
    T.manual_seed(11)
    c = pipeline(s)
    T.manual_seed(11)
    d = pipeline(s)
    for k in s:
        np.testing.assert_array_equal(c[k], d[k])


def test_clear_errors():
    s = derived_sample(5, 6)
    with pytest.raises(ValueError, match=r"RandomCrop size \(6, 6\) is larger than the input \(5, 6\)"):
        T.RandomCrop(6)(s, rng())
    with pytest.raises(ValueError, match="'id'"):
        T.RandomHorizontalFlip()({**s, "id": np.zeros(3)}, rng())
    with pytest.raises(ValueError, match="height and width"):
        T.Resize(4)({**s, "depth": np.ones((5, 5), np.float32)}, rng())


@given(st.floats(0.05, 20.0), st.floats(1.0, 8.0), st.integers(0, 1000))
def test_random_depth_scale_multiplies_depth_by_one_factor_and_leaves_the_rest(lo, ratio, seed):
    s = derived_sample(6, 7, seed=seed)
    s["depth"] = np.where(s["depth_valid"], s["depth"], np.float32(0))  # a sensor's holes read 0
    out = T.RandomDepthScale((lo, lo * ratio))(s, rng(seed))
    factor = out["depth"][s["depth_valid"]] / s["depth"][s["depth_valid"]]
    np.testing.assert_allclose(factor, factor[0], rtol=1e-6)  # one factor for the whole scene
    assert lo * (1 - 1e-6) <= factor[0] <= lo * ratio * (1 + 1e-6)
    assert np.all(out["depth"][~s["depth_valid"]] == 0) and out["depth"].dtype == np.float32
    for k in ("image", "mask", "normals", "depth_valid"):  # scaling the world moves none of these
        assert out[k] is s[k]
    assert not np.shares_memory(out["depth"], s["depth"])


def test_random_depth_scale_is_log_uniform():
    s = {"depth": np.ones((1, 1), np.float32)}
    t = T.RandomDepthScale((0.25, 4.0))
    g = rng(3)
    logs = np.log([t(s, g)["depth"][0, 0] for _ in range(4000)])
    # log s uniform on [log 1/4, log 4]: mean 0, and a quarter of the draws in each quarter of the range
    assert abs(logs.mean()) < 0.05 and logs.min() >= np.log(0.25) - 1e-6 and logs.max() <= np.log(4.0) + 1e-6
    counts = np.histogram(logs, bins=4, range=(np.log(0.25), np.log(4.0)))[0]
    assert np.all(np.abs(counts - 1000) < 120), counts
    np.testing.assert_array_equal(T.RandomDepthScale((1, 1))(s, g)["depth"], s["depth"])


def test_random_depth_scale_errors():
    with pytest.raises(ValueError, match=r"RandomDepthScale: scale must be \(lo, hi\) with 0 < lo <= hi"):
        T.RandomDepthScale((2.0, 1.0))
    with pytest.raises(ValueError, match=r"RandomDepthScale: scale must be"):
        T.RandomDepthScale((0.0, 1.0))
    with pytest.raises(ValueError, match="RandomDepthScale needs a 'depth' key.*'image'"):
        T.RandomDepthScale()({"image": np.zeros((3, 2, 2), np.float32)}, rng())
