"""SegNet (Badrinarayanan et al., 2017): the decoder upsamples with max-unpooling, putting each
value back at the position its encoder's max-pool took it from, then convolves to fill the
zeros. Only the pooling indices travel from encoder to decoder, not whole feature maps.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import nn
from ..functional import max_pool2d, max_unpool2d
from .heads import TaskHead, crop, init_output_bias, pad_to_multiple
from .unet import ConvBlock

if TYPE_CHECKING:
    from ..tensor import Tensor


class SegNet(nn.Module):
    """x: (N, in_channels, H, W) -> (N, out_channels, H, W); padded to a multiple of 2**depth."""

    def __init__(self, in_channels: int = 3, out_channels: int = 4, base_channels: int = 16, depth: int = 3,
                 task: str = "segmentation") -> None:
        super().__init__()
        self.depth = depth
        widths = [base_channels * 2 ** i for i in range(depth)]
        self.encoders = nn.ModuleList(
            [ConvBlock(in_channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth)])
        self.decoders = nn.ModuleList(
            [ConvBlock(widths[i], widths[i - 1] if i > 0 else widths[0]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        init_output_bias(self.head, task)
        self.activation = TaskHead(task)

    def forward(self, x: Tensor) -> Tensor:
        x, (H, W) = pad_to_multiple(x, 2 ** self.depth)
        stack = []
        for enc in self.encoders:
            x = enc(x)
            size = x.shape[-2:]
            x, idx = max_pool2d(x, 2, return_indices=True)
            stack.append((idx, size))
        for dec in self.decoders:
            idx, size = stack.pop()
            x = dec(max_unpool2d(x, idx, 2, output_size=size))  # values return to where they came from
        y = self.activation(self.head(x))
        return crop(y, H, W)
