"""Built-in data: ray-cast 3-D scenes that come with a class mask, a depth map and surface normals.

Each scene is a few spheres, boxes and cylinders standing on a checkered ground plane in front of a
back wall, seen through a pinhole camera and lit by one distant light (Lambertian shading, no
shadows). Every pixel's ray is intersected with every surface at once in vectorized NumPy; the
nearest hit gives the pixel its class, its depth and its normal, so the three labels agree exactly
with the picture. The ground and the wall catch every ray that misses the objects, so every depth
is finite.

Colours and light are random by default, the same for every class, so only shape tells the classes
apart. ``colors='by_class'`` paints each class its own colour (with a little jitter) under a fixed
light, on the same cameras and objects: then a pixel's colour follows from its class and shape.

Coordinates:
    World: y is up, the ground is the plane y = 0 and the back wall the plane z = WALL_Z.
    Camera, the frame of ``depth`` and ``normals``: x right, y up, z towards the camera, so the
    camera looks along -z (OpenGL's convention). ``depth`` is the distance along the viewing axis
    (-z of the hit point in camera coordinates), not the length of the ray.

Pixels whose footprint holds more than one class (rays through the pixel's four corners and its
centre disagree) get the label ``ignore_index`` = 255: about one pixel wide along every boundary
between different classes, where even a perfect model could not say which class is right.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import Callable, ClassVar

import numpy as np

from .loader import Dataset, Sample

WALL_Z = -4.5
UP = np.array([0.0, 1.0, 0.0])

# random_scene(rng, colors='by_class'): a colour per object class (sphere, box, cylinder), each
# channel jittered by up to CLASS_COLOR_JITTER; the floor and wall keep colours of their own.
COLOR_MODES = ("random", "by_class")
CLASS_COLORS = {1: (0.85, 0.25, 0.2), 2: (0.2, 0.45, 0.85), 3: (0.9, 0.75, 0.2)}
CLASS_COLOR_JITTER = 0.05
WALL_COLOR = (0.7, 0.7, 0.65)
GROUND_COLORS = ((0.55, 0.6, 0.5), (0.4, 0.45, 0.35))
FIXED_LIGHT = (0.5, 1.2, 0.6)
FIXED_AMBIENT = 0.25


def _rotate_y(v, angle):
    """Rotate vectors ``v: (3, M)`` by ``angle`` radians about the world y axis."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[0] + s * v[2], v[1], -s * v[0] + c * v[2]])


def _first_root(a, b, c):
    """Smaller root of ``a t^2 + 2 b t + c = 0`` per ray, ``inf`` where there is none or it is <= 0.

    The camera is outside every object, so the smaller root is where a ray enters the surface."""
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where((disc >= 0) & (t > 0), t, np.inf)


# Every surface has the same three methods, so the renderer can treat them alike:
#   intersect(o, d) -> t: (R,)   ray parameter of the first hit of the rays o + t d, inf for a miss;
#                                o: (3,) the camera, d: (3, R) one direction per ray
#   normal(p) -> (3, M)          outward unit normal (world frame) at surface points p: (3, M)
#   albedo(p) -> (3, M)          surface colour at p, in [0, 1]
# and a class attribute ``label``, the semantic class. Vectors are stored component-first, (3, R),
# so that d[0] is all the x components in one contiguous row: NumPy is fastest that way round.

@dataclass
class Ground:
    """The plane y = 0 with a checker texture of two colours and square tiles of side ``tile``."""
    color: tuple[float, float, float]
    color2: tuple[float, float, float]
    tile: float
    label: ClassVar[int] = 0

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            t = -o[1] / d[1]
        return np.where(d[1] < 0, t, np.inf)

    def normal(self, p: np.ndarray) -> np.ndarray:
        return np.broadcast_to(UP[:, None], p.shape)

    def albedo(self, p: np.ndarray) -> np.ndarray:
        odd = (np.floor(p[0] / self.tile) + np.floor(p[2] / self.tile)) % 2 == 1
        return np.where(odd, np.asarray(self.color2)[:, None], np.asarray(self.color)[:, None])


@dataclass
class Wall:
    """The plane z = WALL_Z facing the camera, one colour, darker towards the floor."""
    color: tuple[float, float, float]
    label: ClassVar[int] = 0

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            t = (WALL_Z - o[2]) / d[2]
        return np.where(d[2] < 0, t, np.inf)

    def normal(self, p: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.array([[0.0], [0.0], [1.0]]), p.shape)

    def albedo(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(self.color)[:, None] * (0.75 + 0.25 * np.clip(p[1] / 4.0, 0.0, 1.0))


@dataclass
class Sphere:
    """A sphere of ``radius`` resting on the ground at (x, 0, z)."""
    x: float
    z: float
    radius: float
    color: tuple[float, float, float]
    label: ClassVar[int] = 1

    def center(self) -> np.ndarray:
        """The centre as a (3, 1) column, to broadcast against (3, M) points."""
        return np.array([[self.x], [self.radius], [self.z]])

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        oc = o - self.center()[:, 0]
        return _first_root((d * d).sum(0), oc @ d, oc @ oc - self.radius ** 2)

    def normal(self, p: np.ndarray) -> np.ndarray:
        return (p - self.center()) / self.radius

    def albedo(self, p: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.color)[:, None], p.shape)

    def footprint(self) -> float:
        return self.radius


@dataclass
class Box:
    """A box with half-sizes ``half`` = (hx, hy, hz) on the ground at (x, 0, z), turned by
    ``angle`` radians about the vertical axis."""
    x: float
    z: float
    half: tuple[float, float, float]
    angle: float
    color: tuple[float, float, float]
    label: ClassVar[int] = 2

    def to_local(self, v: np.ndarray, is_point: bool) -> np.ndarray:
        """World vectors ``v: (3, M)`` in the box's frame (points also shifted to its centre)."""
        if is_point:
            v = v - np.array([[self.x], [self.half[1]], [self.z]])
        return _rotate_y(v, -self.angle)

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        # Slab method: the ray is inside the box between entering its last slab and leaving its first.
        ol = self.to_local(o[:, None], True)
        dl = self.to_local(d, False)
        half = np.asarray(self.half)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half - ol) / dl, (half - ol) / dl
        t_in = np.minimum(t1, t2).max(0)
        t_out = np.maximum(t1, t2).min(0)
        return np.where((t_in <= t_out) & (t_in > 0), t_in, np.inf)

    def normal(self, p: np.ndarray) -> np.ndarray:
        # The face hit is the one on whose slab boundary the point lies: the largest |q| / half.
        q = self.to_local(p, True) / np.asarray(self.half)[:, None]
        axis = np.abs(q).argmax(0)
        cols = np.arange(q.shape[1])
        n = np.zeros_like(q)
        n[axis, cols] = np.sign(q[axis, cols])
        return _rotate_y(n, self.angle)

    def albedo(self, p: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.color)[:, None], p.shape)

    def footprint(self) -> float:
        return float(np.hypot(self.half[0], self.half[2]))


@dataclass
class Cylinder:
    """An upright cylinder of ``radius`` and ``height`` standing on the ground at (x, 0, z)."""
    x: float
    z: float
    radius: float
    height: float
    color: tuple[float, float, float]
    label: ClassVar[int] = 3

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        ox, oz = o[0] - self.x, o[2] - self.z
        dx, dy, dz = d
        with np.errstate(divide="ignore", invalid="ignore"):
            # The side: a circle in the xz plane, cut to 0 <= y <= height.
            t_side = _first_root(dx * dx + dz * dz, dx * ox + dz * oz, ox * ox + oz * oz - self.radius ** 2)
            y = o[1] + t_side * dy
            t_side = np.where((y >= 0) & (y <= self.height), t_side, np.inf)
            # The top cap; the bottom one sits on the ground and is never seen.
            t_cap = (self.height - o[1]) / dy
            on_cap = (t_cap > 0) & ((ox + t_cap * dx) ** 2 + (oz + t_cap * dz) ** 2 <= self.radius ** 2)
        return np.minimum(t_side, np.where(on_cap, t_cap, np.inf))

    def normal(self, p: np.ndarray) -> np.ndarray:
        radial = np.stack([p[0] - self.x, np.zeros(p.shape[1]), p[2] - self.z]) / self.radius
        on_cap = p[1] >= self.height - 1e-9
        return np.where(on_cap, UP[:, None], radial)

    def albedo(self, p: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.color)[:, None], p.shape)

    def footprint(self) -> float:
        return self.radius


@dataclass
class Scene:
    """Everything needed to render one picture: camera, light and surfaces.

    ``eye`` and ``target`` are world points, ``fov`` the full field of view in degrees (the image
    is square), ``light`` a unit world vector pointing towards the light, ``ambient`` the share of
    light that reaches every surface.
    """
    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov: float
    light: tuple[float, float, float]
    ambient: float
    surfaces: list[Ground | Wall | Sphere | Box | Cylinder]


def random_scene(rng: np.random.Generator, colors: str = "random") -> Scene:
    """Draw a Scene: 3 to 5 non-overlapping objects of random classes, colours and sizes, and a
    slightly varied camera and light. Boxes are turned to show the camera a corner, since a box
    seen face-on has the outline of a cylinder.

    Args:
        rng: a ``numpy.random.Generator``; the scene depends on nothing else.
        colors: ``'random'``: every surface's colour and the light are drawn at random, from the
            same distribution for every class, so only shape tells the classes apart.
            ``'by_class'``: each class has its own colour (``CLASS_COLORS``, each channel moved by
            at most ``CLASS_COLOR_JITTER``), the wall and floor keep fixed colours and the light a
            fixed direction and ambient share, so a pixel's colour follows from its class and its
            surface's orientation. The camera and the objects are the same as with ``'random'``
            from the same generator state: only colours and light differ.
    """
    if colors not in COLOR_MODES:
        raise ValueError(f"random_scene: colors must be one of {COLOR_MODES}, got {colors!r}")

    def color():
        return tuple(rng.uniform(0.1, 0.95, 3))

    # The camera orbits the point `target` at a little above the ground.
    azimuth = rng.uniform(-0.35, 0.35)
    elevation = rng.uniform(0.3, 0.55)
    distance = rng.uniform(6.0, 7.0)
    target = np.array([rng.uniform(-0.3, 0.3), rng.uniform(0.5, 0.8), rng.uniform(-0.4, 0.2)])
    eye = target + distance * np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation),
                                        np.cos(azimuth) * np.cos(elevation)])

    ground_color = rng.uniform(0.25, 0.9, 3)
    darker = ground_color * rng.uniform(0.55, 0.8)
    surfaces = [Ground(tuple(ground_color), tuple(darker), rng.uniform(0.5, 1.2)), Wall(color())]
    objects = []
    n_objects = rng.integers(3, 6)
    for _ in range(100):  # rejection sampling of positions; gives up on crowded draws
        if len(objects) == n_objects:
            break
        x, z = rng.uniform(-2.3, 2.3), rng.uniform(-2.0, 1.8)
        kind = rng.integers(3)
        if kind == 0:
            obj = Sphere(x, z, rng.uniform(0.6, 1.1), color())
        elif kind == 1:
            half = (rng.uniform(0.5, 0.9), rng.uniform(0.35, 0.8), rng.uniform(0.5, 0.9))
            # A box turned by the camera's azimuth faces it squarely; pi / 4 more shows a corner.
            obj = Box(x, z, half, azimuth + np.pi / 4 + rng.uniform(-0.3, 0.3), color())
        else:
            obj = Cylinder(x, z, rng.uniform(0.4, 0.7), rng.uniform(1.0, 2.2), color())
        if all(np.hypot(x - o.x, z - o.z) > obj.footprint() + o.footprint() + 0.1 for o in objects):
            objects.append(obj)

    light = np.array([rng.uniform(-1, 1), rng.uniform(0.6, 1.6), rng.uniform(0.1, 1.0)])
    scene = Scene(tuple(eye), tuple(target), rng.uniform(40, 48), tuple(light / np.linalg.norm(light)),
                  rng.uniform(0.15, 0.3), surfaces + objects)
    # Recoloured after every draw above, so that both modes place the same objects.
    return _color_by_class(scene, rng) if colors == "by_class" else scene


def _color_by_class(scene: Scene, rng: np.random.Generator) -> Scene:
    """``scene`` with its colours set by class (with jitter drawn from ``rng``) and the fixed light."""
    def jittered(label):
        base = np.asarray(CLASS_COLORS[label])
        return tuple(np.clip(base + rng.uniform(-CLASS_COLOR_JITTER, CLASS_COLOR_JITTER, 3), 0.0, 1.0))

    surfaces = []
    for surface in scene.surfaces:
        if isinstance(surface, Ground):
            surfaces.append(replace(surface, color=GROUND_COLORS[0], color2=GROUND_COLORS[1]))
        elif isinstance(surface, Wall):
            surfaces.append(replace(surface, color=WALL_COLOR))
        else:
            surfaces.append(replace(surface, color=jittered(surface.label)))
    light = np.asarray(FIXED_LIGHT) / np.linalg.norm(FIXED_LIGHT)
    return replace(scene, light=tuple(light), ambient=FIXED_AMBIENT, surfaces=surfaces)


def render_scene(scene: Scene, size: int = 64) -> Sample:
    """Ray-cast ``scene`` into a square picture and its labels.

    Returns a dict of NumPy arrays: ``image`` float32 (3, size, size) in [0, 1]; ``mask`` int64
    (size, size) with the class of each pixel, 255 where the pixel straddles two classes;
    ``depth`` float32 (size, size), positive; ``normals`` float32 (3, size, size), unit vectors in
    camera coordinates (x right, y up, z towards the camera).
    """
    eye = np.asarray(scene.eye, dtype=np.float64)
    forward = np.asarray(scene.target) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, UP)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half_width = np.tan(np.radians(scene.fov) / 2)

    # Image-plane coordinates in [-1, 1] of pixel corners (size + 1 per side) and of pixel centres.
    corners = np.linspace(-1.0, 1.0, size + 1)
    centres = (corners[:-1] + corners[1:]) / 2
    uc, vc = np.meshgrid(centres, -centres)  # row 0 is the top of the image: v decreases downwards
    ue, ve = np.meshgrid(corners, -corners)
    u = np.concatenate([uc.ravel(), ue.ravel()]) * half_width
    v = np.concatenate([vc.ravel(), ve.ravel()]) * half_width
    # The forward component of every direction is 1, so the ray parameter t is the depth itself.
    d = forward[:, None] + right[:, None] * u + up[:, None] * v  # (3, R)

    # Z-buffer: the nearest surface along each ray.
    t = np.full(d.shape[1], np.inf)
    hit = np.zeros(d.shape[1], dtype=np.int64)
    for k, surface in enumerate(scene.surfaces):
        tk = surface.intersect(eye, d)
        hit = np.where(tk < t, k, hit)
        t = np.minimum(t, tk)
    labels = np.array([s.label for s in scene.surfaces])[hit]

    # Normals and colours only at pixel centres; the corner rays exist for the boundary band.
    n_pix = size * size
    points = eye[:, None] + t[:n_pix] * d[:, :n_pix]
    normal = np.empty((3, n_pix))
    albedo = np.empty((3, n_pix))
    for k, surface in enumerate(scene.surfaces):
        on = hit[:n_pix] == k
        normal[:, on] = surface.normal(points[:, on])
        albedo[:, on] = surface.albedo(points[:, on])
    shade = scene.ambient + (1 - scene.ambient) * np.clip(np.asarray(scene.light) @ normal, 0, None)
    image = np.clip(albedo * shade, 0, 1)
    # World to camera frame: components along right, up and backwards (towards the camera).
    normals_camera = np.stack([right, up, -forward]) @ normal

    mask = labels[:n_pix].reshape(size, size)
    corner = labels[n_pix:].reshape(size + 1, size + 1)
    straddles = ((corner[:-1, :-1] != mask) | (corner[:-1, 1:] != mask) |
                 (corner[1:, :-1] != mask) | (corner[1:, 1:] != mask))
    return {
        "image": image.reshape(3, size, size).astype(np.float32),
        "mask": np.where(straddles, SyntheticScenes.ignore_index, mask),
        "depth": t[:n_pix].reshape(size, size).astype(np.float32),
        "normals": normals_camera.reshape(3, size, size).astype(np.float32),
    }


class GeneratedScenes(Dataset):
    """``n`` scenes made on first access by ``_generate(i)`` (from a generator seeded with
    ``(seed, i)``) and kept in memory as read-only arrays; ``transform``, if set, is applied on
    every access. The base of SyntheticScenes and ContextScenes."""

    n: int
    transform: Callable[[Sample], Sample] | None
    _cache: dict[int, Sample]

    def _generate(self, i: int) -> Sample:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Sample:
        i = operator.index(i)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"sample index {i} is out of range for {self.n} scenes")
        if i not in self._cache:
            self._cache[i] = self._generate(i)
        sample = dict(self._cache[i])
        return self.transform(sample) if self.transform is not None else sample


class SyntheticScenes(GeneratedScenes):
    """``n`` procedurally rendered scenes: the lecture's three pixel-labeling tasks from one source.

    Sample ``i`` is a dict of NumPy arrays (``size`` = S):
        ``image``   float32 (3, S, S) in [0, 1], with a little Gaussian sensor noise;
        ``mask``    int64 (S, S): 0 background (ground and wall), 1 sphere, 2 box, 3 cylinder,
                    255 (``ignore_index``) on the ~1 px band of pixels that straddle two classes;
        ``depth``   float32 (S, S): metric depth along the camera axis, finite and positive;
        ``normals`` float32 (3, S, S): unit surface normals in camera coordinates,
                    x right, y up, z towards the camera.

    Args:
        n: number of scenes.
        size: height and width of the pictures in pixels.
        seed: scene ``i`` is drawn from a generator seeded with ``(seed, i)``, so it is the same
            whatever ``n`` is and whichever scenes were made before it.
        transform: if given, ``transform(sample)`` is applied on every access (the transforms in
            ``tinypix.data.transforms`` then draw from their module's generator). To augment
            reproducibly, give the transform to the DataLoader instead.
        noise: standard deviation of the Gaussian noise added to the image.
        colors: ``'random'`` (every colour and the light drawn at random, the same for every
            class) or ``'by_class'`` (a colour per class with small jitter, fixed floor, wall and
            light; the same cameras and objects as ``'random'``): see ``random_scene``.

    Scenes are rendered on first access and kept in memory, as
    read-only arrays so that the cache cannot be changed by accident.
    """
    classes = ("background", "sphere", "box", "cylinder")
    num_classes = 4
    ignore_index = 255

    def __init__(self, n: int, size: int = 64, seed: int = 0, transform: Callable[[Sample], Sample] | None = None,
                 noise: float = 0.02, colors: str = "random") -> None:
        if colors not in COLOR_MODES:
            raise ValueError(f"SyntheticScenes: colors must be one of {COLOR_MODES}, got {colors!r}")
        self.n, self.size, self.seed = int(n), int(size), int(seed)
        self.colors = colors
        self.transform = transform
        self.noise = noise
        self._cache = {}

    def _generate(self, i: int) -> Sample:
        rng = np.random.default_rng((self.seed, i))
        sample = render_scene(random_scene(rng, self.colors), self.size)
        noisy = sample["image"] + rng.normal(0.0, self.noise, sample["image"].shape).astype(np.float32)
        sample["image"] = np.clip(noisy, 0, 1)
        for a in sample.values():
            a.flags.writeable = False
        return sample
