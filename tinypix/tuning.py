"""Process-wide tunings that tinypix never makes by itself: an application opts in.

    import tinypix
    tinypix.tune_process()     # e.g. at the top of a training script; `tinypix train` does it

Importing or calling tinypix changes nothing outside it. Some settings of the whole process do
make training faster, though, and a program may choose them for itself:

- ``tune_process()`` asks glibc's malloc to keep freed memory for reuse. By default malloc gives
  every large block (over 128 kB at first, 32 MB at most as it adapts) fresh pages from the
  kernel and returns them on free. Touching a fresh page costs a page fault, which on a virtual
  machine takes microseconds, and a training step frees and allocates the same large
  temporaries (columns, activations, gradients) over and over. With this call malloc serves
  blocks up to 1 GB (or 32 MB, where an older glibc refuses more) from its heap and keeps up to
  1 GB of freed heap, so a freed block is reused, already mapped. The memory stays counted in
  the resident set until the process ends; the peak is what a step needs either way. It also
  speeds up other libraries in the process (PyTorch's, for one). It does nothing outside glibc
  (macOS, Windows, musl), nor when malloc's own variables are set (MALLOC_MMAP_THRESHOLD_,
  MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES): that is how to choose other values.
- On AMD processors with AVX-512 (Zen 4 and later), OpenBLAS before 0.3.34 picks its Skylake-X
  kernels, tuned for Intel's caches; its Haswell kernels multiply the narrow matrices of a
  convolution faster there. That choice is made when NumPy loads OpenBLAS, so it can only be
  made before Python starts: ``OPENBLAS_CORETYPE=Haswell python train.py``.
  ``blas_coretype_advice()`` says whether it applies to this machine.
"""
from __future__ import annotations

import ctypes
import os
import re
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
KEEP_BYTES = 1 << 30
OLD_GLIBC_MAX_MMAP_THRESHOLD = 32 << 20  # older glibc refuses more (HEAP_MAX_SIZE / 2)
MALLOC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
AVX512_CORES = ("SkylakeX", "Cooperlake", "SapphireRapids")  # OpenBLAS's names for them
RETUNED = (0, 3, 34)  # the OpenBLAS version with its own blocking for these processors


def tune_process() -> list[str]:
    """Opt this process in to the tunings above that can be made after start-up (malloc keeping
    freed memory); return the names of those it made."""
    return ["keep_freed_memory"] if keep_freed_memory() else []


def keep_freed_memory() -> bool:
    """Have glibc's malloc reuse freed blocks instead of unmapping them; return whether it did."""
    if not sys.platform.startswith("linux") or any(name in os.environ for name in MALLOC_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # not glibc (musl): other parameter numbers
        return False
    mapped = (libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES) or
              libc.mallopt(M_MMAP_THRESHOLD, OLD_GLIBC_MAX_MMAP_THRESHOLD))
    return bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)) and bool(mapped)


def blas_coretype_advice() -> dict[str, str]:
    """{"OPENBLAS_CORETYPE": "Haswell"} where NumPy's OpenBLAS runs its Skylake-X kernels on an
    AMD processor and predates 0.3.34 (and the variable is not set already), else {}: the
    environment to start the next Python with. Read through threadpoolctl's public report."""
    if "OPENBLAS_CORETYPE" in os.environ or not _amd():
        return {}
    from threadpoolctl import threadpool_info
    for lib in threadpool_info():
        if lib.get("internal_api") != "openblas" or lib.get("architecture") not in AVX512_CORES:
            continue
        found = re.match(r"(\d+)\.(\d+)\.(\d+)", lib.get("version") or "")
        if found and tuple(map(int, found.groups())) < RETUNED:
            return {"OPENBLAS_CORETYPE": "Haswell"}
    return {}


def _amd():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("vendor_id") and "AuthenticAMD" in line for line in f)
    except OSError:
        return False
