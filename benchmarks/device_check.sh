#!/usr/bin/env bash
# The device check of issue 23, in one run: on a machine with an NVIDIA GPU where CuPy, NumPy,
# Numba and PyTorch are installed already and only the package index can be reached.
#
#     bash benchmarks/device_check.sh            # the full check (at most 8 minutes after install)
#     bash benchmarks/device_check.sh --quick    # fewer repeats and sizes: try the script out
#
# 1. installs tinypix (pip install --no-deps --no-build-isolation -e .) over the installed
#    CuPy/NumPy/Numba/PyTorch, and what else it and its tests need, never changing those four;
# 2. runs the test suite, whose CUDA tests run where CuPy sees a GPU; meanwhile `tinypix train
#    --device cpu --epochs 2` runs beside it, for the mIoU the GPU run should reach (the tests
#    time nothing, so sharing the cores costs them only time);
# 3. runs `tinypix train --device cuda --epochs 2`;
# 4. times conv2d and conv_transpose2d forward+backward and the U-Net step on the GPU next to
#    PyTorch with cuDNN (benchmarks/gpu.py bench);
# 5. runs the CPU U-Net benchmark at 2, 4, 8 and 16 threads (up to the cores there are) next
#    to PyTorch (benchmarks/unet.py --threads).
# Each part has its own time limit, none past the overall one (BUDGET seconds, 480). It prints
# one table and writes it to $OUT/device_check.md when $OUT is set, else
# benchmarks/device_check.md. A GPU part without CuPy, a GPU or torch.cuda says
# "skipped: <reason>" in its row. PYTHON names the interpreter (python3).
set -u
cd "$(dirname "$0")/.."

QUICK=0 QUICK_FLAG=""
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 QUICK_FLAG=--quick ;;
        *) echo "usage: bash benchmarks/device_check.sh [--quick]" >&2; exit 2 ;;
    esac
done
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-480}
REPORT=${OUT:+$OUT/device_check.md}
REPORT=${REPORT:-benchmarks/device_check.md}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")
ROWS="$WORK/rows.md"
: > "$ROWS"
export CI=true                   # the bounded hypothesis profile (tests/conftest.py)
export PYTHONUNBUFFERED=1

if (( QUICK )); then
    TESTS=(tests/test_cuda_kernels.py tests/test_cuda_step.py tests/test_device_dtype.py)
    TRAIN=(--epochs 1 --train-scenes 32 --val-scenes 16)
    UNET=(benchmarks/gpu.py unet-first --repeats 1)  # benchmarks/unet.py at its first size only
    T_TESTS=120 T_TRAIN_CPU=120 T_TRAIN=60 T_BENCH=60 T_THREADS=120
else
    TESTS=(tests)
    TRAIN=(--epochs 2)
    UNET=(benchmarks/unet.py --repeats 3)
    T_TESTS=150 T_TRAIN_CPU=200 T_TRAIN=70 T_BENCH=100 T_THREADS=120
fi

# -- 1. install ------------------------------------------------------------------------------
# Pin what is installed of the four (and llvmlite, Numba's half), so nothing below replaces them.
"$PY" -m pip list --format=freeze 2>/dev/null | grep -iE '^(numpy|numba|llvmlite|torch|cupy[a-z0-9-]*)==' \
    > "$WORK/pins.txt"
echo "== install (keeping $(tr '\n' ' ' < "$WORK/pins.txt"))" >&2
"$PY" -m pip install -q -c "$WORK/pins.txt" "setuptools>=77" wheel \
    || echo "could not install setuptools>=77; trying the one installed" >&2
"$PY" -m pip install -q --no-deps --no-build-isolation -e . || { echo "tinypix did not install" >&2; exit 1; }
# tinypix's other dependencies and the test tools, where missing (the notebook test's are optional)
"$PY" -m pip install -q -c "$WORK/pins.txt" Pillow tqdm matplotlib threadpoolctl safetensors pytest hypothesis \
    || echo "some dependencies did not install; the parts that need them will say so" >&2
"$PY" -m pip install -q -c "$WORK/pins.txt" nbclient nbformat ipykernel || echo "no notebook test tools" >&2

# -- the time budget ---------------------------------------------------------------------------
# The parts get the budget less RESERVE seconds: the table's helpers run outside their limits.
RESERVE=30
SECONDS=0
remaining() { echo $(( BUDGET - RESERVE - SECONDS )); }
# limit WANTED: WANTED seconds, or what is left of the budget (at least 1)
limit() { local left; left=$(remaining); (( left < $1 )) && echo $(( left > 1 ? left : 1 )) || echo "$1"; }
# run_part NAME WANTED COMMAND...: the command under its own limit; sets STATUS and TOOK, and
# returns the command's status (timeout's 124, or 137 when it had to kill, past the limit)
run_part() {
    local name=$1 wanted=$2 t0=$SECONDS lim
    shift 2
    lim=$(limit "$wanted")
    echo "== $name (limit ${lim} s, $(remaining) s of the budget left)" >&2
    timeout -k 10 "$lim" "$@"
    STATUS=$?
    TOOK=$(( SECONDS - t0 ))
    return "$STATUS"
}
# gpu.py's helpers that make rows need no PyTorch: spare them its import
rows() { TINYPIX_BENCH_NO_TORCH=1 "$PY" benchmarks/gpu.py "$@" >> "$ROWS"; }
NO_GPU=$(TINYPIX_BENCH_NO_TORCH=1 "$PY" benchmarks/gpu.py probe 2>&1 | tail -n 1)

# -- 2. the test suite, and the CPU training run beside it ---------------------------------------
run_part "train --device cpu, in the background" "$T_TRAIN_CPU" \
    "$PY" -m tinypix train --device cpu "${TRAIN[@]}" --quiet --out "$WORK/train-cpu" \
    > "$WORK/train-cpu.log" 2>&1 &
CPU_RUN=$! CPU_T0=$SECONDS
run_part "tests" "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider -rs --junitxml="$WORK/tests.xml" "${TESTS[@]}"
rows tests "$WORK/tests.xml" "$STATUS"
echo "== waiting for the CPU training run" >&2
wait "$CPU_RUN"
CPU_STATUS=$?
cat "$WORK/train-cpu.log" >&2
rows train "$WORK/train-cpu" cpu "$CPU_STATUS" $(( SECONDS - CPU_T0 ))

# -- 3. training on the GPU ------------------------------------------------------------------------
if [[ -n $NO_GPU ]]; then
    rows train - cuda "skipped: $NO_GPU" 0
else
    run_part "train --device cuda" "$T_TRAIN" \
        "$PY" -m tinypix train --device cuda "${TRAIN[@]}" --quiet --out "$WORK/train-cuda"
    rows train "$WORK/train-cuda" cuda "$STATUS" "$TOOK"
fi

# -- 4. the GPU next to PyTorch with cuDNN -----------------------------------------------------
# shellcheck disable=SC2086  # QUICK_FLAG is empty or one option
run_part "GPU timings" "$T_BENCH" "$PY" benchmarks/gpu.py bench $QUICK_FLAG > "$WORK/gpu.md"
cat "$WORK/gpu.md" >> "$ROWS"
if (( STATUS != 0 )); then
    why=$([[ $STATUS == 124 || $STATUS == 137 ]] && echo "timed out" || echo "exit status $STATUS")
    echo "| GPU | benchmarks/gpu.py bench | stopped: $why (the rows above are what it finished) |||||  |" \
        >> "$ROWS"
fi

# -- 5. the CPU U-Net step at several thread counts --------------------------------------------
CORES=$("$PY" -c "import os; print(len(os.sched_getaffinity(0)))")
COUNTS=""
for n in 2 4 8 16; do (( n <= CORES )) && COUNTS="${COUNTS:+$COUNTS,}$n"; done
COUNTS=${COUNTS:-1}
ADVICE=$("$PY" -c "from tinypix.tuning import blas_coretype_advice as advice
print(' '.join(f'{k}={v}' for k, v in advice().items()))")
# shellcheck disable=SC2086  # ADVICE is a list of VAR=value, the environment `tinypix train` starts with
run_part "CPU U-Net step at $COUNTS threads" "$T_THREADS" \
    env $ADVICE "$PY" "${UNET[@]}" --threads "$COUNTS" > "$WORK/threads.log" 2>&1
rows threads "$WORK/threads.log" "$STATUS"

# -- the table -----------------------------------------------------------------------------------
{
    echo "# Device check, $(date '+%Y-%m-%d %H:%M')$( ((QUICK)) && echo ' (quick)')"
    echo
    "$PY" benchmarks/gpu.py machine
    echo
    echo "GPU rows: median ms of one forward+backward (conv) or training step (U-Net), float32; PyTorch"
    echo "on CUDA with cuDNN and TF32 off; ratio = tinypix / PyTorch. CPU rows: benchmarks/unet.py."
    echo "Whole check: ${SECONDS} s of a ${BUDGET} s budget."
    echo
    TINYPIX_BENCH_NO_TORCH=1 "$PY" -c "from benchmarks.gpu import HEADER; print(HEADER)"
    cat "$ROWS"
} > "$WORK/table.md"
mkdir -p "$(dirname "$REPORT")"
cp "$WORK/table.md" "$REPORT"
echo
cat "$REPORT"
echo
echo "written to $REPORT"
rm -rf "$WORK"
