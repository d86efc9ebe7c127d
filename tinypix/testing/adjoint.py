"""Two checks for students' own ops, each with a failure message that says what to look at.

``check_adjoint(f, f_t, x_shape, y_shape)`` is the dot-product test: a linear map f and its
transpose f_t satisfy <f(x), y> == <x, f_t(y)> for every x and y. It is how conv2d and
conv_transpose2d, max-pooling with fixed indices and max-unpooling, average pooling and
nearest upsampling are tested as pairs -- and the backward of any linear op must pass it too.

``assert_gradients_match(fn, *inputs)`` runs :func:`gradcheck` and, when it fails, compares the
gradient element by element and reports the input, the worst element, both values and a hint.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor
from .gradcheck import GradcheckError, _analytic, _numeric_directional, _prepare, gradcheck

if TYPE_CHECKING:
    from ..typing import DTypeLike, ShapeLike


class AdjointError(AssertionError):
    """f_t is not the transpose (adjoint) of f."""


def check_adjoint(f: Callable[[Tensor], Tensor], f_t: Callable[[Tensor], Tensor], x_shape: ShapeLike,
                  y_shape: ShapeLike, dtype: DTypeLike = np.float64, rtol: float = 1e-10,
                  seed: int = 0) -> tuple[float, float]:
    """Raise :class:`AdjointError` unless <f(x), y> == <x, f_t(y)> for random x and y.

    Args:
        f: a linear map, Tensor x_shape -> Tensor y_shape (e.g. ``lambda x: F.conv2d(x, w)``).
        f_t: its claimed transpose, Tensor y_shape -> Tensor x_shape.
        x_shape, y_shape: the shapes of x and y.
        dtype: of x and y (float64, so that rounding stays far below ``rtol``).
        rtol: allowed difference, relative to ||f(x)|| ||y|| + ||x|| ||f_t(y)||.
        seed: for the random x and y.

    Returns:
        (<f(x), y>, <x, f_t(y)>).
    """
    rng = np.random.default_rng(seed)
    x_np, y_np = (rng.standard_normal(tuple(s)).astype(dtype) for s in (x_shape, y_shape))
    with no_grad():
        fx, fty = f(Tensor._wrap(x_np.copy())), f_t(Tensor._wrap(y_np.copy()))
    for name, got, want, arg in (("f", fx, y_shape, "x"), ("f_t", fty, x_shape, "y")):
        if not isinstance(got, Tensor) or got.shape != tuple(want):
            raise AdjointError(f"check_adjoint: {name}({arg}) should be a Tensor of shape {tuple(want)}, "
                               f"got {getattr(got, 'shape', type(got).__name__)}; a map and its "
                               f"transpose swap the input and output shapes")
    fx, fty = fx.detach().cpu().numpy().astype(np.float64), fty.detach().cpu().numpy().astype(np.float64)
    lhs, rhs = float((fx * y_np).sum()), float((x_np * fty).sum())
    scale = np.linalg.norm(fx) * np.linalg.norm(y_np) + np.linalg.norm(x_np) * np.linalg.norm(fty)
    if not abs(lhs - rhs) <= rtol * scale:
        raise AdjointError(
            f"check_adjoint: <f(x), y> = {lhs!r} but <x, f_t(y)> = {rhs!r} (difference "
            f"{abs(lhs - rhs):.3g}, allowed {rtol * scale:.3g}).\n  Hint: f_t must use the same "
            f"weights and geometry as f (stride, padding, dilation, output_padding, indices) and "
            f"no bias; f must be linear (no bias, no data-dependent choices such as a max without "
            f"fixed indices); an average has a transpose that divides by the window size too.")
    return lhs, rhs


def _hint(a, n, same_shape_inputs):
    """Why an analytic gradient ``a`` might differ from the numeric ``n`` (both flat, where they differ)."""
    if not np.all(np.isfinite(n)):
        return "the numeric gradient is not finite: forward overflows or divides by zero near these inputs."
    if not np.any(a):
        return ("backward returns zero (or None) for this input: it must return one gradient per "
                "forward input, in order, and must not skip one that needs_input_grad asks for.")
    if same_shape_inputs:
        return (f"the analytic gradient matches the numeric one of input {same_shape_inputs[0]}: "
                "backward returns the gradients in the wrong order.")
    usable = np.abs(n) > 1e-8
    ratio = a[usable] / n[usable] if usable.any() else np.array([])
    if ratio.size and np.allclose(ratio, -1, rtol=1e-3):
        return "analytic = -numeric: a sign error in backward."
    if ratio.size and np.allclose(ratio, ratio[0], rtol=1e-3):
        return (f"analytic = {ratio[0]:.4g} x numeric everywhere: a constant factor is missing or "
                "extra (a 2 from a square, 1/N from a mean, a forgotten scale).")
    return ("only some elements disagree: check the chain rule for one of them by hand; near a kink "
            "(relu, abs, max with ties, clamp limits) finite differences are unreliable, so draw "
            "inputs away from it.")


def assert_gradients_match(fn: Callable[..., Tensor | Sequence[Tensor]], *inputs: Any, max_elements: int = 1000,
                           **tolerances: float) -> bool:
    """Run ``gradcheck(fn, inputs, **tolerances)``; on failure raise a readable GradcheckError.

    The report compares, for a random weighting v of the outputs, the analytic gradient of
    <v, fn(inputs)> with central differences element by element (up to ``max_elements`` per
    input, drawn at random when there are more): which input, how many elements are off, the
    worst one (index, analytic, numeric) and a hint about the likely bug.

    Args:
        fn: function of the inputs returning a Tensor (or a tuple of Tensors).
        inputs: Tensors (and other values passed through), as for gradcheck.
        tolerances: eps, atol, rtol (and gradcheck's other keywords).

    Returns:
        True when the gradients match.
    """
    try:
        return gradcheck(fn, inputs, **tolerances)
    except GradcheckError as err:
        summary = str(err)
    eps, atol, rtol = (tolerances.get(k, d) for k, d in (("eps", 1e-6), ("atol", 1e-5), ("rtol", 1e-3)))
    prepared, checked = _prepare(inputs)
    rng = np.random.default_rng(tolerances.get("seed", 0))
    with no_grad():
        outs = fn(*prepared)
    outs = [o for o in (outs if isinstance(outs, (tuple, list)) else (outs,))
            if isinstance(o, Tensor) and o.dtype.kind == "f"]
    vs = [rng.standard_normal(o.shape) for o in outs]
    analytic = dict(zip(checked, _analytic(fn, prepared, checked, vs)))
    lines, hint = [], None
    for i in checked:
        x = prepared[i]
        picks = np.arange(x.numel()) if x.numel() <= max_elements else \
            np.sort(rng.choice(x.numel(), max_elements, replace=False))
        a = analytic[i].reshape(-1)[picks]
        n = np.empty(len(picks))
        for j, p in enumerate(picks):
            u = np.zeros(x.numel())
            u[p] = 1.0
            n[j] = _numeric_directional(fn, prepared, i, u.reshape(x.shape), vs, eps)
        bad = ~(np.abs(a - n) <= atol + rtol * np.abs(n))
        sampled = "" if len(picks) == x.numel() else f" (of {len(picks)} sampled)"
        if not bad.any():
            lines.append(f"  input {i}, shape {x.shape}: all {len(picks)} elements match{sampled}")
            continue
        worst = int(np.argmax(np.where(bad, np.nan_to_num(np.abs(a - n), nan=np.inf), -1)))
        where = [int(k) for k in np.unravel_index(picks[worst], x.shape)] if x.shape else []
        lines.append(f"  input {i}, shape {x.shape}: {int(bad.sum())} of {len(picks)} elements off"
                     f"{sampled}; worst at {where}: analytic {a[worst]:.6g}, numeric {n[worst]:.6g}")
        swapped = [j for j in checked if j != i and prepared[j].shape == x.shape and
                   np.allclose(analytic[j].reshape(-1)[picks], n, rtol=rtol, atol=atol)]
        hint = hint or f"input {i}: " + _hint(a[bad], n[bad], swapped)
    raise GradcheckError(
        "Gradients do not match (analytic: backward; numeric: central differences with eps="
        f"{eps:g}, each element checked as |a - n| <= {atol:g} + {rtol:g} |n|):\n" + "\n".join(lines)
        + (f"\n  Hint: {hint}" if hint else "") + f"\n  gradcheck said: {summary.splitlines()[0]}")
