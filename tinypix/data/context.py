"""Scenes whose labels need context: the same object is a boat on water and a car on a road.

Every scene is one surface, water or road, with one rectangular object on it. The object's
texture (warm stripes or checks) is drawn the same way whatever it stands on, so nothing inside the
object tells the two classes apart: a pixel of the object is a boat or a car only because of what
surrounds the object. A classifier that looks at a k x k window around each pixel can label the
pixels near the object's edge, whose window reaches the surroundings, and must guess for the rest.
The more context, the fewer guesses:

    from tinypix.data.context import ContextScenes, context_ceiling
    images, masks = ContextScenes(200, size=32, seed=0).arrays()    # (200, 3, 32, 32), (200, 32, 32)
    context_ceiling(masks, 5).miou(), context_ceiling(masks, 29).miou()   # about 0.68 and 0.99

Every pixel tells by its colour alone which of three things it shows: water is blue, road is grey
and the object is warm (red, orange, yellow), with margins far wider than the noise. So a window
decides a pixel exactly when it holds a background pixel (:func:`decided`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..metrics import ConfusionMatrix
from .loader import Sample
from .scenes import GeneratedScenes

BACKGROUND, BOAT, CAR = 0, 1, 2


def _water(rng: np.random.Generator, size: int) -> np.ndarray:
    """(3, S, S) blue water with slanted waves of random period and phase."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    period, slant, phase = rng.uniform(4, 9), rng.uniform(-0.5, 0.5), rng.uniform(0, 2 * np.pi)
    waves = np.sin(2 * np.pi * (y + slant * x) / period + phase)
    base = np.array([0.10, 0.30, 0.62]) + rng.uniform(-0.04, 0.04, 3)
    return base[:, None, None] + 0.07 * waves


def _road(rng: np.random.Generator, size: int) -> np.ndarray:
    """(3, S, S) grey asphalt: a grey level with coarse grain (the same in all channels)."""
    grain = rng.normal(0, 0.05, (size // 2 + 1, size // 2 + 1)).repeat(2, 0).repeat(2, 1)[:size, :size]
    return rng.uniform(0.30, 0.45) + grain[None] + np.array([0.0, 0.0, 0.02])[:, None, None]


def _object_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(3, h, w) stripes or checks of two warm colours: red high, blue low."""
    colors = np.stack([rng.uniform([0.65, 0.10, 0.00], [0.95, 0.60, 0.12]) for _ in range(2)])
    y, x = np.mgrid[0:h, 0:w]
    period = rng.integers(2, 6)
    pattern = rng.integers(3)  # horizontal stripes, vertical stripes, checks
    which = [y // period, x // period, y // period + x // period][pattern] % 2
    return colors[which].transpose(2, 0, 1)


def render_context_scene(rng: np.random.Generator, size: int, min_side: float = 0.25, max_side: float = 0.9,
                         surface: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (image (3, S, S) float64 before noise, mask (S, S) int64).

    The surface is water or road with probability 1/2 each (``surface='water'`` or ``'road'``
    forces it). The object is a rectangle whose sides are drawn uniformly between
    ``min_side * size`` and ``max_side * size`` pixels (at most ``size - 1``, so that a row and a
    column of the surface always show), placed anywhere inside the picture, and
    labelled BOAT on water and CAR on road; the surface is BACKGROUND. The object is drawn before
    the surface, from the same random numbers whichever the surface is: forcing the other surface
    changes the label and the surroundings, not one pixel of the object.
    """
    if surface not in (None, "water", "road"):
        raise ValueError(f"render_context_scene: surface must be None, 'water' or 'road', got {surface!r}")
    coin = rng.random()  # drawn even when the surface is forced, so the object's numbers come next either way
    on_water = coin < 0.5 if surface is None else surface == "water"
    hi = min(max(1, round(max_side * size)), size - 1)  # some surface always shows
    lo = min(max(1, round(min_side * size)), hi)
    h, w = rng.integers(lo, hi + 1, 2)
    top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    texture = _object_texture(rng, h, w)
    image = _water(rng, size) if on_water else _road(rng, size)
    image[:, top:top + h, left:left + w] = texture
    mask = np.full((size, size), BACKGROUND, dtype=np.int64)
    mask[top:top + h, left:left + w] = BOAT if on_water else CAR
    return image, mask


class ContextScenes(GeneratedScenes):
    """``n`` scenes of one textured object on water (a boat) or on a road (a car).

    Sample ``i`` is a dict of NumPy arrays (``size`` = S):
        ``image`` float32 (3, S, S) in [0, 1], with Gaussian sensor noise;
        ``mask``  int64 (S, S): 0 background (water or road), 1 boat, 2 car.

    Args:
        n: number of scenes.
        size: height and width in pixels. Objects scale with it, so doubling ``size`` doubles the
            context a pixel needs.
        seed: scene ``i`` comes from a generator seeded with ``(seed, i)``, whatever ``n`` is.
        transform: if given, applied to every sample on access.
        noise: standard deviation of the Gaussian noise added to the image. Keep it small:
            :func:`context_ceiling` takes each pixel's colour to tell object, water and road apart,
            which holds with margins of 0.25 in red minus blue at the default.
        min_side, max_side: the object's sides, as fractions of ``size``.

    Scenes are made on first access and kept, read-only.
    """
    classes = ("background", "boat", "car")
    num_classes = 3
    ignore_index = 255

    def __init__(self, n: int, size: int = 32, seed: int = 0, transform: Callable[[Sample], Sample] | None = None,
                 noise: float = 0.02, min_side: float = 0.25, max_side: float = 0.9) -> None:
        if not 0 < min_side <= max_side <= 1:
            raise ValueError(f"ContextScenes: need 0 < min_side <= max_side <= 1, got min_side={min_side}, "
                             f"max_side={max_side}")
        if size < 4:
            raise ValueError(f"ContextScenes: size must be at least 4 pixels, got {size}")
        self.n, self.size, self.seed = int(n), int(size), int(seed)
        self.transform, self.noise = transform, noise
        self.min_side, self.max_side = min_side, max_side
        self._cache = {}

    def _generate(self, i: int) -> Sample:
        rng = np.random.default_rng((self.seed, i))
        image, mask = render_context_scene(rng, self.size, self.min_side, self.max_side)
        image = np.clip(image + rng.normal(0.0, self.noise, image.shape), 0, 1).astype(np.float32)
        for a in (image, mask):
            a.flags.writeable = False
        return {"image": image, "mask": mask}

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All scenes stacked: images (n, 3, S, S) float32 and masks (n, S, S) int64."""
        samples = [self[i] for i in range(self.n)]
        return np.stack([s["image"] for s in samples]), np.stack([s["mask"] for s in samples])


def decided(masks: np.ndarray, window: int) -> np.ndarray:
    """Which pixels a ``window`` x ``window`` view centred on them can label for sure.

    Args:
        masks: (N, H, W) or (H, W) labels of :class:`ContextScenes`.
        window: odd side of the square view; the part outside the picture shows nothing.

    Returns:
        bool array of the shape of ``masks``: True where the view holds a background pixel, so it
        sees whether the object stands on water or on a road (background pixels see themselves).
    """
    if not isinstance(window, (int, np.integer)) or window < 1 or window % 2 == 0:
        raise ValueError(f"decided: window must be an odd positive int (a pixel and r pixels on each side), "
                         f"got {window!r}")
    masks = np.asarray(masks)
    r = window // 2
    background = np.pad(masks == BACKGROUND, [(0, 0)] * (masks.ndim - 2) + [(r, r), (r, r)])
    # Background pixels in every window, from a summed-area table: four lookups per pixel.
    table = np.pad(background.cumsum(-1).cumsum(-2), [(0, 0)] * (masks.ndim - 2) + [(1, 0), (1, 0)])
    H, W = masks.shape[-2:]
    count = (table[..., window:window + H, window:window + W] - table[..., :H, window:window + W]
             - table[..., window:window + H, :W] + table[..., :H, :W])
    return count > 0


def context_ceiling(masks: np.ndarray, window: int) -> ConfusionMatrix:
    """The confusion matrix of the best labeler that sees a ``window`` x ``window`` view per pixel.

    It labels every :func:`decided` pixel right. On the others the view shows object texture
    only, which is drawn alike for boats and cars, so no labeler can do better than chance there:
    this one tosses a fair coin between boat and car. The matrix holds twice the coin's expected
    counts (each undecided pixel counted once as boat and once as car), so its ratios -- pixel
    accuracy, IoU, ``miou()`` -- are the expected ones.

    Args:
        masks: (N, H, W) or (H, W) labels of :class:`ContextScenes`.
        window: odd side of the view.
    """
    masks = np.asarray(masks)
    sure = decided(masks, window)
    confusion = ConfusionMatrix(ContextScenes.num_classes, ContextScenes.ignore_index)
    for guess in (BOAT, CAR):
        confusion.update(np.where(sure, masks, guess), masks)
    return confusion
