"""Shape primitives: reshape, permute, expand, indexing, cat, pad (and ops composed from them).

These move values around without arithmetic, so each backward moves the gradient back:
reshape un-reshapes, permute applies the inverse permutation, indexing scatters (adding up
repeated indices), cat splits.
"""
import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import get_array_module, scatter_add
from ..tensor import Tensor, check_same_device


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


def reshape(x, *shape):
    target = _target_shape(x, _shape_arg(shape))
    return x if target == x.shape else Reshape.apply(x, target)


view = reshape


def permute(x, *dims):
    dims = _shape_arg(dims)
    if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims of {x.shape}")
    return Permute.apply(x, tuple(d % x.ndim for d in dims))


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    a, b = _dim("transpose", x, dim0), _dim("transpose", x, dim1)
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(x, tuple(dims))


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _dim("flatten", x, start_dim), _dim("flatten", x, end_dim)
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dims = {_dim("squeeze", x, d) for d in ((dim,) if isinstance(dim, int) else dim)}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1)))


def unsqueeze(x, dim):
    d = _dim("unsqueeze", x, dim, extra=1)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def expand(x, *shape):
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


def index_key(key):
    """An indexing key with Tensors replaced by their arrays and lists by int arrays."""
    def convert(k):
        if isinstance(k, Tensor):
            return k.data
        if isinstance(k, list):
            return np.asarray(k)
        return k
    return tuple(convert(k) for k in key) if isinstance(key, tuple) else convert(key)


def getitem(x, key):
    key = index_key(key)
    xp = get_array_module(x.data)
    if xp is not np:  # CuPy wants its own arrays as indices
        key = tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in key) \
            if isinstance(key, tuple) else (xp.asarray(key) if isinstance(key, np.ndarray) else key)
    try:
        return Index.apply(x, key)
    except IndexError as e:
        raise IndexError(f"getitem: {e} (tensor of shape {x.shape})") from None


# -- joining and padding ---------------------------------------------------------------------
def cat(tensors, dim=0):
    """Join tensors along an existing dim; all other sizes must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    check_same_device("cat", tensors)
    first = tensors[0]
    axis = _dim("cat", first, dim)
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape))
                                       if i != axis):
            raise ValueError(f"cat: shapes {first.shape} and {t.shape} do not match outside dim {dim}")
    dtype = first.dtype
    for t in tensors[1:]:
        dtype = np.promote_types(dtype, t.dtype)
    tensors = [t if t.dtype == dtype else t.to(dtype) for t in tensors]
    return Cat.apply(axis, *tensors)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors must have one shape, got {tensors[0].shape} and {t.shape}")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def pad(x, pad, mode="constant", value=0.0):
    """PyTorch's ``F.pad``: ``pad`` lists (before, after) pairs starting from the LAST dimension,
    e.g. (left, right, top, bottom) for an image. Only ``mode='constant'`` is supported."""
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; tinypix pads with mode='constant'")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: expected an even number of at most {2 * x.ndim} values for a tensor of "
                         f"shape {x.shape}, got {tuple(pad)}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {tuple(pad)} is not supported; slice the tensor instead")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return Pad.apply(x, tuple(widths), value)
