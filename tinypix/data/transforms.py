"""Joint transforms: change a picture and all of its labels together, with one random draw.

A sample is a dict with keys among
    ``image``        (C, H, W) float, the picture;
    ``mask``         (H, W) int, class labels (255 = ignore);
    ``depth``        (H, W) float, depth (0 = invalid);
    ``normals``      (3, H, W) float, unit normals in camera coordinates (x right, y up, z towards
                     the camera);
    ``depth_valid``  (H, W) bool, where ``depth`` is known.
If a crop moved the image but not the mask, or a flip turned the picture round but left the
normals pointing the old way, the network would learn from wrong labels. So every spatial transform
draws its random numbers once and applies the same flip, crop or resize to all of these keys; it
refuses keys it does not know. Photometric transforms (ColorJitter, Normalize) touch ``image``
only; RandomDepthScale touches ``depth`` only.

Randomness: every transform is called as ``transform(sample, rng=None)``, where ``rng`` is a
``numpy.random.Generator``. Without one, a generator kept by this module is used; ``manual_seed``
reseeds it. The DataLoader passes its own generator, derived from its seed, so that augmentation is
reproducible. Transforms never modify their input: they return a new dict (arrays that a transform
leaves alone may be shared between the two).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

from .loader import Sample

if TYPE_CHECKING:
    from ..typing import IntPair

SPATIAL_KEYS = ("image", "mask", "depth", "normals", "depth_valid")

_rng = np.random.default_rng()


def manual_seed(seed: int | None) -> None:
    """Reseed the generator that transforms use when they are called without ``rng``."""
    global _rng
    _rng = np.random.default_rng(seed)


class Transform:
    """Base class. Subclasses implement ``apply(sample, rng)``, which gets a shallow copy of the
    sample and a Generator, and returns the new sample."""

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        return self.apply(dict(sample), _rng if rng is None else rng)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` in order, all drawing from the same generator."""

    def __init__(self, transforms: Iterable[Callable[[Sample, np.random.Generator], Sample]]) -> None:
        self.transforms = list(transforms)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample


def _spatial_size(sample, name):
    """The common (H, W) of all arrays of ``sample``; ValueError for unknown keys or mixed sizes."""
    unknown = sorted(set(sample) - set(SPATIAL_KEYS))
    if unknown:
        raise ValueError(f"{name} does not know how to transform key(s) {unknown}; "
                         f"it handles {list(SPATIAL_KEYS)}")
    sizes = {k: a.shape[-2:] for k, a in sample.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{name}: the arrays of a sample must share their height and width, got {sizes}")
    return next(iter(sizes.values()))


def _pair(size):
    return (size, size) if np.isscalar(size) else tuple(size)


def _source_positions(n_in, n_out):
    """Where output pixel centres fall in the input, pixel-centre convention (PyTorch's
    ``align_corners=False``): the two input pixels to blend and the weight of the second."""
    x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    x0 = np.floor(x).astype(np.int64)
    return x0, np.minimum(x0 + 1, n_in - 1), x - x0


def _bilinear(a, size):
    """Resize ``a: (..., H, W)`` to (..., h, w) by bilinear interpolation; keeps a float dtype."""
    (y0, y1, wy), (x0, x1, wx) = (_source_positions(n, m) for n, m in zip(a.shape[-2:], size))
    wy, wx = wy[:, None].astype(a.dtype), wx.astype(a.dtype)
    rows = a[..., y0, :] * (1 - wy) + a[..., y1, :] * wy
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


def _nearest(a, size):
    """Resize ``a: (..., H, W)`` to (..., h, w), each output pixel copying the input pixel its
    centre falls in: labels stay labels (no blend of class 1 and class 3 is class 2)."""
    rows, cols = (np.minimum(((np.arange(m) + 0.5) * n / m).astype(np.int64), n - 1)
                  for n, m in zip(a.shape[-2:], size))
    return a[..., rows[:, None], cols]


def _resize(sample, size):
    """Resize every array of ``sample`` to ``size`` = (h, w), each the way its kind needs."""
    out = {}
    for k, a in sample.items():
        if k in ("mask", "depth_valid"):
            out[k] = _nearest(a, size)
        elif k == "depth":
            # Blend only valid (positive) depths: mixing in the zeros of invalid pixels would
            # invent depths that are too near. A pixel is valid where its nearest source pixel was,
            # as for depth_valid.
            valid = a > 0
            weight = _bilinear(valid.astype(a.dtype), size)
            total = _bilinear(np.where(valid, a, 0), size)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[k] = np.where(_nearest(valid, size), total / weight, 0).astype(a.dtype)
        elif k == "normals":
            # A blend of unit vectors is shorter than 1: scale back to unit length.
            n = _bilinear(a, size)
            out[k] = n / np.maximum(np.linalg.norm(n, axis=0, keepdims=True), 1e-12)
        else:
            out[k] = _bilinear(a, size)
    return out


def _crop(sample, top, left, h, w):
    return {k: a[..., top:top + h, left:left + w].copy() for k, a in sample.items()}


class RandomHorizontalFlip(Transform):
    """Mirror the sample left to right with probability ``p``.

    A mirror reverses the x axis, so the x component of every normal changes sign: a surface that
    faced right faces left in the mirrored picture.
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        _spatial_size(sample, "RandomHorizontalFlip")
        if rng.random() >= self.p:
            return sample
        out = {k: a[..., ::-1].copy() for k, a in sample.items()}
        if "normals" in out:
            out["normals"] *= np.array([-1, 1, 1], dtype=out["normals"].dtype)[:, None, None]
        return out


class RandomCrop(Transform):
    """Cut a random ``size`` = (h, w) (or one int for a square) window out of the sample.

    The window must fit: inputs smaller than ``size`` raise ValueError (resize them first).
    """

    def __init__(self, size: IntPair) -> None:
        self.size = _pair(size)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        H, W = _spatial_size(sample, "RandomCrop")
        h, w = self.size
        if h > H or w > W:
            raise ValueError(f"RandomCrop size {(h, w)} is larger than the input {(H, W)}; "
                             "the crop must fit inside the sample (resize it first)")
        top, left = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        return _crop(sample, top, left, h, w)


class Resize(Transform):
    """Resize the sample to ``size`` = (h, w): bilinear for image, depth and normals (normals
    renormalised, invalid depths left out of the blend), nearest for mask and depth_valid."""

    def __init__(self, size: IntPair) -> None:
        self.size = _pair(size)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        _spatial_size(sample, "Resize")
        return _resize(sample, self.size)


class RandomResizedCrop(Transform):
    """Crop a random window and resize it to ``size`` (torchvision's algorithm).

    The window covers a fraction of the input area drawn uniformly from ``scale`` and has a
    width / height ratio drawn log-uniformly from ``ratio``; after 10 draws that do not fit, the
    largest centred window with a ratio inside ``ratio`` is used. Resizing is as in ``Resize``.
    """

    def __init__(self, size: IntPair, scale: tuple[float, float] = (0.5, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        self.size = _pair(size)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)

    def window(self, H: int, W: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """Draw the crop window (top, left, h, w) for an H x W input."""
        for _ in range(10):
            area = H * W * rng.uniform(*self.scale)
            aspect = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
            w, h = round(np.sqrt(area * aspect)), round(np.sqrt(area / aspect))
            if 0 < w <= W and 0 < h <= H:
                return rng.integers(0, H - h + 1), rng.integers(0, W - w + 1), h, w
        w, h = W, H
        if W / H < self.ratio[0]:
            h = round(W / self.ratio[0])
        elif W / H > self.ratio[1]:
            w = round(H * self.ratio[1])
        return (H - h) // 2, (W - w) // 2, h, w

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        H, W = _spatial_size(sample, "RandomResizedCrop")
        return _resize(_crop(sample, *self.window(H, W, rng)), self.size)


class RandomDepthScale(Transform):
    """Multiply ``depth`` by one random factor s per call: the doll's-house ambiguity.

    Scale a whole scene by s about the camera's centre and every pixel's ray still meets the same
    surface point, now s times as far, with the same normal and the same colour: the picture does
    not change. One picture therefore cannot tell a doll's house from a house, and its depth is
    known only up to a global factor. This transform makes that ambiguity explicit in a dataset:
    ``depth`` becomes s * depth (invalid zeros stay zero), while ``image``, ``mask``, ``normals``
    and ``depth_valid`` are left as they are, since scaling the world moves none of them.

    s is drawn log-uniformly from ``scale`` = (lo, hi), so s and 1 / s are equally likely when
    lo * hi = 1; ``scale=(1, 1)`` leaves depth unchanged.
    """

    def __init__(self, scale: tuple[float, float] = (0.5, 2.0)) -> None:
        lo, hi = scale
        if not 0 < lo <= hi:
            raise ValueError(f"RandomDepthScale: scale must be (lo, hi) with 0 < lo <= hi, got {tuple(scale)}")
        self.scale = (float(lo), float(hi))

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if "depth" not in sample:
            raise ValueError(f"RandomDepthScale needs a 'depth' key to scale; the sample has {sorted(sample)}")
        s = np.exp(rng.uniform(np.log(self.scale[0]), np.log(self.scale[1])))
        depth = sample["depth"]
        sample["depth"] = (depth * s).astype(depth.dtype)
        return sample


def _gray(image):
    """Luma (ITU-R 601) of an RGB ``image: (3, H, W)``, shape (H, W)."""
    return 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]


class ColorJitter(Transform):
    """Randomly change brightness, contrast and saturation of ``image`` (RGB in [0, 1]).

    Each factor f is drawn uniformly from [max(0, 1 - x), 1 + x] for x = brightness, contrast,
    saturation, and applied in that order: brightness scales the image by f; contrast blends it
    with its mean grey level, f * image + (1 - f) * mean(gray); saturation blends it with its grey
    picture, f * image + (1 - f) * gray. The result is clipped to [0, 1]. Labels are unchanged:
    lighting does not move a surface.
    """

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0) -> None:
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        image = sample["image"]
        if image.shape[0] != 3:
            raise ValueError(f"ColorJitter needs an RGB image (3, H, W), got shape {image.shape}")
        fb, fc, fs = (rng.uniform(max(0.0, 1 - x), 1 + x)
                      for x in (self.brightness, self.contrast, self.saturation))
        image = image * fb
        image = fc * image + (1 - fc) * _gray(image).mean()
        image = fs * image + (1 - fs) * _gray(image)
        sample["image"] = np.clip(image, 0, 1).astype(sample["image"].dtype)
        return sample


class Normalize(Transform):
    """``image[c] = (image[c] - mean[c]) / std[c]`` for every channel c; other keys unchanged."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = tuple(mean), tuple(std)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        image = sample["image"]
        mean = np.asarray(self.mean, dtype=image.dtype)[:, None, None]
        std = np.asarray(self.std, dtype=image.dtype)[:, None, None]
        sample["image"] = (image - mean) / std
        return sample
