"""Shape primitives: reshape, permute, expand, indexing, cat, repeat, pad (and ops composed from
them: transposes, squeeze, stack, meshgrid, repeat_interleave, reflect/replicate/circular pads).

These move values around without arithmetic, so each backward moves the gradient back:
reshape un-reshapes, permute applies the inverse permutation, indexing scatters (adding up
repeated indices), cat splits, repeat sums the copies.
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import get_array_module, scatter_add
from ..tensor import Tensor, check_same_device
from .elementwise import promote_types


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.x_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, dy):
        return dy.reshape(ctx.x_shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, dy):
        return dy.transpose(np.argsort(ctx.dims)), None


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, dy):
        return unbroadcast(dy, ctx.x_shape), None


class Index(Function):
    """y = x[key]. Backward writes dy into zeros at the same places, adding repeated indices."""

    @staticmethod
    def forward(ctx, x, key):
        ctx.x_shape, ctx.key = x.shape, key
        return x[key]

    @staticmethod
    def backward(ctx, dy):
        xp = get_array_module(dy)
        dx = xp.zeros(ctx.x_shape, dtype=dy.dtype)
        if _is_basic(ctx.key):
            dx[ctx.key] = dy  # slices and ints select each element at most once
        else:
            scatter_add(xp, dx, ctx.key, dy)
        return dx, None


class Cat(Function):
    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, dy):
        bounds = np.cumsum(ctx.sizes)[:-1]
        xp = get_array_module(dy)
        return (None, *xp.split(dy, bounds, axis=ctx.axis))


class Repeat(Function):
    """Tile x (already given one dim per repeat count) ``reps`` times along each dim. Backward
    views dy as (r0, n0, r1, n1, ...) and sums over the copies r0, r1, ..."""

    @staticmethod
    def forward(ctx, x, reps):
        ctx.x_shape, ctx.reps = x.shape, reps
        return get_array_module(x).tile(x, reps)

    @staticmethod
    def backward(ctx, dy):
        split = [n for pair in zip(ctx.reps, ctx.x_shape) for n in pair]
        return dy.reshape(split).sum(axis=tuple(range(0, len(split), 2))), None


class Pad(Function):
    """Constant padding; ``widths`` is NumPy's ((before, after), ...) per dimension."""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.crop = tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape))
        return get_array_module(x).pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, dy):
        return dy[ctx.crop], None, None


# -- reshaping -------------------------------------------------------------------------------
def _dim(op, x, d, extra=0):
    n = x.ndim + extra
    if not -max(n, 1) <= d < max(n, 1):
        raise IndexError(f"{op}: dim {d} is out of range for a tensor of shape {x.shape}")
    return d % max(n, 1)


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _target_shape(x, shape):
    """``shape`` with a -1 resolved; an error naming both shapes when sizes disagree."""
    size = x.numel()
    known = int(np.prod([n for n in shape if n != -1]))
    target = tuple(size // known if n == -1 and known else n for n in shape)
    if shape.count(-1) > 1 or any(n < -1 for n in shape) or int(np.prod(target)) != size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({size} elements) "
                         f"into {shape}")
    return target


def reshape(x: Tensor, *shape: int | Sequence[int]) -> Tensor:
    target = _target_shape(x, _shape_arg(shape))
    return x if target == x.shape else Reshape.apply(x, target)


view = reshape


def permute(x: Tensor, *dims: int | Sequence[int]) -> Tensor:
    dims = _shape_arg(dims)
    if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims of {x.shape}")
    return Permute.apply(x, tuple(d % x.ndim for d in dims))


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(x.ndim))
    a, b = _dim("transpose", x, dim0), _dim("transpose", x, dim1)
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(x, tuple(dims))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _dim("flatten", x, start_dim), _dim("flatten", x, end_dim)
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


def t(input: Tensor) -> Tensor:
    """Transpose of a matrix; a vector or a number is returned as it is (PyTorch's ``t``)."""
    if input.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dims, got shape {input.shape}; use "
                         "x.transpose(dim0, dim1) or x.mT")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def T(input: Tensor) -> Tensor:
    """``x.T``: all dims reversed. PyTorch warns that this is deprecated except for matrices
    (use ``x.mT`` for batches of matrices), and so does tinypix."""
    if input.ndim == 0:
        warnings.warn("Tensor.T is deprecated on 0-D tensors. This function is the identity in these "
                      "cases.", UserWarning, stacklevel=3)
    elif input.ndim != 2:
        warnings.warn("The use of `x.T` on tensors of dimension other than 2 to reverse their shape is "
                      "deprecated and it will throw an error in a future release. Consider `x.mT` to "
                      "transpose batches of matrices or `x.permute(*torch.arange(x.ndim - 1, -1, -1))` "
                      "to reverse the dimensions of a tensor.", UserWarning, stacklevel=3)
    return Permute.apply(input, tuple(range(input.ndim))[::-1])


def mT(input: Tensor) -> Tensor:
    """``x.mT``: the last two dims swapped, a batch of matrices each transposed."""
    if input.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. Got "
                           f"{input.ndim}-D tensor.")
    return transpose(input, -2, -1)


def squeeze(x: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dims = {_dim("squeeze", x, d) for d in ((dim,) if isinstance(dim, int) else dim)}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1)))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    d = _dim("unsqueeze", x, dim, extra=1)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def expand(x: Tensor, *shape: int | Sequence[int]) -> Tensor:
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {x.shape} to fewer dims {shape}")
    target = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    try:
        np.broadcast_shapes(x.shape, target)
        if np.broadcast_shapes(x.shape, target) != target:
            raise ValueError
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {x.shape} to {shape} (only size-1 dims grow)") from None
    return Expand.apply(x, target)


# -- indexing --------------------------------------------------------------------------------
def _is_basic(key):
    parts = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice)) or k is None or k is Ellipsis for k in parts)


def index_key(key: Any) -> Any:
    """An indexing key with Tensors replaced by their arrays and lists by int arrays."""
    def convert(k):
        if isinstance(k, Tensor):
            return k.data
        if isinstance(k, list):
            return np.asarray(k)
        return k
    return tuple(convert(k) for k in key) if isinstance(key, tuple) else convert(key)


def getitem(x: Tensor, key: Any) -> Tensor:
    key = index_key(key)
    if _is_basic(key) and not any(k is Ellipsis for k in (key if isinstance(key, tuple) else (key,))):
        # x[i, j] is then a 0-d view into x, not a copied NumPy scalar: x[1, 2].add_(1) changes x
        key = (key if isinstance(key, tuple) else (key,)) + (Ellipsis,)
    xp = get_array_module(x.data)
    if xp is not np:  # CuPy wants its own arrays as indices
        key = tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in key) \
            if isinstance(key, tuple) else (xp.asarray(key) if isinstance(key, np.ndarray) else key)
    try:
        return Index.apply(x, key)
    except IndexError as e:
        raise IndexError(f"getitem: {e} (tensor of shape {x.shape})") from None


# -- joining and padding ---------------------------------------------------------------------
def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim; all other sizes must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    check_same_device("cat", tensors)
    first = tensors[0]
    axis = _dim("cat", first, dim)
    for x in tensors[1:]:
        if x.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape))
                                       if i != axis):
            raise ValueError(f"cat: shapes {first.shape} and {x.shape} do not match outside dim {dim}")
    dtype = first.dtype  # PyTorch's promotion: a float beats integers whatever their size
    for x in tensors[1:]:
        dtype = promote_types(dtype, x.dtype)
    tensors = [x if x.dtype == dtype else x.to(dtype) for x in tensors]
    return Cat.apply(axis, *tensors)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for x in tensors[1:]:
        if x.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors must have one shape, got {tensors[0].shape} and {x.shape}")
    return cat([unsqueeze(x, dim) for x in tensors], dim)


def repeat(input: Tensor, *sizes: int | Sequence[int]) -> Tensor:
    """Tile ``input`` ``sizes[i]`` times along dim i (``x.repeat(2, 1)``); with more sizes than
    dims, input first gets leading dims of size 1, as in PyTorch."""
    sizes = _shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise ValueError(f"repeat: got {len(sizes)} repeat counts {sizes} for a tensor of shape "
                         f"{input.shape}; give at least one per dim")
    if any(int(n) < 0 for n in sizes):
        raise ValueError(f"repeat: repeat counts must be >= 0, got {sizes}")
    x = reshape(input, (1,) * (len(sizes) - input.ndim) + input.shape)
    return Repeat.apply(x, tuple(int(n) for n in sizes))


def repeat_interleave(input: Tensor, repeats: int | Sequence[int] | Tensor, dim: int | None = None,
                      output_size: int | None = None) -> Tensor:
    """Repeat each element ``repeats`` times (an int, or one count per element along ``dim``)
    next to itself: [1, 2] -> [1, 1, 2, 2]. Without ``dim``, ``input`` is flattened first."""
    if dim is None:
        input, dim = reshape(input, -1), 0
    d = _dim("repeat_interleave", input, dim)
    counts = repeats.data if isinstance(repeats, Tensor) else repeats
    counts = np.asarray(counts.get() if hasattr(counts, "get") else counts)
    if counts.dtype.kind not in "iu" or counts.ndim > 1 or (counts.ndim == 1 and
                                                            len(counts) not in (1, input.shape[d])):
        raise ValueError(f"repeat_interleave: repeats must be an int or integers, one per element of "
                         f"dim {dim} ({input.shape[d]}), got {repeats!r}")
    source = np.repeat(np.arange(input.shape[d]), counts)
    if output_size is not None and len(source) != output_size:
        raise ValueError(f"repeat_interleave: output_size={output_size} but the repeats give {len(source)}")
    return getitem(input, (slice(None),) * d + (source,))


def meshgrid(*tensors: Tensor | Sequence[Tensor], indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors of sizes n0, n1, ...: with indexing='ij' each output
    has shape (n0, n1, ...) and varies along the dim of its input; with 'xy' the first two dims
    are swapped, (n1, n0, ...), as for x (columns) and y (rows) in an image."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if not tensors or any(x.ndim > 1 for x in tensors):
        raise ValueError(f"meshgrid: expected one or more 0-D or 1-D tensors, got shapes "
                         f"{[x.shape for x in tensors]}")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        axes[0], axes[1] = 1, 0
    sizes = [x.numel() for x in tensors]
    shape = [0] * len(tensors)
    for ax, n in zip(axes, sizes):
        shape[ax] = n
    return tuple(expand(reshape(x, tuple(-1 if i == ax else 1 for i in range(len(shape)))), tuple(shape))
                 for x, ax in zip(tensors, axes))


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """PyTorch's ``F.pad``: ``pad`` lists (before, after) pairs starting from the LAST dimension,
    e.g. (left, right, top, bottom) for an image; its entries may be ints or 1-element tensors.

    mode: 'constant' fills with ``value`` (0 by default; a negative pad crops); 'reflect' mirrors
    the input without repeating the edge (pad < size); 'replicate' repeats the edge value;
    'circular' wraps around (pad <= size). The three copying modes pad the last 1, 2 or 3 dims of
    a (C, W) / (N, C, W), (C, H, W) / (N, C, H, W) or (C, D, H, W) / (N, C, D, H, W) input, as in
    PyTorch, and their backward adds each copy's gradient back onto its source.
    """
    x = input
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected an even number of at most {2 * x.ndim} values for a tensor of "
                         f"shape {x.shape}, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        crop = tuple(slice(-b if b < 0 else None, a if a < 0 else None) for b, a in widths)
        if any(b < 0 or a < 0 for b, a in widths):
            x = getitem(x, crop)
        grow = tuple((max(b, 0), max(a, 0)) for b, a in widths)
        return Pad.apply(x, grow, 0 if value is None else value) if any(b or a for b, a in grow) else x
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if value not in (None, 0):
        raise ValueError(f"pad: mode {mode!r} copies input values and takes no value= argument")
    k = len(pad) // 2
    if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of a tensor with one or two more dims "
            f"(e.g. 4 values for (N, C, H, W) or (C, H, W)), got {len(pad)} values for shape {x.shape}")
    for d, (b, a) in enumerate(widths):
        n = x.shape[d]
        if b < 0 or a < 0:
            raise ValueError(f"pad: negative padding {pad} is not supported with mode {mode!r}; crop "
                             "by slicing, or use mode='constant'")
        limit = {"reflect": n - 1, "replicate": None, "circular": n}[mode]
        if (b or a) and (n == 0 or (limit is not None and max(b, a) > limit)):
            raise ValueError(f"pad: mode {mode!r} needs padding {'<' if mode == 'reflect' else '<='} the "
                             f"size of the dim it pads, but dim {d} of shape {x.shape} has size {n} and "
                             f"padding ({b}, {a})")
        if b or a:
            x = getitem(x, (slice(None),) * d + (_source_index(mode, n, b, a),))
    return x


def _source_index(mode, n, before, after):
    """For each position of a padded dim, the index of the input element it copies."""
    j = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(j, 0, n - 1)
    if mode == "circular":
        return j % n
    j = np.abs(j)  # reflect: mirror at 0, then at n - 1
    return np.where(j > n - 1, 2 * (n - 1) - j, j)
