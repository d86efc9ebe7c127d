"""Data for pixel labeling: datasets, the DataLoader, joint transforms.

    from tinypix.data import SyntheticScenes, DataLoader, transforms as T
    train = SyntheticScenes(1000, size=64, seed=0)
    aug = T.Compose([T.RandomHorizontalFlip(), T.RandomResizedCrop(64, scale=(0.6, 1.0))])
    for batch in DataLoader(train, batch_size=16, shuffle=True, seed=0, transform=aug):
        x, y = batch["image"], batch["mask"]   # Tensors (16, 3, 64, 64) and (16, 64, 64)

The DataLoader is ``tinypix.utils.data.DataLoader`` (``torch.utils.data``'s) with a ``seed`` and a
joint ``transform``; ``num_workers=2`` loads and augments in two worker processes.
"""
from . import transforms
from .folders import DepthNormalsFolder, SegmentationFolder, read_depth, read_image, read_mask, read_normals
from .loader import DataLoader, Dataset, collate
from .scenes import Box, Cylinder, Ground, Scene, Sphere, SyntheticScenes, Wall, random_scene, render_scene
from .context import ContextScenes, context_ceiling, decided, render_context_scene
from .transforms import (ColorJitter, Compose, Normalize, RandomCrop, RandomDepthScale, RandomHorizontalFlip,
                         RandomResizedCrop, Resize, Transform)

__all__ = [
    "Dataset", "DataLoader", "collate",
    "SyntheticScenes", "Scene", "Ground", "Wall", "Sphere", "Box", "Cylinder", "random_scene", "render_scene",
    "SegmentationFolder", "DepthNormalsFolder", "read_image", "read_mask", "read_depth", "read_normals",
    "transforms", "Transform", "Compose", "RandomHorizontalFlip", "RandomCrop", "Resize", "RandomResizedCrop",
    "ColorJitter", "Normalize", "RandomDepthScale",
    "ContextScenes", "context_ceiling", "decided", "render_context_scene",
]
