"""Fully convolutional network (Long, Shelhamer and Darrell, 2015), with a small VGG-style backbone.

A classification net turned into a pixel labeler: its fully connected layers become 1x1
convolutions, so it accepts any input size and outputs a coarse score map (1/32 of the input);
transpose convolutions, initialised as bilinear upsampling, bring the scores back to full
size. The 16s and 8s variants first fuse in scores from the 1/16 and 1/8 feature maps (skip
connections), which sharpens the boundaries.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import nn
from .heads import TaskHead, crop, init_output_bias, pad_to_multiple

if TYPE_CHECKING:
    from ..tensor import Tensor


def bilinear_kernel(channels: int, kernel_size: int) -> np.ndarray:
    """A (channels, channels, k, k) transpose-conv weight that upsamples each channel bilinearly."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = np.arange(kernel_size)
    filt1d = 1 - np.abs(og - center) / factor
    w = np.zeros((channels, channels, kernel_size, kernel_size), dtype=np.float32)
    w[np.arange(channels), np.arange(channels)] = np.outer(filt1d, filt1d)
    return w


def upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A transpose conv that scales H and W by exactly ``factor`` and starts as bilinear upsampling."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    up.weight.data[...] = bilinear_kernel(channels, 2 * factor)
    return up


def vgg_stage(c_in: int, c_out: int, convs: int) -> nn.Sequential:
    layers = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class FCN(nn.Module):
    """FCN-32s / 16s / 8s. x: (N, in_channels, H, W) -> (N, out_channels, H, W), any H and W.

    Args:
        variant: '32s' (upsample the 1/32 scores), '16s' (+ 1/16 skip) or '8s' (+ 1/16 and 1/8 skips).
        width: channels of the first stage (doubled per stage, at most 8x).
        task: 'segmentation', 'depth' or 'normals' (see heads.py).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 4, variant: str = "8s", width: int = 16,
                 task: str = "segmentation") -> None:
        super().__init__()
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"FCN: variant must be '32s', '16s' or '8s', got {variant!r}")
        self.variant = variant
        w = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        self.stage1, self.stage2 = vgg_stage(in_channels, w[0], 2), vgg_stage(w[0], w[1], 2)
        self.stage3, self.stage4 = vgg_stage(w[1], w[2], 2), vgg_stage(w[2], w[3], 2)
        self.stage5 = vgg_stage(w[3], w[4], 2)
        # "fc6" and "fc7" as convolutions: the classifier slides over the feature map.
        self.fc = nn.Sequential(nn.Conv2d(w[4], 16 * width, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.2),
                                nn.Conv2d(16 * width, 16 * width, 1), nn.ReLU(), nn.Dropout2d(0.2))
        self.score32 = nn.Conv2d(16 * width, out_channels, 1)
        if variant == "32s":
            self.up_final = upsampler(out_channels, 32)
        else:
            self.score16 = nn.Conv2d(w[3], out_channels, 1)
            self.up32to16 = upsampler(out_channels, 2)
            if variant == "16s":
                self.up_final = upsampler(out_channels, 16)
            else:
                self.score8 = nn.Conv2d(w[2], out_channels, 1)
                self.up16to8 = upsampler(out_channels, 2)
                self.up_final = upsampler(out_channels, 8)
        for m in self.modules():  # skip scores start at zero, so training begins from the coarser net
            if m is not self.score32 and isinstance(m, nn.Conv2d) and m.out_channels == out_channels:
                m.weight.data[...] = 0
        init_output_bias(self.score32, task)
        self.activation = TaskHead(task)

    def forward(self, x: Tensor) -> Tensor:
        x, (H, W) = pad_to_multiple(x, 32)
        p3 = self.stage3(self.stage2(self.stage1(x)))   # 1/8
        p4 = self.stage4(p3)                            # 1/16
        s = self.score32(self.fc(self.stage5(p4)))      # 1/32 class scores
        if self.variant != "32s":
            s = self.up32to16(s) + self.score16(p4)     # fuse at 1/16
            if self.variant == "8s":
                s = self.up16to8(s) + self.score8(p3)   # fuse at 1/8
        y = self.activation(self.up_final(s))
        return crop(y, H, W)
