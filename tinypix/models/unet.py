"""U-Net (Ronneberger et al., 2015): downsample to see context, upsample to label every pixel,
and concatenate each encoder level into the decoder so fine detail survives the bottleneck.
(``skips=False`` leaves the concatenations out: an encoder-decoder whose decoder must rebuild
every boundary from the coarse bottleneck, the baseline that shows what the skips are for.)

    x (N, 3, H, W)
    enc0 ---------------------------------------------- concat -> dec0 -> 1x1 conv -> (N, out, H, W)
      maxpool                                           up
      enc1 ------------------------------ concat -> dec1
        maxpool                           up
        ...            bottleneck (H / 2^depth)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import nn
from ..functional import cat
from .heads import TaskHead, crop, init_output_bias, pad_to_multiple

if TYPE_CHECKING:
    from ..tensor import Tensor


class ConvBlock(nn.Sequential):
    """Two (3x3 conv, BatchNorm, ReLU) layers; the conv bias is dropped as BatchNorm re-centers."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class UNet(nn.Module):
    """U-Net for per-pixel outputs.

    Args:
        in_channels: input channels (3 for RGB).
        out_channels: output maps (classes for segmentation, 1 for depth, 3 for normals).
        base_channels: channels at full resolution; doubled at each level down.
        depth: number of 2x downsamplings (the bottleneck is at H / 2**depth).
        upsample: 'transpose' (2x2 transpose conv, stride 2) or 'bilinear' (bilinear 2x then 1x1 conv).
        task: 'segmentation', 'depth' or 'normals' -- selects the output activation (see heads.py).
        skips: concatenate each encoder level into the decoder (the U-Net); False gives the same
            encoder-decoder without skip connections (each decoder block then sees only the
            upsampled coarser map, so it has half the input channels).

    Shapes: x (N, in_channels, H, W) -> (N, out_channels, H, W) for any H, W: the input is
    zero-padded up to a multiple of 2**depth and the output cropped back.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 4, base_channels: int = 16, depth: int = 4,
                 upsample: str = "transpose", task: str = "segmentation", skips: bool = True) -> None:
        super().__init__()
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"UNet: upsample must be 'transpose' or 'bilinear', got {upsample!r}")
        if depth < 1:
            raise ValueError(f"UNet: depth must be at least 1, got {depth}")
        self.depth = depth
        self.skips = skips
        widths = [base_channels * 2 ** i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            [ConvBlock(in_channels, widths[0])] + [ConvBlock(widths[i - 1], widths[i]) for i in range(1, depth + 1)])
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in reversed(range(depth)):
            if upsample == "transpose":
                self.ups.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            else:
                self.ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                              nn.Conv2d(widths[i + 1], widths[i], 1)))
            self.decoders.append(ConvBlock((2 if skips else 1) * widths[i], widths[i]))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        init_output_bias(self.head, task)
        self.activation = TaskHead(task)

    def forward(self, x: Tensor) -> Tensor:
        x, (H, W) = pad_to_multiple(x, 2 ** self.depth)
        levels = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            levels.append(x)
        x = levels.pop()  # the bottleneck
        for up, dec in zip(self.ups, self.decoders):
            fine = levels.pop()
            x = dec(cat([fine, up(x)], dim=1) if self.skips else up(x))  # skip connection: concatenate channels
        y = self.activation(self.head(x))
        return crop(y, H, W)
