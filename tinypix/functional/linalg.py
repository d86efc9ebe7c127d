"""Matrix products: ``matmul`` (NumPy's batched ``@``) and ``linear``."""
import numpy as np

from ..autograd import Function, unbroadcast
from ..tensor import check_same_device
from .shape import squeeze, unsqueeze


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


def matmul(a, b):
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


def linear(x, w, b=None):
    """y = x @ w^T + b with x: (..., in), w: (out, in), b: (out,) -> y: (..., out)."""
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {w.shape}: "
                         f"{x.shape[-1]} input features != {w.shape[-1]}")
    y = matmul(x, w.transpose(0, 1))
    return y if b is None else y + b
