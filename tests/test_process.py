"""tinypix minds its own business (DESIGN.md, rule 2): importing and using it changes nothing
outside it, and a process that used it can fork and run threads.

Each check runs in a fresh Python process, so that what this test session already did to its
own process does not count, and a hang fails the test at its timeout instead of stalling it.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import tinypix
import tinypix.functional as F
from tinypix.models import UNet

STEP = """
import numpy as np, tinypix
import tinypix.nn.functional as F
from tinypix.models import UNet

def training_step():
    tinypix.manual_seed(0)
    model = UNet(3, 4, base_channels=16, depth=2)
    opt = tinypix.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = tinypix.randn(8, 3, 32, 32)
    loss = F.cross_entropy(model(x), tinypix.randint(0, 4, (8, 32, 32)))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()
"""

UNTOUCHED = """
import os
import matplotlib
import numba
import numpy as np
from threadpoolctl import threadpool_info

rng = np.random.default_rng(0)
a, b = rng.standard_normal((2, 300, 300)).astype(np.float32)

def state():
    return {"environment": dict(os.environ), "numba threads": numba.get_num_threads(),
            "threadpools": [(i["filepath"], i["num_threads"], i.get("architecture"))
                            for i in threadpool_info()],
            "matmul": (a @ b).tobytes(), "matplotlib backend": matplotlib.get_backend()}

before = state()
import tinypix
after_import = state()
""" + STEP + """
training_step()
after_step = state()
for name, now in (("import tinypix", after_import), ("a training step", after_step)):
    for key in before:
        assert now[key] == before[key], f"{name} changed {key}"
print("untouched")
"""


def _python(code, timeout=240, env=None):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("threads", ["1", "2"])
def test_import_and_a_training_step_change_nothing_outside_tinypix(threads):
    """The environment, Numba's and every thread pool's thread count (and OpenBLAS's kernels),
    matplotlib's backend, and the exact bits of a NumPy product -- before and after `import
    tinypix`, and after a training step. With a team of threads and without."""
    assert "untouched" in _python(UNTOUCHED, env={"TINYPIX_NUM_THREADS": threads})


FORK = STEP + """
import multiprocessing

def conv_sum(seed):
    rng = np.random.default_rng(seed)
    x = tinypix.tensor(rng.standard_normal((4, 8, 16, 16)).astype(np.float32))
    w = tinypix.tensor(rng.standard_normal((16, 8, 3, 3)).astype(np.float32))
    return float(F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2).sum().item())

if __name__ == "__main__":
    training_step()                        # the team's threads and the engines are running now
    expected = [conv_sum(seed) for seed in range(6)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(conv_sum, range(6))
        loss = pool.apply(training_step)
    assert np.allclose(got, expected, rtol=1e-5), (got, expected)
    assert np.isclose(loss, training_step(), rtol=1e-5)
    print("forked")
"""


def test_a_fork_started_pool_after_a_training_step_computes_the_right_results(tmp_path):
    script = tmp_path / "fork_after_use.py"  # a file: the pool's workers pickle functions by name
    script.write_text(FORK)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240,
                            env={**os.environ, "TINYPIX_NUM_THREADS": "2"})  # a team, on any machine
    assert result.returncode == 0, result.stderr[-3000:]
    assert "forked" in result.stdout


FORK_WHILE_HELD = """
import os, threading
import numpy as np, tinypix
import tinypix.nn.functional as F
from threadpoolctl import threadpool_info
from tinypix.kernels import cpu_team

def blas():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

cpu_team.set_num_threads(2)
cpu_team.MIN_SHARE = 1
before = blas()
inside, go = threading.Event(), threading.Event()

def share(start, stop):
    if start == 0:
        inside.set()
        go.wait(30)

holding = threading.Thread(target=lambda: cpu_team.run(share, 2, 2))
holding.start()
inside.wait(30)
assert blas() == [1] * len(before)  # held while the share waits
pid = os.fork()
if pid == 0:  # the child: the count back, a team of its own, the right numbers
    x = tinypix.tensor(np.ones((8, 4, 16, 16), np.float32))
    y = F.conv2d(x, tinypix.tensor(np.ones((8, 4, 3, 3), np.float32)), padding=1)
    os._exit(0 if blas() == before and y.numpy()[0, 0, 5, 5] == 36 else 1)
go.set()
holding.join()
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
assert blas() == before
print("forked while held")
"""


def test_a_fork_while_another_thread_holds_the_blas_count_gives_the_child_its_count_back():
    assert "forked while held" in _python(FORK_WHILE_HELD)


def _case(seed):
    """A U-Net and a batch: made on this thread (the weights come from the global generator)."""
    tinypix.manual_seed(seed)
    rng = np.random.default_rng(seed)
    return (UNet(3, 4, base_channels=16, depth=2),
            tinypix.tensor(rng.standard_normal((6, 3, 32, 32)).astype(np.float32)),
            tinypix.tensor(rng.integers(0, 4, (6, 32, 32))))


def _step_results(model, x, target):
    """Output and every gradient of one forward and backward, as arrays."""
    model.zero_grad()
    out = model(x)
    F.cross_entropy(out, target).backward()
    return [out.detach().numpy()] + [p.grad.numpy().copy() for p in model.parameters()]


def test_four_threads_at_once_get_the_answers_of_one_at_a_time(monkeypatch):
    monkeypatch.setattr(tinypix.kernels.cpu_team, "_size", 2)  # a team, on any machine
    cases = [_case(seed) for seed in range(4)]
    serial = [_step_results(*case) for case in cases]
    results, errors = [None] * 4, []

    def work(k):
        try:
            for _ in range(2):
                results[k] = _step_results(*cases[k])
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert not errors and not any(thread.is_alive() for thread in threads)
    for mine, theirs in zip(results, serial):
        for a, b in zip(mine, theirs):
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-6 * max(1.0, np.abs(b).max()))


SOURCE_CHECKOUT = """
import sys
sys.path[:0] = [{checkout!r}] + {site!r}
import tinypix, tinypix.functional as F
assert tinypix.__file__.startswith({checkout!r}) and tinypix.kernels.__file__.startswith({checkout!r})
x = tinypix.randn(2, 3, 8, 8, requires_grad=True)
F.conv2d(x, tinypix.randn(4, 3, 3, 3), padding=1).sum().backward()
print("imported")
"""


def test_a_source_checkout_imports_with_its_kernels_beside_the_package(tmp_path):
    """In a checkout (or with `pip install .` run there) Python finds the folder tinypix/ first,
    which has no kernels/ inside; the package loads the kernels/ beside it. Run with -S: no
    installed copy or editable-install hook may answer instead."""
    import shutil
    import site
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for folder in ("tinypix", "kernels"):
        shutil.copytree(os.path.join(root, folder), tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    code = SOURCE_CHECKOUT.format(checkout=str(tmp_path), site=site.getsitepackages())
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                            timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout
