"""Datasets read from folders on disk: images through Pillow, arrays through ``numpy.load``.

Samples have the keys and dtypes of ``SyntheticScenes``: ``image`` float32 (3, H, W) in [0, 1],
``mask`` int64 (H, W), ``depth`` float32 (H, W) in metres, ``normals`` float32 (3, H, W). Pictures
on disk come in many sizes; batching needs one, so give a ``Resize`` or ``RandomResizedCrop``
transform (to the dataset or the DataLoader) when they differ.

Problems are reported when the dataset is built (a folder or a file is missing) or when a sample is
read (sizes or formats that do not fit), always naming the files involved.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .loader import Dataset, Sample

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Pillow's modes for 16- and 32-bit integer greyscale PNGs.
INTEGER_MODES = ("I;16", "I;16B", "I;16L", "I")


def _require_dir(path, what):
    if not path.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {path}")


def _find(folder, name, extensions):
    """``folder/name.ext`` for the first of ``extensions`` that exists, else None."""
    for ext in extensions:
        path = folder / (name + ext)
        if path.is_file():
            return path
    return None


def _check_size(path_a, a, path_b, b):
    """ValueError naming both files if arrays ``a`` and ``b`` differ in (height, width)."""
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"size mismatch: {path_a} is (H, W) = {a.shape[-2:]} but {path_b} is "
                         f"(H, W) = {b.shape[-2:]}")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as float32 (3, H, W) RGB in [0, 1] (greyscale and RGBA become RGB)."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a label PNG as int64 (H, W): its pixel values are the class indices.

    A palette ("P") PNG, as in Pascal VOC, stores an index into its colour table per pixel; that
    index is the class (the colours are only for viewing). Greyscale ("L") PNGs work the same way.
    """
    with Image.open(path) as im:
        if im.mode not in ("P", "L"):
            raise ValueError(f"{path}: a mask must be a palette ('P') or greyscale ('L') PNG whose "
                             f"pixel values are class indices, but its mode is '{im.mode}'")
        return np.asarray(im).astype(np.int64)


class SegmentationFolder(Dataset):
    """Semantic segmentation data in the Pascal VOC layout::

        root/JPEGImages/NAME.jpg            (or .jpeg, .png) the pictures
        root/SegmentationClass/NAME.png     palette PNG masks: pixel value = class, 255 = unknown
        root/ImageSets/Segmentation/SPLIT.txt   optional: the NAMEs of a split, one per line

    With ``split`` (e.g. ``'train'``, ``'val'``), the samples are the names in that list, in its
    order, and each needs both an image and a mask. Without it, the samples are all masks in
    ``SegmentationClass``, sorted by name, each needing its image; images without a mask are not
    used (VOC's JPEGImages also holds pictures that were never annotated).

    Each sample is ``{'image': float32 (3, H, W) in [0, 1], 'mask': int64 (H, W)}``, with
    ``transform(sample)`` applied if given. ``ignore_index`` is 255, VOC's "unknown" (object
    outlines and hard regions).
    """
    ignore_index = 255

    def __init__(self, root: str | os.PathLike[str], split: str | None = None,
                 transform: Callable[[Sample], Sample] | None = None) -> None:
        self.root = Path(root)
        self.transform = transform
        image_dir, mask_dir = self.root / "JPEGImages", self.root / "SegmentationClass"
        _require_dir(self.root, "dataset root")
        _require_dir(image_dir, "image")
        _require_dir(mask_dir, "mask")
        if split is None:
            names = sorted(p.stem for p in mask_dir.glob("*.png"))
            if not names:
                raise FileNotFoundError(f"no .png masks in {mask_dir}")
        else:
            list_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
            if not list_file.is_file():
                raise FileNotFoundError(f"split '{split}' not found: no file {list_file}")
            names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        self.names = names
        self.files = []
        for name in names:
            image = _find(image_dir, name, IMAGE_EXTENSIONS)
            mask = mask_dir / f"{name}.png"
            if image is None:
                raise FileNotFoundError(f"no image for '{name}': none of "
                                        f"{[str(image_dir / (name + e)) for e in IMAGE_EXTENSIONS]} exists")
            if not mask.is_file():
                raise FileNotFoundError(f"image {image} has no mask: {mask} does not exist")
            self.files.append((image, mask))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Sample:
        image_path, mask_path = self.files[i]
        image, mask = read_image(image_path), read_mask(mask_path)
        _check_size(image_path, image, mask_path, mask)
        sample = {"image": image, "mask": mask}
        return self.transform(sample) if self.transform is not None else sample


def read_depth(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a depth map as float32 (H, W) in metres, 0 where unknown.

    ``.npy``: a float (H, W) array in metres; values that are not finite or not positive are
    unknown. ``.png``: a 16-bit greyscale PNG in millimetres, 0 = unknown (the Kinect / NYU
    convention, which keeps millimetre precision up to 65 m).
    """
    path = Path(path)
    if path.suffix == ".npy":
        depth = np.load(path).astype(np.float32)
        if depth.ndim != 2:
            raise ValueError(f"{path}: a depth array must be (H, W), got shape {depth.shape}")
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
    with Image.open(path) as im:
        if im.mode not in INTEGER_MODES:
            raise ValueError(f"{path}: a depth PNG must be 16-bit greyscale (millimetres), "
                             f"but its mode is '{im.mode}'")
        return np.asarray(im).astype(np.float32) / 1000


def read_normals(path: str | os.PathLike[str]) -> np.ndarray:
    """Read surface normals as float32 (3, H, W) unit vectors, the zero vector where unknown.

    ``.npy``: a float (3, H, W) array; non-finite or zero vectors are unknown. ``.png``: 8-bit RGB
    with n = rgb / 255 * 2 - 1 per channel; black (0, 0, 0) is unknown. Vectors are renormalised
    (8 bits per channel are not exactly unit length). The frame must be tinypix's camera frame: x
    right, y up, z towards the camera; convert other datasets' conventions when writing the files.
    """
    path = Path(path)
    if path.suffix == ".npy":
        n = np.load(path).astype(np.float32)
        if n.ndim != 3 or n.shape[0] != 3:
            raise ValueError(f"{path}: a normals array must be (3, H, W), got shape {n.shape}")
        n = np.where(np.isfinite(n).all(axis=0), n, 0)
    else:
        with Image.open(path) as im:
            if im.mode != "RGB":
                raise ValueError(f"{path}: a normals PNG must be 8-bit RGB, but its mode is '{im.mode}'")
            rgb = np.asarray(im).transpose(2, 0, 1)
        n = np.where(rgb.any(axis=0), rgb.astype(np.float32) / 255 * 2 - 1, 0)
    length = np.linalg.norm(n, axis=0)
    return np.where(length > 0, n / np.maximum(length, 1e-12), 0).astype(np.float32)


class DepthNormalsFolder(Dataset):
    """Pictures with depth maps and/or surface normals, in this layout::

        root/images/NAME.png      (or .jpg, .jpeg) the pictures
        root/depth/NAME.npy       float (H, W) metres; or NAME.png, 16-bit, millimetres, 0 = unknown
        root/normals/NAME.npy     float (3, H, W); or NAME.png, RGB with n = rgb / 255 * 2 - 1

    ``depth/`` and ``normals/`` are each optional, but at least one must exist, and when one does,
    every image needs its file there. Normals are unit vectors in the camera frame (x right, y up,
    z towards the camera); the zero vector marks unknown normals (see ``read_normals``).

    Each sample has ``image`` float32 (3, H, W) in [0, 1] and, as available, ``depth`` float32
    (H, W) in metres with 0 where unknown, together with ``depth_valid`` bool (H, W) = depth > 0,
    and ``normals`` float32 (3, H, W). ``depth_valid`` is always there with ``depth``, even when
    every pixel is known, so that all samples have the same keys and stack into batches.
    ``transform(sample)`` is applied if given.
    """

    def __init__(self, root: str | os.PathLike[str], transform: Callable[[Sample], Sample] | None = None) -> None:
        self.root = Path(root)
        self.transform = transform
        _require_dir(self.root, "dataset root")
        image_dir = self.root / "images"
        _require_dir(image_dir, "image")
        targets = {k: self.root / k for k in ("depth", "normals") if (self.root / k).is_dir()}
        if not targets:
            raise FileNotFoundError(f"neither {self.root / 'depth'} nor {self.root / 'normals'} exists")
        images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
        self.names = [p.stem for p in images]
        self.files = []
        for image in images:
            entry = {"image": image}
            for key, folder in targets.items():
                entry[key] = _find(folder, image.stem, (".npy", ".png"))
                if entry[key] is None:
                    raise FileNotFoundError(f"image {image} has no {key}: neither {image.stem}.npy nor "
                                            f"{image.stem}.png exists in {folder}")
            self.files.append(entry)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Sample:
        files = self.files[i]
        sample = {"image": read_image(files["image"])}
        if "depth" in files:
            sample["depth"] = read_depth(files["depth"])
            sample["depth_valid"] = sample["depth"] > 0
        if "normals" in files:
            sample["normals"] = read_normals(files["normals"])
        for key in ("depth", "normals"):
            if key in sample:
                _check_size(files["image"], sample["image"], files[key], sample[key])
        return self.transform(sample) if self.transform is not None else sample
