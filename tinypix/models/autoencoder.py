"""A convolutional autoencoder: encode an image to a small code, decode it back.

Training minimises ||D(E(x)) - x||; nothing forces the code to be meaningful except that it is
too small to copy the input, so it must summarise. ``encode`` and ``decode`` are separate so a
student can, e.g., decode straight lines between two codes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import nn

if TYPE_CHECKING:
    from ..tensor import Tensor


class AutoEncoder(nn.Module):
    """x: (N, in_channels, size, size) -> code (N, latent_dim) -> (N, in_channels, size, size).

    ``size`` must be divisible by 2**stages. The decoder ends in a sigmoid (images in [0, 1]).
    """

    def __init__(self, in_channels: int = 3, size: int = 64, latent_dim: int = 32, base_channels: int = 16,
                 stages: int = 3) -> None:
        super().__init__()
        if size % 2 ** stages:
            raise ValueError(f"AutoEncoder: size {size} must be divisible by 2**stages = {2 ** stages}")
        widths = [base_channels * 2 ** i for i in range(stages)]
        enc, c = [], in_channels
        for w in widths:  # each stage halves H and W with a stride-2 convolution
            enc += [nn.Conv2d(c, w, 4, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.bottom = (c, size // 2 ** stages, size // 2 ** stages)
        flat = c * self.bottom[1] * self.bottom[2]
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(flat, latent_dim))
        dec = []
        outs = list(reversed([in_channels] + widths[:-1]))  # e.g. widths 16, 32, 64 -> 32, 16, 3
        for i, w in enumerate(outs):  # each stage doubles H and W
            dec.append(nn.ConvTranspose2d(c, w, 4, stride=2, padding=1))
            dec += [nn.Sigmoid()] if i == len(outs) - 1 else [nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.expand = nn.Linear(latent_dim, flat)
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        h = self.expand(z).relu().reshape(z.shape[0], *self.bottom)
        return self.decoder(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))
