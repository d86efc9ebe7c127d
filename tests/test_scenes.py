"""The built-in ray-cast scenes: formats, determinism, and labels that agree with the geometry."""
import numpy as np
import pytest

from tinypix.data import SyntheticScenes, random_scene, render_scene


@pytest.fixture(scope="module")
def scenes():
    return SyntheticScenes(40, size=48, seed=3)


def camera_points(scene, depth):
    """Back-project a depth map (H, W) to 3-D points (3, H, W) in camera coordinates."""
    size = depth.shape[0]
    edges = np.linspace(-1, 1, size + 1)
    centres = (edges[:-1] + edges[1:]) / 2 * np.tan(np.radians(scene.fov) / 2)
    u, v = np.meshgrid(centres, -centres)
    return depth * np.stack([u, v, -np.ones_like(u)])


def test_sample_format(scenes):
    s = scenes[0]
    assert set(s) == {"image", "mask", "depth", "normals"}
    assert s["image"].dtype == np.float32 and s["image"].shape == (3, 48, 48)
    assert s["mask"].dtype == np.int64 and s["mask"].shape == (48, 48)
    assert s["depth"].dtype == np.float32 and s["depth"].shape == (48, 48)
    assert s["normals"].dtype == np.float32 and s["normals"].shape == (3, 48, 48)
    for i in range(len(scenes)):
        s = scenes[i]
        assert 0 <= s["image"].min() and s["image"].max() <= 1
        assert set(np.unique(s["mask"])) <= {0, 1, 2, 3, 255}
        assert np.isfinite(s["depth"]).all() and (s["depth"] > 0).all()
        np.testing.assert_allclose(np.linalg.norm(s["normals"], axis=0), 1, atol=1e-5)


def test_class_attributes():
    assert SyntheticScenes.classes == ("background", "sphere", "box", "cylinder")
    assert SyntheticScenes.num_classes == 4 and SyntheticScenes.ignore_index == 255


def test_sample_depends_only_on_seed_and_index():
    late = SyntheticScenes(50, size=32, seed=7)
    late[30], late[1]  # generate others first, out of order
    alone = SyntheticScenes(3, size=32, seed=7)[2]
    for k, a in late[2].items():
        np.testing.assert_array_equal(a, alone[k])
    other = SyntheticScenes(3, size=32, seed=8)[2]
    assert not np.array_equal(alone["image"], other["image"])


def test_indexing_and_cache():
    ds = SyntheticScenes(4, size=16)
    assert len(ds) == 4
    assert ds[0]["image"] is ds[0]["image"]  # rendered once, then kept
    np.testing.assert_array_equal(ds[-1]["mask"], ds[3]["mask"])
    with pytest.raises(IndexError):
        ds[4]
    with pytest.raises(ValueError):  # cached arrays are read-only
        ds[0]["image"][0, 0, 0] = 1.0
    assert [s["mask"].shape for s in ds] == [(16, 16)] * 4  # iteration stops at the end


def test_transform_is_applied():
    ds = SyntheticScenes(2, size=16, transform=lambda s: {**s, "depth": s["depth"] * 2})
    plain = SyntheticScenes(2, size=16)
    np.testing.assert_allclose(ds[1]["depth"], plain[1]["depth"] * 2)


def test_classes_are_balanced_enough_to_learn(scenes):
    counts = np.zeros(256, dtype=np.int64)
    for s in scenes:
        counts += np.bincount(s["mask"].ravel(), minlength=256)
    freq = counts / counts.sum()
    assert 0.5 < freq[0] < 0.8
    assert all(freq[c] > 0.05 for c in (1, 2, 3))
    assert freq[255] < 0.1


def test_ignore_band_is_thin_and_only_on_boundaries(scenes):
    for s in list(scenes)[:10]:
        band = s["mask"] == 255
        padded = np.pad(s["mask"], 1, mode="edge")
        neighbours = np.stack([padded[1 + dy:49 + dy, 1 + dx:49 + dx]
                               for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        labelled = np.where(neighbours == 255, -1, neighbours)
        # Almost every band pixel touches a labelled pixel: the band is about one pixel wide.
        touches = (labelled >= 0).any(axis=0)
        assert touches[band].mean() > 0.95
        # Away from the band, the 3x3 neighbourhood holds a single class.
        far = ~(neighbours == 255).any(axis=0)
        assert (labelled[:, far] == s["mask"][far]).all()


def test_normals_face_the_camera_and_match_the_depth_map():
    for seed in range(4):
        scene = random_scene(np.random.default_rng(seed))
        s = render_scene(scene, size=64)
        points = camera_points(scene, s["depth"].astype(np.float64))
        n = s["normals"].astype(np.float64)
        # The camera sits at the origin: a visible surface faces it, so n . p < 0.
        assert ((n * points).sum(axis=0) < 0).all()
        # Tangents from the depth map: their cross product is the normal (x right, y up, z back).
        dx = points[:, 1:-1, 2:] - points[:, 1:-1, :-2]
        dy = points[:, :-2, 1:-1] - points[:, 2:, 1:-1]
        estimate = np.cross(dx, dy, axis=0)
        estimate /= np.linalg.norm(estimate, axis=0)
        cos = (estimate * n[:, 1:-1, 1:-1]).sum(axis=0)
        # Differences across a depth edge mean nothing, so compare inside regions of one class,
        # where only the creases of boxes and of the ground meeting the wall still spoil the estimate.
        m = s["mask"]
        inside = m[1:-1, 1:-1] != 255
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                inside &= m[1 + oy:63 + oy, 1 + ox:63 + ox] == m[1:-1, 1:-1]
        assert np.median(cos[inside]) > np.cos(np.radians(1))
        assert (cos[inside] > np.cos(np.radians(5))).mean() > 0.9


def test_default_colors_are_random_and_by_class_keeps_the_geometry():
    plain = SyntheticScenes(12, size=32, seed=4)
    named = SyntheticScenes(12, size=32, seed=4, colors="random")
    by_class = SyntheticScenes(12, size=32, seed=4, colors="by_class")
    for i in range(12):
        for k in ("image", "mask", "depth", "normals"):
            np.testing.assert_array_equal(plain[i][k], named[i][k])
        # The same cameras and objects: only the colours and the light change.
        for k in ("mask", "depth", "normals"):
            np.testing.assert_array_equal(plain[i][k], by_class[i][k])
        assert not np.array_equal(plain[i]["image"], by_class[i]["image"])


def test_by_class_colors_follow_the_class():
    from tinypix.data.scenes import CLASS_COLOR_JITTER, CLASS_COLORS, FIXED_AMBIENT, GROUND_COLORS, WALL_COLOR
    for seed in range(20):
        scene = random_scene(np.random.default_rng(seed), colors="by_class")
        assert scene.ambient == FIXED_AMBIENT
        for surface in scene.surfaces:
            if surface.label == 0:
                assert surface.color in (WALL_COLOR, GROUND_COLORS[0])
            else:
                assert np.abs(np.subtract(surface.color, CLASS_COLORS[surface.label])).max() <= CLASS_COLOR_JITTER
    # The light is the same in every scene; with random colours it is not.
    lights = {random_scene(np.random.default_rng(s), colors="by_class").light for s in range(5)}
    assert len(lights) == 1
    assert len({random_scene(np.random.default_rng(s)).light for s in range(5)}) == 5


def test_by_class_pixel_colours_separate_the_classes():
    # Per-class median colours of the rendered pictures are far apart by class, and the colour
    # varies within a class far less than with random colours (where the classes look alike).
    def class_stats(colors):
        ds = SyntheticScenes(30, size=32, seed=9, colors=colors)
        pixels = {c: np.concatenate([s["image"][:, s["mask"] == c] for s in ds], axis=1) for c in (1, 2, 3)}
        medians = {c: np.median(p, axis=1) for c, p in pixels.items()}
        gaps = [np.abs(medians[a] - medians[b]).max() for a, b in ((1, 2), (1, 3), (2, 3))]
        spread = np.mean([np.median(np.abs(p - medians[c][:, None])) for c, p in pixels.items()])
        return min(gaps), spread

    gap, spread = class_stats("by_class")
    random_gap, random_spread = class_stats("random")
    assert gap > 0.25 and random_gap < 0.2
    assert spread < random_spread / 2


def test_unknown_colors_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="colors must be one of"):
        SyntheticScenes(2, size=16, colors="pastel")
    with pytest.raises(ValueError, match="random_scene: colors"):
        random_scene(np.random.default_rng(0), colors="by-class")
