"""tinypix._memory: freed arrays' memory is reused, not faulted in anew (see its docstring)."""
import ctypes
import os
import subprocess
import sys

import pytest

from tinypix import _memory

# Faults taken by allocating and filling 24 MB again after freeing 24 MB.
PROBE = """
import resource, numpy as np, tinypix
def fill():
    a = np.ones(6 << 20, np.float32)
    del a
fill()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
fill()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env):
    env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, env=env)
    return int(out.stdout)


@pytest.fixture
def glibc(monkeypatch):
    if not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"):
        pytest.skip("malloc here is not glibc's")
    for name in _memory.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    if not _memory.keep_freed_memory():
        pytest.skip("this glibc refuses the malloc settings")


def test_a_freed_array_is_reused_without_page_faults(glibc):
    assert _faults() <= 2
    # mapped afresh for every block: 24 MB is 6144 pages (or 12 huge pages) faulted in again
    assert _faults(MALLOC_MMAP_THRESHOLD_="65536") >= 6


def test_a_users_malloc_setting_wins(monkeypatch):
    for name in _memory.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert _memory.keep_freed_memory() is False
