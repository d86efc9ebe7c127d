"""The Python side of benchmarks/device_check.sh: the GPU timings, and the rows of its one table.

    python benchmarks/gpu.py probe              # why the GPU parts skip here; nothing when they run
    python benchmarks/gpu.py bench [--quick]    # conv2d, conv_transpose2d and a U-Net step on the GPU
    python benchmarks/gpu.py tests REPORT.xml STATUS  # the test suite's row, from pytest's JUnit XML
    python benchmarks/gpu.py train DIR DEVICE STATUS SECONDS   # a `tinypix train` run's row
    python benchmarks/gpu.py threads LOG STATUS  # the rows of `benchmarks/unet.py --threads` from its output
    python benchmarks/gpu.py machine            # one line: GPU, CPU, versions
    python benchmarks/gpu.py unet-first ARGS... # benchmarks/unet.py ARGS at its first size only

``bench`` times one forward+backward (or training step) of tinypix on CuPy next to PyTorch on
CUDA (cuDNN, float32: TF32 switched off in PyTorch, as CuPy's cuBLAS computes in full float32),
with ``torch.backends.cudnn.benchmark`` on and off. Each figure is the median of several
samples; a sample runs enough steps back to back to last about 20 ms, between two device
synchronizations (cupy.cuda.Device().synchronize() and torch.cuda.synchronize(), both before
and after, so neither library's queued work lands in the other's time). The three take turns
for three rounds. Every row is printed as soon as it is measured, so a run cut short by its time
limit keeps the rows it finished.

Every part that needs CuPy, a GPU or torch.cuda says "skipped: <reason>" in its row instead of
failing; the rows are Markdown, under device_check.sh's header (HEADER below).
"""
import argparse
import ast
import os
import pathlib
import platform
import statistics
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from benchmarks.common import cpu_model, torch  # noqa: E402

HEADER = ("| part | case | tinypix | PyTorch | ratio | PyTorch, cudnn.benchmark off | ratio (off) | note |\n"
          "|---|---|---:|---:|---:|---:|---:|---|")
# The CPU benchmark's U-Net sizes (benchmarks/unet.py) and the large one the issue names:
# (batch, size, base channels, depth).
UNET_CONFIGS = [(16, 64, 16, 3), (8, 128, 32, 3), (32, 256, 32, 3)]
LARGE_CONV = (32, 64, 128, 64)  # N, C, H, K: 32x64x128x128 in, 64 out
SAMPLE_SECONDS = 0.02
CUDA_WORDS = ("cupy", "gpu", "cuda", "nvcc")  # a skip reason with one of these: for want of the GPU


def row(*cells):
    cells = list(cells) + [""] * (8 - len(cells))
    print("| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in cells) + " |", flush=True)


def stopped(status):
    """Words for a part's exit status: timeout's 124, or 137 when it had to kill."""
    return "timed out" if status in ("124", "137") else f"exit status {status}"


def first_line(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:200]


# -- what is there -------------------------------------------------------------------------------
def gpu_absent():
    """Why tinypix cannot use a GPU here ('' when it can): CuPy missing, or no GPU seen."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CuPy's CUDARuntimeError when there is no driver
        return f"CuPy sees no GPU ({first_line(e)})"
    return "" if count else "CuPy sees no GPU"


def torch_cuda_absent():
    """Why PyTorch cannot run on the GPU here ('' when it can)."""
    if torch is None:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"torch.cuda is not available (torch {torch.__version__})"
    return ""


def full_float32():
    """PyTorch's CUDA convolutions and matrix products in float32 proper, as CuPy computes them
    (PyTorch lets cuDNN use TF32 for float32 convolutions by default)."""
    try:
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    except AttributeError:  # PyTorch before 2.9
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


# -- timing --------------------------------------------------------------------------------------
def synchronize():
    """Wait for the GPU work queued by both libraries."""
    import cupy
    cupy.cuda.Device().synchronize()
    if not torch_cuda_absent():
        torch.cuda.synchronize()


def sample_ms(step, repeats, warmup):
    """``repeats`` samples of ``step``'s time in ms, each the mean over a batch of back-to-back
    steps long enough (about SAMPLE_SECONDS) that launching and synchronizing do not dominate."""
    for _ in range(warmup):
        step()
    synchronize()
    start = time.perf_counter()
    step()
    synchronize()
    inner = max(1, min(100, int(SAMPLE_SECONDS / max(time.perf_counter() - start, 1e-6))))
    samples = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        for _ in range(inner):
            step()
        synchronize()
        samples.append(1e3 * (time.perf_counter() - start) / inner)
    return samples


def three_ways(mine, theirs, repeats, warmup, rounds=3):
    """Median ms of tinypix's step and of PyTorch's with cudnn.benchmark on, then off (None
    without PyTorch on the GPU), taking turns for ``rounds`` rounds."""
    times = {"mine": [], True: [], False: []}
    for _ in range(rounds):
        times["mine"] += sample_ms(mine, repeats, warmup)
        if theirs is not None:
            for flag in (True, False):
                torch.backends.cudnn.benchmark = flag
                times[flag] += sample_ms(theirs, repeats, warmup)
    return [statistics.median(t) if t else None for t in times.values()]


def ms_cells(mine, on, off, why_not):
    """The row's tinypix, PyTorch, ratio, PyTorch (off), ratio (off) cells."""
    if on is None:
        return [f"{mine:.3f} ms", f"skipped: {why_not}", "", "", ""]
    return [f"{mine:.3f} ms", f"{on:.3f} ms", f"{mine / on:.2f}", f"{off:.3f} ms", f"{mine / off:.2f}"]


def release():
    """Give the memory of the case just timed back, so the next one starts from the same state."""
    import gc

    import cupy
    gc.collect()
    cupy.get_default_memory_pool().free_all_blocks()
    if not torch_cuda_absent():
        torch.cuda.empty_cache()


# -- the cases -----------------------------------------------------------------------------------
def unet_steps(batch, size, base, depth, torch_ok):
    """One U-Net training step (forward, cross-entropy, backward, SGD with momentum and weight
    decay) for each library on the GPU, from the same weights and data; and both first losses."""
    import tinypix
    import tinypix.nn.functional as F
    from benchmarks.unet import CLASSES, torch_twin
    from tinypix.models import UNet
    rng = np.random.default_rng(0)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    target = rng.integers(0, CLASSES, (batch, size, size))
    tinypix.manual_seed(0)
    model = UNet(3, CLASSES, base_channels=base, depth=depth)
    twin = torch_twin(model, depth).cuda() if torch_ok else None
    model.to("cuda")
    opt = tinypix.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    tx, tt = tinypix.tensor(x, device="cuda"), tinypix.tensor(target, device="cuda")
    losses = {}

    def mine():
        loss = F.cross_entropy(model(tx), tt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.setdefault("tinypix", loss)

    if not torch_ok:
        return mine, None, losses
    topt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    px, pt = torch.tensor(x, device="cuda"), torch.tensor(target, device="cuda")

    def theirs():
        loss = torch.nn.functional.cross_entropy(twin(px), pt)
        topt.zero_grad()
        loss.backward()
        topt.step()
        losses.setdefault("torch", loss)
    return mine, theirs, losses


def bench(quick):
    """The GPU rows: every conv case of benchmarks/conv.py and the large one, then the U-Net steps."""
    from benchmarks.conv import cases, make_steps
    why = gpu_absent()
    if why:
        for part in ("GPU conv", "GPU U-Net step"):
            row(part, "conv2d, conv_transpose2d fwd+bwd" if part == "GPU conv" else
                "16x3x64², 8x3x128², 32x3x256²", f"skipped: {why}")
        return
    why_not = torch_cuda_absent()
    torch_ok = not why_not
    if torch_ok:
        full_float32()
    repeats, warmup = (2, 1) if quick else (5, 3)
    convs = list(cases()) + [(op, LARGE_CONV, 3, 1, 1) for op in ("conv2d", "conv_transpose2d")]
    for op, shape, k, s, p in (convs[:2] if quick else convs):
        case = f"{op} {','.join(map(str, shape))} {k}x{k} s{s} p{p}"
        try:
            mine, theirs, _ = make_steps(op, shape, k, s, p, np.random.default_rng(0), "cuda", torch_ok)
            row("GPU conv", case, *ms_cells(*three_ways(mine, theirs, repeats, warmup), why_not))
        except Exception as e:  # one case failing leaves the others to run
            row("GPU conv", case, f"error: {first_line(e)}")
        release()
    for batch, size, base, depth in (UNET_CONFIGS[:1] if quick else UNET_CONFIGS):
        case = f"U-Net step {batch}x3x{size}x{size}, base {base}, depth {depth}"
        try:
            mine, theirs, losses = unet_steps(batch, size, base, depth, torch_ok)
            cells = ms_cells(*three_ways(mine, theirs, repeats, warmup), why_not)
            first = "; ".join(f"{name} {loss.item():.5f}" for name, loss in losses.items())
            row("GPU U-Net step", case, *cells, f"first loss: {first}")
        except Exception as e:
            row("GPU U-Net step", case, f"error: {first_line(e)}")
        release()


# -- rows from the other parts' output -----------------------------------------------------------
def tests_row(report, status):
    """The suite's counts from pytest's JUnit XML, the skips for want of CuPy/GPU/nvcc counted apart."""
    try:
        suites = ET.parse(report).getroot().iter("testcase")
    except (OSError, ET.ParseError) as e:
        why = stopped(status)
        row("tests", "the suite, CUDA included", f"no report ({why}): {first_line(e)}")
        return
    passed, failed, skipped, gpu_skips = 0, [], 0, {}
    for case in suites:
        name = f"{case.get('classname', '')}.{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped += 1
            reason = case.find("skipped").get("message", "")
            if any(word in reason.lower() for word in CUDA_WORDS):
                gpu_skips[reason] = gpu_skips.get(reason, 0) + 1
        else:
            passed += 1
    result = f"{passed} passed, {len(failed)} failed, {skipped} skipped"
    note = "; ".join(f"{n} skipped: {r}" for r, n in gpu_skips.items())
    if failed:
        note = "failed: " + ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "") + (f"; {note}" if note else "")
    row("tests", "the suite, CUDA included", result, "", "", "", "", note)


def train_row(run_dir, device, status, seconds):
    """A `tinypix train` run's row: its final mIoU and pixel accuracy, or why there are none."""
    case = f"tinypix train --device {device}"
    if status.startswith("skipped"):
        row("train", case, status)
        return
    try:
        import json
        with open(os.path.join(run_dir, "metrics.json")) as f:
            final = json.load(f)["final"]
        result = f"mIoU {final['miou']:.4f}, pixel accuracy {final['pixel_accuracy']:.4f}"
        note = f"{final['epoch']} epoch{'s' if final['epoch'] != 1 else ''} in {seconds} s"
    except (OSError, KeyError, TypeError, ValueError) as e:
        result, note = "no metrics", first_line(e)
    if status != "0":
        note = f"{stopped(status)}; {note}"
    row("train", case, result, "", "", "", "", note)


def threads_rows(log, status):
    """Rows from `benchmarks/unet.py --threads ...`'s output: it prints each row as a tuple
    (threads, case, tinypix ms, PyTorch ms, ratio) as soon as it is measured."""
    found = 0
    try:
        with open(log) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if not line.startswith("("):
            continue
        count, case, ms, tms, ratio = ast.literal_eval(line)
        row("CPU U-Net step", f"{case}, {count} threads", f"{ms} ms", f"{tms} ms" if tms != "-" else "-", ratio)
        found += 1
    if status != "0":
        last = next((line for line in reversed(lines) if line.strip()), "")
        why = stopped(status) + ("" if status in ("124", "137") else f": {last[:150]}")
        row("CPU U-Net step", "benchmarks/unet.py --threads", f"stopped after {found} rows: {why}")


def unet_first(argv):
    """benchmarks/unet.py with ``argv``, on its first U-Net size only: device_check.sh --quick."""
    from benchmarks import unet
    unet.CONFIGS = unet.CONFIGS[:1]
    sys.argv = ["benchmarks/unet.py", *argv]
    unet.main()


def machine():
    """GPU (when there is one), CPU, cores and the versions of everything timed."""
    import numba
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}", f"numba {numba.__version__}"]
    gpu = "no GPU for tinypix: " + (gpu_absent() or "?")
    if not gpu_absent():
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        gpu = f"{name} ({props['totalGlobalMem'] / 2**30:.0f} GiB)"
        versions.append(f"cupy {cupy.__version__} (CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()})")
    if torch is not None:
        cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
        versions.append(f"torch {torch.__version__}" + (f" (cuDNN {cudnn})" if cudnn else ""))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{gpu}; {cpu_model()}, {cores} cores; {', '.join(versions)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("probe")
    sub.add_parser("bench").add_argument("--quick", action="store_true", help="two conv cases, one U-Net")
    t = sub.add_parser("tests")
    t.add_argument("report")
    t.add_argument("status")
    t = sub.add_parser("train")
    for name in ("run_dir", "device", "status", "seconds"):
        t.add_argument(name)
    c = sub.add_parser("threads")
    c.add_argument("log")
    c.add_argument("status")
    sub.add_parser("machine")
    sub.add_parser("unet-first", add_help=False)
    if sys.argv[1:2] == ["unet-first"]:  # its options are unet.py's
        return unet_first(sys.argv[2:])
    args = parser.parse_args()
    if args.command == "probe":
        print(gpu_absent())
    elif args.command == "bench":
        bench(args.quick)
    elif args.command == "tests":
        tests_row(args.report, args.status)
    elif args.command == "train":
        train_row(args.run_dir, args.device, args.status, args.seconds)
    elif args.command == "threads":
        threads_rows(args.log, args.status)
    else:
        machine()


if __name__ == "__main__":
    main()
