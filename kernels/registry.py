"""The one seam for speed: which implementation computes an op, decided per call.

An op is a name ("conv2d", "batch_norm", "max_pool2d", ...) for a computation on arrays. It has
one readable implementation, the specification, written in NumPy (it runs on CuPy arrays too),
and any number of faster ones, each for one device and the calls it applies to::

    @kernels.op("leaky_relu")               # tinypix/functional: the readable body; calls to
    def _leaky_relu(x, slope):              # _leaky_relu now run whatever implementation applies
        ...

    @register("leaky_relu", "cpu", "one pass on every core", applies=...)   # kernels/cpu_relu.py
    def leaky_relu(x, slope):
        ...

A call runs the first faster implementation of its arrays' device whose ``applies(*args)`` is
true, in the order ENGINES lists their modules, and the readable one when none does.
``applies`` looks at dtypes and shapes only, never at the machine, so every machine runs the same
algorithm on the same call. ``TINYPIX_KERNELS=reference`` runs the readable one always.

To see what runs: ``explain(op, *args)`` says which implementation a call would take and why the
others do not apply; inside ``with trace() as ran:`` every op call is recorded.

The faster implementations live in modules of this package that are imported the first time an
op runs on their device, so ``import tinypix`` does not load Numba or CuPy.
"""
import contextlib
import importlib
import os
import threading
from collections import namedtuple

import numpy as np

ENV_VAR = "TINYPIX_KERNELS"
CHOICES = ("", "reference")
# The modules that hold each device's faster implementations, in the order they are asked.
ENGINES = {
    "cpu": ("cpu", "cpu_patches", "cpu_winograd", "cpu_conv", "cpu_norm", "cpu_relu"),
    "cuda": ("cuda",),
}

Implementation = namedtuple("Implementation", "op device name description fn applies module")
Call = namedtuple("Call", "op implementation device shapes")

_readable = {}      # op -> Implementation (device None: every device)
_faster = {}        # op -> [Implementation, ...] in the order asked
_loaded = set()     # devices whose engine modules were imported
_tracing = threading.local()  # .recorders: the lists of this thread's active trace() blocks
_loading = threading.RLock()  # held while engines import (and, inside, register)


def op(name):
    """Decorator: ``fn`` is the readable implementation of op ``name``, and the function
    returned runs the implementation that applies to each call (``fn`` is its ``.readable``)."""
    def decorate(fn):
        if name in _readable:
            raise ValueError(f"op {name!r} already has a readable implementation "
                             f"({_readable[name].module}.{_readable[name].fn.__name__})")
        _readable[name] = Implementation(name, None, "readable", "the specification, in NumPy",
                                         fn, None, fn.__module__)

        def run(*args):
            impl = choose(name, args)
            recorders = getattr(_tracing, "recorders", None)
            if recorders:
                call = Call(name, impl.name, _device(args), tuple(_shape(a) for a in args))
                for ran in recorders:
                    ran.append(call)
            return impl.fn(*args)
        run.__name__, run.__qualname__, run.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        run.__module__, run.readable, run.op = fn.__module__, fn, name
        return run
    return decorate


def register(name, device, description, applies=None):
    """Decorator for engine modules: ``fn`` computes op ``name`` on ``device`` ('cpu' or 'cuda')
    for the calls where ``applies(*args)`` is true (every call when ``applies`` is None). The
    implementation is named after its module; ``description`` says in a few words how."""
    if device not in ENGINES:
        raise ValueError(f"unknown device {device!r}: expected one of {sorted(ENGINES)}")

    def decorate(fn):
        impl = Implementation(name, device, fn.__module__.rsplit(".", 1)[-1], description, fn,
                              applies, fn.__module__)
        with _loading:  # a new sorted list: calls on other threads keep reading the old one
            _faster[name] = sorted(_faster.get(name, []) + [impl], key=_rank)
        return fn
    return decorate


def _device(args):
    """'cuda' if any argument is a CuPy array, else 'cpu'."""
    for a in args:
        if type(a).__module__.startswith("cupy"):
            return "cuda"
    return "cpu"


def _shape(a):
    return tuple(a.shape) if hasattr(a, "shape") else a


def _forced():
    choice = os.environ.get(ENV_VAR, "")
    if choice not in CHOICES:
        raise ValueError(f"{ENV_VAR}={choice!r} is not one of {', '.join(map(repr, CHOICES))}: "
                         f"'reference' runs the readable implementation of every op; unset or '' "
                         f"the first faster one that applies")
    return choice == "reference"


def _load(device):
    """Import ``device``'s engine modules (once); they register their implementations."""
    if device in _loaded:
        return
    with _loading:  # (threads that arrive together import once)
        if device not in _loaded:
            for module in ENGINES[device]:
                importlib.import_module(f"{__package__}.{module}")
            _loaded.add(device)


def _rank(impl):
    """Where ``impl``'s module stands among the engine modules of every device; before them, one
    registered from elsewhere (a student's own: asked first, so that it runs where it applies)."""
    names = [f"{__package__}.{m}" for device in ENGINES for m in ENGINES[device]]
    return names.index(impl.module) if impl.module in names else -1


def choose(name, args):
    """The Implementation that a call of op ``name`` on ``args`` runs."""
    readable = _readable[name]
    if _forced():
        return readable
    device = _device(args)
    _load(device)
    for impl in _faster.get(name, ()):
        if impl.device == device and (impl.applies is None or impl.applies(*args)):
            return impl
    return readable


def implementations(name):
    """Every implementation of op ``name``: the faster ones in the order asked, then the readable one."""
    if name not in _readable:
        raise KeyError(f"no op {name!r}; the ops are: {', '.join(sorted(_readable))}")
    for device in ENGINES:
        _load(device)
    return list(_faster.get(name, ())) + [_readable[name]]


def explain(name, *args):
    """A few lines saying which implementation a call of op ``name`` on ``args`` runs, and why.

    >>> print(kernels.explain("leaky_relu", np.zeros((2, 3)), 0.0))
    leaky_relu on cpu, float64 (2, 3), 0.0
      runs cpu_relu (tinypix.kernels.cpu_relu): one pass on every core
    """
    chosen = choose(name, args)
    shown = ", ".join(f"{a.dtype} {tuple(a.shape)}" if hasattr(a, "dtype") and hasattr(a, "shape")
                      else repr(a) for a in args)
    lines = [f"{name} on {_device(args)}, {shown}",
             f"  runs {chosen.name} ({chosen.module}): {chosen.description}"]
    if _forced():
        lines.append(f"  ({ENV_VAR}=reference: the readable implementation always runs)")
        return "\n".join(lines)
    for impl in _faster.get(name, ()):
        if impl is chosen:
            break
        why = "another device" if impl.device != _device(args) else "does not apply to these shapes or dtypes"
        lines.append(f"  not {impl.name}: {why}")
    return "\n".join(lines)


@contextlib.contextmanager
def trace():
    """Record every op call that this thread makes inside the block: ``with trace() as ran:
    ...``, then ``ran`` is a list of Call(op, implementation, device, shapes) in the order the
    calls were made. Blocks may nest; each records what is called inside it."""
    ran = []
    recorders = _tracing.__dict__.setdefault("recorders", [])
    recorders.append(ran)
    try:
        yield ran
    finally:
        del recorders[next(k for k, r in enumerate(recorders) if r is ran)]


FLOATS = (np.float32, np.float64)  # the element types the compiled kernels are built for


def is_float(a, *rest):
    """``applies`` for the many kernels whose first argument sets the element type: True when it
    is float32 or float64 (Numba has no float16 arithmetic on the CPU)."""
    return a.dtype in FLOATS
