"""detect_anomaly points at the op that made a NaN or Inf, in forward and in backward."""
import re

import numpy as np
import pytest

import tinypix as tp
from tinypix.autograd import AnomalyError, detect_anomaly


def test_planted_nan_in_forward_names_the_op_and_the_line():
    x = tp.tensor([1.0, -1.0, 2.0], requires_grad=True)
    h = x * 2  # finite
    with detect_anomaly(), pytest.raises(AnomalyError) as err:
        with np.errstate(invalid="ignore"):
            h.log()  # log(-2) is the planted NaN
    msg = str(err.value)
    assert msg.startswith("Log forward")
    assert re.search(r"test_anomaly\.py:\d+", msg) and "(3,) float32" in msg
    assert "inputs were finite" in msg


def test_nan_gradient_names_the_backward_op_and_the_bad_input():
    x = tp.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        y = x.sqrt().sum()  # finite forward, but d sqrt / dx is infinite at 0
        with pytest.raises(AnomalyError, match=r"Sqrt backward .*input \[0\].*incoming gradient was finite"), \
                np.errstate(divide="ignore"):
            y.backward()


def test_without_the_context_nothing_is_checked():
    x = tp.tensor([-1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().item())
