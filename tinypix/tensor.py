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
import numpy as np

from . import autograd, interop
from .backend import CPU, CUDA, device_of, get_array_module, is_cupy_array, normalize_device, to_device


def check_same_device(op, tensors):
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


def dtype_category(dtype):
    """PyTorch's dtype categories, lowest first: 0 bool < 1 integer < 2 floating point."""
    return {"b": 0, "i": 1, "u": 1}.get(dtype.kind, 2)


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    Create tensors with :func:`tinypix.tensor`, :func:`tinypix.zeros`, :func:`tinypix.randn`, ...
    ``Tensor(array_like)`` also works and follows the same dtype rules as ``tinypix.tensor``.
    """

    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__, not NumPy's

    def __init__(self, data, requires_grad=False):
        from .creation import as_array
        self._data = as_array(data)
        self.grad = None
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
    def data(self):
        """The underlying array. Assigning to it replaces the values without touching the graph."""
        return self._data

    @data.setter
    def data(self, value):
        value = value.data if isinstance(value, Tensor) else value
        if tuple(value.shape) != self.shape and self._ctx is not None:
            raise RuntimeError(f"data: cannot assign shape {tuple(value.shape)} to a non-leaf tensor "
                               f"of shape {self.shape}")
        self._data = value

    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        """A :class:`tinypix.device`: ``device(type='cpu')`` or ``device(type='cuda', index=0)``;
        it also equals the strings 'cpu', 'cuda' and 'cuda:0'."""
        return CUDA if is_cupy_array(self._data) else CPU

    @property
    def is_cuda(self):
        return is_cupy_array(self._data)

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self._data.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        flag = bool(flag)
        if flag and self.dtype.kind not in "fc":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, but this tensor has dtype "
                f"{self.dtype}; convert it first, e.g. x.float().requires_grad_()")
        if not flag and self._ctx is not None:
            raise RuntimeError("requires_grad: cannot turn off gradients of a non-leaf tensor; "
                               "use .detach() to get a tensor outside the graph")
        self._requires_grad = flag

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self._retains_grad = True
        return self

    # -- conversion ----------------------------------------------------------------------------
    def numpy(self):
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

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted to a Python "
                             f"number, but this one has shape {self.shape}")
        return self._data.reshape(()).item()

    def tolist(self):
        return to_device(self._data, "cpu").tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                               "use .any() or .all()")
        return bool(self.item())

    def detach(self):
        """A new leaf sharing the same data, outside the graph."""
        return Tensor._wrap(self._data)

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False):
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

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def type(self, dtype=None):
        """With a dtype, ``self.to(dtype)``; without, PyTorch's type name, e.g. 'torch.FloatTensor'."""
        if dtype is None:
            name = _TYPE_NAMES.get(self.dtype, self.dtype.name)
            return f"torch.{'cuda.' if self.is_cuda else ''}{name}"
        if isinstance(dtype, str) and dtype.split(".")[-1] in _TYPE_DTYPES:
            dtype = _TYPE_DTYPES[dtype.split(".")[-1]]
        return self.to(dtype)

    def type_as(self, other):
        return self.to(other.dtype)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    def long(self):
        return self.to(np.int64)

    def int(self):
        return self.to(np.int32)

    def bool(self):
        return self.to(np.bool_)

    # -- new tensors like this one: its dtype and device unless told otherwise ----------------
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False) -> "Tensor":
        return _creation().tensor(data, dtype or self.dtype, requires_grad, device or self.device)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        return _creation().zeros(*size, dtype=dtype or self.dtype, device=device or self.device,
                                 requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        return _creation().ones(*size, dtype=dtype or self.dtype, device=device or self.device,
                                requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        return _creation().empty(*size, dtype=dtype or self.dtype, device=device or self.device,
                                 requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False) -> "Tensor":
        return _creation().full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                                requires_grad=requires_grad)

    def contiguous(self):
        return self

    # -- autograd ------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
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

    def add_(self, other, alpha=1) -> "Tensor":
        return self._inplace("add_", _functional().add, other, alpha)

    def sub_(self, other, alpha=1) -> "Tensor":
        return self._inplace("sub_", _functional().sub, other, alpha)

    def mul_(self, other) -> "Tensor":
        return self._inplace("mul_", _functional().mul, other)

    def div_(self, other, rounding_mode=None) -> "Tensor":
        return self._inplace("div_", _functional().div, other, rounding_mode)

    def pow_(self, exponent) -> "Tensor":
        return self._inplace("pow_", _functional().pow, exponent)

    def remainder_(self, other) -> "Tensor":
        return self._inplace("remainder_", _functional().remainder, other)

    def floor_divide_(self, other) -> "Tensor":
        return self._inplace("floor_divide_", _functional().floor_divide, other)

    def neg_(self) -> "Tensor":
        return self._inplace("neg_", _functional().neg)

    def exp_(self) -> "Tensor":
        return self._inplace("exp_", _functional().exp)

    def log_(self) -> "Tensor":
        return self._inplace("log_", _functional().log)

    def abs_(self) -> "Tensor":
        return self._inplace("abs_", _functional().abs)

    def sqrt_(self) -> "Tensor":
        return self._inplace("sqrt_", _functional().sqrt)

    def relu_(self) -> "Tensor":
        return self._inplace("relu_", _functional().relu)

    def sigmoid_(self) -> "Tensor":
        return self._inplace("sigmoid_", _functional().sigmoid)

    def tanh_(self) -> "Tensor":
        return self._inplace("tanh_", _functional().tanh)

    def clamp_(self, min=None, max=None) -> "Tensor":
        return self._inplace("clamp_", _functional().clamp, min, max)

    def clamp_min_(self, min) -> "Tensor":
        return self._inplace("clamp_min_", _functional().clamp, min, None)

    def clamp_max_(self, max) -> "Tensor":
        return self._inplace("clamp_max_", _functional().clamp, None, max)

    def masked_fill_(self, mask, value) -> "Tensor":
        return self._inplace("masked_fill_", _functional().masked_fill, mask, value)

    def fill_(self, value) -> "Tensor":
        return self._inplace("fill_", _functional().indexing.fill, value)

    def zero_(self) -> "Tensor":
        return self._inplace("zero_", _functional().indexing.fill, 0)

    def copy_(self, src, non_blocking=False) -> "Tensor":
        return self._inplace("copy_", _copy_source, src)

    def scatter_(self, dim: int, index: "Tensor", src=None, value=None, reduce=None) -> "Tensor":
        return self._inplace("scatter_", _functional().scatter, dim, index, src, value, reduce)

    def scatter_add_(self, dim: int, index: "Tensor", src: "Tensor") -> "Tensor":
        return self._inplace("scatter_add_", _functional().scatter_add, dim, index, src)

    def __iadd__(self, other) -> "Tensor":
        return self.add_(other)

    def __isub__(self, other) -> "Tensor":
        return self.sub_(other)

    def __imul__(self, other) -> "Tensor":
        return self.mul_(other)

    def __itruediv__(self, other) -> "Tensor":
        return self.div_(other)

    def __ipow__(self, other) -> "Tensor":
        return self.pow_(other)

    def __imod__(self, other) -> "Tensor":
        return self.remainder_(other)

    def __ifloordiv__(self, other) -> "Tensor":
        return self.floor_divide_(other)

    def __setitem__(self, key, value):
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

    # -- operators and methods: each is a call into tinypix.functional, next to its backward -----
    def __add__(self, other) -> "Tensor":
        return _functional().add(self, other)

    def __radd__(self, other) -> "Tensor":
        return _functional().add(other, self)

    def __sub__(self, other) -> "Tensor":
        return _functional().sub(self, other)

    def __rsub__(self, other) -> "Tensor":
        return _functional().sub(other, self)

    def __mul__(self, other) -> "Tensor":
        return _functional().mul(self, other)

    def __rmul__(self, other) -> "Tensor":
        return _functional().mul(other, self)

    def __truediv__(self, other) -> "Tensor":
        return _functional().div(self, other)

    def __rtruediv__(self, other) -> "Tensor":
        return _functional().div(other, self)

    def __pow__(self, other) -> "Tensor":
        return _functional().pow(self, other)

    def __rpow__(self, other) -> "Tensor":
        return _functional().pow(other, self)

    def __matmul__(self, other) -> "Tensor":
        return _functional().matmul(self, other)

    def __rmatmul__(self, other) -> "Tensor":
        return _functional().matmul(other, self)

    def __mod__(self, other) -> "Tensor":
        return _functional().remainder(self, other)

    def __rmod__(self, other) -> "Tensor":
        return _functional().remainder(other, self)

    def __floordiv__(self, other) -> "Tensor":
        return _functional().floor_divide(self, other)

    def __rfloordiv__(self, other) -> "Tensor":
        return _functional().floor_divide(other, self)

    def __and__(self, other) -> "Tensor":
        return _functional().bitwise_and(self, other)

    def __rand__(self, other) -> "Tensor":
        return _functional().bitwise_and(other, self)

    def __or__(self, other) -> "Tensor":
        return _functional().bitwise_or(self, other)

    def __ror__(self, other) -> "Tensor":
        return _functional().bitwise_or(other, self)

    def __xor__(self, other) -> "Tensor":
        return _functional().bitwise_xor(self, other)

    def __rxor__(self, other) -> "Tensor":
        return _functional().bitwise_xor(other, self)

    def __invert__(self) -> "Tensor":
        return _functional().bitwise_not(self)

    def __pos__(self) -> "Tensor":
        return self

    def __neg__(self) -> "Tensor":
        return _functional().neg(self)

    def __abs__(self) -> "Tensor":
        return _functional().abs(self)

    def __getitem__(self, key) -> "Tensor":
        return _functional().getitem(self, key)

    def __eq__(self, other) -> "Tensor":  # type: ignore[override]
        return _functional().eq(self, other)

    def __ne__(self, other) -> "Tensor":  # type: ignore[override]
        return _functional().ne(self, other)

    def __lt__(self, other) -> "Tensor":
        return _functional().lt(self, other)

    def __le__(self, other) -> "Tensor":
        return _functional().le(self, other)

    def __gt__(self, other) -> "Tensor":
        return _functional().gt(self, other)

    def __ge__(self, other) -> "Tensor":
        return _functional().ge(self, other)

    __hash__ = object.__hash__  # defining __eq__ would otherwise make tensors unhashable

    def eq(self, other) -> "Tensor":
        return _functional().eq(self, other)

    def ne(self, other) -> "Tensor":
        return _functional().ne(self, other)

    def lt(self, other) -> "Tensor":
        return _functional().lt(self, other)

    def le(self, other) -> "Tensor":
        return _functional().le(self, other)

    def gt(self, other) -> "Tensor":
        return _functional().gt(self, other)

    def ge(self, other) -> "Tensor":
        return _functional().ge(self, other)

    def logical_not(self) -> "Tensor":
        return _functional().logical_not(self)

    def isnan(self) -> "Tensor":
        return _functional().isnan(self)

    def isinf(self) -> "Tensor":
        return _functional().isinf(self)

    def isfinite(self) -> "Tensor":
        return _functional().isfinite(self)

    def isclose(self, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> "Tensor":
        return _functional().isclose(self, other, rtol, atol, equal_nan)

    def allclose(self, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
        return _functional().allclose(self, other, rtol, atol, equal_nan)

    def equal(self, other) -> bool:
        return _functional().equal(self, other)

    def add(self, other, alpha=1) -> "Tensor":
        return _functional().add(self, other, alpha)

    def sub(self, other, alpha=1) -> "Tensor":
        return _functional().sub(self, other, alpha)

    def mul(self, other) -> "Tensor":
        return _functional().mul(self, other)

    def div(self, other, rounding_mode=None) -> "Tensor":
        return _functional().div(self, other, rounding_mode)

    def floor_divide(self, other) -> "Tensor":
        return _functional().floor_divide(self, other)

    def remainder(self, other) -> "Tensor":
        return _functional().remainder(self, other)

    def fmod(self, other) -> "Tensor":
        return _functional().fmod(self, other)

    def maximum(self, other) -> "Tensor":
        return _functional().maximum(self, other)

    def minimum(self, other) -> "Tensor":
        return _functional().minimum(self, other)

    def pow(self, exponent) -> "Tensor":
        return _functional().pow(self, exponent)

    def neg(self) -> "Tensor":
        return _functional().neg(self)

    def exp(self) -> "Tensor":
        return _functional().exp(self)

    def log(self) -> "Tensor":
        return _functional().log(self)

    def sqrt(self) -> "Tensor":
        return _functional().sqrt(self)

    def abs(self) -> "Tensor":
        return _functional().abs(self)

    def tanh(self) -> "Tensor":
        return _functional().tanh(self)

    def sigmoid(self) -> "Tensor":
        return _functional().sigmoid(self)

    def relu(self) -> "Tensor":
        return _functional().relu(self)

    def clamp(self, min=None, max=None) -> "Tensor":
        return _functional().clamp(self, min, max)

    def clip(self, min=None, max=None) -> "Tensor":
        return _functional().clamp(self, min, max)

    def clamp_min(self, min) -> "Tensor":
        return _functional().clamp(self, min, None)

    def clamp_max(self, max) -> "Tensor":
        return _functional().clamp(self, None, max)

    def clone(self) -> "Tensor":
        return _functional().clone(self)

    def matmul(self, other) -> "Tensor":
        return _functional().matmul(self, other)

    def sum(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().mean(self, dim, keepdim)

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None) -> "Tensor":
        return _functional().var(self, dim, unbiased, keepdim, correction)

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None) -> "Tensor":
        return _functional().std(self, dim, unbiased, keepdim, correction)

    def norm(self, p="fro", dim=None, keepdim: bool = False, dtype=None) -> "Tensor":
        return _functional().norm(self, p, dim, keepdim, dtype)

    def max(self, dim=None, keepdim: bool = False):
        return _functional().max(self, dim, keepdim)

    def min(self, dim=None, keepdim: bool = False):
        return _functional().min(self, dim, keepdim)

    def amax(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().argmin(self, dim, keepdim)

    def any(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().any(self, dim, keepdim)

    def all(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().all(self, dim, keepdim)

    def softmax(self, dim=None, dtype=None) -> "Tensor":
        return _functional().softmax(self, dim, 4, dtype)  # 4: the warning points at the caller

    def log_softmax(self, dim=None, dtype=None) -> "Tensor":
        return _functional().log_softmax(self, dim, 4, dtype)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        return _functional().topk(self, k, dim, largest, sorted)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return _functional().sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> "Tensor":
        return _functional().argsort(self, dim, descending, stable)

    def gather(self, dim: int, index: "Tensor") -> "Tensor":
        return _functional().gather(self, dim, index)

    def scatter(self, dim: int, index: "Tensor", src=None, value=None, reduce=None) -> "Tensor":
        return _functional().scatter(self, dim, index, src, value, reduce)

    def scatter_add(self, dim: int, index: "Tensor", src: "Tensor") -> "Tensor":
        return _functional().scatter_add(self, dim, index, src)

    def index_select(self, dim: int, index: "Tensor") -> "Tensor":
        return _functional().index_select(self, dim, index)

    def masked_fill(self, mask, value) -> "Tensor":
        return _functional().masked_fill(self, mask, value)

    def reshape(self, *shape) -> "Tensor":
        return _functional().reshape(self, *shape)

    def view(self, *shape) -> "Tensor":
        return _functional().view(self, *shape)

    def permute(self, *dims) -> "Tensor":
        return _functional().permute(self, *dims)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        return _functional().transpose(self, dim0, dim1)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        return _functional().flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None) -> "Tensor":
        return _functional().squeeze(self, dim)

    def unsqueeze(self, dim: int) -> "Tensor":
        return _functional().unsqueeze(self, dim)

    def expand(self, *shape) -> "Tensor":
        return _functional().expand(self, *shape)

    def expand_as(self, other: "Tensor") -> "Tensor":
        return _functional().expand(self, *other.shape)

    def view_as(self, other: "Tensor") -> "Tensor":
        return _functional().reshape(self, *other.shape)

    def repeat(self, *sizes) -> "Tensor":
        return _functional().repeat(self, *sizes)

    def repeat_interleave(self, repeats, dim=None, output_size=None) -> "Tensor":
        return _functional().repeat_interleave(self, repeats, dim, output_size)

    def t(self) -> "Tensor":
        return _functional().t(self)

    @property
    def T(self) -> "Tensor":
        return _functional().shape.T(self)

    @property
    def mT(self) -> "Tensor":
        return _functional().shape.mT(self)

    # -- printing ------------------------------------------------------------------------------
    def __repr__(self):
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



def _functional():
    """tinypix.functional, where every op lives (imported here, on first use: it imports this module)."""
    from . import functional
    return functional


def _creation():
    from . import creation
    return creation


def _copy_source(t, src):
    """What ``t.copy_(src)`` puts into t: src (a Tensor, array or number) on t's device, in t's
    dtype and broadcast to t's shape, as a new array (t must not end up sharing src's memory)."""
    F = _functional()
    if not isinstance(src, Tensor):
        src = Tensor._wrap(_creation().as_array(src, dtype=t.dtype, device=t.device))
    src = src.to(t.device, t.dtype)
    try:
        fits = np.broadcast_shapes(src.shape, t.shape) == t.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"copy_: cannot copy a tensor of shape {src.shape} into one of shape "
                           f"{t.shape} (src must broadcast to it)")
    return F.clone(F.expand(src, *t.shape) if src.shape != t.shape else src)


# PyTorch's legacy type names, for x.type() and x.type('torch.LongTensor')
_TYPE_NAMES = {np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
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
