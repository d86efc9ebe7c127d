"""tinypix.save / tinypix.load: exact round trips, clean failures, atomic writes."""
import os
import zipfile

import numpy as np
import pytest

import tinypix
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix import optim


def _assert_same_bits(a, b):
    a = a.detach().numpy() if isinstance(a, tinypix.Tensor) else a
    b = b.detach().numpy() if isinstance(b, tinypix.Tensor) else b
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def _trained():
    tinypix.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3, decoupled_weight_decay=True)
    x, y = tinypix.randn(2, 2, 4, 4), tinypix.randint(0, 2, (2, 4, 4))
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net, opt, (x, y)


def test_nested_structures_round_trip_bit_exactly(tmp_path):
    special = np.array([np.nan, -0.0, np.inf, 1e-310, 1 / 3], dtype=np.float64)
    obj = {"tensor": tinypix.tensor(special), "f16": np.arange(5, dtype=np.float16) / 7,
           "labels": tinypix.tensor([[1, 2], [3, 4]]), "mask": np.array([True, False]),
           "scalar": np.float32(0.1), "nums": [1, 2.5, -0.0, float("nan"), True, None, "text", 2 ** 70],
           "tuple": (1, (2, "x")), 3: "int key", "empty": {}, "names": np.array(["a", "bc"])}
    path = tmp_path / "all.npz"
    tinypix.save(obj, path)
    back = tinypix.load(path)
    assert isinstance(back["tensor"], tinypix.Tensor) and isinstance(back["f16"], np.ndarray)
    for key in ("tensor", "f16", "labels", "mask", "names"):
        _assert_same_bits(back[key], obj[key])
    assert type(back["scalar"]) is np.float32 and back["scalar"] == obj["scalar"]
    nums = back["nums"]
    assert nums[:3] == [1, 2.5, 0.0] and str(nums[2]) == "-0.0" and np.isnan(nums[3])
    assert nums[4:] == [True, None, "text", 2 ** 70] and nums[4] is True
    assert back["tuple"] == (1, (2, "x")) and back[3] == "int key" and back["empty"] == {}


def test_model_and_optimizer_state_round_trip_and_resume_identically(tmp_path):
    net, opt, (x, y) = _trained()
    path = tmp_path / "ckpt.npz"
    tinypix.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, path)
    ckpt = tinypix.load(path)
    assert ckpt["epoch"] == 2
    for k, v in net.state_dict().items():
        _assert_same_bits(ckpt["model"][k], v)
    saved_state = opt.state_dict()
    for i, s in saved_state["state"].items():
        _assert_same_bits(ckpt["optimizer"]["state"][i]["momentum_buffer"], s["momentum_buffer"])
    assert ckpt["optimizer"]["param_groups"] == saved_state["param_groups"]

    # Resume in a fresh model and optimizer: the next step is bit-identical.
    tinypix.manual_seed(1)
    net2 = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    opt2 = optim.SGD(net2.parameters(), lr=0.5)
    net2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    for model, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        F.cross_entropy(model(x), y).backward()
        o.step()
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values()):
        _assert_same_bits(a, b)


def test_truncated_garbage_and_foreign_files_fail_cleanly(tmp_path):
    net, _, _ = _trained()
    good = tmp_path / "good.npz"
    tinypix.save(net.state_dict(), good)
    data = good.read_bytes()
    cases = {"truncated.npz": data[: len(data) // 2], "tail_cut.npz": data[:-30],
             "garbage.npz": b"\x00hello" * 50, "empty.npz": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "foreign.npz", a=np.ones(3))
    np.save(tmp_path / "single.npy", np.ones(3))
    for name in list(cases) + ["foreign.npz", "single.npy"]:
        path = str(tmp_path / name)
        with pytest.raises(ValueError, match="is not a readable tinypix checkpoint") as err:
            tinypix.load(path)
        assert path in str(err.value)
    with pytest.raises(FileNotFoundError):
        tinypix.load(tmp_path / "missing.npz")


def test_a_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tinypix.save({"w": tinypix.ones(4)}, path)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")  # some bytes reach the disk, then the process dies
        raise KeyboardInterrupt("simulated crash")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        tinypix.save({"w": tinypix.zeros(4)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]  # no temporary file left behind
    assert tinypix.load(path)["w"].tolist() == [1.0] * 4


def test_files_are_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "plain.npz"
    tinypix.save({"w": tinypix.ones(2)}, path)
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"a0", "__tinypix__"}
    assert zipfile.is_zipfile(path)
    with pytest.raises(TypeError, match=r"type object at obj\['bad'\]\[1\]"):
        tinypix.save({"bad": [1, object()]}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dtype object"):
        tinypix.save({"bad": np.array([None, 1])}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
