"""CUDA kernels for CuPy arrays: the functions of ``reference.py``, one GPU thread per element.

Same functions, arguments and results as ``reference.py``, which is the specification these are
tested against. Each public function is a thin Python wrapper: it works out the output geometry
(with reference's helpers), allocates the result on the GPU and launches one kernel that fills it.
The kernels are CUDA C in the ``.cu`` files beside this module, each opening with a comment that
maps its index arithmetic to the loop in reference.py:

  im2col.cu    im2col, col2im
  pool.cu      max_pool2d, max_pool2d_backward, max_unpool2d, max_unpool2d_backward
  bilinear.cu  bilinear_interpolate, bilinear_interpolate_backward

Every kernel is a C++ template over the element type; CuPy compiles its float and double
instances (``"im2col<float>"``, ...). Compilation: the first call into a file compiles the whole
file with NVRTC (``cupy.RawModule``), and ``functools.lru_cache`` keeps the module for the rest
of the process; CuPy also stores the binary in its disk cache (``~/.cupy/kernel_cache``), so a
later process skips the compiler.

CuPy is imported inside the functions, not at the top of this module: the registry sends only
CuPy arrays here (float32 and float64; float16 takes the readable path), and the nvcc test reads
``SOURCES`` on machines without CuPy.
"""
import functools
from importlib import resources

import numpy as np

from .reference import _pool_window_starts, bilinear_source_index, conv_output_size
from .registry import is_float, register

# Each .cu file and the kernel templates it defines; a kernel has the name of its Python function.
SOURCES = {
    "im2col.cu": ("im2col", "col2im"),
    "pool.cu": ("max_pool2d", "max_pool2d_backward", "max_unpool2d", "max_unpool2d_backward"),
    "bilinear.cu": ("bilinear_interpolate", "bilinear_interpolate_backward"),
}
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
OPTIONS = ("-std=c++14",)  # compiler options, for NVRTC here and for nvcc in the tests
BLOCK = 256  # threads per block


def name_expressions(filename):
    """The kernel instances compiled from one file: ``("im2col<float>", "im2col<double>", ...)``."""
    return tuple(f"{kernel}<{ctype}>" for kernel in SOURCES[filename] for ctype in CTYPES.values())


@functools.lru_cache(maxsize=None)
def _module(filename):
    """The compiled ``cupy.RawModule`` of one .cu file (compiled on first use, once per process)."""
    import cupy
    code = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return cupy.RawModule(code=code, options=OPTIONS, name_expressions=name_expressions(filename))


@functools.lru_cache(maxsize=None)
def _kernel(name, dtype):
    """The kernel ``name`` for elements of ``dtype`` (float32 or float64)."""
    if dtype not in CTYPES:
        raise TypeError(f"the CUDA kernels take float32 or float64 arrays, not {dtype}")
    filename = next(f for f, kernels in SOURCES.items() if name in kernels)
    return _module(filename).get_function(f"{name}<{CTYPES[dtype]}>")


def _launch(name, dtype, threads, *args):
    """Run kernel ``name`` on ``threads`` threads (one per element it computes), BLOCK per block.

    Integer arguments are passed as int64, matching the kernels' ``long long`` parameters.
    """
    if threads == 0:  # nothing to compute, and CUDA refuses a launch of zero blocks
        return
    blocks = (threads + BLOCK - 1) // BLOCK
    args = tuple(np.int64(a) if isinstance(a, (int, np.integer)) else a for a in args)
    _kernel(name, np.dtype(dtype))((blocks,), (BLOCK,), args)


def _ints(*pairs):
    """Flatten (h, w) pairs into Python ints."""
    return [int(v) for pair in pairs for v in pair]


def _indices(indices, shape):
    """``indices`` as a C-contiguous int64 GPU array; it must have ``shape``, or a kernel would
    read past its end."""
    import cupy
    if tuple(indices.shape) != tuple(shape):
        raise ValueError(f"indices have shape {tuple(indices.shape)}, expected {tuple(shape)}")
    return cupy.ascontiguousarray(indices, dtype=np.int64)


@register("im2col", "cuda", "CUDA kernel, one thread per element", applies=is_float)
def im2col(x, kernel_size, stride, padding, dilation):
    """x: (N, C, H, W) -> cols: (N, C*kh*kw, OH*OW); see reference.im2col."""
    import cupy
    kh, kw, sh, sw, ph, pw, dh, dw = _ints(kernel_size, stride, padding, dilation)
    N, C, H, W = x.shape
    OH, OW = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    cols = cupy.empty((N, C * kh * kw, OH * OW), dtype=x.dtype)
    _launch("im2col", x.dtype, cols.size, cupy.ascontiguousarray(x), cols,
            N, C, H, W, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw)
    return cols


@register("col2im", "cuda", "CUDA kernel, one thread per element", applies=is_float)
def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """cols: (N, C*kh*kw, OH*OW) -> x: (N, C, H, W); see reference.col2im."""
    import cupy
    kh, kw, sh, sw, ph, pw, dh, dw = _ints(kernel_size, stride, padding, dilation)
    N, C, H, W = (int(n) for n in x_shape)
    OH, OW = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    if cols.shape != (N, C * kh * kw, OH * OW):  # a mismatch would read outside cols
        raise ValueError(f"cols has shape {cols.shape}, expected {(N, C * kh * kw, OH * OW)}")
    x = cupy.empty((N, C, H, W), dtype=cols.dtype)  # every pixel is written: no zeroing needed
    _launch("col2im", cols.dtype, x.size, cupy.ascontiguousarray(cols), x,
            N, C, H, W, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw)
    return x


@register("max_pool2d", "cuda", "CUDA kernel, one thread per element", applies=is_float)
def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode):
    """x: (N, C, H, W) -> y, indices: (N, C, OH, OW); see reference.max_pool2d."""
    import cupy
    kh, kw, sh, sw, ph, pw, dh, dw = _ints(kernel_size, stride, padding, dilation)
    N, C, H, W = x.shape
    OH = conv_output_size(H, kh, sh, ph, dh, ceil_mode)
    OW = conv_output_size(W, kw, sw, pw, dw, ceil_mode)
    # Raises, as reference does, when a window holds no input; the kernel relies on one being there.
    _pool_window_starts(H, OH, kh, sh, ph, dh)
    _pool_window_starts(W, OW, kw, sw, pw, dw)
    y = cupy.empty((N, C, OH, OW), dtype=x.dtype)
    indices = cupy.empty((N, C, OH, OW), dtype=np.int64)
    _launch("max_pool2d", x.dtype, y.size, cupy.ascontiguousarray(x), y, indices,
            N, C, H, W, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw)
    return y, indices


@register("max_pool2d_backward", "cuda", "CUDA kernel, one thread per element", applies=is_float)
def max_pool2d_backward(dy, indices, x_shape):
    """dy, indices: (N, C, OH, OW) -> dx: (N, C, H, W); see reference.max_pool2d_backward."""
    import cupy
    N, C, H, W = (int(n) for n in x_shape)
    OH, OW = dy.shape[2:]
    if dy.shape[:2] != (N, C):
        raise ValueError(f"dy has shape {dy.shape}, which does not match x's shape {(N, C, H, W)}")
    dx = cupy.zeros((N, C, H, W), dtype=dy.dtype)  # the kernel adds into it
    _launch("max_pool2d_backward", dy.dtype, dy.size, cupy.ascontiguousarray(dy),
            _indices(indices, dy.shape), dx, N, C, OH, OW, H, W)
    return dx


@register("max_unpool2d", "cuda", "CUDA kernel, one thread per element", applies=is_float)
def max_unpool2d(x, indices, output_hw):
    """x, indices: (N, C, H, W) -> y: (N, C, OH, OW); see reference.max_unpool2d."""
    import cupy
    N, C, H, W = x.shape
    OH, OW = (int(n) for n in output_hw)
    y = cupy.zeros((N, C, OH, OW), dtype=x.dtype)  # positions no index names stay zero
    _launch("max_unpool2d", x.dtype, x.size, cupy.ascontiguousarray(x),
            _indices(indices, x.shape), y, N, C, H, W, OH, OW)
    return y


@register("max_unpool2d_backward", "cuda", "CUDA kernel, one thread per element", applies=is_float)
def max_unpool2d_backward(dy, indices):
    """dy: (N, C, OH, OW), indices: (N, C, H, W) -> dx: (N, C, H, W); see reference."""
    import cupy
    N, C, OH, OW = dy.shape
    H, W = indices.shape[2:]
    indices = _indices(indices, (N, C, H, W))
    dx = cupy.empty((N, C, H, W), dtype=dy.dtype)
    _launch("max_unpool2d_backward", dy.dtype, dx.size, cupy.ascontiguousarray(dy), indices, dx,
            N, C, H, W, OH, OW)
    return dx


@functools.lru_cache(maxsize=256)
def _axis(in_size, out_size, align_corners, scale, dtype, device):
    """(i0, i1, 1 - lam, lam) along one axis as GPU arrays, weights in ``dtype``; see
    reference.bilinear_source_index.

    The tables are built on the host and copied to the current GPU (``device`` is its id, part of
    the cache key): kept here, a training loop copies each geometry's tables once, not every step.
    """
    import cupy
    i0, i1, lam = bilinear_source_index(in_size, out_size, align_corners, scale)
    return (cupy.asarray(i0), cupy.asarray(i1),
            cupy.asarray((1.0 - lam).astype(dtype)), cupy.asarray(lam.astype(dtype)))


def _tables(in_hw, out_hw, align_corners, scale_hw, dtype):
    """The row tables then the column tables: h0, h1, lh0, lh1, w0, w1, lw0, lw1."""
    import cupy
    device = cupy.cuda.Device().id
    return (*_axis(in_hw[0], out_hw[0], align_corners, scale_hw[0], dtype, device),
            *_axis(in_hw[1], out_hw[1], align_corners, scale_hw[1], dtype, device))


@register("bilinear_interpolate", "cuda", "CUDA kernel, one thread per element", applies=is_float)
def bilinear_interpolate(x, out_hw, align_corners, scale_hw=(None, None)):
    """x: (N, C, H, W) -> y: (N, C, OH, OW); see reference.bilinear_interpolate."""
    import cupy
    N, C, H, W = x.shape
    OH, OW = int(out_hw[0]), int(out_hw[1])
    tables = _tables((H, W), (OH, OW), bool(align_corners), tuple(scale_hw), np.dtype(x.dtype))
    y = cupy.empty((N, C, OH, OW), dtype=x.dtype)
    _launch("bilinear_interpolate", x.dtype, y.size, cupy.ascontiguousarray(x), y,
            N, C, H, W, OH, OW, *tables)
    return y


@register("bilinear_interpolate_backward", "cuda", "CUDA kernel, one thread per element", applies=is_float)
def bilinear_interpolate_backward(dy, in_hw, align_corners, scale_hw=(None, None)):
    """dy: (N, C, OH, OW) -> dx: (N, C, H, W); see reference.bilinear_interpolate_backward."""
    import cupy
    N, C, OH, OW = dy.shape
    H, W = int(in_hw[0]), int(in_hw[1])
    tables = _tables((H, W), (OH, OW), bool(align_corners), tuple(scale_hw), np.dtype(dy.dtype))
    dx = cupy.zeros((N, C, H, W), dtype=dy.dtype)  # the kernel adds into it
    _launch("bilinear_interpolate_backward", dy.dtype, dy.size, cupy.ascontiguousarray(dy), dx,
            N, C, H, W, OH, OW, *tables)
    return dx
