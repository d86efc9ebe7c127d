"""Compute kernels: arrays in, arrays out, no autograd; and the registry that picks, per call,
which implementation of an op runs.

    from tinypix import kernels
    cols = kernels.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1))   # x: (N, C, H, W)
    print(kernels.explain("im2col", x, (3, 3), (1, 1), (1, 1), (1, 1)))
    with kernels.trace() as ran:                                # every op call in the block
        loss = model(x).sum()

Every op has one readable implementation, the specification: the ops of a layer (convolution,
batch norm, ReLU) in ``tinypix/functional``, where each is written once in NumPy, and the ops
below in ``reference.py``. Faster ones register for a device and for the calls they apply to
(``registry.py`` says how one is chosen):

  cpu_patches.py   convolution whose windows tile the image (2x2 stride 2, 1x1) by reordering
  cpu_winograd.py  3x3 stride-1 convolution with enough channels by Winograd's F(4x4, 3x3)
  cpu_conv.py      every other CPU convolution, im2col a cache-sized chunk of images at a time
  cpu_norm.py      batch norm in training, two fused loops each way
  cpu_relu.py      (leaky) ReLU in one pass
  cpu.py           im2col, col2im, pooling, unpooling, bilinear resizing as Numba loops
  cuda.py + *.cu   im2col, col2im, pooling, unpooling, bilinear resizing as CUDA kernels (CuPy)

The CPU implementations share each call out over a team of threads (``cpu_team.py``; its size
is ``tinypix.set_num_threads``). ``TINYPIX_KERNELS=reference`` makes every op run its readable
implementation (slower; for debugging and reading). Numba and CuPy are imported the first time
an op runs on their device, so importing this package stays cheap.
"""
from . import reference
from .cpu_team import get_num_threads, set_num_threads
from .reference import bilinear_source_index, conv_output_size
from .registry import ENV_VAR, explain, implementations, op, register, trace

__all__ = ["bilinear_interpolate", "bilinear_interpolate_backward", "bilinear_source_index",
           "col2im", "conv_output_size", "explain", "get_num_threads", "im2col",
           "implementations", "max_pool2d", "max_pool2d_backward", "max_unpool2d",
           "max_unpool2d_backward", "op", "register", "set_num_threads", "trace"]

# The ops whose readable implementation is reference.py's: x: (N, C, H, W) in each.
im2col = op("im2col")(reference.im2col)
col2im = op("col2im")(reference.col2im)
max_pool2d = op("max_pool2d")(reference.max_pool2d)
max_pool2d_backward = op("max_pool2d_backward")(reference.max_pool2d_backward)
max_unpool2d = op("max_unpool2d")(reference.max_unpool2d)
max_unpool2d_backward = op("max_unpool2d_backward")(reference.max_unpool2d_backward)
bilinear_interpolate = op("bilinear_interpolate")(reference.bilinear_interpolate)
bilinear_interpolate_backward = op("bilinear_interpolate_backward")(reference.bilinear_interpolate_backward)
