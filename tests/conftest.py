"""Shared test configuration.

Two hypothesis profiles: ``dev`` (thorough, the default for local runs) and ``ci`` (bounded, so
the whole suite stays well inside CI's time on 2 cores). CI sets ``CI=true``; anyone can pick a
profile with ``HYPOTHESIS_PROFILE=ci|dev``.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "ci", max_examples=12, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
