"""Datasets read from folders: the VOC segmentation layout and the depth / normals layout."""
import numpy as np
import pytest
from PIL import Image

from tinypix.data import DepthNormalsFolder, SegmentationFolder, read_normals
from tinypix.data import transforms as T

# VOC's colour table starts black, dark red, dark green, ...; 255 (unknown) is drawn cream.
PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [224, 224, 192] * 252


def write_rgb(path, rgb):
    """rgb: uint8 (H, W, 3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def write_palette_mask(path, labels):
    """labels: (H, W) class indices in 0..255, stored as palette indices, as VOC does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = labels.shape
    im = Image.frombytes("P", (w, h), labels.astype(np.uint8).tobytes())
    im.putpalette(PALETTE)
    im.save(path)


@pytest.fixture
def voc(tmp_path):
    """A VOC-style folder: a.jpg and b.png with masks, c.jpg without one, and two split lists."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:6, 0:8]
    smooth = np.stack([rows * 40, cols * 30, np.full_like(rows, 100)], axis=-1).astype(np.uint8)
    images = {"a": smooth, "b": rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)}  # JPEG blurs noise
    masks = {"a": rng.integers(0, 3, (6, 8)), "b": rng.integers(0, 3, (5, 7))}
    masks["a"][0, :] = 255  # an "unknown" border, as VOC draws around objects
    write_rgb(tmp_path / "JPEGImages" / "a.jpg", images["a"])
    write_rgb(tmp_path / "JPEGImages" / "b.png", images["b"])
    write_rgb(tmp_path / "JPEGImages" / "c.jpg", images["a"])
    for name, m in masks.items():
        write_palette_mask(tmp_path / "SegmentationClass" / f"{name}.png", m)
    split_dir = tmp_path / "ImageSets" / "Segmentation"
    split_dir.mkdir(parents=True)
    (split_dir / "train.txt").write_text("b\na\n\n")
    (split_dir / "trainval.txt").write_text("a\nc\n")
    return tmp_path, images, masks


def test_segmentation_folder_reads_images_and_palette_masks(voc):
    root, images, masks = voc
    ds = SegmentationFolder(root)
    assert len(ds) == 2 and ds.names == ["a", "b"]  # c has no mask and is not a sample
    assert ds.ignore_index == 255
    a, b = ds[0], ds[1]
    assert set(a) == {"image", "mask"}
    assert a["image"].dtype == np.float32 and a["image"].shape == (3, 6, 8)
    assert a["mask"].dtype == np.int64
    np.testing.assert_array_equal(a["mask"], masks["a"])  # palette indices, 255 included
    assert (a["mask"][0] == 255).all()
    np.testing.assert_allclose(b["image"], images["b"].transpose(2, 0, 1) / 255, rtol=1e-6)  # lossless PNG
    assert np.abs(a["image"] - images["a"].transpose(2, 0, 1) / 255).mean() < 0.05  # JPEG is lossy


def test_segmentation_folder_split_and_transform(voc):
    root, _, masks = voc
    ds = SegmentationFolder(root, split="train", transform=T.Compose([T.Resize((4, 4))]))
    assert ds.names == ["b", "a"]
    assert ds[0]["image"].shape == (3, 4, 4) and ds[1]["mask"].shape == (4, 4)


def test_segmentation_folder_errors(voc, tmp_path_factory):
    root, _, _ = voc
    with pytest.raises(FileNotFoundError, match="dataset root"):
        SegmentationFolder(root / "nowhere")
    empty = tmp_path_factory.mktemp("empty")
    (empty / "SegmentationClass").mkdir()
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        SegmentationFolder(empty)
    with pytest.raises(FileNotFoundError, match="split 'test'.*test.txt"):
        SegmentationFolder(root, split="test")
    with pytest.raises(FileNotFoundError, match=r"c\.jpg has no mask.*c\.png"):
        SegmentationFolder(root, split="trainval")

    write_palette_mask(root / "SegmentationClass" / "b.png", np.zeros((5, 6)))
    with pytest.raises(ValueError, match=r"b\.png is \(H, W\) = \(5, 7\).*b\.png is \(H, W\) = \(5, 6\)"):
        SegmentationFolder(root)[1]
    write_rgb(root / "SegmentationClass" / "b.png", np.zeros((5, 7, 3), np.uint8))
    with pytest.raises(ValueError, match="mode is 'RGB'"):
        SegmentationFolder(root)[1]


@pytest.fixture
def depth_folder(tmp_path):
    """x: PNG image with .npy depth (a NaN and a zero) and .npy normals; y: JPEG image with 16-bit
    PNG depth in millimetres and RGB PNG normals."""
    rng = np.random.default_rng(1)
    write_rgb(tmp_path / "images" / "x.png", rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    write_rgb(tmp_path / "images" / "y.jpg", rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    (tmp_path / "depth").mkdir()
    (tmp_path / "normals").mkdir()
    depth_x = rng.uniform(1, 10, (4, 5))
    depth_x[0, 0], depth_x[1, 1] = np.nan, 0.0
    np.save(tmp_path / "depth" / "x.npy", depth_x)
    depth_y_mm = rng.integers(1, 20000, (4, 5)).astype(np.uint16)
    depth_y_mm[2, 3] = 0
    Image.fromarray(depth_y_mm).save(tmp_path / "depth" / "y.png")
    normals_x = rng.normal(size=(3, 4, 5))
    normals_x /= np.linalg.norm(normals_x, axis=0)
    np.save(tmp_path / "normals" / "x.npy", normals_x)
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[...] = (128, 128, 255)  # (0, 0, 1): facing the camera
    rgb[0, 0] = (255, 128, 128)  # (1, 0, 0): facing right
    rgb[3, 4] = 0  # unknown
    write_rgb(tmp_path / "normals" / "y.png", rgb)
    return tmp_path, depth_x, depth_y_mm, normals_x


def test_depth_normals_folder(depth_folder):
    root, depth_x, depth_y_mm, normals_x = depth_folder
    ds = DepthNormalsFolder(root)
    assert ds.names == ["x", "y"]
    x, y = ds[0], ds[1]
    assert set(x) == {"image", "depth", "depth_valid", "normals"}
    for s in (x, y):
        assert s["depth"].dtype == np.float32 and s["depth"].shape == (4, 5)
        assert s["normals"].dtype == np.float32 and s["normals"].shape == (3, 4, 5)
        assert s["depth_valid"].dtype == bool
        np.testing.assert_array_equal(s["depth_valid"], s["depth"] > 0)
    expected_x = np.where(np.isfinite(depth_x) & (depth_x > 0), depth_x, 0)
    np.testing.assert_allclose(x["depth"], expected_x, rtol=1e-6)
    assert not x["depth_valid"][0, 0] and not x["depth_valid"][1, 1] and x["depth_valid"].sum() == 18
    np.testing.assert_allclose(y["depth"], depth_y_mm / 1000, rtol=1e-6)
    assert y["depth"][2, 3] == 0 and not y["depth_valid"][2, 3]
    np.testing.assert_allclose(x["normals"], normals_x, atol=1e-6)
    np.testing.assert_allclose(y["normals"][:, 1, 1], [0, 0, 1], atol=1e-2)
    np.testing.assert_allclose(y["normals"][:, 0, 0], [1, 0, 0], atol=1e-2)
    np.testing.assert_array_equal(y["normals"][:, 3, 4], [0, 0, 0])
    lengths = np.linalg.norm(y["normals"], axis=0)
    np.testing.assert_allclose(lengths[lengths > 0], 1, rtol=1e-6)


def test_depth_only_folder_has_no_normals(depth_folder):
    root = depth_folder[0]
    for f in (root / "normals").iterdir():
        f.unlink()
    (root / "normals").rmdir()
    assert set(DepthNormalsFolder(root)[0]) == {"image", "depth", "depth_valid"}


def test_depth_normals_folder_errors(depth_folder, tmp_path_factory):
    root = depth_folder[0]
    bare = tmp_path_factory.mktemp("bare")
    (bare / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="neither"):
        DepthNormalsFolder(bare)
    with pytest.raises(FileNotFoundError, match="image"):
        DepthNormalsFolder(tmp_path_factory.mktemp("no_images"))

    write_rgb(root / "images" / "z.png", np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"z\.png has no depth.*z\.npy.*z\.png"):
        DepthNormalsFolder(root)
    (root / "images" / "z.png").unlink()

    np.save(root / "depth" / "x.npy", np.ones((4, 6)))
    with pytest.raises(ValueError, match=r"x\.png is \(H, W\) = \(4, 5\).*x\.npy is \(H, W\) = \(4, 6\)"):
        DepthNormalsFolder(root)[0]
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(root / "depth" / "y.png")
    with pytest.raises(ValueError, match="16-bit"):
        DepthNormalsFolder(root)[1]
    np.save(root / "normals" / "x.npy", np.ones((4, 5, 3)))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        read_normals(root / "normals" / "x.npy")
