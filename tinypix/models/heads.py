"""Task heads: what the last layer of a pixel-labeling network means.

All models end in a 1x1 convolution producing ``out_channels`` maps; the head turns them into
    'segmentation'  class scores (logits), (N, classes, H, W) -- trained with cross-entropy;
    'depth'         a positive depth, (N, 1, H, W) -- exp of the raw output (the net predicts log-depth);
    'normals'       unit surface normals, (N, 3, H, W) -- the raw 3-vector divided by its length.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import nn
from ..functional import normalize, pad

if TYPE_CHECKING:
    from ..tensor import Tensor

TASKS = ("segmentation", "depth", "normals")


class TaskHead(nn.Module):
    """The output activation for one task (see the module docstring)."""

    def __init__(self, task: str = "segmentation") -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"TaskHead: unknown task {task!r}; choose one of {TASKS}")
        self.task = task

    def forward(self, x: Tensor) -> Tensor:
        if self.task == "depth":
            return x.clamp(-10.0, 10.0).exp()  # clamp: an untrained net must not overflow exp
        if self.task == "normals":
            # eps 1e-3, not 1e-12: where the raw output is exactly 0 (common at init, when all
            # ReLU features are off) the gradient is ~1/eps, and 1e12 overflows Adam's state.
            return normalize(x, dim=1, eps=1e-3)
        return x

    def extra_repr(self) -> str:
        return repr(self.task)


def init_output_bias(conv: nn.Conv2d, task: str) -> None:
    """Start a normals net facing the camera: bias (0, 0, 1) on its last conv, so no pixel's raw
    output is exactly 0 (a vector with no direction) where all ReLU features are off."""
    if task == "normals" and conv.bias is not None:
        conv.bias.data[...] = conv.bias.data.dtype.type(0)
        conv.bias.data[2] = 1


def default_out_channels(task: str, num_classes: int) -> int:
    """Channels the last 1x1 convolution needs for ``task``."""
    return {"segmentation": num_classes, "depth": 1, "normals": 3}[task]


def pad_to_multiple(x: Tensor, m: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad x: (N, C, H, W) at the bottom and right up to multiples of ``m``; returns the
    padded tensor and (H, W), so the output can be cropped back with ``crop(y, H, W)``."""
    H, W = x.shape[-2:]
    ph, pw = (-H) % m, (-W) % m
    return (pad(x, (0, pw, 0, ph)) if ph or pw else x), (H, W)


def crop(y: Tensor, H: int, W: int) -> Tensor:
    """y[..., :H, :W] (no op when the sizes already match)."""
    return y if y.shape[-2:] == (H, W) else y[:, :, :H, :W]
