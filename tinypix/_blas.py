"""Tune NumPy's OpenBLAS for tinypix's products: workers that sleep as soon as a product ends,
on AMD processors with AVX-512 its Haswell kernels, and a handle on its thread count.

``let_workers_sleep``: after each product OpenBLAS keeps its idle workers spinning for about
2**28 CPU cycles (a tenth of a second), ready for the next one. tinypix runs copies and Numba
loops between its products, and on a machine with few cores a spinning worker can take the very
core they need. Measured on 2 cores: conv_transpose2d forward+backward at 16x64x64x64 took 257
ms instead of 123 ms in 78 of 80 steps of one run, and in 3 to 23 of 80 in others; with
OPENBLAS_THREAD_TIMEOUT=4 (2**4 cycles) 0 to 3 steps of 80 were slow. Waking the workers costs
microseconds per product.

OpenBLAS reads that variable when it starts its threads, which happened when NumPy was imported.
So ``let_workers_sleep`` sets it, asks OpenBLAS to read its environment again, and stops the
threads, which OpenBLAS starts again on the next product. It does nothing when
other Python threads already run (one may be inside a product), when OPENBLAS_THREAD_TIMEOUT is
already set (so that is how to choose another value), when NumPy uses
another BLAS (MKL, Accelerate), or where /proc/self/maps does not exist (anything but Linux).

``use_haswell_kernels_on_amd``: on AMD processors with AVX-512 (Zen 4 and later) OpenBLAS picks
its Skylake-X kernels, tuned for Intel's caches. Its Haswell kernels (AVX2, which those
processors run at the same width) multiply the narrow matrices of a convolution faster: on a
2-core Zen 4 VM, (64 x 576) @ (576 x 4096) ran at 180-190 GFLOP/s against 150 in float32, and
conv2d 16x64x64x64 forward+backward went from 133 to 112 ms. OpenBLAS 0.3.34 retunes its blocking
for these processors, so the switch is made only before that version. It re-runs OpenBLAS's own
start-up choice with OPENBLAS_CORETYPE=Haswell, which must not overlap a product on another
thread: it is skipped when the importing process already runs other Python threads. Setting
OPENBLAS_CORETYPE yourself keeps your choice.

``thread_local_setting``: OpenBLAS's ``openblas_set_num_threads_local`` (0.3.27 and later),
meant to set how many threads run the products one thread calls. In the OpenBLAS of NumPy's
wheels it acts on every thread (measured: a count set on one thread is what another sees), so
kernels/cpu_team.py sets it around each of its calls and gives the old count back after.
"""
import contextlib
import ctypes
import os
import re
import threading

TIMEOUT = "4"  # log2 of the cycles a worker spins before sleeping; 4 is OpenBLAS's minimum
_NEEDED = ("openblas_read_env", "openblas_thread_timeout", "blas_thread_shutdown_")
_NEEDED_TO_SWITCH = ("gotoblas_corename", "gotoblas_dynamic_quit", "gotoblas_dynamic_init")
AVX512_CORES = (b"SkylakeX", b"Cooperlake", b"SapphireRapids")  # OpenBLAS's names
RETUNED = (0, 3, 34)  # the OpenBLAS version with its own blocking for these processors
_CONFIG = ("openblas_get_config", "scipy_openblas_get_config64_", "scipy_openblas_get_config")


def _loaded_openblas():
    """The OpenBLAS library this process has loaded (NumPy's), as a ctypes handle, or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.rsplit("/", 1)[-1]}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)  # already loaded: this only returns a handle to it
        except OSError:
            continue
        if all(hasattr(lib, name) for name in _NEEDED):
            return lib
    return None


@contextlib.contextmanager
def _env(name, value):
    """Set environment variable ``name`` for the OpenBLAS call inside (OpenBLAS reads its
    settings from the environment), then remove it again."""
    os.environ[name] = value
    try:
        yield
    finally:
        del os.environ[name]


def let_workers_sleep():
    """Make the loaded OpenBLAS's idle workers sleep at once; return whether it was done."""
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ or threading.active_count() > 1:
        return False  # (stopping the workers under another thread's product can hang)
    lib = _loaded_openblas()
    if lib is None:
        return False
    with _env("OPENBLAS_THREAD_TIMEOUT", TIMEOUT):
        lib.openblas_read_env()  # the setting lives in OpenBLAS from now on
    lib.blas_thread_shutdown_()  # the next product starts the workers with the new timeout
    return True


def thread_local_setting():
    """OpenBLAS's ``openblas_set_num_threads_local(n)`` as a ctypes function, or None where NumPy's
    BLAS is not an OpenBLAS that has it. It sets how many threads run the products that the
    calling thread (and, in some builds, every thread) calls, and returns the count before."""
    lib = _loaded_openblas()
    if lib is None or not hasattr(lib, "openblas_set_num_threads_local"):
        return None
    setting = lib.openblas_set_num_threads_local
    setting.argtypes, setting.restype = [ctypes.c_int], ctypes.c_int
    return setting


def _amd():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("vendor_id") and "AuthenticAMD" in line for line in f)
    except OSError:
        return False


def _version(lib):
    """OpenBLAS's version as a tuple of ints, from its configuration string; None if unknown."""
    for name in _CONFIG:
        if hasattr(lib, name):
            getattr(lib, name).restype = ctypes.c_char_p
            found = re.search(rb"OpenBLAS (\d+)\.(\d+)\.(\d+)", getattr(lib, name)())
            return tuple(map(int, found.groups())) if found else None
    return None


def use_haswell_kernels_on_amd():
    """On an AMD processor where OpenBLAS chose Skylake-X kernels, choose its Haswell kernels
    instead; return whether it did."""
    if "OPENBLAS_CORETYPE" in os.environ or threading.active_count() > 1:
        return False
    lib = _loaded_openblas()
    if lib is None or not all(hasattr(lib, name) for name in _NEEDED_TO_SWITCH):
        return False  # not a build that chooses its kernels at start-up
    lib.gotoblas_corename.restype = ctypes.c_char_p
    if lib.gotoblas_corename() not in AVX512_CORES or not _amd():
        return False
    version = _version(lib)
    if version is None or version >= RETUNED:
        return False
    lib.blas_thread_shutdown_()   # no worker may run while the kernel table changes
    lib.gotoblas_dynamic_quit()
    with _env("OPENBLAS_CORETYPE", "Haswell"):
        lib.gotoblas_dynamic_init()  # OpenBLAS's own start-up choice, now forced
    return True
