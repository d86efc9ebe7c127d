"""DataLoader: batch counts, stacking into tensors, reproducible shuffling and augmentation."""
import numpy as np
import pytest

import tinypix
from tinypix.data import DataLoader, Dataset, SyntheticScenes, collate
from tinypix.data import transforms as T


class Numbers(Dataset):
    """Sample i is {'x': [i, i] float32, 'y': i}: easy to trace through a loader."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": np.full(2, i, np.float32), "y": np.int64(i)}


def order(loader):
    return [int(v) for batch in loader for v in batch["y"].numpy()]


def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()


def test_batches_and_length():
    loader = DataLoader(Numbers(10), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b["x"].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert isinstance(batches[0]["x"], tinypix.Tensor)
    assert batches[0]["x"].dtype == tinypix.from_numpy(np.zeros(1, np.float32)).dtype
    np.testing.assert_array_equal(batches[2]["y"].numpy(), [8, 9])
    dropped = DataLoader(Numbers(10), batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [b["x"].shape[0] for b in dropped] == [4, 4]
    assert len(DataLoader(Numbers(8), batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Numbers(3), batch_size=0)


def test_shuffle_is_a_new_permutation_each_epoch_and_reproducible():
    loader = DataLoader(Numbers(20), batch_size=3, shuffle=True, seed=5)
    first, second = order(loader), order(loader)
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != second and first != list(range(20))
    again = DataLoader(Numbers(20), batch_size=3, shuffle=True, seed=5)
    assert [order(again), order(again)] == [first, second]
    assert order(DataLoader(Numbers(20), batch_size=3)) == list(range(20))


def test_scene_batches_with_reproducible_augmentation():
    scenes = SyntheticScenes(6, size=24, seed=1)
    aug = T.Compose([T.RandomHorizontalFlip(), T.RandomResizedCrop(16), T.ColorJitter(0.3, 0.3, 0.3)])

    def first_batch(seed):
        return next(iter(DataLoader(scenes, batch_size=4, shuffle=True, seed=seed, transform=aug)))

    a, b = first_batch(3), first_batch(3)
    assert a["image"].shape == (4, 3, 16, 16) and a["mask"].shape == (4, 16, 16)
    assert a["depth"].shape == (4, 16, 16) and a["normals"].shape == (4, 3, 16, 16)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    assert not np.array_equal(a["image"].numpy(), first_batch(4)["image"].numpy())


@pytest.mark.parametrize("num_workers", [0, 2])
def test_set_epoch_makes_an_epoch_depend_on_seed_and_epoch_alone(num_workers):
    """What a resumed run needs: epoch e's batches without replaying epochs 0 .. e-1."""
    def jitter(sample, rng):
        return {"x": sample["x"] + np.float32(rng.standard_normal()), "y": sample["y"]}

    def epochs(loader, which):
        out = []
        for e in which:
            loader.set_epoch(e)
            out.append([(b["y"].numpy().tolist(), b["x"].numpy().tolist()) for b in loader])
        return out

    def make():
        return DataLoader(Numbers(12), batch_size=4, shuffle=True, seed=7, transform=jitter,
                          num_workers=num_workers)

    straight = epochs(make(), [0, 1, 2])
    assert epochs(make(), [2]) == straight[2:]
    assert epochs(make(), [1, 2]) == straight[1:]
    assert straight[0] != straight[1] != straight[2]
    for batches in straight:
        assert sorted(y for ys, _ in batches for y in ys) == list(range(12))
    with pytest.raises(ValueError, match="set_epoch"):
        make().set_epoch(-1)


def test_collate_explains_mismatches():
    with pytest.raises(ValueError, match="different keys"):
        collate([{"a": np.zeros(1)}, {"b": np.zeros(1)}])
    with pytest.raises(ValueError, match=r"'a'.*different shapes.*transform"):
        collate([{"a": np.zeros((2, 3))}, {"a": np.zeros((2, 4))}])


class Repeated(Dataset):
    """One scene, n times: any difference between its batches comes from augmentation."""

    def __init__(self, n):
        self.n, self.scene = n, SyntheticScenes(1, size=16, seed=2)[0]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.scene


def test_workers_give_the_same_order_and_augment_reproducibly():
    in_main = DataLoader(Numbers(10), batch_size=3, shuffle=True, seed=2)
    with_workers = DataLoader(Numbers(10), batch_size=3, shuffle=True, seed=2, num_workers=2)
    assert [order(with_workers), order(with_workers)] == [order(in_main), order(in_main)]
    aug = T.Compose([T.RandomHorizontalFlip(), T.ColorJitter(0.5, 0.5, 0.5)])

    def images(seed):
        loader = DataLoader(Repeated(4), batch_size=2, seed=seed, transform=aug, num_workers=2)
        return [b["image"].numpy() for b in loader]

    first = images(3)
    for a, b in zip(first, images(3)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1]), "both workers drew the same augmentation"
    assert not np.array_equal(first[0], images(4)[0])


def test_datasets_are_torch_style_datasets():
    from tinypix.utils.data import random_split
    scenes = SyntheticScenes(5, size=8, seed=0)
    train, val = random_split(scenes, [3, 2], generator=np.random.default_rng(0))
    batch = next(iter(DataLoader(train, batch_size=3)))
    assert batch["image"].shape == (3, 3, 8, 8) and len(val) == 2
    assert len(scenes + Numbers(2)) == 7
