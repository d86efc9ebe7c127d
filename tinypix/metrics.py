"""How well a network labels pixels: class confusion (accuracy, IoU), depth errors, normal angles.

Everything here takes tinypix Tensors (anything with ``.numpy()``), CuPy arrays or NumPy arrays,
and computes in NumPy on the CPU: metrics are counted once per batch, not differentiated.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .backend import is_cupy_array

if TYPE_CHECKING:
    from .tensor import Tensor
    from .typing import Array

# The keys of the dicts that depth_metrics and normal_metrics return.
DEPTH_METRICS = ("AbsRel", "SqRel", "RMSE", "RMSE_log", "delta1", "delta2", "delta3")
NORMAL_METRICS = ("mean", "median", "within_11.25", "within_22.5", "within_30")


def _to_numpy(x):
    """A NumPy array from a NumPy array, a CuPy array or a Tensor (anything with ``.numpy()``)."""
    if isinstance(x, np.ndarray):
        return x
    if is_cupy_array(x):
        return x.get()
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


class ConfusionMatrix:
    """Count, over many batches, how often each true class is predicted as each class.

    ``matrix[t, p]`` (rows = truth, columns = prediction, shape (C, C), int64) is the number of
    pixels of true class t predicted as p. Pixels whose target is ``ignore_index`` are not counted.
    With TP_c = matrix[c, c], FN_c = row sum - TP_c, FP_c = column sum - TP_c:

        pixel_accuracy      = sum_c TP_c / (number of counted pixels)
        mean_class_accuracy = mean over classes present in the truth of TP_c / (TP_c + FN_c)
        iou[c]              = TP_c / (TP_c + FP_c + FN_c), NaN when the class appears in neither
                              truth nor prediction (0 / 0: nothing to get right or wrong)
        miou                = mean of iou over the other classes

    With nothing counted yet, all of these are NaN.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: Tensor | Array, target: Tensor | Array) -> None:
        """Count one batch.

        Args:
            pred: labels (N, H, W), or scores (N, C, H, W) such as logits or probabilities, of
                which the class with the highest score (argmax over dim 1) is the prediction.
            target: labels (N, H, W); ``ignore_index`` where unknown.
        Any number of trailing dimensions works in place of (H, W), e.g. (N,) labels.
        """
        pred, target = _to_numpy(pred), _to_numpy(target)
        if pred.ndim == target.ndim + 1:
            pred = pred.argmax(axis=1)
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {pred.shape} does not match target shape {target.shape} "
                             "(give labels (N, H, W) or scores (N, C, H, W))")
        keep = target != self.ignore_index
        t, p = target[keep].astype(np.int64), pred[keep].astype(np.int64)
        C = self.num_classes
        for name, labels, note in (("target", t, f" and is not ignore_index={self.ignore_index}"),
                                   ("prediction", p, "")):
            bad = labels[(labels < 0) | (labels >= C)]
            if bad.size:
                raise ValueError(f"{name} label {bad[0]} is outside [0, {C}) for num_classes={C}{note}")
        # Each (truth, prediction) pair gets its own bin t * C + p; one bincount counts them all.
        self.matrix += np.bincount(t * C + p, minlength=C * C).reshape(C, C)

    def _ratio(self, num, den):
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / den

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels whose prediction is right."""
        return float(self._ratio(np.trace(self.matrix), self.matrix.sum()))

    def mean_class_accuracy(self) -> float:
        """Per-class recall TP / (TP + FN), averaged over the classes present in the truth."""
        recall = self._ratio(np.diag(self.matrix), self.matrix.sum(axis=1))
        return float(np.nanmean(recall)) if np.isfinite(recall).any() else float("nan")

    def iou(self) -> np.ndarray:
        """Intersection over union per class: float64 (C,), NaN for classes seen nowhere."""
        tp = np.diag(self.matrix)
        union = self.matrix.sum(axis=0) + self.matrix.sum(axis=1) - tp
        return self._ratio(tp, union).astype(np.float64)

    def miou(self) -> float:
        """Mean IoU over the classes that appear in the truth or the prediction."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def _valid_pixels(target_ok, mask):
    """``target_ok`` and, if given, ``mask`` (broadcast to its shape)."""
    if mask is None:
        return target_ok
    return target_ok & np.broadcast_to(_to_numpy(mask).astype(bool), target_ok.shape)


def depth_metrics(pred: Tensor | Array, target: Tensor | Array, mask: Tensor | Array | None = None,
                  min_depth: float = 1e-3) -> dict[str, float]:
    """Standard monocular depth errors over the valid pixels.

    Args:
        pred, target: depths, same shape, e.g. (N, H, W) or (N, 1, H, W).
        mask: optional bool array, broadcastable to ``target``; pixels where it is False are left
            out, and so are pixels with ``target <= 0`` (unknown depth).
        min_depth: predictions are clipped to at least this, as in the usual evaluation protocol,
            so that a prediction of 0 gives a large error rather than an infinite one.

    Returns a dict of floats, each a mean over the n valid pixels with prediction p, truth t:
        AbsRel   = mean(|p - t| / t)
        SqRel    = mean((p - t)^2 / t)
        RMSE     = sqrt(mean((p - t)^2))
        RMSE_log = sqrt(mean((log p - log t)^2))
        delta1, delta2, delta3 = fraction with max(p / t, t / p) < 1.25, 1.25^2, 1.25^3
    All NaN when no pixel is valid.
    """
    pred = _to_numpy(pred).astype(np.float64)
    target = _to_numpy(target).astype(np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match target shape {target.shape}")
    valid = _valid_pixels(target > 0, mask)
    p, t = np.maximum(pred[valid], min_depth), target[valid]
    if t.size == 0:
        return dict.fromkeys(DEPTH_METRICS, float("nan"))
    ratio = np.maximum(p / t, t / p)
    return {
        "AbsRel": float(np.mean(np.abs(p - t) / t)),
        "SqRel": float(np.mean((p - t) ** 2 / t)),
        "RMSE": float(np.sqrt(np.mean((p - t) ** 2))),
        "RMSE_log": float(np.sqrt(np.mean((np.log(p) - np.log(t)) ** 2))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25 ** 2)),
        "delta3": float(np.mean(ratio < 1.25 ** 3)),
    }


def normal_metrics(pred: Tensor | Array, target: Tensor | Array,
                   mask: Tensor | Array | None = None) -> dict[str, float]:
    """Angular errors of predicted surface normals, in degrees, over the valid pixels.

    Args:
        pred, target: normals (N, 3, H, W) or (3, H, W). ``pred`` is rescaled to unit length, so
            raw network outputs work; ``target`` should be unit vectors, and pixels where it is
            the zero vector (unknown, see ``tinypix.data.read_normals``) are left out.
        mask: optional bool array (N, H, W) or (H, W); pixels where it is False are left out.

    The error at a pixel is the angle between the vectors, arccos(p . t / (|p| |t|)). Returns a
    dict of floats: ``mean`` and ``median`` error in degrees, and ``within_11.25``,
    ``within_22.5``, ``within_30``, the fractions of pixels with an error below that many degrees.
    All NaN when no pixel is valid.
    """
    pred = _to_numpy(pred).astype(np.float64)
    target = _to_numpy(target).astype(np.float64)
    if pred.shape != target.shape or pred.ndim not in (3, 4) or pred.shape[-3] != 3:
        raise ValueError(f"normals must both be (N, 3, H, W) or (3, H, W), "
                         f"got {pred.shape} and {target.shape}")
    t_len = np.linalg.norm(target, axis=-3)
    valid = _valid_pixels(t_len > 0, mask)
    p_len = np.maximum(np.linalg.norm(pred, axis=-3), 1e-12)
    cos = (pred * target).sum(axis=-3) / (p_len * np.maximum(t_len, 1e-12))
    angle = np.degrees(np.arccos(np.clip(cos[valid], -1.0, 1.0)))
    if angle.size == 0:
        return dict.fromkeys(NORMAL_METRICS, float("nan"))
    return {
        "mean": float(angle.mean()),
        "median": float(np.median(angle)),
        "within_11.25": float(np.mean(angle < 11.25)),
        "within_22.5": float(np.mean(angle < 22.5)),
        "within_30": float(np.mean(angle < 30)),
    }
