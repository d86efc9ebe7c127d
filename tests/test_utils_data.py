"""tinypix.utils.data against torch.utils.data: collation, splits, samplers, the DataLoader with
and without worker processes, worker errors and deaths, seeds and persistent workers."""
import gc
import os
import random
import time
import warnings
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
from tinypix.testing.strategies import shapes
from tinypix.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
                                SequentialSampler, Subset, SubsetRandomSampler, TensorDataset, default_collate,
                                default_convert, get_worker_info, random_split)

Pair = namedtuple("Pair", "first second")
DTYPES = ["float32", "float64", "int64", "int32", "uint8", "bool"]


# -- drawn sample structures, built for tinypix and for torch from one seed -----------------------------
def _leaf_specs():
    arrays = st.tuples(st.sampled_from(["array", "tensor"]), st.sampled_from(DTYPES), shapes(max_dims=3, max_side=3))
    scalars = st.tuples(st.sampled_from(["float", "int", "bool", "str", "npscalar"]), st.sampled_from(DTYPES))
    return st.one_of(arrays, scalars)


def _container_specs(children):
    return st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: ("list", c)),
        st.lists(children, min_size=1, max_size=3).map(lambda c: ("tuple", c)),
        st.tuples(children, children).map(lambda c: ("namedtuple", list(c))),
        st.dictionaries(st.sampled_from("abcd"), children, min_size=1, max_size=3).map(lambda c: ("dict", c)))


SPECS = st.recursive(_leaf_specs(), _container_specs, max_leaves=6)


def make(spec, rng, torch=None):
    """One sample of structure ``spec``; Tensors are torch's when ``torch`` is given, else tinypix's."""
    kind = spec[0]
    if kind in ("array", "tensor", "npscalar"):
        dtype = np.dtype(spec[1])
        shape = spec[2] if kind != "npscalar" else ()
        a = np.asarray(rng.standard_normal(shape) * 4).astype(dtype)
        if kind == "npscalar":
            return a[()]
        if kind == "array":
            return a
        return torch.from_numpy(a) if torch is not None else tinypix.tensor(a)
    if kind == "float":
        return float(rng.standard_normal())
    if kind == "int":
        return int(rng.integers(-9, 9))
    if kind == "bool":
        return bool(rng.integers(2))
    if kind == "str":
        return f"s{rng.integers(100)}"
    if kind == "dict":
        return {k: make(v, rng, torch) for k, v in spec[1].items()}
    items = [make(s, rng, torch) for s in spec[1]]
    return {"list": list, "tuple": tuple, "namedtuple": lambda x: Pair(*x)}[kind](items)


def assert_same(ours, theirs, torch):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, tinypix.Tensor), f"expected a Tensor, got {type(ours).__name__}"
        expected = theirs.numpy()
        assert ours.shape == tuple(theirs.shape) and ours.dtype == expected.dtype, \
            f"{ours.shape} {ours.dtype} vs {tuple(theirs.shape)} {expected.dtype}"
        np.testing.assert_array_equal(ours.numpy(), expected)
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray) and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs)
        for k in theirs:
            assert_same(ours[k], theirs[k], torch)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b, torch)
    else:
        assert type(ours) is type(theirs) and ours == theirs


@given(spec=SPECS, n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_default_collate_matches_torch(spec, n, seed):
    torch = pytest.importorskip("torch")
    ours = default_collate([make(spec, np.random.default_rng([seed, i])) for i in range(n)])
    theirs = torch.utils.data.default_collate([make(spec, np.random.default_rng([seed, i]), torch) for i in range(n)])
    assert_same(ours, theirs, torch)


@given(spec=SPECS, seed=st.integers(0, 2**32 - 1))
def test_default_convert_matches_torch(spec, seed):
    torch = pytest.importorskip("torch")
    ours = default_convert(make(spec, np.random.default_rng(seed)))
    theirs = torch.utils.data.default_convert(make(spec, np.random.default_rng(seed), torch))
    assert_same(ours, theirs, torch)


def test_default_collate_keeps_the_graph():
    x = [tinypix.randn(2, requires_grad=True) for _ in range(3)]
    (default_collate(x) * tinypix.tensor([1.0, 2.0])).sum().backward()
    for t in x:
        np.testing.assert_array_equal(t.grad.numpy(), [1.0, 2.0])


def test_default_collate_explains_bad_batches():
    with pytest.raises(RuntimeError, match=r"\['image'\].*sample 0 has shape \(3, 4\).*sample 1 has shape \(3, 5\)"):
        default_collate([{"image": np.zeros((3, 4))}, {"image": np.zeros((3, 5))}])
    with pytest.raises(RuntimeError, match=r"\[1\].*\(2,\).*\(1,\)"):
        default_collate([(0, tinypix.zeros(2)), (1, tinypix.zeros(1))])
    with pytest.raises(ValueError, match="different keys.*'a'.*'b'"):
        default_collate([{"a": 1}, {"b": 1}])
    with pytest.raises(RuntimeError, match="equal size.*2 items in sample 0 but 3"):
        default_collate([[1, 2], [1, 2, 3]])
    with pytest.raises(TypeError, match=r"found <class 'object'>.*\['x'\]"):
        default_collate([{"x": object()}])
    with pytest.raises(TypeError, match="found <U1"):
        default_collate([np.array(["a"])])


# -- datasets and random_split ------------------------------------------------------------------
class Numbers(Dataset):
    """Sample i is ``(image (2, 3) float32 filled with i, label i)``; index 13 fails if asked."""

    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"sample {i} is broken")
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full((2, 3), i, np.float32), i


@given(n=st.integers(0, 30), weights=st.lists(st.integers(0, 5), min_size=1, max_size=4),
       as_fractions=st.booleans())
def test_random_split_sizes_match_torch(n, weights, as_fractions):
    torch = pytest.importorskip("torch")
    lengths = [w / sum(weights) for w in weights] if as_fractions and sum(weights) else \
        [n * w // max(sum(weights), 1) for w in weights]

    def sizes(split):
        try:
            return [len(s) for s in split(range(n), lengths)]
        except ValueError:
            return "ValueError"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn about empty splits
        ours, theirs = sizes(random_split), sizes(torch.utils.data.random_split)
        assert ours == theirs
        if ours != "ValueError":
            parts = random_split(range(n), lengths, generator=np.random.default_rng(0))
            assert sorted(i for p in parts for i in p) == list(range(n))


def test_random_split_is_reproducible_under_manual_seed():
    tinypix.manual_seed(3)
    a = [list(s) for s in random_split(range(10), [0.3, 0.7])]
    tinypix.manual_seed(3)
    assert [list(s) for s in random_split(range(10), [0.3, 0.7])] == a
    assert [len(s) for s in a] == [3, 7]
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        random_split(range(4), [2, 2], generator=0)


def test_tensor_concat_and_subset_datasets_index_like_torch():
    torch = pytest.importorskip("torch")
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    ours = TensorDataset(tinypix.tensor(x), tinypix.tensor(y))
    theirs = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    assert len(ours) == len(theirs) == 6
    for i in (0, 3, -1):
        assert_same(list(ours[i]), list(theirs[i]), torch)
    with pytest.raises(ValueError, match=r"size mismatch.*\(6, 2\).*\(5,\)"):
        TensorDataset(tinypix.tensor(x), tinypix.zeros(5))
    ours_cat, theirs_cat = ConcatDataset([range(3), range(10, 12), range(0)]), \
        torch.utils.data.ConcatDataset([range(3), range(10, 12), range(0)])
    assert ours_cat.cumulative_sizes == theirs_cat.cumulative_sizes
    assert [ours_cat[i] for i in range(-5, 5)] == [theirs_cat[i] for i in range(-5, 5)]
    with pytest.raises(IndexError):
        ours_cat[5]
    assert [v for v in (Numbers(3) + Numbers(2))] != [] and len(Numbers(3) + Numbers(2)) == 5
    sub = Subset(range(10, 20), [4, 0, 7])
    assert [sub[i] for i in range(3)] == [14, 10, 17] and len(sub) == 3


# -- samplers -------------------------------------------------------------------------------------
@given(n=st.integers(0, 20), batch_size=st.integers(1, 7), drop_last=st.booleans())
def test_batch_sampler_matches_torch(n, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    ours = BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)
    theirs = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    indices = list(range(n))[::-1]
    assert list(BatchSampler(indices, batch_size, drop_last)) == \
        list(torch.utils.data.BatchSampler(indices, batch_size, drop_last))


@given(n=st.integers(1, 20), num_samples=st.none() | st.integers(1, 70), replacement=st.booleans())
def test_random_sampler_draws_like_torch(n, num_samples, replacement):
    torch = pytest.importorskip("torch")
    ours = RandomSampler(range(n), replacement, num_samples, generator=np.random.default_rng(n))
    theirs = torch.utils.data.RandomSampler(range(n), replacement, num_samples)
    drawn = list(ours)
    assert len(drawn) == len(ours) == len(theirs) == len(list(theirs))
    assert all(0 <= i < n for i in drawn)
    if not replacement:  # whole permutations, one after the other
        for start in range(0, len(drawn) - n + 1, n):
            assert sorted(drawn[start:start + n]) == list(range(n))
        assert len(set(drawn[len(drawn) // n * n:])) == len(drawn) % n


def test_sampler_argument_checks_match_torch():
    torch = pytest.importorskip("torch")
    for args in [(range(3), 1), (range(3), False, 0), (range(0),)]:
        with pytest.raises(Exception) as theirs:
            torch.utils.data.RandomSampler(*args)
        with pytest.raises(type(theirs.value)):
            RandomSampler(*args)
    for args in [([0], 0, False), ([0], 2, 1), ([0], True, False)]:
        with pytest.raises(ValueError):
            torch.utils.data.BatchSampler(*args)
        with pytest.raises(ValueError, match="should be a"):
            BatchSampler(*args)
    order = list(SubsetRandomSampler([5, 6, 7], generator=np.random.default_rng(0)))
    assert sorted(order) == [5, 6, 7]


# -- the DataLoader in the main process -----------------------------------------------------------
@given(n=st.integers(0, 11), batch_size=st.none() | st.integers(1, 5), drop_last=st.booleans())
def test_loader_batches_tuple_samples_like_torch(n, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    drop_last = drop_last and batch_size is not None
    ours = DataLoader(Numbers(n), batch_size=batch_size, drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(Numbers(n), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    batches = list(ours)
    assert len(batches) == len(ours)
    assert_same(batches, list(theirs), torch)


@pytest.mark.parametrize("kwargs", [
    dict(shuffle=True, sampler=[0, 1]), dict(batch_sampler=[[0]], batch_size=2),
    dict(batch_sampler=[[0]], shuffle=True), dict(batch_sampler=[[0]], drop_last=True), dict(batch_size=None, drop_last=True), dict(num_workers=-1),
    dict(persistent_workers=True), dict(prefetch_factor=2), dict(timeout=-1), dict(multiprocessing_context="fork"),
])
def test_loader_argument_checks_match_torch(kwargs):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        torch.utils.data.DataLoader(Numbers(4), **kwargs)
    with pytest.raises(ValueError):
        DataLoader(Numbers(4), **kwargs)


def test_loader_attributes_are_fixed_after_init():
    loader = DataLoader(Numbers(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3
    loader.timeout = 1  # not one of PyTorch's fixed attributes


def shuffled(loader):
    return [int(v) for _, labels in loader for v in labels.numpy()]


def test_shuffling_is_reproducible_under_manual_seed_and_new_each_pass():
    loader = DataLoader(Numbers(12), batch_size=5, shuffle=True)
    tinypix.manual_seed(0)
    first, second = shuffled(loader), shuffled(loader)
    assert sorted(first) == sorted(second) == list(range(12)) and first != second
    tinypix.manual_seed(0)
    assert [shuffled(loader), shuffled(loader)] == [first, second]
    seeded = [shuffled(DataLoader(Numbers(12), 5, shuffle=True, generator=np.random.default_rng(1))) for _ in "ab"]
    assert seeded[0] == seeded[1]
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        DataLoader(Numbers(3), shuffle=True, generator=1)


class Stream(IterableDataset):
    """0 .. n-1, each worker taking every num_workers-th item."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("num_workers", [0, 2])
def test_iterable_dataset_like_torch(num_workers):
    torch = pytest.importorskip("torch")

    class TorchStream(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            start, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter(range(start, 11, step))

    for batch_size, drop_last in [(3, False), (3, True), (None, False)]:
        ours = DataLoader(Stream(11), batch_size=batch_size, drop_last=drop_last, num_workers=num_workers)
        theirs = torch.utils.data.DataLoader(TorchStream(), batch_size=batch_size, drop_last=drop_last,
                                             num_workers=num_workers)
        assert_same(list(ours), list(theirs), torch)
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(3), shuffle=True)
    assert len(DataLoader(Stream(11), batch_size=3)) == 4


# -- worker processes -----------------------------------------------------------------------------
def test_workers_give_the_batches_of_the_main_process():
    for kwargs in [dict(batch_size=3), dict(batch_size=4, drop_last=True), dict(batch_size=None)]:
        expected = list(DataLoader(Numbers(10), **kwargs))
        got = list(DataLoader(Numbers(10), num_workers=2, **kwargs))
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(np.asarray(x.numpy() if hasattr(x, "numpy") else x),
                                              np.asarray(y.numpy() if hasattr(y, "numpy") else y))
    tinypix.manual_seed(5)
    in_main = [shuffled(DataLoader(Numbers(13), 4, shuffle=True)) for _ in range(2)]
    tinypix.manual_seed(5)
    loader = DataLoader(Numbers(13), 4, shuffle=True, num_workers=2, prefetch_factor=1)
    assert [shuffled(loader), shuffled(loader)] == in_main


class WhoAmI(Dataset):
    """Sample i says which worker read it, and the random draws there."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        info = get_worker_info()
        return {"id": info.id, "num_workers": info.num_workers, "seed": info.seed, "pid": os.getpid(),
                "random": random.random(), "np_random": float(np.random.random()),
                "tinypix": float(tinypix.rand(1).item()), "init": os.environ.get("_TP_TEST_INIT", "")}


def _init(worker_id):
    os.environ["_TP_TEST_INIT"] = f"init {worker_id}"  # in the worker's own environment only


def test_worker_info_seeds_and_init_fn():
    assert get_worker_info() is None
    tinypix.manual_seed(1)
    loader = DataLoader(WhoAmI(), batch_size=None, num_workers=2, worker_init_fn=_init)
    samples = list(loader)
    assert [s["id"] for s in samples] == [0, 1, 0, 1] and {s["num_workers"] for s in samples} == {2}
    assert [s["init"] for s in samples] == ["init 0", "init 1"] * 2
    assert samples[1]["seed"] - samples[0]["seed"] == 1
    for key in ("random", "np_random", "tinypix"):
        assert samples[0][key] != samples[1][key], f"both workers drew the same {key}"
    assert "_TP_TEST_INIT" not in os.environ
    tinypix.manual_seed(1)
    again = list(loader)
    assert [s["seed"] for s in again] == [s["seed"] for s in samples]
    assert [s["random"] for s in again] == [s["random"] for s in samples]
    assert [s["seed"] for s in list(loader)] != [s["seed"] for s in samples]  # a new base seed per pass


def test_worker_errors_are_raised_in_the_main_process():
    loader = DataLoader(Numbers(8, fail_at=5), batch_size=2, num_workers=2)
    with pytest.raises(ValueError, match=r"(?s)in DataLoader worker process 0 while loading sample index 5.*"
                                         r"sample 5 is broken"):
        list(loader)
    bad_collate = DataLoader(Numbers(4), batch_size=2, num_workers=2, collate_fn=lambda batch: {}["missing"])
    with pytest.raises(KeyError, match=r"in collate_fn, for the samples at indices \[0, 1\]"):
        next(iter(bad_collate))

    class LocalError(Exception):
        """Defined in a function: its type cannot be pickled, so it comes back as a RuntimeError."""

    def fail(batch):
        raise LocalError("local failure")

    with pytest.raises(RuntimeError, match="(?s)Caught LocalError.*local failure"):
        next(iter(DataLoader(Numbers(2), batch_size=2, num_workers=1, collate_fn=fail)))
    with pytest.raises(RuntimeError, match="(?s)while sending the batch.*detach"):
        next(iter(DataLoader(Numbers(2), batch_size=2, num_workers=1,
                             collate_fn=lambda batch: tinypix.ones(2, requires_grad=True) * 2)))
    leaf = next(iter(DataLoader(Numbers(2), batch_size=2, num_workers=1,
                                collate_fn=lambda batch: tinypix.ones(2, requires_grad=True))))
    assert leaf.requires_grad and leaf.is_leaf


def _die(batch):
    os._exit(3)


def _sleep(batch):
    time.sleep(10)


def test_dead_or_slow_workers_do_not_hang():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker process \d \(pid \d+\) exited unexpectedly with exit code 3"):
        list(DataLoader(Numbers(4), batch_size=2, num_workers=2, collate_fn=_die))
    with pytest.raises(RuntimeError, match="timed out after 0.2 seconds"):
        list(DataLoader(Numbers(4), batch_size=2, num_workers=1, collate_fn=_sleep, timeout=0.2))
    assert time.monotonic() - start < 8


def test_spawned_workers_need_picklable_arguments():
    loader = DataLoader(Numbers(4), batch_size=2, num_workers=1, multiprocessing_context="spawn",
                        collate_fn=lambda b: b)
    with pytest.raises(RuntimeError, match="'spawn' start method, which pickles the dataset"):
        iter(loader)
    spawned = DataLoader(Numbers(4), batch_size=2, num_workers=1, multiprocessing_context="spawn")
    assert [labels.tolist() for _, labels in spawned] == [[0, 1], [2, 3]]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_persistent_workers_live_across_passes_and_end_with_the_loader():
    loader = DataLoader(WhoAmI(), batch_size=2, num_workers=2, persistent_workers=True)
    first = next(iter(loader))  # an abandoned pass: its late batches must not leak into the next
    passes = [list(loader) for _ in range(2)]
    pids = {int(p) for batches in passes for b in batches for p in b["pid"].numpy()}
    assert len(pids) == 2 and set(first["pid"].tolist()) <= pids
    assert all(len(batches) == 2 and [b["id"].tolist() for b in batches] == [[0, 0], [1, 1]] for batches in passes)
    del loader, first
    gc.collect()
    assert not any(_alive(p) for p in pids)
    it = iter(DataLoader(WhoAmI(), batch_size=1, num_workers=2))
    pids = {int(next(it)["pid"].item()), int(next(it)["pid"].item())}
    del it  # abandoned early: the workers stop with the iterator
    gc.collect()
    assert not any(_alive(p) for p in pids)


def _collect_garbage(batch):
    gc.collect()  # in the worker: collects its forked copy of the abandoned iterator below
    return default_collate(batch)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_an_iterator_collected_in_a_cycle_stops_its_own_workers_only(monkeypatch):
    # A worker that is told to stop ends at once; one that is not is killed after 2 * POLL_INTERVAL.
    # With that made long, a busy machine cannot blur the two.
    from tinypix.utils.data import multiprocess
    monkeypatch.setattr(multiprocess, "POLL_INTERVAL", 10.0)
    gc.disable()  # the abandoned iterator must still exist when the second loader forks
    try:
        it = iter(DataLoader(WhoAmI(), batch_size=1, num_workers=1))
        pid = int(next(it)["pid"].item())
        cycle = [it]
        cycle.append(cycle)
        del it, cycle
        assert len(list(DataLoader(Numbers(2), batch_size=1, num_workers=1, collate_fn=_collect_garbage))) == 2
        assert _alive(pid), "a forked worker stopped another iterator's workers"
        start = time.monotonic()
        gc.collect()
        assert time.monotonic() - start < 10.0 and not _alive(pid)
    finally:
        gc.enable()


def test_samplers_and_datasets_subscript_as_in_pytorch():
    """PyTorch code writes ``class Evens(Sampler[int])`` and ``Dataset[tuple]``: both must run."""
    from tinypix.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset, TensorDataset

    class Evens(Sampler[int]):
        def __iter__(self):
            return iter(range(0, 6, 2))

        def __len__(self):
            return 3

    class Squares(Dataset[int]):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return i * i

    assert [int(b) for b in DataLoader(Squares(), sampler=Evens(), batch_size=None)] == [0, 4, 16]
    assert [int(x) for (x,) in DataLoader(TensorDataset(tinypix.arange(6)), sampler=Evens(), batch_size=None)] \
        == [0, 2, 4]
    assert len(Subset[int](Squares(), [1, 2])) == 2 and len(ConcatDataset[int]([Squares(), Squares()])) == 12
