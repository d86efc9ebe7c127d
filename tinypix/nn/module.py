"""Module and Parameter: the containers that hold a network's weights, as in PyTorch.

Assigning a :class:`Parameter` or a :class:`Module` to an attribute of a Module registers it::

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)        # a child module
            self.scale = nn.Parameter(tinypix.ones(1))
            self.register_buffer("count", tinypix.zeros(1))   # state that is not trained

        def forward(self, x):
            return self.conv(x) * self.scale

``state_dict()`` names every parameter and buffer by its attribute path (``conv.weight``,
``enc.1.running_mean``), exactly as PyTorch does, so checkpoints can be moved between the two.

Forward hooks see (and may replace) what goes into and comes out of ``forward``::

    handle = net.conv.register_forward_hook(lambda m, args, out: print(out.shape))
    net(x)
    handle.remove()
"""
from __future__ import annotations

import warnings
from collections import OrderedDict, namedtuple
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, TypeVar

import numpy as np

from ..autograd import no_grad
from ..backend import is_cupy_array, normalize_device, to_device
from ..tensor import Tensor, _as_dtype, _is_dtype_name
from .hooks import RemovableHandle
from .parameter import Parameter

if TYPE_CHECKING:
    from ..typing import Array, DeviceLike, DTypeLike

_M = TypeVar("_M", bound="Module")  # methods that return self return the caller's own class


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _as_array(value):
    """The array behind a Tensor, a NumPy/CuPy array, or anything np.asarray takes."""
    value = value.data if isinstance(value, Tensor) else value
    return value if is_cupy_array(value) else np.asarray(value)


def _quoted(keys):
    return ", ".join(f'"{k}"' for k in keys)


def _indent(text, spaces=2):
    first, *rest = text.split("\n")
    return "\n".join([first] + [" " * spaces + line for line in rest])


class Module:
    """Base class of every layer and network. Subclasses call ``super().__init__()`` first and
    define ``forward``; calling the module runs ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_hooks_with_kwargs", set())    # ids of hooks that take kwargs
        object.__setattr__(self, "_hooks_always_called", set())  # ids run even if forward raises

    # -- registration --------------------------------------------------------------------------
    def _check_init(self, what, name):
        if "_parameters" not in self.__dict__:
            cls = type(self).__name__
            raise AttributeError(f"{cls}: cannot assign {what} '{name}' before Module.__init__() has "
                                 f"run; call super().__init__() first in {cls}.__init__")

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign a {type(value).__name__} to "
                                f"parameter '{name}'; wrap it as nn.Parameter(...) or assign None")
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: buffer '{name}' must be a Tensor or None, "
                                f"got {type(value).__name__}")
            self._buffers[name] = value
        else:
            if "_modules" in self.__dict__ and name in self._modules:
                del self._modules[name]  # a plain value now shadows the old submodule
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: look in the registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _claim(self, name, keep):
        """Remove ``name`` from the plain attributes and from every registry but ``keep``, the
        one it goes into next: replacing an entry there keeps its place in the order (so
        ``seq[2] = module`` still runs third)."""
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a Parameter (or None) under ``name``."""
        self._check_init("parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter: '{name}' must be an "
                            f"nn.Parameter or None, got {type(param).__name__}")
        self._claim(name, self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a Tensor that is state but not trained (e.g. BatchNorm's running mean).

        Buffers move with ``to()``; persistent ones are saved in ``state_dict()``.
        """
        self._check_init("buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}.register_buffer: '{name}' must be a Tensor or "
                            f"None, got {type(tensor).__name__}")
        self._claim(name, self._buffers)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name`` (what ``self.name = module`` does)."""
        self._check_init("module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: '{name}' must be a Module or None, "
                            f"got {type(module).__name__}")
        self._claim(name, self._modules)
        self._modules[name] = module

    register_module = add_module

    # -- running -------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define "
                                  "forward(self, ...) in the subclass")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward``, with the forward pre-hooks before it and the forward hooks after."""
        pre, post = self.__dict__.get("_forward_pre_hooks"), self.__dict__.get("_forward_hooks")
        if not pre and not post:
            return self.forward(*args, **kwargs)
        with_kwargs = self._hooks_with_kwargs
        for hook_id, hook in list(pre.items()):
            if hook_id in with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"{type(self).__name__}: a forward pre-hook registered "
                                           "with_kwargs=True must return None or (args, kwargs), "
                                           f"got {type(result).__name__}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        try:
            output = self.forward(*args, **kwargs)
        except Exception:
            for hook_id, hook in list(post.items()):
                if hook_id in self._hooks_always_called:
                    try:
                        self._run_forward_hook(hook_id, hook, args, kwargs, None)
                    except Exception as error:  # the forward's own error is the one raised
                        warnings.warn(f"{type(self).__name__}: a forward hook with always_call=True "
                                      f"raised {error!r} while forward was failing; ignored",
                                      stacklevel=2)
            raise
        for hook_id, hook in list(post.items()):
            result = self._run_forward_hook(hook_id, hook, args, kwargs, output)
            if result is not None:
                output = result
        return output

    def _run_forward_hook(self, hook_id, hook, args, kwargs, output):
        if hook_id in self._hooks_with_kwargs:
            return hook(self, args, kwargs, output)
        return hook(self, args, output)

    def _add_hook(self, registry, hook, prepend, with_kwargs, always_call=False):
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}: a hook must be callable, got {type(hook).__name__}")
        handle = RemovableHandle(registry, self._hooks_with_kwargs, self._hooks_always_called)
        registry[handle.id] = hook
        if prepend:
            registry.move_to_end(handle.id, last=False)
        if with_kwargs:
            self._hooks_with_kwargs.add(handle.id)
        if always_call:
            self._hooks_always_called.add(handle.id)
        return handle

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``forward``; as in PyTorch.

        ``args`` is the tuple of positional inputs. The hook may return None, or new inputs (a
        tuple, or a single value, which is wrapped in one). With ``with_kwargs=True`` it is
        called as ``hook(module, args, kwargs)`` and may return ``(args, kwargs)``. Hooks run in
        the order registered (``prepend=True`` puts this one first). Returns a handle whose
        ``remove()`` unregisters it.
        """
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                              with_kwargs: bool = False, always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``forward``; as in PyTorch.

        The hook may return None, or a value that replaces the output (for the hooks after it
        and for the caller). ``args`` are the inputs forward received (after pre-hooks). With
        ``with_kwargs=True`` it is called as ``hook(module, args, kwargs, output)``;
        ``always_call=True`` runs it (with output None) even when forward raises. Returns a
        handle whose ``remove()`` unregisters it.
        """
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs, always_call)

    # -- walking the tree ----------------------------------------------------------------------
    def named_modules(self, memo: set[Module] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(name, module) for this module and every descendant; a module reachable by several
        paths is listed once, under its first name, unless ``remove_duplicate=False``."""
        memo = set() if memo is None else memo
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, prefix + ("." if prefix else "") + name,
                                               remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse
                   else [(prefix, self)])
        for mod_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue  # a tensor shared by two modules is listed once, as in PyTorch
                if remove_duplicate:
                    seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self: _M, fn: Callable[[Module], None]) -> _M:
        """Call ``fn(m)`` on every child (recursively), then on self; e.g. custom init."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target: str) -> Module:
        """The module at dotted path ``target`` (``'enc.0'``); ``''`` is self."""
        module = self
        for item in target.split(".") if target else []:
            if not hasattr(module, item):
                raise AttributeError(f"{module._get_name()} has no attribute `{item}` (looking up "
                                     f"'{target}')")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"`{item}` is not an nn.Module (looking up '{target}')")
        return module

    def _get_member(self, target, registry, what):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in getattr(module, registry):
            raise AttributeError(f"{module._get_name()} has no {what} `{name}` (looking up "
                                 f"'{target}')")
        return getattr(module, registry)[name]

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target`` (``'enc.0.weight'``)."""
        return self._get_member(target, "_parameters", "parameter")

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target`` (``'enc.1.running_mean'``)."""
        return self._get_member(target, "_buffers", "buffer")

    def _get_name(self):
        return type(self).__name__

    # -- modes and gradients -------------------------------------------------------------------
    def train(self: _M, mode: bool = True) -> _M:
        """Training mode (dropout drops, batch norm uses batch statistics); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self: _M) -> _M:
        """Evaluation mode: same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self: _M, requires_grad: bool = True) -> _M:
        """Set ``requires_grad`` of every parameter (False freezes them, e.g. a pretrained
        encoder); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (to None, or to zeros with ``set_to_none=False``)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.data[...] = 0

    # -- devices and dtypes --------------------------------------------------------------------
    def to(self: _M, *args: DeviceLike | DTypeLike, device: DeviceLike | None = None,
           dtype: DTypeLike | None = None) -> _M:
        """Move (``'cuda'``) and/or cast (``tinypix.float64``) parameters and buffers in place.

        The Parameter objects stay the same, so an optimizer built before ``to()`` still works.
        Only floating-point values are cast; integer buffers (e.g. counters) keep their dtype.
        """
        for a in args:
            if isinstance(a, str) and not _is_dtype_name(a):
                device = a
            else:
                dtype = a
        device = normalize_device(device) if device is not None else None
        dtype = _as_dtype(dtype)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: only floating-point dtypes are allowed, "
                            f"got {dtype}")

        def convert(a: Array) -> Array:
            if dtype is not None and a.dtype.kind == "f" and a.dtype != dtype:
                a = a.astype(dtype)
            return a if device is None else to_device(a, device)

        for t in list(self.parameters()) + list(self.buffers()):
            t.data = convert(t.data)
            if t.grad is not None:
                t.grad.data = convert(t.grad.data)
        return self

    def _place(self, device, dtype):
        """Apply the ``device=`` / ``dtype=`` arguments that PyTorch's layer constructors take."""
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)
        return self

    def cpu(self: _M) -> _M:
        return self.to("cpu")

    def cuda(self: _M) -> _M:
        return self.to("cuda")

    def double(self: _M) -> _M:
        return self.to(np.float64)

    def float(self: _M) -> _M:
        return self.to(np.float32)

    def half(self: _M) -> _M:
        return self.to(np.float16)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> dict[str, Tensor]:
        """An ordered dict name -> Tensor of every parameter and persistent buffer.

        Values share memory with the module (as in PyTorch); they are detached unless
        ``keep_vars``. Copy them (or save them) before training on if you need a snapshot.
        """
        out = OrderedDict()
        # remove_duplicate=False: a module used in two places is saved under both names, as in
        # PyTorch (so its checkpoints load here, and ours there).
        for mod_prefix, module in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            dot = mod_prefix + ("." if mod_prefix else "")
            for name, p in module._parameters.items():
                if p is not None:
                    out[dot + name] = p if keep_vars else p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    out[dot + name] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` (Tensors or NumPy/CuPy arrays) into this module.

        Values are cast to each parameter's dtype and moved to its device. Shape mismatches are
        always errors; with ``strict`` so are missing and unexpected keys. All problems are
        reported together, by name. Returns ``(missing_keys, unexpected_keys)``.
        """
        own = self.state_dict(keep_vars=True)
        arrays = {k: _as_array(v) for k, v in state_dict.items() if k in own}
        missing = [k for k in own if k not in arrays]
        unexpected = [k for k in state_dict if k not in own]
        errors = [f"size mismatch for {k}: copying a param with shape {tuple(a.shape)} from checkpoint, "
                  f"the shape in current model is {own[k].shape}."
                  for k, a in arrays.items() if tuple(a.shape) != own[k].shape]
        if strict and unexpected:
            errors.insert(0, f"Unexpected key(s) in state_dict: {_quoted(unexpected)}. ")
        if strict and missing:
            errors.insert(0, f"Missing key(s) in state_dict: {_quoted(missing)}. ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for k, a in arrays.items():
                own[k].data[...] = to_device(a, own[k].device).astype(own[k].dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # -- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (e.g. ``3, 8, kernel_size=(3, 3)``)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): {_indent(repr(m))}" for name, m in self._modules.items()]
        if len(lines) == 1 and not children:
            return f"{type(self).__name__}({lines[0]})"
        body = "\n  ".join(lines + children)
        return f"{type(self).__name__}(\n  {body}\n)" if body else f"{type(self).__name__}()"
