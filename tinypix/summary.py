"""Look inside a network: each layer's output shape, parameters, receptive field, jump and the
activation memory backward keeps -- the numbers the lecture reasons with.

    print(tinypix.summary(UNet(base_channels=16, depth=3), (3, 64, 64)))

It runs one real forward pass of a single zero image (eval mode, no graph). Meanwhile every
submodule's ``forward`` is wrapped, to name the rows, and so is ``Function.apply``, to follow each
tensor through every op -- also the ``cat`` and ``+`` of skip connections, outside any layer.

Receptive fields are followed exactly, per output pixel (see :class:`Reach`). Convolution and
pooling obey the lecture's rules rf_out = rf_in + (k-1)*d*jump_in and jump_out = jump_in*s;
transpose convolution and resizing divide the jump; cat and + join windows and must line up.
"""
from __future__ import annotations

import contextlib
import math
import re
import weakref
from collections import Counter, namedtuple
from fractions import Fraction
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from .autograd import Function, no_grad
from .creation import zeros
from .functional.conv import Conv2d, ConvTranspose2d
from .functional.pool import AvgPool2d, MaxPool2d, MaxUnpool2d
from .functional.shape import Index, Pad
from .functional.upsample import BilinearInterpolate, NearestInterpolate
from .nn import Module
from .tensor import Tensor

if TYPE_CHECKING:
    from .typing import DTypeLike


class SummaryError(ValueError):
    """The forward pass that ``summary`` runs failed; the message says where and why."""


def format_bytes(n: int) -> str:
    """'122 MB' for 128,000,000 bytes: binary units, as in the lecture (1 MB = 2^20 bytes)."""
    value, unit = float(n), "B"
    for bigger in ("KB", "MB", "GB", "TB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    digits = 0 if value >= 100 or unit == "B" else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


# -- which input pixels each pixel sees ---------------------------------------------------------
class Reach(namedtuple("Reach", "period step lo hi")):
    """Which input pixels the pixels of a tensor see, along one axis.

    Pixel o = q*period + r sees input pixels q*step + lo[r] ... q*step + hi[r] (lo[r] is None if
    it sees none). After convolutions and pooling only, period is 1, step is the lecture's jump and
    hi - lo + 1 its receptive field. Upsampling gives neighbouring pixels differently placed
    windows (period > 1), which those two numbers alone cannot describe.
    """

    def at(self, o: int) -> tuple[int, int] | None:
        q, r = divmod(o, self.period)
        return None if self.lo[r] is None else (q * self.step + self.lo[r], q * self.step + self.hi[r])

    @property
    def rf(self) -> int:
        """The widest window: input pixels seen by one output pixel."""
        return max((h - l + 1 for l, h in zip(self.lo, self.hi) if l is not None), default=0)

    @property
    def jump(self) -> Fraction:
        return Fraction(self.step, self.period)

    @property
    def centre(self) -> Fraction | None:
        """Where in the input pixel 0 is centred, averaged over a period."""
        c = [Fraction(l + h, 2) - r * self.jump for r, (l, h) in enumerate(zip(self.lo, self.hi))
             if l is not None]
        return sum(c) / len(c) if c else None


_PIXEL = Reach(1, 1, (0,), (0,))  # the input image: pixel o sees itself
_MAX_PERIOD = 4096  # resizing by odd ratios can make the pattern repeat too rarely to follow


def _compose(sources, taps, period, step):
    """The reach of an output whose pixel o reads pixels ``taps(o)`` of each source, where
    ``taps(o + period) == taps(o) + step``. The sources share one jump."""
    m = math.lcm(*(s.period // math.gcd(step, s.period) for s in sources))  # until all repeat
    if period * m > _MAX_PERIOD:
        return None
    lo, hi = [], []
    for r in range(period * m):
        seen = [w for s in sources for i in taps(r) if (w := s.at(i)) is not None]
        lo.append(min((w[0] for w in seen), default=None))
        hi.append(max((w[1] for w in seen), default=None))
    first = sources[0]
    reach = Reach(period * m, step * m // first.period * first.step, tuple(lo), tuple(hi))
    for p in range(1, reach.period):  # the shortest period that repeats the same windows
        if reach.period % p == 0 and reach.step * p % reach.period == 0:
            short = Reach(p, reach.step * p // reach.period, reach.lo[:p], reach.hi[:p])
            if all(short.at(r) == reach.at(r) for r in range(reach.period)):
                return short
    return reach


def _conv_taps(o, k, s, p, d):  # conv, pooling, pad (k=1, p=before), slice (k=1, p=-start)
    return [o * s - p + t * d for t in range(k)]


def _transpose_taps(o, k, s, p, d):  # input i puts kernel tap t on output i*s - p + t*d
    return [(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0]


def _resize_taps(o, ratio, offset, blend):  # PyTorch's source point of output pixel o
    src = (o + offset) * ratio - offset
    return [math.floor(src), math.floor(src) + 1] if blend and src != math.floor(src) else [math.floor(src)]


def _windows(cls, args, x_shape, out_shape):
    """Per axis (taps, period, step) for an op that moves pixels; None for one that keeps them."""
    if cls in (Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d):
        axes = zip(*(args[3] if cls in (Conv2d, ConvTranspose2d) else args[1])[:4])  # k, s, p, d
        if cls is ConvTranspose2d:
            return [(partial(_transpose_taps, k=k, s=s, p=p, d=d), s, 1) for k, s, p, d in axes]
        return [(partial(_conv_taps, k=k, s=s, p=p, d=d), 1, s) for k, s, p, d in axes]
    if cls is Pad:
        return [(partial(_conv_taps, k=1, s=1, p=before, d=1), 1, 1) for before, _ in args[1][-2:]]
    if cls in (NearestInterpolate, BilinearInterpolate, MaxUnpool2d):
        blend = cls is BilinearInterpolate
        corners, scales = (args[2], args[3]) if blend else (False, (None, None))
        out = []
        for n, m, scale in zip(x_shape[-2:], out_shape[-2:], scales):
            ratio = (Fraction(n - 1, max(m - 1, 1)) if corners else  # corner centres meet
                     1 / Fraction(scale).limit_denominator(64) if scale else Fraction(n, m))
            offset = Fraction(1, 2) if blend and not corners else 0  # pixel edges meet
            out.append((partial(_resize_taps, ratio=ratio, offset=offset, blend=blend),
                        ratio.denominator, ratio.numerator))
        return out
    if cls is Index and x_shape[-2:] != out_shape[-2:]:  # x[..., a:b:s, c:d:t] crops and strides
        key = args[1] if isinstance(args[1], tuple) else (args[1],)
        if Ellipsis in key:
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (len(x_shape) - len(key) + 1) + key[at + 1:]
        if len(key) == len(x_shape) and all(isinstance(k, slice) for k in key[-2:]):
            spans = [k.indices(n) for k, n in zip(key[-2:], x_shape[-2:])]
            return [(partial(_conv_taps, k=1, s=s, p=-a, d=1), 1, s) for a, _, s in spans]
    return None


def _follow(tracks, windows):
    """Compose each axis; None when a pattern cannot be followed."""
    axes = tuple(_compose([t[a] for t in tracks], *windows[a]) for a in range(2))
    return None if None in axes else axes


def _value(numbers):
    """One number when both axes agree, else an (h, w) tuple; ints unless fractional."""
    v = [int(x) if x.denominator == 1 else float(x) for x in map(Fraction, numbers)]
    return v[0] if v[0] == v[1] else tuple(v)


# -- following one forward pass -----------------------------------------------------------------
class _Entry:
    """What the tracer knows about one live tensor (held weakly: the pass frees tensors as usual)."""

    def __init__(self, t, track, producer):
        self.ref, self.track, self.producer, self.counted = weakref.ref(t), track, producer, False


class _Tracer:
    """Rows, tracks and problems collected while one forward pass runs."""

    def __init__(self, batch_size):
        self.batch_size, self.rows, self.problems = batch_size, [], []
        self.running = []         # (name, module) of each module inside forward, innermost last
        self._entries = {}        # id(tensor) -> _Entry
        self._leaf_depth = 0      # > 0 while a layer without children runs
        self._counts = Counter()  # calls per module, ops per name

    def lookup(self, t):
        entry = self._entries.get(id(t))
        return entry if entry is not None and entry.ref() is t else None  # ids get reused

    def register(self, t, track, producer):
        self._entries[id(t)] = entry = _Entry(t, track, producer)
        return entry

    def wrap(self, name, module, forward):
        """A forward that marks ``module`` as running and adds a row when it is a leaf."""
        leaf = next(module.children(), None) is None

        def traced_forward(*args, **kwargs):
            self.running.append((name, module))
            self._leaf_depth += leaf
            out = forward(*args, **kwargs)  # on an error `running` keeps the failing path
            self._leaf_depth -= leaf
            self.running.pop()
            if leaf:
                self._counts[id(module)] += 1
                calls = self._counts[id(module)]
                self._add_row((name or type(module).__name__) + (f" (call {calls})" if calls > 1 else ""),
                              type(module).__name__, out, sum(p.numel() for p in module.parameters()))
            return out
        return traced_forward

    def run_op(self, cls, args, run):
        """Run one op (``run()``) and track its outputs; an op outside any layer gets a row."""
        out = run()
        outs = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, Tensor)]
        free = self._leaf_depth == 0 and outs[0].ndim == 4 and outs[0].dtype.kind == "f"
        prefix, module = self.running[-1]  # ops run inside the model's forward, at least
        producer = prefix or type(module).__name__
        if free:
            op = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()  # MaxPool2d -> max_pool2d
            self._counts[(prefix, op)] += 1
            producer = f"{prefix + '.' if prefix else ''}{op}#{self._counts[(prefix, op)]}"
        known = [(a, e) for a in args if isinstance(a, Tensor)
                 for e in [self.lookup(a)] if e is not None and e.track is not None]
        track = self._propagate(cls, args, known, outs[0].shape, producer) if known else None
        for o in outs:
            self.register(o, track, producer)
        if free:
            self._add_row(producer, cls.__name__, out, 0)
        return out

    def _propagate(self, cls, args, known, out_shape, where):
        """The track (a Reach per axis) of an op's output, from its inputs' tracks."""
        if len(out_shape) < 2:
            return None
        windows = _windows(cls, args, known[0][0].shape, out_shape)
        if windows is not None:
            return _follow([known[0][1].track], windows)
        # Ops that leave pixels in place (activations, batch norm, cat of channels, +) join inputs.
        if any(t.shape[-2:] != out_shape[-2:] for t, _ in known):
            return None  # a reduction, reshape or broadcast: output pixels no longer map to input pixels
        tracks = list(dict.fromkeys(e.track for _, e in known))
        jumps = {tuple(r.jump for r in t) for t in tracks}
        if len(jumps) > 1 or len({tuple(r.centre for r in t) for t in tracks}) > 1:
            self.problems.append(f"{where} joins tensors that do not line up pixel for pixel: " + "; ".join(
                f"'{e.producer}' {t.shape[-2]}x{t.shape[-1]} (jump {_value(r.jump for r in e.track)}, "
                f"pixel 0 centred on input pixel {_value(r.centre for r in e.track)})" for t, e in known))
        if len(tracks) == 1 or len(jumps) > 1:
            return tracks[0]
        return _follow(tracks, [(lambda o: [o], 1, 1)] * 2)  # pixel o of each input

    def _add_row(self, name, type_name, out, params):
        outs = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, Tensor)]
        nbytes, track = 0, None
        for i, o in enumerate(outs):  # a layer returning its input (Identity, eval Dropout) adds nothing
            entry = self.lookup(o) or self.register(o, None, name)
            track = entry.track if i == 0 else track
            if not entry.counted:
                entry.counted = True
                nbytes += o.numel() * o.dtype.itemsize * (self.batch_size if o.shape[:1] == (1,) else 1)
        self.rows.append({
            "name": name, "type": type_name, "params": int(params), "activation_bytes": int(nbytes),
            "output_shape": self.batched(outs[0].shape) if outs else None,
            "receptive_field": _value(r.rf for r in track) if track else None,
            "jump": _value(r.jump for r in track) if track else None})

    def batched(self, shape):
        """The shape for the real batch: the probe pass ran one image."""
        return (self.batch_size,) + tuple(shape[1:]) if shape[:1] == (1,) else tuple(shape)

    def explain(self, model, x_shape, err):
        """A SummaryError message for a forward pass that raised ``err``."""
        name, module = self.running[-1] if self.running else ("", model)
        where = f"'{name}' ({type(module).__name__})" if name else f"{type(model).__name__}.forward"
        text = f"summary: the forward pass of {type(model).__name__} on input {x_shape} failed in {where}"
        if self.rows:
            last = self.rows[-1]
            text += f", after '{last['name']}' ({last['type']}) returned {last['output_shape']}"
        text += f":\n  {type(err).__name__}: {err}"
        # The op's message names the shapes it got; point at the layers that made them.
        message, makers = str(err).replace(" ", ""), {}
        for entry in self._entries.values():
            t = entry.ref()
            if t is not None and t.ndim == 4 and str(t.shape).replace(" ", "") in message:
                makers[t.shape] = entry.producer
        if len({shape[-2:] for shape in makers}) > 1:
            text += ("\n  Tensors joined by cat or + must have the same height and width; these came "
                     "from " + ", ".join(f"'{p}' {s}" for s, p in makers.items()) + ". Crop or pad "
                     "one of them, or choose an input size the network divides evenly.")
        return text


@contextlib.contextmanager
def wrap_forwards(model: Module,
                  wrap: Callable[[str, Module, Callable[..., Any]], Callable[..., Any]]) -> Iterator[None]:
    """Inside this block each module's ``forward`` is ``wrap(name, module, forward)``.

    What forward hooks would do, as plain function wrapping: the wrapper is stored on the
    instance, where it shadows the class's method; removing it afterwards brings the method back.
    """
    modules = list(model.named_modules())
    saved = [(m, m.__dict__.get("forward")) for _, m in modules]
    try:
        for name, m in modules:
            m.forward = wrap(name, m, m.forward)
        yield
    finally:
        for m, own in saved:
            m.__dict__.pop("forward", None)
            if own is not None:
                m.forward = own


@contextlib.contextmanager
def _traced_ops(run_op):
    """Inside this block every ``Function.apply`` goes through ``run_op(cls, args, run)``."""
    original = Function.__dict__["apply"]
    Function.apply = classmethod(lambda cls, *args: run_op(cls, args, lambda: original.__func__(cls, *args)))
    try:
        yield
    finally:
        Function.apply = original


# -- the public API -----------------------------------------------------------------------------
class Summary:
    """What :func:`summary` found; ``print`` it for the table.

    Attributes:
        rows: one dict per layer (and per op run outside layers, e.g. ``cat#1``) in the order they
            ran, with keys name, type, output_shape, params, receptive_field, jump,
            activation_bytes. receptive_field and jump are numbers (an (h, w) tuple when the axes
            differ), None once output pixels no longer map to input pixels (flatten, global pooling).
        total_params: parameters of the model (a shared one counted once).
        activation_bytes: the layer outputs that backward keeps, for the whole batch.
        receptive_field, jump: those of the model's output.
        problems: joins (cat, +) whose inputs have one size but do not line up pixel for pixel.
    """

    def __init__(self, model: Module, input_shape: tuple[int, int, int], batch_size: int, tracer: _Tracer,
                 output_track: tuple[Reach, Reach] | None) -> None:
        self.model_name, self.input_shape, self.batch_size = type(model).__name__, input_shape, batch_size
        self.rows, self.problems = tracer.rows, tracer.problems
        params = list(model.parameters())
        self.total_params = sum(p.numel() for p in params)
        self.param_bytes = sum(p.numel() * p.dtype.itemsize for p in params)
        self.activation_bytes = sum(r["activation_bytes"] for r in self.rows)
        self.receptive_field = _value(r.rf for r in output_track) if output_track else None
        self.jump = _value(r.jump for r in output_track) if output_track else None

    def __str__(self) -> str:
        memory = format_bytes(self.activation_bytes)
        show = lambda v: "-" if v is None else "x".join(map(str, v)) if isinstance(v, tuple) else str(v)
        table = [("name", "type", "output shape", "params", "RF", "jump", "activations")] + [
            (r["name"], r["type"], str(r["output_shape"]), f"{r['params']:,}", show(r["receptive_field"]),
             show(r["jump"]), format_bytes(r["activation_bytes"])) for r in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(7)]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                 for line in table]
        rule = "-" * len(lines[0])
        return "\n".join(
            [f"{self.model_name} on input {self.input_shape}, batch of {self.batch_size}", lines[0], rule]
            + lines[1:] + [rule, f"parameters: {self.total_params:,} ({format_bytes(self.param_bytes)})",
                           f"activations kept for backward: {memory} (forward/backward, with their "
                           f"gradients: {format_bytes(2 * self.activation_bytes)})",
                           f"output pixel: receptive field {show(self.receptive_field)} input pixels, "
                           f"jump {show(self.jump)}", "units: 1 KB = 2^10 bytes, 1 MB = 2^20, 1 GB = 2^30"]
            + (["problems:"] + [f"  - {p}" for p in self.problems] if self.problems else []))

    __repr__ = __str__


def summary(model: Module, input_shape: Sequence[int], batch_size: int = 1,
            dtype: DTypeLike = "float32") -> Summary:
    """One row per layer: output shape, parameters, receptive field, jump, activation memory.

    Args:
        model: a ``tinypix.nn.Module``.
        input_shape: (C, H, W) of one image, without the batch dimension.
        batch_size: the batch the memory figures are for (the probe pass runs one image).
        dtype: the input's dtype; it must match the model's parameters.

    Returns:
        A :class:`Summary`.

    Raises:
        SummaryError: the forward pass failed (e.g. a skip connection joins tensors of different
            sizes); the message names the layer and the tensors involved.
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a tinypix.nn.Module, got {type(model).__name__}")
    shaped = isinstance(input_shape, (tuple, list))
    if not shaped or len(input_shape) != 3 or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in input_shape):
        hint = "; pass the batch size as batch_size=" if shaped and len(input_shape) == 4 else ""
        raise ValueError(f"summary: input_shape must be (C, H, W) of one image, got {input_shape!r}{hint}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"summary: batch_size must be a positive int, got {batch_size!r}")
    x = zeros(1, *input_shape, dtype=dtype, device=next((p.device for p in model.parameters()), "cpu"))
    tracer = _Tracer(int(batch_size))
    tracer.register(x, (_PIXEL, _PIXEL), "input")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()  # batch norm uses running statistics: each output pixel depends on its window only
    try:
        with no_grad(), wrap_forwards(model, tracer.wrap), _traced_ops(tracer.run_op):
            out = model(x)
    except Exception as err:
        raise SummaryError(tracer.explain(model, x.shape, err)) from err
    finally:
        for m, training in modes:
            m.training = training
    out = next((o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, Tensor)), None)
    entry = tracer.lookup(out) if out is not None else None
    return Summary(model, tuple(int(n) for n in input_shape), int(batch_size), tracer,
                   entry.track if entry is not None else None)


def receptive_field(model: Module, input_shape: Sequence[int]) -> int | tuple[int, int]:
    """How many input pixels one output pixel of ``model`` sees along each axis: an int (an (h, w)
    tuple when the axes differ). E.g. n stacked 3x3 convolutions see 2n + 1 pixels."""
    result = summary(model, input_shape)
    if result.receptive_field is None:
        raise ValueError(f"receptive_field: the output of {result.model_name} is not an image whose "
                         "pixels map to input pixels (it was flattened, pooled globally or reshaped)")
    return result.receptive_field
