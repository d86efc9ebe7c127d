"""The Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it.

A Tensor holds
    data           the array itself (``numpy.ndarray`` on 'cpu', ``cupy.ndarray`` on 'cuda'),
    requires_grad  whether gradients should flow to it,
    grad           the accumulated gradient (a Tensor) after ``backward()``,
    _ctx, _index   the Function call (and which of its outputs) that produced it; None for leaves.

Every operator and method is a thin call into ``tinypix.functional``, where the forward and
backward of each primitive live side by side.
"""
import numpy as np

from . import autograd
from .backend import device_of, get_array_module, normalize_device, to_device


def check_same_device(op, tensors):
    """Raise a clear error when an op is given tensors on different devices."""
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        a, b = sorted(devices)
        raise RuntimeError(
            f"{op}: expected all tensors on one device, but got tensors on '{a}' and '{b}'. "
            f"Move them to one device first, e.g. x = x.to('{b}') (or .to('{a}')).")


def _as_dtype(dtype):
    """A NumPy dtype from a NumPy dtype, a dtype name or a Python type."""
    if dtype is None:
        return None
    if dtype is float:
        return np.dtype(np.float32)
    if dtype is int:
        return np.dtype(np.int64)
    return np.dtype(dtype)


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
        return device_of(self._data)

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

    def __array__(self, dtype=None, copy=None):
        if self.device != "cpu":
            raise TypeError("cannot convert a 'cuda' tensor to a NumPy array implicitly; "
                            "call .cpu() first, e.g. np.asarray(x.cpu())")
        a = self._data
        return a if dtype is None else a.astype(dtype, copy=False)

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

    def to(self, *args, dtype=None, device=None):
        """``.to('cuda')``, ``.to(tinypix.float64)``, or both. Differentiable (grads flow back)."""
        for a in args:
            if isinstance(a, str) and not _is_dtype_name(a):
                device = a
            else:
                dtype = a
        from .functional.elementwise import cast, move
        out = self
        if dtype is not None and _as_dtype(dtype) != self.dtype:
            out = cast(out, _as_dtype(dtype))
        if device is not None and normalize_device(device) != self.device:
            out = move(out, normalize_device(device))
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def long(self):
        return self.to(np.int64)

    def int(self):
        return self.to(np.int32)

    def bool(self):
        return self.to(np.bool_)

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

    # -- in-place helpers (no graph) -----------------------------------------------------------
    def _check_inplace(self, op):
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(f"{op}: a tensor that requires grad cannot be modified in place while "
                               "gradients are recorded; wrap the update in `with tinypix.no_grad():`")

    def zero_(self):
        self._check_inplace("zero_")
        self._data[...] = 0
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self._data[...] = value
        return self

    def copy_(self, src):
        self._check_inplace("copy_")
        src = src.data if isinstance(src, Tensor) else src
        src = to_device(src, self.device) if hasattr(src, "shape") else src
        try:
            self._data[...] = src
        except ValueError:
            raise RuntimeError(f"copy_: cannot copy shape {tuple(np.shape(src))} into {self.shape}") from None
        return self

    def __setitem__(self, key, value):
        self._check_inplace("__setitem__")
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

    def add(self, other) -> "Tensor":
        return _functional().add(self, other)

    def sub(self, other) -> "Tensor":
        return _functional().sub(self, other)

    def mul(self, other) -> "Tensor":
        return _functional().mul(self, other)

    def div(self, other) -> "Tensor":
        return _functional().div(self, other)

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

    def matmul(self, other) -> "Tensor":
        return _functional().matmul(self, other)

    def sum(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> "Tensor":
        return _functional().mean(self, dim, keepdim)

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None) -> "Tensor":
        return _functional().var(self, dim, unbiased, keepdim, correction)

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

    def softmax(self, dim=None) -> "Tensor":
        return _functional().softmax(self, dim)

    def log_softmax(self, dim=None) -> "Tensor":
        return _functional().log_softmax(self, dim)

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


def _is_dtype_name(s):
    try:
        np.dtype(s)
        return s not in ("cpu", "cuda") and not s.startswith("cuda:")
    except TypeError:
        return False
