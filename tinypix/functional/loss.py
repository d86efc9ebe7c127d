"""Losses for classification (per image or per pixel) and for dense regression (depth, normals).

Label losses take scores x: (N, C) or (N, C, H, W) (any number of trailing dims) and integer
targets t: (N,) or (N, H, W). Each element i gets a weight W_i = weight[t_i] (1 without class
weights) and 0 where t_i == ignore_index; reduction 'mean' divides the weighted sum by sum_i W_i
(PyTorch's weighted mean), 'sum' adds, 'none' returns the per-element losses (shape of t).

Regression losses accept an optional validity ``mask`` (bool, broadcastable to the input):
depth maps have holes. Masked-out elements contribute nothing, and 'mean' averages over the
valid ones only; a batch without any valid element gives 0, not NaN, so training goes on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import autograd
from ..autograd import Function, unbroadcast
from ..backend import device_of, get_array_module, to_device
from ..tensor import Tensor, check_same_device
from .elementwise import where
from .norm import normalize

if TYPE_CHECKING:
    from ..typing import Array


def _check_reduction(op, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _label_weights(target, weight, ignore_index, C, dtype):
    """(safe labels with ignored ones set to 0, valid mask, per-element weights W).

    A label outside [0, C) that is not ignore_index gets a NaN weight, so its loss, its gradient
    and a reduced loss come out NaN, never those of a wrong class. Only a GPU gets this far with
    one: on the CPU _check_labels raises first.
    """
    xp = get_array_module(target)
    valid = target != ignore_index
    outside = valid & ((target < 0) | (target >= C))
    safe = xp.where(valid & ~outside, target, 0)
    W = valid.astype(dtype) if weight is None else weight.astype(dtype)[safe] * valid
    return safe, valid, xp.where(outside, np.dtype(dtype).type(np.nan), W)


def _weighted_reduce(loss, W, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    with np.errstate(invalid="ignore"):  # every target ignored: 0 / 0 = NaN, as in PyTorch
        return loss.sum() / W.sum()


def _grad_scale(dy, W, reduction):
    """d loss / d l_i, broadcastable to the target's shape."""
    if reduction != "mean":
        return dy
    D = W.sum()
    return dy / get_array_module(dy).where(D > 0, D, 1)  # all W_i = 0 then: any finite value


def _one_hot(safe, C, dtype):
    """(N, C, *) one-hot of labels safe: (N, *)."""
    xp = get_array_module(safe)
    classes = xp.arange(C).reshape((1, C) + (1,) * (safe.ndim - 1))
    return (classes == safe[:, None]).astype(dtype)


class SoftmaxCrossEntropy(Function):
    """Fused log_softmax + pick-the-target-entry, so backward is one expression:

        l_i = -(1 - s) W_i logp[i, t_i] - (s / C) valid_i sum_c w_c logp[i, c]
        dx_i = g_i ((1 - s) W_i (p_i - onehot(t_i)) + (s / C) valid_i (p_i sum_c w_c - w))

    with p = softmax(x) along dim 1, s = label_smoothing, w the class weights (ones if None)
    and g_i = d loss / d l_i.
    """

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, smoothing, reduction):
        xp = get_array_module(x)
        shifted = x - x.max(axis=1, keepdims=True)
        logp = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        safe, valid, W = _label_weights(target, weight, ignore_index, x.shape[1], x.dtype)
        loss = -W * xp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
        C = x.shape[1]
        if smoothing:
            w = 1 if weight is None else weight.astype(x.dtype).reshape((1, C) + (1,) * (x.ndim - 2))
            loss = (1 - smoothing) * loss - (smoothing / C) * valid * (logp * w).sum(axis=1)
        ctx.save_for_backward(logp, safe, valid, W, weight)
        ctx.smoothing, ctx.reduction = smoothing, reduction
        return _weighted_reduce(loss, W, reduction)

    @staticmethod
    def backward(ctx, dy):
        logp, safe, valid, W, weight = ctx.saved_tensors
        xp = get_array_module(logp)
        s, C = ctx.smoothing, logp.shape[1]
        g = _grad_scale(dy, W, ctx.reduction)
        target_coef = g * (1 - s) * W
        prob_coef = target_coef
        if s:
            w_total = C if weight is None else weight.astype(logp.dtype).sum()
            prob_coef = target_coef + g * (s / C) * valid * w_total
        dx = xp.exp(logp)
        dx *= prob_coef[:, None]
        dx -= _one_hot(safe, C, logp.dtype) * target_coef[:, None]
        if s:
            w = 1 if weight is None else weight.astype(logp.dtype).reshape((1, C) + (1,) * (logp.ndim - 2))
            dx -= (g * (s / C) * valid)[:, None] * w
        return dx, None, None, None, None, None


class NLL(Function):
    """l_i = -W_i x[i, t_i] for log-probabilities x. Backward: dx = -g_i W_i onehot(t_i)."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        xp = get_array_module(x)
        safe, _, W = _label_weights(target, weight, ignore_index, x.shape[1], x.dtype)
        ctx.save_for_backward(safe, W)
        ctx.C, ctx.reduction = x.shape[1], reduction
        return _weighted_reduce(-W * xp.take_along_axis(x, safe[:, None], axis=1)[:, 0], W, reduction)

    @staticmethod
    def backward(ctx, dy):
        safe, W = ctx.saved_tensors
        coef = _grad_scale(dy, W, ctx.reduction) * W
        return -_one_hot(safe, ctx.C, W.dtype) * coef[:, None], None, None, None, None


def _check_labels(op, x, target, weight, ignore_index):
    """Validate shapes, dtypes and label range; a label outside [0, C) is an error, never garbage."""
    if not isinstance(x, Tensor) or x.ndim < 2 or x.dtype.kind != "f":
        raise ValueError(f"{op}: expected floating-point scores of shape (N, C) or (N, C, H, W), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must be a tensor of integer class labels (e.g. int64), got "
                        f"{getattr(target, 'dtype', type(target).__name__)}; use target.long()")
    expected = (x.shape[0],) + x.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{op}: input of shape {x.shape} needs a target of shape {expected} (the "
                         f"input without its class dim 1), got {target.shape}")
    C = x.shape[1]
    if weight is not None and weight.shape != (C,):
        raise ValueError(f"{op}: weight must have shape ({C},), one entry per class, got {weight.shape}")
    check_same_device(op, [t for t in (x, target, weight) if t is not None])
    t = target.data
    # Checked on every call on the CPU: an out-of-range label would otherwise give NaN (see
    # _label_weights) with no word of why. On a GPU reading the answer back makes the host wait
    # for the whole forward pass, in every step, so there only detect_anomaly() checks.
    if device_of(t) == "cuda" and not autograd._anomaly_mode:
        return
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if bad.any():
        label = int(t[bad].reshape(-1)[0])
        raise ValueError(f"{op}: target contains label {label}, outside [0, {C}) for C = {C} classes "
                         f"(and not ignore_index={ignore_index}); fix the labels, or set "
                         f"ignore_index={label} if it marks pixels to skip")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of scores input: (N, C, *) against labels target: (N, *).

    weight: (C,) class weights; ignore_index: label whose elements are skipped;
    label_smoothing s: the target distribution is (1 - s) onehot + s / C (PyTorch's formula,
    including its weighted normalization). Returns a scalar, or (N, *) with reduction='none'.
    A label outside [0, C) raises ValueError on the CPU; on a GPU it gives a NaN loss, and
    raises only inside ``tinypix.autograd.detect_anomaly()`` (checking costs a wait per step).
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    _check_labels("cross_entropy", input, target, weight, ignore_index)
    return SoftmaxCrossEntropy.apply(input, target, weight, ignore_index, float(label_smoothing), reduction)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities input: (N, C, *) (e.g. from log_softmax)."""
    _check_reduction("nll_loss", reduction)
    _check_labels("nll_loss", input, target, weight, ignore_index)
    return NLL.apply(input, target, weight, ignore_index, reduction)


# -- regression losses -----------------------------------------------------------------------
def _fits(shape, target_shape):
    """True when ``shape`` broadcasts to ``target_shape`` without growing it."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target_shape)) == tuple(target_shape)
    except ValueError:
        return False


def _as_mask(op, mask, shape, device):
    """A bool array on ``device`` that broadcasts to ``shape``."""
    m = mask.data if isinstance(mask, Tensor) else mask
    m = to_device(get_array_module(m).asarray(m), device)
    if not _fits(m.shape, shape):
        raise ValueError(f"{op}: mask of shape {tuple(m.shape)} does not broadcast to the input shape "
                         f"{shape}; e.g. for an input (N, 1, H, W) give a mask (N, 1, H, W)")
    return m if m.dtype == bool else m != 0


def _difference(op, input, target, mask):
    """input - target, zeroed where the mask is False (before any square or abs, so NaNs in the
    holes of a target never reach a gradient)."""
    if input.shape != target.shape:
        raise ValueError(f"{op}: input of shape {input.shape} and target of shape {target.shape} "
                         "differ; give both the same shape")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {input.dtype}")
    d = input - target
    if mask is None:
        return d, None
    m = _as_mask(op, mask, input.shape, input.device)
    return where(m, d, 0.0), m


def _masked_reduce(loss, mask, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if mask is None:
        return loss.mean()
    xp = get_array_module(loss.data)
    count = xp.broadcast_to(mask, loss.shape).sum()
    return loss.sum() / Tensor._wrap(xp.maximum(count, 1).astype(loss.dtype))


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean",
             mask: Tensor | Array | None = None) -> Tensor:
    """Squared error (input - target)^2, averaged over valid elements (both any shape, same shape)."""
    _check_reduction("mse_loss", reduction)
    d, m = _difference("mse_loss", input, target, mask)
    return _masked_reduce(d * d, m, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean",
            mask: Tensor | Array | None = None) -> Tensor:
    """Absolute error |input - target|, averaged over valid elements."""
    _check_reduction("l1_loss", reduction)
    d, m = _difference("l1_loss", input, target, mask)
    return _masked_reduce(abs(d), m, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0,
                   mask: Tensor | Array | None = None) -> Tensor:
    """Huber-like error: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (beta=0: L1).
    Quadratic near zero (smooth gradients), linear far away (robust to outliers)."""
    _check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    d, m = _difference("smooth_l1_loss", input, target, mask)
    a = abs(d)
    loss = a if beta == 0 else where(a.data < beta, a * a * (0.5 / beta), a - 0.5 * beta)
    return _masked_reduce(loss, m, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None, mask: Tensor | Array | None = None) -> Tensor:
    """Huber loss: 0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere, d = input -
    target; that is delta * smooth_l1_loss with beta = delta. ``weight`` (input's shape) scales
    each element's loss before the reduction, as in PyTorch; ``mask`` as for the other losses."""
    _check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    d, m = _difference("huber_loss", input, target, mask)
    a = abs(d)
    loss = where(a.data < delta, a * a * 0.5, (a - 0.5 * delta) * float(delta))
    if weight is not None:
        if weight.shape != input.shape:
            raise ValueError(f"huber_loss: weight of shape {weight.shape} must have the input's "
                             f"shape {input.shape}")
        loss = loss * weight
    return _masked_reduce(loss, m, reduction)


_BCE_EPS = float(np.float32(1e-12))


class BinaryCrossEntropy(Function):
    """l = -(y log p + (1 - y) log(1 - p)) for probabilities p, each log clamped at -100 (so
    p = 0 or 1 gives a large finite loss, as in PyTorch).

        dl/dp = (p - y) / max(p (1 - p), eps),   dl/dy = log(1 - p) - log(p),

    as PyTorch computes them: eps is 1e-12 rounded to float32, and the logs of dl/dy are not
    clamped (it is infinite at p = 0 or 1).
    """

    @staticmethod
    def forward(ctx, p, y):
        xp = get_array_module(p)
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
            log_p = xp.maximum(xp.log(p), -100)
            log_q = xp.maximum(xp.log1p(-p), -100)
        ctx.save_for_backward(p, y)
        return (y - 1) * log_q - y * log_p

    @staticmethod
    def backward(ctx, dl):
        p, y = ctx.saved_tensors
        xp = get_array_module(p)
        need_p, need_y = ctx.needs_input_grad
        dp = dl * (p - y) / xp.maximum(p * (1 - p), _BCE_EPS) if need_p else None
        dy = None
        if need_y:
            with np.errstate(divide="ignore"):
                dy = dl * (xp.log1p(-p) - xp.log(p))
        return dp, dy


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities input in [0, 1] against target in [0, 1] (same
    shape); weight: per-element weights that broadcast to input. For scores (logits) use
    ``binary_cross_entropy_with_logits``, which is exact where sigmoid saturates."""
    op = "binary_cross_entropy"
    _check_reduction(op, reduction)
    if input.shape != target.shape:
        raise ValueError(f"{op}: target of shape {target.shape} must have the input's shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected floating-point probabilities, got dtype {input.dtype}")
    if weight is not None and not _fits(weight.shape, input.shape):
        raise ValueError(f"{op}: weight of shape {weight.shape} does not broadcast to the input "
                         f"shape {input.shape}")
    check_same_device(op, [t for t in (input, target, weight) if t is not None])
    p = input.data
    if not bool(((p >= 0) & (p <= 1)).all()):
        raise ValueError(f"{op}: all elements of input must be probabilities in [0, 1]; apply "
                         "sigmoid first, or pass the scores to binary_cross_entropy_with_logits")
    target = target if target.dtype == input.dtype else target.to(input.dtype)
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _masked_reduce(loss, None, reduction)


class BCEWithLogits(Function):
    """l = (1 - y) x + lw softplus(-x) with lw = 1 + (pos_weight - 1) y: the binary cross-entropy
    of sigmoid(x), written so it never overflows (softplus(z) = max(z, 0) + log1p(e^-|z|)).

        dl/dx = (1 - y) - lw sigmoid(-x),  dl/dy = -x + (pos_weight - 1) softplus(-x),
        dl/dpos_weight = y softplus(-x).
    """

    @staticmethod
    def forward(ctx, x, y, pos_weight):
        xp = get_array_module(x)
        sp = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))  # softplus(-x)
        lw = 1 if pos_weight is None else 1 + (pos_weight - 1) * y
        ctx.save_for_backward(x, y, pos_weight, sp)
        return (1 - y) * x + lw * sp

    @staticmethod
    def backward(ctx, dl):
        x, y, pw, sp = ctx.saved_tensors
        xp = get_array_module(x)
        lw = 1 if pw is None else 1 + (pw - 1) * y
        need_x, need_y, need_pw = ctx.needs_input_grad
        # sigmoid(-x) = exp(-softplus(x)) = exp(-(softplus(-x) + x)); the exponent is <= 0.
        dx = dl * ((1 - y) - lw * xp.exp(-(sp + x))) if need_x else None
        dy = dl * (-x + (0 if pw is None else (pw - 1) * sp)) if need_y else None
        dpw = unbroadcast(dl * y * sp, pw.shape) if need_pw else None
        return dx, dy, dpw


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of sigmoid(input) against target in [0, 1] (same shape as input).

    weight: per-element weights broadcast to input; pos_weight: weight of the positive term,
    broadcast along the last dims (e.g. (C, 1, 1) for (N, C, H, W)).
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    if input.shape != target.shape:
        raise ValueError(f"{op}: target of shape {target.shape} must have the input's shape {input.shape}")
    for name, t in (("weight", weight), ("pos_weight", pos_weight)):
        if t is not None and not _fits(t.shape, input.shape):
            raise ValueError(f"{op}: {name} of shape {t.shape} does not broadcast to the input shape "
                             f"{input.shape}")
    check_same_device(op, [t for t in (input, target, weight, pos_weight) if t is not None])
    target = target if target.dtype == input.dtype else target.to(input.dtype)
    loss = BCEWithLogits.apply(input, target, pos_weight)
    if weight is not None:
        loss = loss * weight
    return _masked_reduce(loss, None, reduction)


def cosine_normal_loss(pred: Tensor, target: Tensor, mask: Tensor | Array | None = None,
                       reduction: str = "mean") -> Tensor:
    """1 - cos(angle) between predicted and true surface normals, over valid pixels.

    pred, target: (N, 3, H, W) (any vector length along dim 1; both are normalized, so pred
    need not be unit length); mask: (N, H, W) or (N, 1, H, W) bool. Returns the mean over valid
    pixels, their sum, or the (N, H, W) map with 0 at invalid pixels ('none').
    """
    _check_reduction("cosine_normal_loss", reduction)
    if pred.shape != target.shape or pred.ndim < 2:
        raise ValueError(f"cosine_normal_loss: pred {pred.shape} and target {target.shape} must have "
                         "one shape (N, 3, H, W)")
    m = None
    if mask is not None:
        if mask.ndim == pred.ndim and mask.shape[1] == 1:
            mask = mask[:, 0]  # (N, 1, H, W) -> (N, H, W)
        per_pixel = (pred.shape[0],) + pred.shape[2:]
        m = _as_mask("cosine_normal_loss", mask, per_pixel, pred.device)
        m = get_array_module(m).broadcast_to(m, per_pixel)
        target = where(m[:, None], target, 0.0)  # holes may hold NaNs: keep them out of gradients
    # eps 1e-3: a vector shorter than that has no direction, and a tiny eps would turn an
    # all-zero prediction into a ~1e12 gradient.
    loss = 1.0 - (normalize(pred, dim=1, eps=1e-3) * normalize(target, dim=1, eps=1e-3)).sum(dim=1)
    if m is not None:
        loss = where(m, loss, 0.0)
    return _masked_reduce(loss, m, reduction)
