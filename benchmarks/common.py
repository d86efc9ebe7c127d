"""Shared benchmark plumbing: timing, the machine's description, RESULTS.md, the matmul rate."""
import datetime
import os
import pathlib
import platform
import statistics
import time

import numpy as np

torch = None
if not os.environ.get("TINYPIX_BENCH_NO_TORCH"):  # set when measuring tinypix's memory alone
    try:
        import torch
    except ImportError:  # the PyTorch columns stay empty
        pass

RESULTS = pathlib.Path(__file__).with_name("RESULTS.md")


def median_ms(step, repeats=5, warmup=2):
    """Median wall time of ``step()`` in milliseconds, after ``warmup`` untimed calls."""
    return statistics.median(_times_ms(step, repeats, warmup))


def _times_ms(step, repeats, warmup):
    # Wait first: the library timed just before leaves its idle threads spinning for up to
    # ~0.1 s (OpenBLAS, OpenMP), and they would steal cores from this one.
    time.sleep(0.5)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def side_by_side(mine, theirs, repeats=5, warmup=2, rounds=3):
    """Median ms of tinypix's ``mine()`` and PyTorch's ``theirs()`` (None: no PyTorch column).

    The two take turns for ``rounds`` rounds of ``repeats`` timed calls, and each median is
    over all of them: a burst of load from elsewhere on the machine (this is measured on
    shared virtual machines) then lands on both columns instead of skewing one.
    """
    times = ([], [])
    for _ in range(rounds):
        times[0].extend(_times_ms(mine, repeats, warmup))
        if theirs is not None:
            times[1].extend(_times_ms(theirs, repeats, warmup))
    return statistics.median(times[0]), (statistics.median(times[1]) if times[1] else None)


def matmul_gflops(n=2048):
    """The machine's float32 matrix-product rate through NumPy's BLAS (the ceiling for im2col conv)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    ms = median_ms(lambda: a @ a, repeats=5, warmup=1)
    return 2 * n ** 3 / (ms * 1e-3) / 1e9


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """One line: CPU, cores, library versions, NumPy's BLAS and the kernels it runs."""
    import numba
    from threadpoolctl import threadpool_info
    versions = f"numpy {np.__version__}, numba {numba.__version__}"
    versions += f", torch {torch.__version__}" if torch is not None else ", torch absent"
    blas = next((f"; NumPy's BLAS {i['internal_api']} {i['version']} ({i.get('architecture')} kernels)"
                 for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]), "")
    return f"{cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, {versions}{blas}"


def setup():
    """What every benchmark process does first. PyTorch on as many threads as tinypix's team
    gets: every core. And, being an application, the process opts in to what `tinypix train`
    opts in to (tinypix.tune_process: malloc keeps freed memory), for both libraries timed in
    it; benchmarks/run.py also starts each part with tinypix.tuning.blas_coretype_advice()'s
    environment, as the command does."""
    import tinypix
    if torch is not None:
        torch.set_num_threads(tinypix.get_num_threads())
    return tinypix.tune_process()


def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def fmt_ms(ms):
    return "-" if ms is None else f"{ms:.1f}"


def table(header, rows):
    """Markdown table text from a header tuple and row tuples."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def record(title, body):
    """Put a table into RESULTS.md's current tables under ``## title``, dated and with the machine,
    in place of the one recorded there before (RESULTS.md keeps the current figures and a short
    history; git keeps every earlier run)."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    block = f"## {title}\n\n{stamp}; {machine()}\n\n{body.strip()}\n\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    heading = f"## {title}\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + block + (text[end + 1:] if end >= 0 else "")
    elif "\n## History" in text:
        at = text.index("\n## History") + 1
        text = text[:at] + block + text[at:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text.rstrip("\n") + "\n")
