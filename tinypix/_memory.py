"""Keep the memory of freed arrays in the process, so that the next array does not fault it in anew.

glibc's malloc gives every large block (over 128 kB at first, 32 MB at most as it adapts) its own
fresh pages from the kernel, and returns them on free. Touching a fresh page costs a page fault,
which on a virtual machine takes microseconds. A training step frees and allocates the same
large temporaries (columns, activations, gradients) over and over, so it pays those faults on
every step: measured on a 2-core VM, conv2d 4x256x16x16 -> 256 forward+backward took 34 ms
instead of 26 ms, all of it page faults.

``keep_freed_memory`` asks malloc to serve blocks up to 1 GB (or 32 MB, where an older glibc
refuses more) from its heap and to keep up to 1 GB of freed heap, so a freed block is reused,
already mapped, by the next allocation. The memory stays counted in the resident set until the
process ends; the peak is what a step needs either way. It does nothing outside glibc (macOS,
Windows, musl), nor when the user set malloc's own variables (MALLOC_MMAP_THRESHOLD_,
MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES): that is how to choose other values, or glibc's
defaults.
"""
import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
KEEP_BYTES = 1 << 30
OLD_GLIBC_MAX_MMAP_THRESHOLD = 32 << 20  # older glibc refuses more (HEAP_MAX_SIZE / 2)
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory():
    """Have glibc's malloc reuse freed blocks instead of unmapping them; return whether it did."""
    if not sys.platform.startswith("linux") or any(name in os.environ for name in USER_SETTINGS):
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
