"""The Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it.

A Tensor holds
    data           the array itself (``numpy.ndarray`` on 'cpu', ``cupy.ndarray`` on 'cuda'),
    requires_grad  whether gradients should flow to it,
    grad           the accumulated gradient (a Tensor) after ``backward()``,
    _ctx, _index   the Function call (and which of its outputs) that produced it; None for leaves.

Every operator is a thin call into ``tinypix.functional``, where the forward and backward of
each primitive live side by side.
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

    __hash__ = object.__hash__


def _is_dtype_name(s):
    try:
        np.dtype(s)
        return s not in ("cpu", "cuda") and not s.startswith("cuda:")
    except TypeError:
        return False


def _install_operators():
    """Attach operators and methods; they live in tinypix.functional, next to their backward.

    Called once by ``tinypix/__init__.py`` after ``tinypix.functional`` has loaded.
    """
    from .functional import elementwise as E, linalg as M, reduce as R, shape as S

    def rev(f):
        return lambda self, other: f(other, self)

    ops = {
        "__add__": E.add, "__radd__": rev(E.add), "__sub__": E.sub, "__rsub__": rev(E.sub),
        "__mul__": E.mul, "__rmul__": rev(E.mul), "__truediv__": E.div, "__rtruediv__": rev(E.div),
        "__pow__": E.pow, "__rpow__": rev(E.pow), "__matmul__": M.matmul, "__rmatmul__": rev(M.matmul),
        "__neg__": E.neg, "__abs__": E.abs, "__getitem__": S.getitem,
        "__eq__": E.eq, "__ne__": E.ne, "__lt__": E.lt, "__le__": E.le, "__gt__": E.gt, "__ge__": E.ge,
        "add": E.add, "sub": E.sub, "mul": E.mul, "div": E.div, "pow": E.pow, "neg": E.neg,
        "exp": E.exp, "log": E.log, "sqrt": E.sqrt, "abs": E.abs, "tanh": E.tanh,
        "sigmoid": E.sigmoid, "relu": E.relu, "clamp": E.clamp, "matmul": M.matmul,
        "sum": R.sum, "mean": R.mean, "var": R.var, "max": R.max, "min": R.min, "amax": R.amax,
        "amin": R.amin, "argmax": R.argmax, "argmin": R.argmin, "any": R.any, "all": R.all,
        "softmax": R.softmax, "log_softmax": R.log_softmax,
        "reshape": S.reshape, "view": S.view, "permute": S.permute, "transpose": S.transpose,
        "flatten": S.flatten, "squeeze": S.squeeze, "unsqueeze": S.unsqueeze, "expand": S.expand,
    }
    for name, fn in ops.items():
        setattr(Tensor, name, fn)
    Tensor.__hash__ = object.__hash__  # defining __eq__ would otherwise make tensors unhashable
