"""Metrics against hand-computed cases, and properties that must hold for any input."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tinypix
from tinypix.metrics import ConfusionMatrix, depth_metrics, normal_metrics

# Two images of 2 x 3 pixels. One target pixel is 255 (ignored), class 3 appears nowhere.
TARGET = np.array([[[0, 0, 1], [1, 255, 2]]])
PRED = np.array([[[0, 1, 1], [1, 0, 0]]])
# Counted (truth, prediction) pairs: (0,0) (0,1) (1,1) (1,1) (2,0).
MATRIX = np.array([[1, 1, 0, 0],
                   [0, 2, 0, 0],
                   [1, 0, 0, 0],
                   [0, 0, 0, 0]])


def one_hot_scores(labels, C):
    """Scores (N, C, H, W) whose argmax over dim 1 is ``labels``."""
    return np.moveaxis(np.eye(C)[labels], -1, 1) + 0.1


def test_confusion_matrix_by_hand():
    cm = ConfusionMatrix(4)
    cm.update(PRED, TARGET)
    np.testing.assert_array_equal(cm.matrix, MATRIX)
    assert cm.matrix.dtype == np.int64
    assert cm.pixel_accuracy() == pytest.approx(3 / 5)
    # recall: class 0 1/2, class 1 2/2, class 2 0/1; class 3 is not in the truth
    assert cm.mean_class_accuracy() == pytest.approx((0.5 + 1 + 0) / 3)
    # IoU: 0: 1 / (1 + 1 + 1); 1: 2 / (2 + 1 + 0); 2: 0 / (0 + 0 + 1); 3: absent everywhere
    iou = cm.iou()
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 0])
    assert math.isnan(iou[3])
    assert cm.miou() == pytest.approx(1 / 3)


def test_class_only_in_the_prediction_counts_in_miou():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 0, 2, 1]), np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(cm.iou(), [1, 0.5, 0])  # class 2 predicted once, never true
    assert cm.miou() == pytest.approx(0.5)
    assert cm.mean_class_accuracy() == pytest.approx(0.75)  # classes 0 and 1 only


def test_scores_tensors_and_accumulation():
    cm = ConfusionMatrix(4)
    cm.update(one_hot_scores(PRED, 4), TARGET)  # (N, C, H, W) scores: argmax over dim 1
    np.testing.assert_array_equal(cm.matrix, MATRIX)

    class Wrapped:  # anything with .numpy(), as a tinypix Tensor
        def __init__(self, a):
            self.a = a

        def numpy(self):
            return self.a

    cm.update(Wrapped(PRED), Wrapped(TARGET))
    np.testing.assert_array_equal(cm.matrix, 2 * MATRIX)
    cm.update(tinypix.from_numpy(one_hot_scores(PRED, 4).astype(np.float32)), tinypix.from_numpy(TARGET))
    np.testing.assert_array_equal(cm.matrix, 3 * MATRIX)
    cm.reset()
    assert cm.matrix.sum() == 0
    assert math.isnan(cm.pixel_accuracy()) and math.isnan(cm.miou()) and math.isnan(cm.mean_class_accuracy())


def test_confusion_matrix_errors():
    cm = ConfusionMatrix(4)
    with pytest.raises(ValueError, match=r"target label 4 is outside \[0, 4\)"):
        cm.update(np.zeros(3, np.int64), np.array([0, 4, 255]))
    with pytest.raises(ValueError, match=r"prediction label -1 is outside \[0, 4\)"):
        cm.update(np.array([0, -1, 0]), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="does not match"):
        cm.update(np.zeros((2, 3)), np.zeros((2, 4)))
    assert cm.matrix.sum() == 0  # nothing counted from a rejected batch


labels = st.integers(1, 5).flatmap(lambda C: st.tuples(
    st.just(C),
    arrays(np.int64, st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
           elements=st.integers(0, C - 1))))


@given(labels)
def test_perfect_prediction_scores_one(case):
    C, target = case
    cm = ConfusionMatrix(C)
    cm.update(target, target)
    assert cm.pixel_accuracy() == 1 and cm.mean_class_accuracy() == 1 and cm.miou() == 1
    assert cm.matrix.sum() == target.size


@given(labels, st.data())
def test_matrix_counts_pairs_and_ignored_pixels_change_nothing(case, data):
    C, target = case
    pred = data.draw(arrays(np.int64, target.shape, elements=st.integers(0, C - 1)))
    cm = ConfusionMatrix(C)
    cm.update(pred, target)
    expected = np.zeros((C, C), np.int64)
    np.add.at(expected, (target.ravel(), pred.ravel()), 1)
    np.testing.assert_array_equal(cm.matrix, expected)
    # Append pixels with ignored targets and arbitrary predictions: nothing changes.
    extra_pred = data.draw(arrays(np.int64, target.shape, elements=st.integers(0, C - 1)))
    with_ignored = ConfusionMatrix(C)
    ignored = np.full_like(target, 255)
    with_ignored.update(np.concatenate([pred, extra_pred]), np.concatenate([target, ignored]))
    np.testing.assert_array_equal(with_ignored.matrix, cm.matrix)
    assert with_ignored.miou() == cm.miou() or (math.isnan(cm.miou()) and math.isnan(with_ignored.miou()))


def test_depth_metrics_by_hand():
    # Valid pixels: p = [2, 1, 3], t = [1, 1, 2]. One pixel has no depth (t = 0), one is masked.
    pred = np.array([[2.0, 1.0, 3.0, 100.0, 50.0]])
    target = np.array([[1.0, 1.0, 2.0, 0.0, 1.0]])
    mask = np.array([[True, True, True, True, False]])
    m = depth_metrics(pred, target, mask)
    assert m["AbsRel"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert m["SqRel"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert m["RMSE"] == pytest.approx(math.sqrt((1 + 0 + 1) / 3))
    assert m["RMSE_log"] == pytest.approx(math.sqrt((math.log(2) ** 2 + math.log(1.5) ** 2) / 3))
    # max(p/t, t/p) = [2, 1, 1.5] against 1.25, 1.5625 and 1.953125
    assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))


def test_depth_metrics_edge_cases():
    t = np.array([1.0, 2.0])
    assert all(math.isfinite(v) for v in depth_metrics(np.zeros(2), t).values())  # clipped at min_depth
    assert all(math.isnan(v) for v in depth_metrics(t, np.zeros(2)).values())  # nothing valid
    with pytest.raises(ValueError, match="does not match"):
        depth_metrics(np.ones(3), t)


@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
              elements=st.floats(0.1, 50)),
       st.floats(0.5, 2.0), st.floats(0.1, 10))
def test_depth_metrics_properties(target, factor, scale):
    perfect = depth_metrics(target, target)
    for k in ("AbsRel", "SqRel", "RMSE", "RMSE_log"):
        assert perfect[k] == pytest.approx(0, abs=1e-12)
    assert perfect["delta1"] == 1
    # Relative errors do not depend on units; RMSE scales with them.
    pred = target * factor
    a, b = depth_metrics(pred, target), depth_metrics(pred * scale, target * scale)
    assert b["AbsRel"] == pytest.approx(a["AbsRel"])
    assert b["RMSE_log"] == pytest.approx(a["RMSE_log"], abs=1e-9)
    assert b["RMSE"] == pytest.approx(a["RMSE"] * scale)
    assert a["AbsRel"] == pytest.approx(abs(factor - 1))


def test_normal_metrics_by_hand():
    # Targets face the camera, (0, 0, 1); predictions are off by 0, 10, 25, 45 and 90 degrees
    # (some not unit length). A sixth pixel has an unknown (zero) target, a seventh is masked.
    angles = np.radians([0, 10, 25, 45, 90, 0, 170])
    pred = np.stack([np.zeros(7), np.sin(angles), np.cos(angles)]) * [1, 2, 1, 3, 1, 1, 1]
    target = np.tile([[0.0], [0.0], [1.0]], (1, 7))
    target[:, 5] = 0
    mask = np.array([True] * 6 + [False])
    m = normal_metrics(pred[:, None, :], target[:, None, :], mask[None, :])  # (3, H, W) with H = 1
    assert m["mean"] == pytest.approx((0 + 10 + 25 + 45 + 90) / 5)
    assert m["median"] == pytest.approx(25)
    assert (m["within_11.25"], m["within_22.5"], m["within_30"]) == pytest.approx((2 / 5, 2 / 5, 3 / 5))
    batched = normal_metrics(pred[None, :, None, :], target[None, :, None, :], mask[None, None, :])
    assert batched == pytest.approx(m)


@given(arrays(np.float64, st.tuples(st.integers(1, 2), st.just(3), st.integers(1, 4), st.integers(1, 4)),
              elements=st.floats(-1, 1)).filter(lambda n: (np.linalg.norm(n, axis=1) > 0.1).all()),
       st.floats(0.1, 10))
def test_normal_metrics_properties(target, length):
    target = target / np.linalg.norm(target, axis=1, keepdims=True)
    perfect = normal_metrics(target * length, target)  # length does not matter: pred is renormalised
    assert perfect["mean"] == pytest.approx(0, abs=1e-4) and perfect["within_11.25"] == 1
    opposite = normal_metrics(-target, target)
    assert opposite["median"] == pytest.approx(180) and opposite["within_30"] == 0
