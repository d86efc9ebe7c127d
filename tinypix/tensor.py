"""The Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it.

A Tensor holds
    data           the array itself (``numpy.ndarray`` on 'cpu', ``cupy.ndarray`` on 'cuda'),
    requires_grad  whether gradients should flow to it,
    grad           the accumulated gradient (a Tensor) after ``backward()``,
    _ctx, _index   the Function call (and which of its outputs) that produced it; None for leaves.

Every operator and method is a thin call into ``tinypix.functional``, where the forward and
backward of each primitive live side by side. In-place methods (``add_``, ``relu_``, ``+=``, ...)
go through :meth:`Tensor._inplace`, which says how they meet autograd.
"""
from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Callable, Iterable, overload

import numpy as np

from . import autograd, interop
from .tensor_methods import TensorMethods
from .backend import CPU, CUDA, device_of, get_array_module, is_cupy_array, normalize_device, to_device
from .backend import device as _device  # for annotations: the class body defines a `device` property

if TYPE_CHECKING:
    from .nn.hooks import RemovableHandle
    from .typing import Array, DeviceLike, DTypeLike, Number, ShapeLike


def check_same_device(op: str, tensors: Iterable[Tensor]) -> None:
    """Raise a clear error when an op is given tensors on different devices."""
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        a, b = sorted(devices)
        raise RuntimeError(
            f"{op}: expected all tensors on one device, but got tensors on '{a}' and '{b}'. "
            f"Move them to one device first, e.g. x = x.to('{b}') (or .to('{a}')).")


def _as_dtype(dtype):
    """A NumPy dtype from a NumPy dtype or type (``tinypix.float32``, ``tinypix.long``), a dtype
    name or a Python type (float -> float32, int -> int64, bool), as PyTorch reads them."""
    if dtype is None:
        return None
    if dtype is float:
        return np.dtype(np.float32)
    if dtype is int:
        return np.dtype(np.int64)
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"not a dtype: {dtype!r}; use e.g. tinypix.float32, tinypix.long or "
                        "tinypix.bool") from None


def dtype_category(dtype: np.dtype[Any]) -> int:
    """PyTorch's dtype categories, lowest first: 0 bool < 1 integer < 2 floating point."""
    return {"b": 0, "i": 1, "u": 1}.get(dtype.kind, 2)


class Tensor(TensorMethods):
    """A multi-dimensional array that can record the operations applied to it.

    Create tensors with :func:`tinypix.tensor`, :func:`tinypix.zeros`, :func:`tinypix.randn`, ...
    ``Tensor(array_like)`` also works and follows the same dtype rules as ``tinypix.tensor``.
    """

    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__, not NumPy's

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        from .creation import as_array
        self._data = as_array(data)
        self.grad: Tensor | None = None
        self._ctx = None
        self._index = 0
        self._retains_grad = False
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array, ctx=None, index=0):
        """Wrap an op's output array without copying; ctx marks it as a node's output."""
        t = cls.__new__(cls)
        if isinstance(array, np.generic):  # NumPy returns scalars from 0-d arithmetic
            array = np.asarray(array)
        t._data = array
        t.grad = None
        t._ctx = ctx
        t._index = index
        t._retains_grad = False
        t._requires_grad = ctx is not None
        return t

    # -- the array and its metadata -----------------------------------------------------------
    @property
    def data(self) -> Array:
        """The underlying array. Assigning to it replaces the values without touching the graph."""
        return self._data

    @data.setter
    def data(self, value: Tensor | Array) -> None:
        value = value.data if isinstance(value, Tensor) else value
        if tuple(value.shape) != self.shape and self._ctx is not None:
            raise RuntimeError(f"data: cannot assign shape {tuple(value.shape)} to a non-leaf tensor "
                               f"of shape {self.shape}")
        self._data = value

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def device(self) -> _device:
        """A :class:`tinypix.device`: ``device(type='cpu')`` or ``device(type='cuda', index=0)``;
        it also equals the strings 'cpu', 'cuda' and 'cuda:0'."""
        return CUDA if is_cupy_array(self._data) else CPU

    @property
    def is_cuda(self) -> bool:
        return is_cupy_array(self._data)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    @overload
    def size(self, dim: None = None) -> tuple[int, ...]: ...
    @overload
    def size(self, dim: int) -> int: ...
    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> autograd.Function | None:
        return self._ctx

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        flag = bool(flag)
        if flag and self.dtype.kind not in "fc":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, but this tensor has dtype "
                f"{self.dtype}; convert it first, e.g. x.float().requires_grad_()")
        if not flag and self._ctx is not None:
            raise RuntimeError("requires_grad: cannot turn off gradients of a non-leaf tensor; "
                               "use .detach() to get a tensor outside the graph")
        self._requires_grad = flag

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    _post_accumulate_grad_hooks: dict[builtins.int, Callable[[Tensor], None]] | None = None

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> RemovableHandle:
        """Call ``hook(self)`` once per backward, after the last gradient of that backward has been
        added to this leaf's ``.grad`` (PyTorch's name; what data-parallel training uses to send a
        gradient as soon as it is ready)."""
        if self._ctx is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors accumulate .grad; "
                               "this one was computed by an op")
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: this tensor does not require grad")
        from .nn.hooks import RemovableHandle
        if self._post_accumulate_grad_hooks is None:
            self._post_accumulate_grad_hooks = {}
        handle = RemovableHandle(self._post_accumulate_grad_hooks)
        self._post_accumulate_grad_hooks[handle.id] = hook
        return handle

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self._retains_grad = True
        return self

    # -- conversion ----------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU). Refuses tensors in a graph."""
        if self.requires_grad:
            raise RuntimeError("numpy: this tensor requires grad; call .detach().numpy() instead")
        if self.device != "cpu":
            raise TypeError("numpy: this tensor is on 'cuda'; call .cpu() first, e.g. x.cpu().numpy()")
        return self._data

    # NumPy, DLPack and CUDA array protocols (tinypix/interop.py): np.asarray(x) shares memory,
    # np.array(x) copies, torch.from_dlpack(x) and tinypix.from_dlpack(t) share memory.
    __array__ = interop.as_array
    __dlpack__ = interop.dlpack
    __dlpack_device__ = interop.dlpack_device
    __cuda_array_interface__ = property(interop.cuda_array_interface)

    def item(self) -> Number:
        if self._data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted to a Python "
                             f"number, but this one has shape {self.shape}")
        return self._data.reshape(()).item()

    def tolist(self) -> Any:
        return to_device(self._data, "cpu").tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                               "use .any() or .all()")
        return bool(self.item())

    def detach(self) -> Tensor:
        """A new leaf sharing the same data, outside the graph."""
        return Tensor._wrap(self._data)

    def to(self, *args: Tensor | DeviceLike | DTypeLike, dtype: DTypeLike | None = None,
           device: DeviceLike | None = None, non_blocking: bool = False, copy: bool = False) -> Tensor:
        """``.to('cuda')``, ``.to(tinypix.float64)``, ``.to(device, dtype)``, ``.to(other)`` (other's
        device and dtype). Differentiable (grads flow back); ``self`` when nothing changes, unless
        ``copy=True``."""
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) and not _is_dtype_name(a):
                device = a
            else:
                dtype = a
        from .functional.elementwise import cast, clone, move
        out = self
        if dtype is not None and _as_dtype(dtype) != self.dtype:
            out = cast(out, _as_dtype(dtype))
        if device is not None and normalize_device(device) != self.device:
            out = move(out, normalize_device(device))
        return clone(out) if copy and out is self else out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: DeviceLike | None = None) -> Tensor:
        return self.to("cuda" if device is None else device)

    @overload
    def type(self, dtype: None = None) -> str: ...
    @overload
    def type(self, dtype: DTypeLike) -> Tensor: ...
    def type(self, dtype: DTypeLike | None = None) -> str | Tensor:
        """With a dtype, ``self.to(dtype)``; without, PyTorch's type name, e.g. 'torch.FloatTensor'."""
        if dtype is None:
            name = _TYPE_NAMES.get(self.dtype, self.dtype.name)
            return f"torch.{'cuda.' if self.is_cuda else ''}{name}"
        if isinstance(dtype, str) and dtype.split(".")[-1] in _TYPE_DTYPES:
            dtype = _TYPE_DTYPES[dtype.split(".")[-1]]
        return self.to(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    # -- new tensors like this one: its dtype and device unless told otherwise ----------------
    # From here on, `int` and `bool` in the class body name the methods above (for type
    # checkers), so annotations say builtins.int and builtins.bool.
    def new_tensor(self, data: Any, dtype: DTypeLike | None = None, device: DeviceLike | None = None,
                   requires_grad: builtins.bool = False) -> Tensor:
        return _creation().tensor(data, dtype or self.dtype, requires_grad, device or self.device)

    def new_zeros(self, *size: builtins.int | ShapeLike, dtype: DTypeLike | None = None,
                  device: DeviceLike | None = None, requires_grad: builtins.bool = False) -> Tensor:
        return _creation().zeros(*size, dtype=dtype or self.dtype, device=device or self.device,
                                 requires_grad=requires_grad)

    def new_ones(self, *size: builtins.int | ShapeLike, dtype: DTypeLike | None = None,
                 device: DeviceLike | None = None, requires_grad: builtins.bool = False) -> Tensor:
        return _creation().ones(*size, dtype=dtype or self.dtype, device=device or self.device,
                                requires_grad=requires_grad)

    def new_empty(self, *size: builtins.int | ShapeLike, dtype: DTypeLike | None = None,
                  device: DeviceLike | None = None, requires_grad: builtins.bool = False) -> Tensor:
        return _creation().empty(*size, dtype=dtype or self.dtype, device=device or self.device,
                                 requires_grad=requires_grad)

    def new_full(self, size: ShapeLike, fill_value: Number, dtype: DTypeLike | None = None,
                 device: DeviceLike | None = None, requires_grad: builtins.bool = False) -> Tensor:
        return _creation().full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                                requires_grad=requires_grad)

    def contiguous(self) -> Tensor:
        return self

    # -- autograd ------------------------------------------------------------------------------
    def backward(self, gradient: Tensor | Array | None = None, retain_graph: builtins.bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        Args:
            gradient: d(loss)/d(self), shaped like self; may be omitted only for a single element.
            retain_graph: keep the graph's saved values so backward can run through it again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph; did you "
                               "forget requires_grad=True on an input, or compute it under no_grad()?")
        xp = get_array_module(self._data)
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for a single-element tensor, but "
                    f"this one has shape {self.shape}; pass gradient= (a tensor of that shape), or "
                    f"reduce first, e.g. loss.sum().backward()")
            g = xp.ones(self._data.shape, dtype=self.dtype)
        else:
            g = gradient.data if isinstance(gradient, Tensor) else xp.asarray(gradient)
            if tuple(g.shape) != self.shape:
                raise RuntimeError(f"backward: gradient has shape {tuple(g.shape)} but the tensor has "
                                   f"shape {self.shape}")
            if g.dtype != self.dtype:
                raise RuntimeError(f"backward: gradient has dtype {g.dtype} but the tensor has dtype "
                                   f"{self.dtype}; convert it, e.g. gradient.to(tensor.dtype)")
            if device_of(g) != self.device:
                raise RuntimeError(f"backward: gradient is on '{device_of(g)}' but the tensor is on "
                                   f"'{self.device}'; move it with .to('{self.device}')")
        autograd.run_backward(self, g, retain_graph=retain_graph)

    def _accumulate_grad(self, g):
        if g.dtype != self.dtype:
            raise RuntimeError(f"gradient of dtype {g.dtype} for a tensor of dtype {self.dtype}")
        if self.grad is None:
            # A private copy: ops may hand the same array to several inputs, and optimizers
            # and users update .grad in place.
            self.grad = Tensor._wrap(g.copy())
        else:
            self.grad._data += g

    # -- in place ------------------------------------------------------------------------------
    def _inplace(self, op, fn, *args, **kwargs):
        """Make ``self`` hold ``fn(self, *args, **kwargs)`` and return it: every in-place method
        (``add_``, ``relu_``, ``masked_fill_``, ``x += y``, ...) is this. PyTorch's rules:

        * While gradients are recorded, a leaf that requires grad (a weight) cannot be changed in
          place: PyTorch's error. Update weights under ``with tinypix.no_grad():``.
        * When the result belongs to a graph (``self`` requires grad, or an argument does), it is
          computed out of place and ``self`` is rebound to it: the same Python object now stands
          for the new graph node. Nodes that used the old value keep the arrays they saved, since
          nothing was overwritten, so values and gradients are PyTorch's. The one difference:
          views of ``self`` made before (slices, reshapes) do not see this change, where in
          PyTorch they would.
        * Otherwise (under ``no_grad()``, or when nothing requires grad) the values are written
          into ``self``'s array, so views of it see them, as in PyTorch.

        The result keeps self's shape and dtype: arguments may broadcast to self, not grow it,
        and a result of a higher kind than self (float into an integer tensor) is an error.
        """
        recording = autograd.is_grad_enabled()
        if recording and self.requires_grad and self._ctx is None:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place "
                               f"operation. Change it inside `with tinypix.no_grad():` (e.g. an update "
                               f"of a weight), or work on a copy: y = x.clone()")
        out = fn(self, *args, **kwargs)
        if out.shape != self.shape:
            raise RuntimeError(f"{op}: output with shape {self.shape} doesn't match the broadcast shape "
                               f"{out.shape}; an in-place op cannot change the shape, so use the "
                               f"out-of-place form, e.g. x = x + y")
        if out.dtype != self.dtype:
            if dtype_category(out.dtype) > dtype_category(self.dtype):
                raise RuntimeError(f"{op}: result type {out.dtype} can't be cast to the desired output "
                                   f"type {self.dtype}; use the out-of-place form (x = x + y) or "
                                   f"convert first (x = x.float())")
            out = out.to(self.dtype)
        if recording and (self.requires_grad or out.requires_grad):
            self._data, self._ctx, self._index = out._data, out._ctx, out._index
            self._requires_grad = out.requires_grad
        else:
            try:
                self._data[...] = out._data
            except ValueError:  # NumPy refuses to write into a broadcast (expand) view
                raise RuntimeError(f"{op}: this tensor shares one element among several positions (a "
                                   f"view made by expand()) and cannot be written in place; call "
                                   f".clone() first") from None
        return self

    def __setitem__(self, key: Any, value: Tensor | Number | Array) -> None:
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("__setitem__: a leaf Variable that requires grad is being used in an in-place "
                               "operation. Change it inside `with tinypix.no_grad():`" if self._ctx is None else
                               "__setitem__: assigning into a tensor that is part of a graph is not "
                               "differentiable in tinypix; build the result out of place, e.g. with "
                               "tinypix.where(mask, value, x) or x.masked_fill(mask, value)")
        if isinstance(value, Tensor):
            check_same_device("__setitem__", [self, value])
            if value.requires_grad and autograd.is_grad_enabled():
                raise RuntimeError("__setitem__: assigning a tensor that requires grad is not "
                                   "differentiable in tinypix; build the result with tinypix.where or cat")
            value = value.data
        from .functional.shape import index_key
        self._data[index_key(key)] = value

    # -- printing ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        body = np.array2string(to_device(self._data, "cpu"), precision=4, separator=", ",
                               prefix="tensor(", threshold=200, edgeitems=3)
        extras = []
        if self.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype=tinypix.{self.dtype.name}")
        elif self.dtype == np.int64 and self._data.size == 0:
            extras.append("dtype=tinypix.int64")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self._ctx is not None:
            extras.append(f"grad_fn={self._ctx!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"



def _creation():
    from . import creation
    return creation


# PyTorch's legacy type names, for x.type() and x.type('torch.LongTensor')
_TYPE_NAMES: dict[np.dtype[Any], str] = {
    np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
    np.dtype(np.float16): "HalfTensor", np.dtype(np.int64): "LongTensor",
    np.dtype(np.int32): "IntTensor", np.dtype(np.int16): "ShortTensor",
    np.dtype(np.int8): "CharTensor", np.dtype(np.uint8): "ByteTensor",
    np.dtype(np.bool_): "BoolTensor"}
_TYPE_DTYPES = {name: dtype for dtype, name in _TYPE_NAMES.items()}


def _is_dtype_name(s):
    try:
        np.dtype(s)
        return s not in ("cpu", "cuda") and not s.startswith("cuda:")
    except TypeError:
        return False
