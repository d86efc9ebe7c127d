"""Ops that pick or place elements by index: gather, scatter, scatter_add, index_select,
masked_fill, fill, topk, sort, argsort, one_hot.

An index tensor names positions along one dim, ``dim``; the other dims are matched position by
position. For dim = 1 of a 3-D input::

    gather:   out[i][j][k] = input[i][index[i][j][k]][k]
    scatter:  out[i][index[i][j][k]][k] = src[i][j][k]     (scatter_add adds instead)

so both become NumPy advanced indexing with one key: ``index`` along ``dim`` and a broadcast
``arange`` along every other dim. gather is composed from indexing (its backward adds dy back
at the gathered positions); scatter has its own backward: the overwritten input positions get
no gradient, and src gets dy gathered from where it went.
"""
from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING

import numpy as np

from ..autograd import Function
from ..backend import get_array_module, scatter_add as add_at
from ..tensor import Tensor, check_same_device
from .elementwise import where
from .shape import _dim, getitem

if TYPE_CHECKING:
    from ..typing import Array, Number, TensorOrNumber

TopkResult = namedtuple("topk", ["values", "indices"])   # torch.return_types.topk
SortResult = namedtuple("sort", ["values", "indices"])   # torch.return_types.sort


def _key(op, x, dim, index, src=None):
    """The advanced-indexing key that puts ``index`` along ``dim`` of ``x`` (checked first)."""
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        what = index.dtype if isinstance(index, Tensor) else type(index).__name__
        raise TypeError(f"{op}: index must be an int64 tensor, got {what}; e.g. index.long()")
    check_same_device(op, [t for t in (x, index, src) if isinstance(t, Tensor)])
    d = _dim(op, x, dim)
    if index.ndim != x.ndim:
        raise ValueError(f"{op}: index (shape {index.shape}) must have as many dims as the input "
                         f"(shape {x.shape})")
    for i, (n, m) in enumerate(zip(index.shape, x.shape)):
        if i != d and n > m:
            raise ValueError(f"{op}: index of shape {index.shape} is larger than the input of shape "
                             f"{x.shape} at dim {i} (only dim {dim} may differ)")
    if isinstance(src, Tensor) and (src.ndim != x.ndim or any(n > m for n, m in zip(index.shape, src.shape))):
        raise ValueError(f"{op}: src of shape {src.shape} must have the input's dims and be at least "
                         f"as large as index ({index.shape}) in each")
    idx = index.data
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= x.shape[d]):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise IndexError(f"{op}: index {bad} is out of bounds for dim {dim} with size {x.shape[d]}")
    xp = get_array_module(idx)
    return tuple(idx if i == d else xp.arange(n).reshape((-1,) + (1,) * (index.ndim - i - 1))
                 for i, n in enumerate(index.shape))


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """Values of ``input`` at ``index`` along ``dim`` (see the module docstring); shape of index."""
    if input.ndim == 0:  # a 0-d input and index: as 1-element vectors
        _dim("gather", input, dim)
        return gather(input.reshape(1), 0, index.reshape(1)).reshape(index.shape)
    return getitem(input, _key("gather", input, dim, index))


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices ``index`` (a 1-D int tensor) of ``input`` along ``dim``."""
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim > 1:
        raise TypeError(f"index_select: index must be a 1-D int64 tensor, got {index!r}")
    return getitem(input, (slice(None),) * _dim("index_select", input, dim) + (index.data.reshape(-1),))


class Scatter(Function):
    """y = x with src written (or, with ``add``, added) at ``key``; src: the index-shaped corner
    of the src argument. Backward: dx = dy, zeroed where written; dsrc = dy at key."""

    @staticmethod
    def forward(ctx, x, src, key, region, add):
        xp = get_array_module(x)
        ctx.key, ctx.region, ctx.add, ctx.src_shape = key, region, add, src.shape
        y = x.copy()
        if add:
            add_at(xp, y, key, src[region])
        else:
            y[key] = src[region]
        return y

    @staticmethod
    def backward(ctx, dy):
        xp = get_array_module(dy)
        dx = dy
        if ctx.needs_input_grad[0] and not ctx.add:
            dx = dy.copy()
            dx[ctx.key] = 0
        dsrc = None
        if ctx.needs_input_grad[1]:
            dsrc = xp.zeros(ctx.src_shape, dtype=dy.dtype)
            dsrc[ctx.region] = dy[ctx.key]
        return dx, dsrc, None, None, None


def _scatter(op, input, dim, index, src, add):
    if not isinstance(src, Tensor):  # scatter(input, dim, index, value): a number everywhere
        xp = get_array_module(input.data)
        src = Tensor._wrap(xp.full(index.shape, src, dtype=input.dtype))
    key = _key(op, input, dim, index, src)
    if src.dtype != input.dtype:
        raise TypeError(f"{op}: src has dtype {src.dtype} but the input has {input.dtype}; convert "
                        f"it, e.g. src.to(input.dtype)")
    region = tuple(slice(0, n) for n in index.shape)
    return Scatter.apply(input, src, key, region, add)


def scatter(input: Tensor, dim: int, index: Tensor, src: TensorOrNumber | None = None,
            value: Number | None = None, reduce: str | None = None) -> Tensor:
    """A copy of ``input`` with ``src`` (a tensor, or a number ``value``) written at ``index``
    along ``dim``; ``reduce='add'`` adds instead. Where index repeats a position, one of the
    writes wins (which is unspecified, as in PyTorch)."""
    src = value if src is None else src
    if src is None:
        raise TypeError("scatter: give src (a tensor) or value (a number)")
    if reduce not in (None, "add"):
        raise ValueError(f"scatter: reduce={reduce!r} is not supported; use None or 'add'")
    return _scatter("scatter", input, dim, index, src, reduce == "add")


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (repeats add up)."""
    return _scatter("scatter_add", input, dim, index, src, True)


def masked_fill(input: Tensor, mask: Tensor | Array, value: TensorOrNumber) -> Tensor:
    """``input`` with ``value`` (a number or a 0-d tensor, cast to input's dtype) where the bool
    ``mask`` (broadcast against input) is True. Gradients: input's where the mask is False,
    value's summed over the rest."""
    m = mask.data if isinstance(mask, Tensor) else mask
    if getattr(m, "dtype", None) != np.bool_:
        raise TypeError(f"masked_fill: the mask must be a bool tensor, got dtype "
                        f"{getattr(m, 'dtype', type(m).__name__)}; e.g. mask.bool() or x > 0")
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        fill = value if value.dtype == input.dtype else value.to(input.dtype)
    else:
        fill = Tensor._wrap(get_array_module(input.data).asarray(np.asarray(value).astype(input.dtype)))
    return where(mask, fill, input)


def fill(input: Tensor, value: TensorOrNumber) -> Tensor:
    """``input`` with every element set to ``value`` (a number, or a 0-d tensor whose gradient is
    dy summed); input gets no gradient. ``fill_`` and ``zero_`` are this, in place."""
    everywhere = Tensor._wrap(get_array_module(input.data).ones((), dtype=np.bool_))
    return masked_fill(input, everywhere, value)


def _order(x, axis, descending):
    """Stable argsort along ``axis``; descending keeps equal values in their original order
    (sorted ascending from the far end, then reversed) and puts NaN first, as PyTorch does."""
    xp = get_array_module(x)
    if not descending:
        return xp.argsort(x, axis=axis, kind="stable")
    flipped = xp.argsort(xp.flip(x, axis), axis=axis, kind="stable")
    return x.shape[axis] - 1 - xp.flip(flipped, axis)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> SortResult:
    """(values, indices) of ``input`` sorted along ``dim``; equal values keep their order."""
    x = input.reshape(1) if input.ndim == 0 else input
    d = _dim("sort", input, dim) if input.ndim else 0
    order = Tensor._wrap(_order(x.data, d, descending).astype(np.int64))
    values = gather(x, d, order)
    return SortResult(values.reshape(input.shape), order.reshape(input.shape))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``input`` along ``dim``."""
    return sort(input, dim, descending, stable).indices


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> TopkResult:
    """(values, indices) of the ``k`` largest (or smallest) elements along ``dim``, largest first
    (smallest first when ``largest=False``). Always sorted, which ``sorted=False`` allows."""
    if input.ndim == 0:  # PyTorch gives the element itself for k = 0 or 1
        _dim("topk", input, dim)
        if k not in (0, 1):
            raise ValueError(f"topk: k={k} is out of range for a 0-d tensor (k must be 0 or 1)")
        values, indices = topk(input.reshape(1), 1)
        return TopkResult(values.reshape(()), indices.reshape(()))
    x, d = input, _dim("topk", input, dim)
    if not 0 <= k <= x.shape[d]:
        raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {x.shape[d]} (shape "
                         f"{input.shape})")
    order = _order(x.data, d, largest)
    chosen = Tensor._wrap(order[(slice(None),) * d + (slice(0, k),)].astype(np.int64))
    values = gather(x, d, chosen)
    return TopkResult(values, chosen)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """(*,) int64 class labels -> (*, num_classes) int64 with a 1 at each label; num_classes -1
    means max label + 1."""
    if not isinstance(tensor, Tensor) or tensor.dtype != np.int64:
        what = tensor.dtype if isinstance(tensor, Tensor) else type(tensor).__name__
        raise TypeError(f"one_hot: expected an int64 tensor of class labels, got {what}; e.g. y.long()")
    labels = tensor.data
    xp = get_array_module(labels)
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(labels.min())}")
    if num_classes == -1:
        if not labels.size:
            raise ValueError("one_hot: cannot infer the number of classes from an empty tensor; "
                             "give num_classes")
        num_classes = int(labels.max()) + 1
    elif labels.size and int(labels.max()) >= num_classes:
        raise ValueError(f"one_hot: class values must be smaller than num_classes={num_classes}, got "
                         f"{int(labels.max())}")
    return Tensor._wrap((labels[..., None] == xp.arange(num_classes)).astype(np.int64))
