"""Data-parallel training: tinypix.distributed, DistributedDataParallel, SyncBatchNorm and
DistributedSampler. The multi-process checks run programs under ``mpiexec -n 2`` and ``-n 3``
(tests/mpi/); they skip, with the reason, where the ``distributed`` extra is not installed."""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinypix
import tinypix.distributed as dist
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix.nn.parallel import DistributedDataParallel
from tinypix.utils.data import DistributedSampler

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(not (dist.is_available() and MPIEXEC),
                               reason="needs the distributed extra: pip install tinypix[distributed]")


def mpiexec(n, *args, timeout=120):
    start = time.monotonic()
    result = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args], capture_output=True, text=True,
                            timeout=timeout, cwd=os.path.dirname(HERE))
    return result, time.monotonic() - start


CHECKS = ["collectives", "sampler", "ddp_syncbn", "no_sync", "mismatch"]


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_collectives_ddp_syncbn_and_sampler_across_processes(ranks):
    """All-reduce, broadcast, all_gather against NumPy; five SGD-with-momentum steps of a conv net
    with SyncBatchNorm, each rank on its share, equal one process on the whole batch (though the
    ranks start from different weights); the sampler's shares cover the dataset each epoch."""
    result, _ = mpiexec(ranks, os.path.join(HERE, "mpi", "checks.py"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [word for name in CHECKS for word in ("ok", name)], result.stdout


@needs_mpi
@pytest.mark.parametrize("fault, message", [
    ("raise", "rank 1 of 2 failed (ValueError: a mistake on rank 1); aborting the job"),
    ("exit", "rank 1 of 2 ended its program, and the others did not end theirs within 2 s; aborting the job")])
def test_a_failing_rank_ends_the_job_within_seconds(fault, message):
    result, seconds = mpiexec(2, os.path.join(HERE, "mpi", "faults.py"), fault, timeout=60)
    assert result.returncode != 0 and seconds < 20
    assert message in result.stderr
    assert "unreachable" not in result.stdout


@needs_mpi
def test_a_plain_run_with_mpi4py_is_a_world_of_one():
    result = subprocess.run([sys.executable, os.path.join(HERE, "mpi", "checks.py")], capture_output=True,
                            text=True, timeout=120, env={k: v for k, v in os.environ.items() if "PMI" not in k})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [word for name in CHECKS for word in ("ok", name)]


# -- in this process: a world of one (MPI is not started here) ---------------------------------
@pytest.fixture
def world_of_one(monkeypatch):
    monkeypatch.setattr(dist, "is_available", lambda: False)
    for name in dist._LAUNCHER_SIZES:
        monkeypatch.delenv(name, raising=False)
    dist.init_process_group("mpi")
    yield
    dist.destroy_process_group()


def test_world_of_one_leaves_tensors_as_they_are(world_of_one):
    assert dist.is_initialized() and (dist.get_rank(), dist.get_world_size()) == (0, 1)
    t = tinypix.tensor([1.0, 2.0])
    dist.all_reduce(t)
    dist.broadcast(t, src=0)
    out = [tinypix.zeros(2)]
    dist.all_gather(out, t)
    assert t.tolist() == out[0].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="rank 1 is outside the world of 1"):
        dist.broadcast(t, src=1)
    with pytest.raises(ValueError, match="unknown op"):
        dist.all_reduce(t, op="mean")
    with pytest.raises(RuntimeError, match="already in a process group"):
        dist.init_process_group()


def test_init_explains_what_is_missing(monkeypatch):
    with pytest.raises(RuntimeError, match="call tinypix.distributed.init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="backend 'nccl' is not supported"):
        dist.init_process_group("nccl")
    monkeypatch.setattr(dist, "is_available", lambda: False)
    monkeypatch.setenv("PMI_SIZE", "4")
    with pytest.raises(RuntimeError, match=r"one of 4 processes, but mpi4py is not installed; .*tinypix\[distributed\]"):
        dist.init_process_group()
    assert not dist.is_initialized()


def test_ddp_and_syncbn_in_a_world_of_one_are_the_plain_model(world_of_one):
    tinypix.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    tinypix.manual_seed(0)
    ddp = DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(
        nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))))
    assert isinstance(ddp.module[1], nn.SyncBatchNorm)
    x = tinypix.randn(4, 2, 5, 5)
    for m in (plain, ddp):
        (m(x) ** 2).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ddp.module.parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6, err_msg=name)
    assert list(ddp.state_dict()) == ["module." + k for k in plain.state_dict()]


def test_convert_sync_batchnorm_keeps_the_tensors():
    bn = nn.BatchNorm2d(4, momentum=0.3)
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.Sequential(bn), nn.BatchNorm1d(2)).eval()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    sync = converted[1][0]
    assert isinstance(sync, nn.SyncBatchNorm) and isinstance(converted[2], nn.SyncBatchNorm)
    assert sync.weight is bn.weight and sync.running_mean is bn.running_mean and sync.momentum == 0.3
    assert not sync.training


def test_syncbatchnorm_outside_a_process_group_is_batchnorm_and_its_gradient_checks():
    """The synchronized op's own arithmetic (world of one), against BatchNorm and finite differences."""
    from tinypix.nn.sync_batchnorm import SyncBatchNormFunction
    from tinypix.testing import gradcheck
    rng = np.random.default_rng(0)
    x = tinypix.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    w = tinypix.tensor(rng.standard_normal(2) + 1.5, requires_grad=True)
    b = tinypix.tensor(rng.standard_normal(2), requires_grad=True)
    mean, var = tinypix.zeros(2, dtype=tinypix.float64), tinypix.ones(2, dtype=tinypix.float64)
    y = SyncBatchNormFunction.apply(x, w, b, mean, var, 0.1, 1e-5)
    expect = F.batch_norm(x, tinypix.zeros(2, dtype=tinypix.float64), tinypix.ones(2, dtype=tinypix.float64),
                          w, b, True, 0.1, 1e-5)
    np.testing.assert_allclose(y.detach().numpy(), expect.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x, w, b: SyncBatchNormFunction.apply(x, w, b, None, None, 0.1, 1e-5), (x, w, b))


@given(n=st.integers(0, 40), replicas=st.integers(1, 5), drop_last=st.booleans(), shuffle=st.booleans(),
       epoch=st.integers(0, 3))
def test_distributed_sampler_shares_cover_the_dataset_once(n, replicas, drop_last, shuffle, epoch):
    shares = []
    for rank in range(replicas):
        s = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=shuffle, seed=7,
                               drop_last=drop_last)
        s.set_epoch(epoch)
        shares.append(list(s))
        assert len(shares[-1]) == len(s)
    assert len({len(x) for x in shares}) == 1
    seen = [i for x in shares for i in x]
    if drop_last:
        assert len(seen) == len(set(seen)) == n - n % replicas
    else:
        assert set(seen) == set(range(n)) and len(seen) == -(-n // replicas) * replicas


def test_distributed_sampler_checks_its_rank():
    with pytest.raises(ValueError, match=r"invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="no process group"):
        DistributedSampler(range(4))


def test_post_accumulate_grad_hook_runs_once_after_the_last_gradient():
    w = tinypix.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (w * 3 + w * w).sum().backward()  # two paths into w: the hook sees their sum
    assert seen == [[5.0, 7.0]]
    (w * 2).sum().backward()
    assert seen == [[5.0, 7.0], [7.0, 9.0]]
    handle.remove()
    (w * 2).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(print)


@needs_mpi
def test_mpiexec_tinypix_train_writes_one_run_that_eval_and_resume_agree_with(tmp_path):
    """mpiexec -n 2 tinypix train: one run folder (rank 0 writes), metrics that tinypix eval
    reproduces from the checkpoint, and a checkpoint that a single process can --resume."""
    small = ["--size", "32", "--val-scenes", "16", "--base-channels", "8", "--depth", "2", "-q"]
    result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "tinypix.cli", "train", "--epochs", "1",
                             "--train-scenes", "64", *small, "-o", "run"], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.npz", "curves.png", "metrics.json",
                                                    "predictions.png"]
    assert result.stdout.count("epoch  1/1") == 1 and "on 2 processes" in result.stdout
    import json
    reported = json.loads((tmp_path / "run" / "metrics.json").read_text())["final"]
    scored = subprocess.run([sys.executable, "-m", "tinypix.cli", "eval", "-c", "run/checkpoint.npz"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert f"miou {reported['miou']:.4f}" in scored.stdout
    resumed = subprocess.run([sys.executable, "-m", "tinypix.cli", "train", "--epochs", "2", "--train-scenes", "64",
                              *small, "-o", "run", "--resume"], capture_output=True, text=True, timeout=300,
                             cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]) == 2


@needs_mpi
def test_mpiexec_tinypix_train_refuses_a_batch_it_cannot_share(tmp_path):
    result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "tinypix.cli", "train", "-b", "5"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("tinypix train: --batch-size 5: shared by 2 processes, it must be a "
                                     "multiple of 2")
    assert os.listdir(tmp_path) == []
