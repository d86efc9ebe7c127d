"""Layers that see images: Conv2d, ConvTranspose2d, pooling, unpooling and upsampling.

Every one takes x: (N, C, H, W); arguments and weight layouts are PyTorch's, so a state_dict
moves between the two unchanged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .. import functional as F
from ..creation import empty, zeros
from ..functional.conv import pair, same_padding
from ..functional.pool import adaptive_max_pool2d
from . import init
from .module import Module
from .parameter import Parameter

if TYPE_CHECKING:
    from ..tensor import Tensor
    from ..typing import DeviceLike, DTypeLike, IntPair, OptIntPair


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_channels(layer, x, C):
    if x.ndim != 4 or x.shape[1] != C:
        hint = "; add a batch dimension with x.unsqueeze(0)" if x.ndim == 3 else ""
        raise ValueError(f"{layer!r}: expected input of shape (N, {C}, H, W), got {x.shape}{hint}")


class _ConvNd(Module):
    """Shared parts of Conv2d and ConvTranspose2d: geometry, parameters, default init."""

    def __init__(self, name: str, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair, padding: IntPair | str, dilation: IntPair, groups: int, bias: bool,
                 weight_shape_head: tuple[int, int], padding_mode: str = "zeros") -> None:
        super().__init__()
        for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if n % groups:
                raise ValueError(f"{name}: {what}={n} is not divisible by groups={groups}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(name, "kernel_size", kernel_size, 1)
        self.stride = pair(name, "stride", stride, 1)
        self.dilation = pair(name, "dilation", dilation, 1)
        self.padding_mode = padding_mode
        if isinstance(padding, str):  # 'same' / 'valid' stay strings, as in PyTorch's repr
            self.padding = padding
            self._pad_lrtb = same_padding(name, padding, self.kernel_size, self.stride, self.dilation)
        else:
            self.padding = pair(name, "padding", padding, 0)
            (ph, pw) = self.padding
            self._pad_lrtb = (pw, pw, ph, ph)  # F.pad's order: last dim first
        self.weight = Parameter(empty(*weight_shape_head, *self.kernel_size))
        self.bias = Parameter(zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming normal for ReLU, fan_in from the weight layout (dim 1 * kh * kw); bias 0."""
        init.kaiming_normal_(self.weight, nonlinearity="relu")
        if self.bias is not None:
            init.zeros_(self.bias)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution: (N, in_channels, H, W) -> (N, out_channels, OH, OW).

    weight: (out_channels, in_channels / groups, kh, kw); bias: (out_channels,).
    padding: an int, an (h, w) pair, 'valid' (none) or 'same' (output size = input size; stride
    1 only). padding_mode: what the padding holds -- 'zeros', or 'reflect', 'replicate',
    'circular' (the input padded with ``F.pad`` in that mode first).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: DeviceLike | None = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__("Conv2d", in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, (out_channels, in_channels // groups), padding_mode)
        self._place(device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(self, x, self.in_channels)
        if self.padding_mode != "zeros":
            x = F.pad(x, self._pad_lrtb, mode=self.padding_mode)
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """2-D transpose convolution (learned upsampling): the adjoint of Conv2d with this weight.

    weight: (in_channels, out_channels / groups, kh, kw) -- Conv2d's layout from out to in.
    ``forward(x, output_size=(H, W))`` picks the output_padding that gives that size, which
    resolves the ambiguity of strided convolution (sizes 2k and 2k + 1 both halve to k).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntPair = 1, padding_mode: str = "zeros", device: DeviceLike | None = None,
                 dtype: DTypeLike | None = None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        self.output_padding = pair("ConvTranspose2d", "output_padding", output_padding, 0)
        super().__init__("ConvTranspose2d", in_channels, out_channels, kernel_size, stride,
                         pair("ConvTranspose2d", "padding", padding, 0), dilation, groups, bias,
                         (in_channels, out_channels // groups))
        self._place(device, dtype)

    def _output_padding(self, x, output_size):
        size = tuple(output_size)[-2:]
        smallest = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                    zip(x.shape[2:], self.stride, self.padding, self.dilation, self.kernel_size)]
        if len(size) != 2 or any(not lo <= n < lo + s for n, lo, s in zip(size, smallest, self.stride)):
            raise ValueError(f"{self!r}: output_size {tuple(output_size)} is not reachable from input "
                             f"{x.shape}; each of H, W must lie in [{smallest[0]}, "
                             f"{smallest[0] + self.stride[0] - 1}] and [{smallest[1]}, "
                             f"{smallest[1] + self.stride[1] - 1}]")
        return tuple(n - lo for n, lo in zip(size, smallest))

    def forward(self, x: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        _check_channels(self, x, self.in_channels)
        out_pad = self.output_padding if output_size is None else self._output_padding(x, output_size)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, out_pad,
                                  self.groups, self.dilation)


class MaxPool2d(Module):
    """Max over each kernel_size window, stride apart (default: kernel_size). With
    ``return_indices`` also returns where each maximum was, for MaxUnpool2d (SegNet)."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 dilation: IntPair = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over each kernel_size window, stride apart (default: kernel_size)."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (OH, OW), whatever the input size (see
    ``F.adaptive_avg_pool2d``); an int gives a square output, None in the pair keeps that size."""

    def __init__(self, output_size: OptIntPair) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """Max pooling to a fixed output size (see ``F.adaptive_max_pool2d``); with
    ``return_indices`` also where each maximum was (flat ``h*W + w`` per plane)."""

    def __init__(self, output_size: OptIntPair, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    # (a subclass of AdaptiveAvgPool2d for its parts, not its result type)
    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:  # type: ignore[override]
        return adaptive_max_pool2d(x, self.output_size, self.return_indices)


class MaxUnpool2d(Module):
    """Put each value back where MaxPool2d found its maximum; zeros elsewhere.
    ``forward(x, indices, output_size=None)``; give output_size when the pooled input had odd sizes."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> None:
        super().__init__()
        self.kernel_size = pair("MaxUnpool2d", "kernel_size", kernel_size, 1)
        self.stride = pair("MaxUnpool2d", "stride", stride or kernel_size, 1)
        self.padding = pair("MaxUnpool2d", "padding", padding, 0)

    def forward(self, x: Tensor, indices: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Upsample(Module):
    """Resize to ``size`` or by ``scale_factor`` with mode 'nearest' or 'bilinear' (see F.interpolate)."""

    def __init__(self, size: IntPair | None = None, scale_factor: float | tuple[float, float] | None = None,
                 mode: str = "nearest", align_corners: bool | None = None) -> None:
        super().__init__()
        self.size, self.mode, self.align_corners = size, mode, align_corners
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) else scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor}" if self.scale_factor is not None else f"size={self.size}"
        return info + f", mode={self.mode!r}"
