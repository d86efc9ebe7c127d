"""Gradient checking by central finite differences, in float64.

    from tinypix.testing import gradcheck
    x = tinypix.randn(3, 4, dtype=tinypix.float64, requires_grad=True)
    gradcheck(lambda x: (x.tanh() * x).sum(dim=1), (x,))

For small problems the whole Jacobian is compared, entry by entry: analytic rows come from one
backward pass per output element, numeric columns from two forward passes per input element.
For large ones that is too slow, so it compares directional derivatives instead: for a random
output weighting v and random input directions u,  <grad(v . f), u>  must equal
(v . f(x + eps u) - v . f(x - eps u)) / (2 eps).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the finite-difference one."""


def _prepare(inputs):
    """float64 leaf copies of the floating inputs to check; others pass through unchanged."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    floats = [isinstance(t, Tensor) and t.dtype.kind == "f" for t in inputs]
    wanted = [f and t.requires_grad for f, t in zip(floats, inputs)]
    if not any(wanted):  # nothing marked: check every floating input
        wanted = floats
    prepared = []
    for t, w in zip(inputs, wanted):
        if w:
            t = Tensor._wrap(np.array(t.detach().cpu().data, dtype=np.float64))
            t.requires_grad = True
        prepared.append(t)
    return prepared, [i for i, w in enumerate(wanted) if w]


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _weighted_sum(outs, vs):
    return sum(float((o.data * v).sum()) for o, v in zip(outs, vs))


def _analytic(fn, inputs, checked, vs):
    """Gradients of sum_k <v_k, out_k> with respect to each checked input."""
    for i in checked:
        inputs[i].grad = None
    outs = _outputs(fn, inputs)
    total = None
    for o, v in zip(outs, vs):
        if o.requires_grad:
            term = (o * Tensor._wrap(v)).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    return [np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad.data.copy()
            for i in checked]


def _numeric_directional(fn, inputs, i, u, vs, eps):
    x = inputs[i].data
    with no_grad():
        x += eps * u
        plus = _weighted_sum(_outputs(fn, inputs), vs)
        x -= 2 * eps * u
        minus = _weighted_sum(_outputs(fn, inputs), vs)
        x += eps * u
    return (plus - minus) / (2 * eps)


def _report(msg, analytic, numeric):
    raise GradcheckError(f"{msg}\n  analytic: {analytic!r}\n  numeric:  {numeric!r}\n"
                         f"  difference: {abs(analytic - numeric)!r}")


def gradcheck(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Tensor | Sequence[Any], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, full_limit: int = 400, n_directions: int = 4,
              seed: int = 0) -> bool:
    """Check ``fn``'s backward against central finite differences; raise ``GradcheckError`` if off.

    Args:
        fn: function of the inputs returning a Tensor (or a tuple of Tensors).
        inputs: tuple of Tensors (and other values passed through). Floating tensors with
            ``requires_grad`` are checked (all floating tensors if none has it), as float64 copies.
        eps, atol, rtol: step and tolerances; an entry passes when |a - n| <= atol + rtol * |n|.
        full_limit: compare the full Jacobian when that costs at most this many passes
            (one backward per output element plus two forwards per input element); otherwise
            compare ``n_directions`` random directional derivatives per input.

    Returns:
        True when every comparison passes.
    """
    inputs, checked = _prepare(inputs)
    if not checked:
        raise ValueError("gradcheck: no floating-point tensor among the inputs")
    with no_grad():
        outs = _outputs(fn, inputs)
    if not outs:
        raise ValueError("gradcheck: fn returned no floating-point tensor")
    n_in = sum(inputs[i].numel() for i in checked)
    n_out = sum(o.numel() for o in outs)
    rng = np.random.default_rng(seed)
    if n_out + 2 * n_in <= full_limit:
        _check_full(fn, inputs, checked, outs, eps, atol, rtol)
    else:
        vs = [rng.standard_normal(o.shape) for o in outs]
        grads = _analytic(fn, inputs, checked, vs)
        for g, i in zip(grads, checked):
            for _ in range(n_directions):
                u = rng.standard_normal(inputs[i].shape)
                a = float((g * u).sum())
                n = _numeric_directional(fn, inputs, i, u, vs, eps)
                if not abs(a - n) <= atol + rtol * abs(n):
                    _report(f"gradcheck: directional derivative of input {i} (shape {inputs[i].shape}) "
                          "along a random direction disagrees", a, n)
    return True


def _check_full(fn, inputs, checked, outs, eps, atol, rtol):
    """Compare every Jacobian entry d out[k][q] / d input[i][p]; report the worst one."""
    shapes = [o.shape for o in outs]
    sizes = [int(np.prod(s)) for s in shapes]
    n_out = sum(sizes)

    def flat_outputs():
        return np.concatenate([o.data.reshape(-1) for o in _outputs(fn, inputs)])

    numeric = []  # per checked input: (n_out, n_in_i), one column per perturbed element
    for i in checked:
        x = inputs[i].data.reshape(-1)  # a view of the float64 copy made by _prepare
        cols = np.empty((n_out, x.size))
        with no_grad():
            for p in range(x.size):
                old = x[p]
                x[p] = old + eps
                plus = flat_outputs()
                x[p] = old - eps
                minus = flat_outputs()
                x[p] = old
                cols[:, p] = (plus - minus) / (2 * eps)
        numeric.append(cols)

    analytic = [np.empty_like(c) for c in numeric]
    for r in range(n_out):  # row r of the Jacobian = gradient of output element r
        v = np.zeros(n_out)
        v[r] = 1.0
        vs = np.split(v, np.cumsum(sizes)[:-1])
        grads = _analytic(fn, inputs, checked, [w.reshape(s) for w, s in zip(vs, shapes)])
        for a, g in zip(analytic, grads):
            a[r] = g.reshape(-1)

    for a, n, i in zip(analytic, numeric, checked):
        excess = np.abs(a - n) - (atol + rtol * np.abs(n))
        if excess.size and not np.all(excess <= 0):
            r, p = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)), excess.shape)
            k = int(np.searchsorted(np.cumsum(sizes), r, side="right"))
            q = np.unravel_index(r - sum(sizes[:k]), shapes[k]) if shapes[k] else ()
            pos = np.unravel_index(p, inputs[i].shape) if inputs[i].shape else ()
            _report(f"gradcheck: worst Jacobian entry d output[{k}]{list(map(int, q))} / "
                    f"d input[{i}]{list(map(int, pos))} disagrees (input shape {inputs[i].shape}, "
                    f"output shape {shapes[k]})", float(a[r, p]), float(n[r, p]))
