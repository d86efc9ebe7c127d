"""A PyTorch homework program runs unchanged with `import tinypix as torch`, and gives PyTorch's numbers.

The program below is written in the idiom of the most-used PyTorch U-Net (DoubleConv / Down / Up
/ OutConv): `nn.ReLU(inplace=True)`, size arithmetic with tensors and `//`, `F.pad` with those
values, `torch.cat`, both bilinear and transpose-convolution upsampling, on odd image sizes so the
padding is exercised; a Dataset of `(image, label)` tuples, a `DataLoader`, `SGD` with momentum
and weight decay, `CrossEntropyLoss(ignore_index=255)`, and `torch.save` / `torch.load` of a
state_dict. It runs once with the real PyTorch and once with `torch` bound to tinypix (its
modules put in `sys.modules` under PyTorch's names), both from the same initial weights.
"""
import sys

import numpy as np
import pytest

import tinypix

torch = pytest.importorskip("torch")

PROGRAM = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    """Downscaling with maxpool then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upscaling then double conv"""

    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        # input is CHW
        diffY = torch.tensor([x2.size()[2] - x1.size()[2]])
        diffX = torch.tensor([x2.size()[3] - x1.size()[3]])
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super(OutConv, self).__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False):
        super(UNet, self).__init__()
        self.n_channels, self.n_classes, self.bilinear = n_channels, n_classes, bilinear
        factor = 2 if bilinear else 1
        self.inc = DoubleConv(n_channels, 8)
        self.down1 = Down(8, 16)
        self.down2 = Down(16, 32 // factor)
        self.up1 = Up(32, 16 // factor, bilinear)
        self.up2 = Up(16, 8, bilinear)
        self.outc = OutConv(8, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        logits = self.outc(x)
        return logits


class Shapes(Dataset):
    """Images of a bright square on noise; the label marks the square, 255 a border to ignore."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        return torch.from_numpy(self.images[idx]), torch.from_numpy(self.labels[idx])


def train(model, images, labels, steps):
    loader = DataLoader(Shapes(images, labels), batch_size=4, shuffle=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    model.train()
    losses = []
    for image, label in loader:
        optimizer.zero_grad()
        loss = criterion(model(image), label.long())
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if len(losses) == steps:
            break
    return losses


def save_and_reload(model, path, bilinear):
    torch.save(model.state_dict(), path)
    fresh = UNet(n_channels=3, n_classes=2, bilinear=bilinear)
    fresh.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return fresh


def evaluate(model, image):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(image)).numpy()
'''

NAMES = ("torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.utils", "torch.utils.data")


def _run_as(library, namespace_name):
    """Execute PROGRAM with ``import torch`` giving ``library`` ('torch' or 'tinypix')."""
    saved = {name: sys.modules.get(name) for name in NAMES}
    if library == "tinypix":
        modules = (tinypix, tinypix.nn, tinypix.nn.functional, tinypix.optim, tinypix.utils,
                   tinypix.utils.data)
        sys.modules.update(dict(zip(NAMES, modules)))
    try:
        namespace = {"__name__": namespace_name}
        exec(compile(PROGRAM, f"<homework with {library}>", "exec"), namespace)
        return namespace
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _data(seed, n=12, h=27, w=29):
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 0.3, (n, 3, h, w)).astype(np.float32)
    labels = np.zeros((n, h, w), np.int64)
    for k in range(n):
        top, left = rng.integers(2, h - 12), rng.integers(2, w - 12)
        images[k, :, top:top + 9, left:left + 9] += 1.0
        labels[k, top:top + 9, left:left + 9] = 1
        labels[k, :, :2] = 255  # a border that the loss ignores
    return images, labels


@pytest.mark.parametrize("bilinear", [True, False], ids=["bilinear", "transpose-conv"])
def test_the_same_homework_gives_pytorchs_numbers(tmp_path, bilinear):
    real, mine = _run_as("torch", "homework_torch"), _run_as("tinypix", "homework_tinypix")
    torch.manual_seed(0)
    reference = real["UNet"](n_channels=3, n_classes=2, bilinear=bilinear)
    model = mine["UNet"](n_channels=3, n_classes=2, bilinear=bilinear)
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict({k: v.numpy().copy() for k, v in reference.state_dict().items()})
    images, labels = _data(seed=1)

    expected = real["train"](reference, images, labels, steps=3)
    got = mine["train"](model, images, labels, steps=3)
    np.testing.assert_allclose(got, expected, rtol=2e-3)

    reference = real["save_and_reload"](reference, tmp_path / "torch.pt", bilinear)
    model = mine["save_and_reload"](model, tmp_path / "tinypix.pt", bilinear)
    test_image = _data(seed=2, n=2)[0]
    expected, got = real["evaluate"](reference, test_image), mine["evaluate"](model, test_image)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-2 * scale)
