"""Compute kernels for convolution, pooling and resizing: arrays in, arrays out, no autograd.

    from tinypix import kernels
    cols = kernels.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1))   # x: (N, C, H, W)

Implementations:
  reference  plain NumPy (``reference.py``), the specification; also runs on CuPy arrays.
  numba      compiled CPU loops (``cpu.py``), the default for NumPy arrays; convolution there
             runs a chunk of images at a time (``cpu_conv.py``, see ``chunked_conv``), big 3x3
             stride-1 layers by Winograd's algorithm (``cpu_winograd.py``, see ``applies``),
             windows that tile the image (2x2 stride 2, 1x1) by reordering (``cpu_patches.py``),
             each core on its own share of the images (``cpu_team.py``),
             training batch norm in fused loops (``cpu_norm.py``, see ``fused_batch_norm``)
             and (leaky) ReLU in one pass (``cpu_relu.py``, see ``threaded_relu``).
  cuda       CUDA C kernels (``*.cu``, compiled by CuPy in ``cuda.py``), the default for CuPy arrays.

This module is the one place that picks an implementation, per call, from the array and the
environment variable ``TINYPIX_KERNELS``: unset, '' or 'numba' means the fast path for the
array's device, 'reference' forces the readable one (for debugging). float16 NumPy arrays always
take the readable path. ``cpu.py`` (and Numba with it) and ``cuda.py`` are imported on first
use, so importing this package stays cheap.
"""
import os

import numpy as np

from . import reference
from .reference import bilinear_source_index, conv_output_size

ENV_VAR = "TINYPIX_KERNELS"
CHOICES = ("", "numba", "reference")

__all__ = ["backend_name", "bilinear_interpolate", "bilinear_interpolate_backward",
           "bilinear_source_index", "chunked_conv", "col2im", "conv_output_size",
           "fused_batch_norm", "im2col", "max_pool2d", "max_pool2d_backward", "max_unpool2d",
           "max_unpool2d_backward", "threaded_relu"]


def _implementation(x):
    """The module whose kernels compute on array ``x``."""
    choice = os.environ.get(ENV_VAR, "")
    if choice not in CHOICES:
        raise ValueError(f"{ENV_VAR}={choice!r} is not one of {', '.join(map(repr, CHOICES))}")
    if choice == "reference":
        return reference
    if reference._xp(x) is not np:
        from . import cuda
        return cuda
    if x.dtype == np.float16:  # Numba has no float16 arithmetic on the CPU
        return reference
    from . import cpu
    return cpu


def backend_name(x):
    """'reference', 'numba' or 'cuda': which implementation a kernel call on ``x`` would use now."""
    return {"reference": "reference", "cpu": "numba", "cuda": "cuda"}[_implementation(x).__name__.rsplit(".", 1)[-1]]


def _numba_path(x):
    return _implementation(x).__name__.rsplit(".", 1)[-1] == "cpu"


def chunked_conv(x):
    """The module ``cpu_conv`` (convolution a cache-sized chunk of images at a time) when kernels
    on ``x`` take the Numba path, else None: the caller then unfolds the whole batch itself."""
    if not _numba_path(x):
        return None
    from . import cpu_conv
    return cpu_conv


def fused_batch_norm(x):
    """The module ``cpu_norm`` (training batch norm in two fused loops) when kernels on ``x``
    take the Numba path in float32 or float64, else None: the caller then runs the readable
    NumPy version."""
    if not _numba_path(x) or x.dtype not in (np.float32, np.float64):
        return None
    from . import cpu_norm
    return cpu_norm


def threaded_relu(x, slope):
    """The module ``cpu_relu`` ((leaky) ReLU in one pass on every core) when kernels on ``x``
    take the Numba path in float32 or float64 and slope >= 0, else None: the caller then runs
    the readable NumPy version."""
    if not _numba_path(x) or x.dtype not in (np.float32, np.float64) or not slope >= 0:
        return None
    from . import cpu_relu
    return cpu_relu


def im2col(x, kernel_size, stride, padding, dilation):
    """x: (N, C, H, W) -> cols: (N, C*kh*kw, OH*OW). Spec: reference.im2col."""
    return _implementation(x).im2col(x, kernel_size, stride, padding, dilation)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """cols: (N, C*kh*kw, OH*OW) -> x: (N, C, H, W), the adjoint of im2col. Spec: reference.col2im."""
    return _implementation(cols).col2im(cols, x_shape, kernel_size, stride, padding, dilation)


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode):
    """x: (N, C, H, W) -> (y, indices): (N, C, OH, OW) each. Spec: reference.max_pool2d."""
    return _implementation(x).max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d_backward(dy, indices, x_shape):
    """dy, indices: (N, C, OH, OW) -> dx: (N, C, H, W). Spec: reference.max_pool2d_backward."""
    return _implementation(dy).max_pool2d_backward(dy, indices, x_shape)


def max_unpool2d(x, indices, output_hw):
    """x, indices: (N, C, H, W) -> y: (N, C, OH, OW). Spec: reference.max_unpool2d."""
    return _implementation(x).max_unpool2d(x, indices, output_hw)


def max_unpool2d_backward(dy, indices):
    """dy: (N, C, OH, OW), indices: (N, C, H, W) -> dx: (N, C, H, W). Spec: reference.max_unpool2d_backward."""
    return _implementation(dy).max_unpool2d_backward(dy, indices)


def bilinear_interpolate(x, out_hw, align_corners, scale_hw=(None, None)):
    """x: (N, C, H, W) -> y: (N, C, OH, OW). Spec: reference.bilinear_interpolate."""
    return _implementation(x).bilinear_interpolate(x, out_hw, align_corners, scale_hw)


def bilinear_interpolate_backward(dy, in_hw, align_corners, scale_hw=(None, None)):
    """dy: (N, C, OH, OW) -> dx: (N, C, H, W). Spec: reference.bilinear_interpolate_backward."""
    return _implementation(dy).bilinear_interpolate_backward(dy, in_hw, align_corners, scale_hw)
