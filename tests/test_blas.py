"""tinypix._blas: NumPy's OpenBLAS workers sleep as soon as a product ends, and on AMD processors
with AVX-512 it runs its Haswell kernels (see the module docstring)."""
import os
import subprocess
import sys

import pytest

from tinypix import _blas

PROBE = """
import numpy as np, tinypix
from tinypix import _blas
lib = _blas._loaded_openblas()
a = np.ones((300, 300), np.float32)
assert np.allclose(a @ a, 300)  # the restarted workers compute
import os
print(lib.openblas_thread_timeout(), "OPENBLAS_THREAD_TIMEOUT" in os.environ)
"""


def _probe(env):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={k: v for k, v in {**os.environ, **env}.items() if v is not None})
    timeout, in_env = out.stdout.split()
    return int(timeout), in_env == "True"


@pytest.fixture
def openblas():
    if _blas._loaded_openblas() is None:
        pytest.skip("NumPy does not use a loaded OpenBLAS with the needed functions here")


def test_import_sets_a_short_timeout_and_leaves_the_environment(openblas):
    assert _probe({"OPENBLAS_THREAD_TIMEOUT": None}) == (int(_blas.TIMEOUT), False)


def test_a_users_setting_wins(openblas, monkeypatch):
    assert _probe({"OPENBLAS_THREAD_TIMEOUT": "12"}) == (12, True)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "12")
    assert _blas.let_workers_sleep() is False


RESTART = """
import os, numpy as np, tinypix
from tinypix import _blas
assert _blas.let_workers_sleep() is True  # a second time, by hand
assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ
a = np.random.default_rng(0).standard_normal((256, 256))
np.testing.assert_allclose(a @ a.T, np.einsum("ik,jk->ij", a, a), rtol=1e-10, atol=1e-10)
"""


def test_products_are_right_after_a_restart(openblas):
    """In a fresh process: this one may already run other threads (cpu_team.py's), and then
    let_workers_sleep leaves OpenBLAS alone."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    subprocess.run([sys.executable, "-c", RESTART], check=True, env=env)


CORE = """
import ctypes, numpy as np
{imports}
from tinypix import _blas
lib = _blas._loaded_openblas()
lib.gotoblas_corename.restype = ctypes.c_char_p
rng = np.random.default_rng(0)
for dtype, tol in ((np.float32, 1e-4), (np.float64, 1e-12)):
    a, b = rng.standard_normal((2, 200, 300)).astype(dtype)
    assert np.allclose(a @ b.T, np.einsum("ik,jk->ij", a, b), rtol=tol, atol=tol)
print(lib.gotoblas_corename().decode())
"""


def _core(imports, env):
    out = subprocess.run([sys.executable, "-c", CORE.format(imports=imports)], capture_output=True,
                         text=True, check=True,
                         env={k: v for k, v in {**os.environ, **env}.items() if v is not None})
    return out.stdout.strip()


@pytest.fixture
def switchable(openblas):
    lib = _blas._loaded_openblas()
    if not all(hasattr(lib, name) for name in _blas._NEEDED_TO_SWITCH):
        pytest.skip("this OpenBLAS build does not choose its kernels at start-up")


def test_haswell_kernels_on_amd_with_avx512_and_products_stay_right(switchable):
    own_choice = _core("", {"OPENBLAS_CORETYPE": None})  # NumPy alone: OpenBLAS's pick
    version = _blas._version(_blas._loaded_openblas())
    switch = (own_choice.encode() in _blas.AVX512_CORES and _blas._amd() and version is not None
              and version < _blas.RETUNED)
    expected = "Haswell" if switch else own_choice
    assert _core("import tinypix", {"OPENBLAS_CORETYPE": None}) == expected


def test_a_users_coretype_wins(switchable, monkeypatch):
    own_choice = _core("", {"OPENBLAS_CORETYPE": None})
    assert _core("import tinypix", {"OPENBLAS_CORETYPE": own_choice}) == own_choice
    monkeypatch.setenv("OPENBLAS_CORETYPE", own_choice)
    assert _blas.use_haswell_kernels_on_amd() is False


BUSY = """
import threading, numpy as np
a = np.ones((300, 300))
stop = threading.Event()
def multiply():
    while not stop.is_set():
        assert np.allclose(a @ a, 300)
worker = threading.Thread(target=multiply)
worker.start()
import tinypix  # another thread is inside products: nothing may be switched or stopped
from tinypix import _blas
print(_blas._loaded_openblas().openblas_thread_timeout())
stop.set()
worker.join()
"""


def test_importing_while_another_thread_multiplies_changes_nothing(openblas):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_CORETYPE")}
    out = subprocess.run([sys.executable, "-c", BUSY], capture_output=True, text=True, check=True,
                         env=env, timeout=120)
    assert int(out.stdout) != int(_blas.TIMEOUT)  # OpenBLAS kept its own setting
