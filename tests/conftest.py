"""Shared test configuration.

Two hypothesis profiles: ``dev`` (thorough, the default for local runs) and ``ci`` (bounded, so
the whole suite stays well inside CI's time on 2 cores). CI sets ``CI=true``; anyone can pick a
profile with ``HYPOTHESIS_PROFILE=ci|dev``.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "ci", max_examples=12, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="module")
def cupy():
    """CuPy, where it is installed and sees a GPU; the test skips otherwise."""
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CuPy raises its CUDARuntimeError when no driver is present
        count = 0
    if count == 0:
        pytest.skip("CuPy is installed but sees no GPU")
    return cupy
