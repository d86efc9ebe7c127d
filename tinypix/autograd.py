"""Reverse-mode automatic differentiation.

Every differentiable primitive is a subclass of :class:`Function` with two static methods that sit
next to each other and work on raw arrays (NumPy or CuPy):

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):            # a, b: arrays
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, dy):             # dy: gradient of the loss w.r.t. the output
            a, b = ctx.saved_tensors
            return dy * b, dy * a          # one gradient per input of forward

``Mul.apply(x, y)`` takes Tensors (or plain values), unwraps them, runs ``forward`` and -- when
a gradient is wanted -- records the call as a node of the graph. ``Tensor.backward()`` walks that
graph once in reverse topological order. The walk is an explicit loop, not a recursion, so a
chain of 10,000 ops works.

A student's own op is written the same way; check it with :func:`tinypix.testing.gradcheck`.
"""
from __future__ import annotations

import contextlib
import os
import threading
import traceback
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

from .backend import get_array_module

if TYPE_CHECKING:
    from .tensor import Tensor
    from .typing import Array

_F = TypeVar("_F", bound=Callable[..., Any])

# .grad_enabled, per thread as in PyTorch: no_grad on one thread leaves alone the graphs that
# other threads record
_state = threading.local()
_anomaly_mode = False


def is_grad_enabled() -> bool:
    """True unless inside :func:`no_grad` (on this thread)."""
    return getattr(_state, "grad_enabled", True)


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets whether ops record a graph."""

    def __init__(self, enabled: bool | None) -> None:
        self.enabled = enabled

    def _recreate_cm(self) -> _GradMode:
        # A decorated function gets a fresh block per call: calls that overlap (on other threads,
        # or recursive) must not share one saved mode.
        return _GradMode(self.enabled)

    def __enter__(self) -> None:
        self.prev = is_grad_enabled()
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self.prev


class _BareDecorator(_GradMode):
    """A mode that also decorates without parentheses: ``@no_grad`` as well as ``@no_grad()``."""

    ENABLED: bool | None = None

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        if func is None:
            return super().__new__(cls)
        if not callable(func):
            raise TypeError(f"{cls.__name__}() takes no arguments, got {func!r}; use `with "
                            f"{cls.__name__}():` or decorate a function with @{cls.__name__}")
        return cls()(func)  # @no_grad: the decorated function itself

    def __init__(self, func: Callable[..., Any] | None = None) -> None:
        super().__init__(self.ENABLED)


class no_grad(_BareDecorator):
    """Inside ``with no_grad():`` (or a function decorated ``@no_grad`` or ``@no_grad()``) no graph
    is recorded."""

    ENABLED = False


class enable_grad(_BareDecorator):
    """Re-enable graph recording inside a ``no_grad`` block (``with``, ``@enable_grad``,
    ``@enable_grad()``)."""

    ENABLED = True


class set_grad_enabled(_GradMode):
    """``with set_grad_enabled(flag):`` records a graph or not, e.g. ``flag = phase == 'train'``.

    As in PyTorch, the mode is set when this object is made, so a bare call
    ``set_grad_enabled(False)`` switches recording off on this thread until switched back; a
    ``with`` block restores the previous mode when it ends.
    """

    def __init__(self, mode: bool) -> None:
        super().__init__(bool(mode))
        self.prev = is_grad_enabled()
        _state.grad_enabled = self.enabled

    def __enter__(self) -> None:
        pass  # set already, in __init__

    def __call__(self, func: _F) -> _F:
        _state.grad_enabled = self.prev  # used as a decorator: only calls of func change the mode
        return super().__call__(func)


class AnomalyError(RuntimeError):
    """A NaN or Inf appeared in forward or backward inside :func:`detect_anomaly`."""


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Inside this context every op checks its outputs and gradients for NaN and Inf.

    The first op that produces one raises :class:`AnomalyError` naming the op, the line of
    user code that created it, its input shapes, and which input or gradient went bad. It
    slows every op down, so use it to hunt a bug, not to train.
    """
    global _anomaly_mode
    prev, _anomaly_mode = _anomaly_mode, True
    try:
        yield
    finally:
        _anomaly_mode = prev


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_call_site():
    """'file:line' of the innermost stack frame outside tinypix (where the user called the op)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}"
    return "inside tinypix"


def _nonfinite(a):
    return getattr(a, "dtype", None) is not None and a.dtype.kind == "f" and \
        not bool(get_array_module(a).isfinite(a).all())


def _describe_inputs(args):
    return ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in args if hasattr(a, "shape")) or "none"


def _check_forward(cls, raw, outs, site):
    bad = [i for i, o in enumerate(outs) if _nonfinite(o)]
    if bad:
        already = [i for i, a in enumerate(raw) if _nonfinite(a)]
        cause = (f"input {already} already held NaN/Inf" if already
                 else "all its inputs were finite, so this op made the NaN/Inf")
        raise AnomalyError(f"{cls.__name__} forward produced NaN/Inf in output {bad} (op created at "
                           f"{site}); input shapes: {_describe_inputs(raw)}; {cause}")


def _check_backward(node, dys, grads):
    bad = [i for i, g in enumerate(grads) if g is not None and _nonfinite(g)]
    if bad:
        came_in = any(_nonfinite(d) for d in dys)
        cause = ("the incoming gradient dy already held NaN/Inf" if came_in
                 else "the incoming gradient was finite, so this op's backward made the NaN/Inf")
        shapes = ", ".join(str(t.shape) if t is not None else "-" for t in node.inputs)
        raise AnomalyError(f"{type(node).__name__} backward produced NaN/Inf in the gradient of input "
                           f"{bad} (op created at {getattr(node, '_site', 'unknown')}); input shapes: "
                           f"{shapes}; {cause}")


class Function:
    """Base class of every differentiable primitive; an instance is the ``ctx`` of one call.

    Subclasses define ``forward(ctx, *args)`` returning an array (or a tuple of arrays) and
    ``backward(ctx, *dys)`` returning one gradient (array or None) per positional argument of
    forward. Non-tensor arguments (ints, tuples, flags) get None.

    Attributes available in forward and backward:
        needs_input_grad: tuple of bools, one per positional argument -- skip work for the others.
        saved_tensors: the arrays given to ``save_for_backward``.
    """

    def __init__(self) -> None:
        self.needs_input_grad: tuple[bool, ...] = ()
        self.inputs = ()          # the Tensor arguments (None for non-tensors)
        self.edges = ()           # (node, output index) each argument came from, to walk the graph
        self._saved = ()
        self._released = False
        self._out_grads = None    # gradient accumulators, one per output, filled during backward
        self._out_meta = ()       # (shape, dtype) of each output, to make zero gradients

    def save_for_backward(self, *arrays: Array) -> None:
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple[Array, ...]:
        if self._released:
            raise RuntimeError(
                f"{type(self).__name__}: trying to backward through the graph a second time; its "
                "saved values were freed after the first backward. Call backward(retain_graph=True) "
                "the first time if you need to backpropagate twice.")
        return self._saved

    @staticmethod
    def forward(ctx: Any, *args: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Any, *dys: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any) -> Any:
        """Run the op on Tensors (and plain values); record it in the graph if a gradient is wanted."""
        from .tensor import Tensor, check_same_device

        tensors = [a for a in args if isinstance(a, Tensor)]
        check_same_device(cls.__name__, tensors)
        ctx = cls()
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = is_grad_enabled() and any(ctx.needs_input_grad)
        out = cls.forward(ctx, *raw)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        if _anomaly_mode:
            ctx._site = _user_call_site()
            _check_forward(cls, raw, outs, ctx._site)
        if not record:
            results = tuple(Tensor._wrap(o) for o in outs)
        else:
            ctx.inputs = tuple(a if isinstance(a, Tensor) else None for a in args)
            # The node (and which of its outputs) each input came from, as they are now: an in-place
            # op later rebinds a Tensor to a new node, and this call must still reach the old one.
            ctx.edges = tuple((a._ctx, a._index) if isinstance(a, Tensor) else (None, 0) for a in args)
            ctx._out_meta = tuple((o.shape, o.dtype) for o in outs)
            # Integer outputs (e.g. max-pool indices) carry no gradient: keep them outside the graph.
            results = tuple(Tensor._wrap(o, ctx=ctx, index=i) if o.dtype.kind == "f" else Tensor._wrap(o)
                            for i, o in enumerate(outs))
        return results[0] if single else results

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


def _topological_order(root_ctx):
    """Nodes reachable from ``root_ctx``, each after every node that consumes its output."""
    order, visited = [], set()
    stack = [(root_ctx, False)]
    while stack:  # iterative depth-first search; post-order puts inputs before their consumers
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:  # mark on expansion, not on push: a node pushed twice is
            continue             # expanded from its last push, below every consumer
        visited.add(id(node))
        stack.append((node, True))
        for parent, _ in node.edges:
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order[::-1]  # root first


def _accumulate(store, i, g):
    store[i] = g if store[i] is None else store[i] + g


def _hooked_leaves(order):
    """{id(leaf): [gradients it will receive in this backward, leaf]} for the leaves with
    post-accumulate hooks, so each hook runs once, after its leaf's last gradient."""
    hooked = {}
    for node in order:
        for t, wanted, (parent, _) in zip(node.inputs, node.needs_input_grad, node.edges):
            if parent is None and wanted and t._post_accumulate_grad_hooks:
                hooked.setdefault(id(t), [0, t])[0] += 1
    return hooked


def _leaf_received(hooked, t):
    entry = hooked.get(id(t))
    if entry is not None:
        entry[0] -= 1
        if entry[0] == 0:
            del hooked[id(t)]
            for hook in list(t._post_accumulate_grad_hooks.values()):
                hook(t)


def run_backward(root: Tensor, grad: Array, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (an array shaped like ``root``) through the graph that made ``root``."""
    if root._ctx is None:  # a leaf: its gradient is the seed itself
        root._accumulate_grad(grad)
        for hook in list((root._post_accumulate_grad_hooks or {}).values()):
            hook(root)
        return
    order = _topological_order(root._ctx)
    for node in order:
        if node._released:
            raise RuntimeError(
                f"{type(node).__name__}: trying to backward through the graph a second time; its "
                "saved values were freed after the first backward. Call backward(retain_graph=True) "
                "the first time if you need to backpropagate twice.")
        node._out_grads = [None] * len(node._out_meta)
    root._ctx._out_grads[root._index] = grad
    hooked = _hooked_leaves(order)

    for node in order:
        dys = node._out_grads
        node._out_grads = None
        if all(d is None for d in dys):
            if hooked:  # no path from the root reaches this output: its leaves get nothing from it
                for t, wanted, (parent, _) in zip(node.inputs, node.needs_input_grad, node.edges):
                    if parent is None and wanted:
                        _leaf_received(hooked, t)
            continue
        xp = get_array_module(*[d for d in dys if d is not None])
        dys = [xp.zeros(s, dtype=dt) if d is None else d for d, (s, dt) in zip(dys, node._out_meta)]
        grads = node.backward(node, *dys)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if _anomaly_mode:
            _check_backward(node, dys, grads)
        if len(grads) != len(node.inputs):
            raise RuntimeError(f"{type(node).__name__}.backward returned {len(grads)} gradients "
                               f"for {len(node.inputs)} inputs")
        for t, g, wanted, (parent, index) in zip(node.inputs, grads, node.needs_input_grad, node.edges):
            if not wanted:
                continue
            if g is not None:
                if g.shape != t.shape:  # (an in-place op keeps the shape, so t's is the one it had)
                    raise RuntimeError(f"{type(node).__name__}.backward returned a gradient of shape "
                                       f"{g.shape} for an input of shape {t.shape}")
                if parent is None:
                    t._accumulate_grad(g)
                else:
                    if t._retains_grad and t._ctx is parent:  # not after an in-place op replaced it
                        t._accumulate_grad(g)
                    _accumulate(parent._out_grads, index, g)
            if parent is None and hooked:
                _leaf_received(hooked, t)
        if not retain_graph:
            node._saved = ()
            node._released = True


def unbroadcast(g: Array, shape: Sequence[int]) -> Array:
    """Sum ``g`` down to ``shape``: the backward of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1, so its
    gradient adds up those copies.
    """
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and g.shape[extra + i] != 1)
    g = g.sum(axis=axes, keepdims=True) if axes else g
    return g.reshape(shape)
