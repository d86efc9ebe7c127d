"""Run under mpiexec by tests/test_distributed.py: each check prints 'ok NAME' on rank 0 (or
raises, which aborts the job). Usage: mpiexec -n N python tests/mpi/checks.py"""
import numpy as np

import tinypix
import tinypix.distributed as dist
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix.nn.parallel import DistributedDataParallel
from tinypix.utils.data import DistributedSampler

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()


def ok(name):
    dist.barrier()
    if rank == 0:
        print(f"ok {name}", flush=True)


def collectives():
    rng = np.random.default_rng(rank)
    mine = rng.standard_normal((3, 4)).astype(np.float32)
    everyone = [np.random.default_rng(r).standard_normal((3, 4)).astype(np.float32) for r in range(world)]
    for op, expect in [("sum", np.sum), ("max", np.max), ("min", np.min), ("avg", np.mean)]:
        t = tinypix.tensor(mine.copy())
        dist.all_reduce(t, op=op)
        np.testing.assert_allclose(t.numpy(), expect(np.stack(everyone), axis=0), rtol=1e-6, err_msg=op)
    t = tinypix.tensor(mine.copy()[:, ::2])  # a strided view goes through a contiguous copy
    dist.all_reduce(t)
    np.testing.assert_allclose(t.numpy(), np.sum(np.stack(everyone), axis=0)[:, ::2], rtol=1e-6)
    for src in range(world):
        t = tinypix.tensor(mine.copy())
        dist.broadcast(t, src=src)
        np.testing.assert_array_equal(t.numpy(), everyone[src])
    out = [tinypix.zeros(3, 4) for _ in range(world)]
    dist.all_gather(out, tinypix.tensor(mine))
    for r in range(world):
        np.testing.assert_array_equal(out[r].numpy(), everyone[r])
    ints = tinypix.tensor(np.arange(5) + rank)
    dist.all_reduce(ints)
    np.testing.assert_array_equal(ints.numpy(), world * np.arange(5) + sum(range(world)))
    ok("collectives")


def sampler():
    n = 10
    for drop_last in (False, True):
        for shuffle in (False, True):
            s = DistributedSampler(range(n), shuffle=shuffle, seed=3, drop_last=drop_last)
            for epoch in range(2):
                s.set_epoch(epoch)
                shares = [None] * world
                dist.all_gather_object(shares, list(s))
                assert len({len(x) for x in shares}) == 1, shares
                seen = [i for x in shares for i in x]
                if drop_last:
                    assert len(seen) == len(set(seen)) == n - n % world, shares
                else:
                    assert set(seen) == set(range(n)) and len(seen) == -(-n // world) * world, shares
    ok("sampler")


def conv_net(lib):
    return lib.Sequential(lib.Conv2d(3, 8, 3, padding=1), lib.BatchNorm2d(8), lib.ReLU(),
                          lib.Conv2d(8, 4, 3, padding=1))


def ddp_equals_one_process_on_the_whole_batch():
    data = np.random.default_rng(42)
    xs = data.standard_normal((5, 2 * world, 3, 6, 6)).astype(np.float32)
    ys = data.integers(0, 4, (5, 2 * world, 6, 6))
    tinypix.manual_seed(0)
    reference = conv_net(nn)
    tinypix.manual_seed(100 + rank)  # rank 1 .. starts from other weights: DDP must replace them
    model = conv_net(nn)
    if world > 1:
        assert not np.array_equal(model[0].weight.detach().numpy(), reference[0].weight.detach().numpy())
    model.load_state_dict(reference.state_dict()) if rank == 0 else None
    ddp = DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(model), bucket_cap_mb=0.001)
    assert len(ddp._buckets) > 1  # several buckets, started while backward runs
    opts = [tinypix.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
            for m in (reference, ddp)]
    share = slice(2 * rank, 2 * rank + 2)
    for step in range(5):
        for m, opt, x, y in ((reference, opts[0], xs[step], ys[step]),
                             (ddp, opts[1], xs[step][share], ys[step][share])):
            opt.zero_grad()
            F.cross_entropy(m(tinypix.tensor(x)), tinypix.tensor(y)).backward()
            opt.step()
    mine = ddp.module.state_dict()
    for name, value in reference.state_dict().items():
        np.testing.assert_allclose(mine[name].numpy(), value.numpy(), rtol=2e-5, atol=2e-6,
                                   err_msg=f"{name} on rank {rank}")
    ok("ddp_syncbn")


def no_sync_accumulates():
    tinypix.manual_seed(0)
    ddp = DistributedDataParallel(nn.Linear(3, 2))
    x = tinypix.tensor(np.full((1, 3), rank + 1.0, np.float32))
    with ddp.no_sync():
        ddp(x).sum().backward()
    local = ddp.module.weight.grad.numpy().copy()
    np.testing.assert_allclose(local, np.full((2, 3), rank + 1.0))  # not averaged
    ddp(x).sum().backward()  # averages the accumulated 2 * (rank + 1)
    np.testing.assert_allclose(ddp.module.weight.grad.numpy(), np.full((2, 3), 2 * (world + 1) / 2))
    ok("no_sync")


def mismatched_models_are_refused():
    try:
        DistributedDataParallel(nn.Linear(3, 2 + (rank == world - 1)))
    except RuntimeError as e:
        assert "different models" in str(e) and "weight" in str(e), e
    else:
        assert world == 1, "a model mismatch went unnoticed"
    ok("mismatch")


collectives()
sampler()
ddp_equals_one_process_on_the_whole_batch()
no_sync_accumulates()
mismatched_models_are_refused()
dist.destroy_process_group()
