"""Products: ``matmul`` (NumPy's batched ``@``), ``linear``, ``einsum``, ``cosine_similarity``."""
from __future__ import annotations

import string
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import get_array_module
from ..tensor import check_same_device
from .elementwise import clamp
from .reduce import norm
from .shape import squeeze, unsqueeze

if TYPE_CHECKING:
    from ..tensor import Tensor


class MatMul(Function):
    """y = a @ b for a: (..., n, k), b: (..., k, m) with broadcast batch dims.
    Backward: da = dy @ b^T, db = a^T @ dy, each summed over the batch dims it was broadcast on."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        da = unbroadcast(dy @ b.swapaxes(-1, -2), a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(a.swapaxes(-1, -2) @ dy, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are treated as a row / column vector."""
    check_same_device("matmul", [a, b])
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: dtypes {a.dtype} and {b.dtype} differ; convert one, e.g. b.to(a.dtype)")
    a2 = unsqueeze(a, 0) if a.ndim == 1 else a
    b2 = unsqueeze(b, -1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: {a2.shape[-1]} "
                         f"(last dim of the first) != {b2.shape[-2]} (second-to-last dim of the second)")
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dims of {a.shape} and {b.shape} cannot be broadcast together") from None
    y = MatMul.apply(a2, b2)
    if a.ndim == 1:
        y = squeeze(y, -2)
    if b.ndim == 1:
        y = squeeze(y, -1)
    return y


def linear(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """y = x @ w^T + b with x: (..., in), w: (out, in), b: (out,) -> y: (..., out)."""
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {w.shape}: "
                         f"{x.shape[-1]} input features != {w.shape[-1]}")
    y = matmul(x, w.transpose(0, 1))
    return y if b is None else y + b


# -- einsum ----------------------------------------------------------------------------------
class Einsum(Function):
    """NumPy's einsum with explicit subscripts, e.g. ``ins = ('ij', 'jk'), out = 'ik'``.

    The gradient of operand i is again an einsum: dy (subscripts ``out``) times every other
    operand, summed to operand i's subscripts. Three cases need more than that one call: a
    subscript repeated in operand i (a diagonal, 'ii') is put back on the diagonal by
    multiplying with identity matrices; a subscript only operand i has (summed away in forward)
    is broadcast back; a dim of size 1 that broadcast against a larger one is summed back.
    """

    @staticmethod
    def forward(ctx, ins, out, *xs):
        ctx.save_for_backward(*xs)
        ctx.ins, ctx.out = ins, out
        return get_array_module(*xs).einsum(",".join(ins) + "->" + out, *xs)

    @staticmethod
    def backward(ctx, dy):
        xs = ctx.saved_tensors
        sizes = {}
        for sub, x in zip(ctx.ins, xs):
            for c, n in zip(sub, x.shape):
                sizes[c] = max(sizes.get(c, 1), n)
        grads = [_einsum_grad(i, ctx.ins, ctx.out, xs, dy, sizes) if need else None
                 for i, need in enumerate(ctx.needs_input_grad[2:])]
        return (None, None, *grads)


def _einsum_grad(i, ins, out, xs, dy, sizes):
    xp = get_array_module(dy)
    target = ins[i]
    others = [(s, x) for j, (s, x) in enumerate(zip(ins, xs)) if j != i]
    known = set(out).union(*[set(s) for s, _ in others])
    full = "".join(dict.fromkeys(target))                # target's subscripts, once each
    unique = "".join(c for c in full if c in known)
    g = xp.einsum(",".join([out] + [s for s, _ in others]) + "->" + unique, dy, *[x for _, x in others])
    if unique != full:  # subscripts only this operand had: broadcast back along them
        g = xp.broadcast_to(g.reshape([sizes[c] if c in unique else 1 for c in full]),
                            [sizes[c] for c in full])
    fresh = (c for c in string.ascii_letters if c not in sizes)
    spread, eyes = "", []
    for k, c in enumerate(target):  # a repeated subscript (a diagonal): times an identity
        if c in target[:k]:
            spread += next(fresh)
            eyes.append((c + spread[-1], xp.eye(sizes[c], dtype=dy.dtype)))
        else:
            spread += c
    if eyes:
        g = xp.einsum(",".join([full] + [s for s, _ in eyes]) + "->" + spread, g, *[e for _, e in eyes])
    x = xs[i]  # dims of size 1 that broadcast against a larger one: sum the copies
    axes = tuple(k for k, n in enumerate(x.shape) if n == 1 and g.shape[k] != 1)
    return (g.sum(axis=axes, keepdims=True) if axes else g).astype(x.dtype, copy=False)


def _parse_einsum(equation, shapes):
    """Explicit subscripts (one string per operand, and the output) with '...' spelt out as
    letters the equation does not use; the implicit output is PyTorch's (and NumPy's): the
    broadcast '...' dims, then the subscripts that appear once, in alphabetical order."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} has {len(ins)} operand(s) but "
                         f"{len(shapes)} were given")
    for sub in ins + [out]:
        if any(not (c.isascii() and c.isalpha()) for c in sub.replace("...", "")) or sub.count("...") > 1:
            raise ValueError(f"einsum: invalid subscripts {sub!r} in {equation!r}: use letters and at "
                             "most one '...' per operand")
    free = [c for c in string.ascii_letters if c not in eq]
    n_ell = max([len(shape) - len(sub.replace("...", "")) for sub, shape in zip(ins, shapes)
                 if "..." in sub] or [0])
    ell = "".join(free[:n_ell])
    explicit = []
    for sub, shape in zip(ins, shapes):
        n = len(shape) - len(sub.replace("...", ""))
        if n < 0 or ("..." not in sub and n != 0):
            raise ValueError(f"einsum: subscripts {sub!r} do not fit an operand of shape {tuple(shape)}")
        explicit.append(sub.replace("...", ell[n_ell - n:]))
    if not arrow:
        letters = lhs.replace("...", "").replace(",", "")
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    else:
        out = out.replace("...", ell)
    return explicit, out


def einsum(equation: str, *operands: Tensor | Sequence[Tensor]) -> Tensor:
    """Einstein summation, ``torch.einsum('ij,jk->ik', a, b)``: the explicit form with '->', or
    the implicit one without (output: the subscripts that appear once, alphabetically); '...'
    stands for broadcast dims. The operands may also be given as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    check_same_device("einsum", list(operands))
    if any(x.dtype != operands[0].dtype for x in operands):
        raise TypeError(f"einsum: operands have different dtypes {[str(x.dtype) for x in operands]}; "
                        "convert them to one, e.g. b.to(a.dtype)")
    ins, out = _parse_einsum(equation, [x.shape for x in operands])
    try:
        return Einsum.apply(tuple(ins), out, *operands)
    except ValueError as e:
        raise ValueError(f"einsum: {equation!r} does not fit operands of shapes "
                         f"{[x.shape for x in operands]}: {e}") from None


# -- similarity ------------------------------------------------------------------------------
def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """<x1, x2> / (max(||x1||, eps) max(||x2||, eps)) along ``dim`` (x1, x2 broadcast together).

    Computed as PyTorch does: each input divided by its clamped norm, then multiplied and
    summed, with the clamp left out of the gradient (the norm's own gradient flows).
    """
    def unit(x):
        n = norm(x, 2, dim, keepdim=True)
        clamped = n + (clamp(n.detach(), min=eps) - n.detach())  # the clamp's value, norm's gradient
        return x / clamped

    shape = np.broadcast_shapes(x1.shape, x2.shape)
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    return (unit(x1) * unit(x2)).sum(dim)
