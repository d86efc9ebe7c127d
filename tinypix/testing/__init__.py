"""Testing helpers for tinypix and for students' own ops.

``gradcheck`` needs only tinypix. ``tinypix.testing.strategies`` needs hypothesis
(``pip install tinypix[test]``).
"""
from .gradcheck import GradcheckError, gradcheck

__all__ = ["GradcheckError", "gradcheck"]

from .adjoint import AdjointError, assert_gradients_match, check_adjoint  # noqa: E402

__all__ += ["AdjointError", "assert_gradients_match", "check_adjoint"]
