"""tinypix.save / tinypix.load: safetensors and tinypix checkpoints, exact round trips, interop with
the safetensors library and PyTorch, map_location, file modes, atomic writes, no pickles."""
import io
import json
import os
import pickle
import re
import stat
import tempfile
import zipfile

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinypix
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix import optim, serialization

DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]
PLAIN = re.compile(r"[A-Za-z0-9_.\-]+")


def _assert_same_bits(a, b):
    a = a.detach().numpy() if isinstance(a, tinypix.Tensor) else a
    b = b.detach().numpy() if isinstance(b, tinypix.Tensor) else b
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def _net():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1))


def _trained():
    tinypix.manual_seed(0)
    net = _net()
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3, decoupled_weight_decay=True)
    x, y = tinypix.randn(2, 2, 4, 4), tinypix.randint(0, 2, (2, 4, 4))
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net, opt, (x, y)


@st.composite
def state_dicts(draw):
    """name -> Tensor of any dtype, 0-d to 4-d, empty or not, some of them strided views; names
    plain and not (spaces, '/', non-ASCII)."""
    names = draw(st.lists(st.text("ab09._-/ é", min_size=1, max_size=8), max_size=5, unique=True))
    sd = {}
    for name in names:
        a = draw(hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                                       max_side=4)))
        sd[name] = tinypix.from_numpy(a[..., ::-1] if a.ndim and draw(st.booleans()) else a)
    return sd


@given(state_dicts(), st.sampled_from([".safetensors", ".npz", ".pt"]))
def test_state_dicts_round_trip_bit_exactly_in_both_formats(sd, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "weights" + suffix)
        tinypix.save(sd, path)
        back = tinypix.load(path)
        assert sorted(back) == sorted(sd) and all(isinstance(v, tinypix.Tensor) for v in back.values())
        for k, v in sd.items():
            _assert_same_bits(back[k], v)
        if suffix == ".safetensors":  # readable without tinypix
            assert list(back) == sorted(sd)
            theirs = safetensors.numpy.load_file(path)
            assert sorted(theirs) == sorted(sd)
            for k, v in sd.items():
                _assert_same_bits(theirs[k], v)
        else:  # np.load lists the arrays by name where the name is plain
            assert list(back) == list(sd)
            with np.load(path, allow_pickle=False) as z:
                for k, v in sd.items():
                    if PLAIN.fullmatch(k) and k not in (".", ".."):
                        _assert_same_bits(z[k], v)


def test_nested_structures_round_trip_bit_exactly(tmp_path):
    special = np.array([np.nan, -0.0, np.inf, 1e-310, 1 / 3], dtype=np.float64)
    obj = {"tensor": tinypix.tensor(special), "f16": np.arange(5, dtype=np.float16) / 7,
           "labels": tinypix.tensor([[1, 2], [3, 4]]), "mask": np.array([True, False]),
           "scalar": np.float32(0.1), "nums": [1, 2.5, -0.0, float("nan"), True, None, "text", 2 ** 70],
           "tuple": (1, (2, "x")), 3: "int key", "empty": {}, "names": np.array(["a", "bc"]),
           "big_endian": np.arange(3, dtype=">f4"), "file": tinypix.ones(1)}  # "file": np.savez's keyword
    path = tmp_path / "all.npz"
    tinypix.save(obj, path)
    back = tinypix.load(path)
    assert isinstance(back["tensor"], tinypix.Tensor) and isinstance(back["f16"], np.ndarray)
    for key in ("tensor", "f16", "labels", "mask", "names", "big_endian", "file"):
        _assert_same_bits(back[key], obj[key])
    assert type(back["scalar"]) is np.float32 and back["scalar"] == obj["scalar"]
    nums = back["nums"]
    assert nums[:3] == [1, 2.5, 0.0] and str(nums[2]) == "-0.0" and np.isnan(nums[3])
    assert nums[4:] == [True, None, "text", 2 ** 70] and nums[4] is True
    assert back["tuple"] == (1, (2, "x")) and back[3] == "int key" and back["empty"] == {}


def test_model_and_optimizer_state_round_trip_and_resume_identically(tmp_path):
    net, opt, (x, y) = _trained()
    path = tmp_path / "ckpt.pt"
    tinypix.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, path)
    with np.load(path, allow_pickle=False) as z:  # the layers by name
        assert {"model/0.weight", "model/1.running_var", "optimizer/state/0/momentum_buffer"} <= set(z.files)
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
    net2 = _net()
    opt2 = optim.SGD(net2.parameters(), lr=0.5)
    net2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    for model, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        F.cross_entropy(model(x), y).backward()
        o.step()
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values()):
        _assert_same_bits(a, b)


def test_files_in_the_old_format_still_load(tmp_path):
    """Before arrays were named, tinypix.save wrote them as a0, a1, ..."""
    root = {"type": "dict", "items": [["w", {"type": "tensor", "name": "a0"}],
                                      ["n", {"type": "array", "name": "a1"}], ["epoch", 3]]}
    text = json.dumps({"format": "tinypix-checkpoint", "version": 1, "root": root}).encode()
    np.savez(tmp_path / "old.npz", a0=np.arange(4, dtype=np.float32), a1=np.eye(2),
             __tinypix__=np.frombuffer(text, dtype=np.uint8))
    back = tinypix.load(tmp_path / "old.npz")
    assert isinstance(back["w"], tinypix.Tensor) and back["w"].tolist() == [0, 1, 2, 3]
    assert isinstance(back["n"], np.ndarray) and back["n"].tolist() == [[1, 0], [0, 1]]
    assert back["epoch"] == 3


def test_safetensors_and_npz_files_from_other_libraries_load_as_tensors(tmp_path):
    arrays = {"conv.weight": np.random.default_rng(0).standard_normal((3, 2, 3, 3)).astype(np.float32),
              "steps": np.array(7, dtype=np.int64), "mask": np.array([True, False])}
    safetensors.numpy.save_file(arrays, str(tmp_path / "theirs.safetensors"))
    np.savez(tmp_path / "theirs.npz", **arrays)
    for name in ("theirs.safetensors", "theirs.npz"):
        back = tinypix.load(tmp_path / name)
        assert sorted(back) == sorted(arrays)
        for k, v in arrays.items():
            assert isinstance(back[k], tinypix.Tensor)
            _assert_same_bits(back[k], v)
    back["conv.weight"].data[0, 0, 0, 0] = 5.0  # the arrays are the tensors' own, writable


def test_pytorch_weights_travel_both_ways_through_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    def torch_net():
        return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3),
                                   torch.nn.ReLU(), torch.nn.Conv2d(3, 2, 1)).double()
    torch.manual_seed(0)
    theirs = torch_net()
    theirs(torch.randn(4, 2, 5, 5, dtype=torch.float64))  # running statistics that are not the defaults
    theirs.eval()
    save_file(theirs.state_dict(), str(tmp_path / "theirs.safetensors"))
    ours = _net().double()
    ours.load_state_dict(tinypix.load(tmp_path / "theirs.safetensors"))
    ours.eval()
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(tinypix.tensor(x)).detach().numpy(), expected, rtol=1e-12, atol=1e-12)

    net, _, _ = _trained()  # and back: a tinypix state_dict loads into PyTorch
    tinypix.save(net.state_dict(), tmp_path / "ours.safetensors")
    theirs = torch_net().float()
    theirs.load_state_dict(load_file(str(tmp_path / "ours.safetensors")))
    net.eval(), theirs.eval()
    np.testing.assert_allclose(theirs(torch.from_numpy(x).float()).detach().numpy(),
                               net(tinypix.tensor(x, dtype=tinypix.float32)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)

    save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, str(tmp_path / "bf16.safetensors"))
    with pytest.raises(ValueError, match=r"'w' has dtype BF16, which NumPy .* has no type for.*v\.float\(\)"):
        tinypix.load(tmp_path / "bf16.safetensors")


def test_safetensors_takes_only_a_flat_dict_of_arrays(tmp_path):
    path = tmp_path / "w.safetensors"
    for obj, problem in (({"model": {"w": tinypix.ones(1)}}, "'model' holds a value of type dict"),
                         ([tinypix.ones(1)], "but got list"),
                         ({"epoch": 3}, "'epoch' holds a value of type int"),
                         ({1: tinypix.ones(1)}, "got the key 1"),
                         ({"__metadata__": tinypix.ones(1)}, "got the key '__metadata__'")):
        with pytest.raises(TypeError, match=rf"{problem}.*\.pt or \.npz checkpoint"):
            tinypix.save(obj, path)
    for bad in (np.array(["a"]), np.array([None]), np.ones(2, dtype=np.complex128)):
        with pytest.raises(TypeError, match="which safetensors cannot store"):
            tinypix.save({"x": bad}, path)
    assert os.listdir(tmp_path) == []  # checked before any file was made


def test_map_location(tmp_path):
    path = tmp_path / "ckpt.pt"
    tinypix.save({"w": tinypix.arange(3.0), "n": np.ones(2), "nest": [tinypix.ones(1)]}, path)
    for where in (None, "cpu", {"cuda:0": "cpu"}, {"cpu": "cpu"}, lambda t, location: None):
        back = tinypix.load(path, map_location=where)
        assert back["w"].device == "cpu" and back["w"].tolist() == [0, 1, 2]
    seen = []
    back = tinypix.load(path, map_location=lambda t, location: seen.append(location) or t.double())
    assert seen == ["cpu", "cpu"]  # Tensors only, not the NumPy array
    assert back["w"].dtype == np.float64 and back["nest"][0].dtype == np.float64
    assert isinstance(back["n"], np.ndarray)
    with pytest.raises(TypeError, match="map_location returned a list"):
        tinypix.load(path, map_location=lambda t, location: [t])
    with pytest.raises(ValueError, match="map_location: unknown device 'tpu'"):
        tinypix.load(path, map_location="tpu")
    for weights_only in (True, False):  # never unpickles either way
        assert tinypix.load(path, weights_only=weights_only)["w"].tolist() == [0, 1, 2]
    if tinypix.is_cuda_available():
        back = tinypix.load(path, map_location="cuda")
        assert back["w"].device == back["nest"][0].device == "cuda" and isinstance(back["n"], np.ndarray)
        assert tinypix.load(path, map_location={"cpu": "cuda:0"})["w"].device == "cuda"
    else:
        with pytest.raises(RuntimeError, match="device 'cuda' needs"):
            tinypix.load(path, map_location="cuda")


def test_file_objects_in_binary_mode(tmp_path):
    net, _, _ = _trained()
    buffer = io.BytesIO()
    tinypix.save({"model": net.state_dict(), "epoch": 1}, buffer)
    buffer.seek(0)
    back = tinypix.load(buffer)
    assert back["epoch"] == 1 and sorted(back["model"]) == sorted(net.state_dict())

    class Stream:  # readable, not seekable, like a pipe
        def __init__(self, data):
            self.read = io.BytesIO(data).read
    assert tinypix.load(Stream(buffer.getvalue()))["epoch"] == 1
    with open(tmp_path / "w.safetensors", "wb") as f:  # the file's name picks the format
        tinypix.save(net.state_dict(), f)
    assert sorted(safetensors.numpy.load_file(str(tmp_path / "w.safetensors"))) == sorted(net.state_dict())
    with open(tmp_path / "w.safetensors", "rb") as f:
        _assert_same_bits(tinypix.load(f)["0.weight"], net.state_dict()["0.weight"])
    with open(tmp_path / "text", "w") as f, pytest.raises(TypeError, match="binary mode"):
        tinypix.save({}, f)


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX's")
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("from_proc", [True, False])
def test_files_get_the_mode_open_would_give_them(tmp_path, monkeypatch, suffix, from_proc):
    if not from_proc:  # where /proc does not show the umask, it is read by setting it back at once
        monkeypatch.setattr(serialization, "PROC_STATUS", str(tmp_path / "missing"))
    old = os.umask(0o027)
    try:
        tinypix.save({"w": tinypix.ones(1)}, tmp_path / f"a{suffix}")
        assert os.umask(0o002) == 0o027  # saving left the umask as it was
        tinypix.save({"w": tinypix.ones(1)}, tmp_path / f"b{suffix}")
        assert os.umask(old) == 0o002
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / f"a{suffix}").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / f"b{suffix}").st_mode) == 0o664


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_a_crash_mid_save_keeps_the_previous_file(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"ckpt{suffix}"
    tinypix.save({"w": tinypix.ones(4)}, path)
    before = path.read_bytes()

    def crash(fd):  # the new bytes reached the temporary file; the process dies before the rename
        raise KeyboardInterrupt("simulated crash")
    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        tinypix.save({"w": tinypix.zeros(4)}, path)
    monkeypatch.undo()
    if suffix == ".npz":
        def half_written(file, array, **kwargs):
            file.write(b"\x93NUMPY half an array")
            raise KeyboardInterrupt("simulated crash")
        monkeypatch.setattr(np.lib.format, "write_array", half_written)
        with pytest.raises(KeyboardInterrupt):
            tinypix.save({"w": tinypix.zeros(4)}, path)
        monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left behind
    assert tinypix.load(path)["w"].tolist() == [1.0] * 4


def test_saving_through_a_symlink_replaces_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target, link = tmp_path / "real" / "w.pt", tmp_path / "w.pt"
    link.symlink_to(target)
    tinypix.save({"w": tinypix.ones(2)}, link)
    assert link.is_symlink() and tinypix.load(target)["w"].tolist() == [1.0, 1.0]


class Payload:
    """Unpickling this creates a file: proof that code ran."""
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_pickles_are_refused_and_never_run(tmp_path):
    marker = str(tmp_path / "code-ran")
    with open(tmp_path / "pickle.pkl", "wb") as f:
        pickle.dump({"w": Payload(marker)}, f)
    np.save(tmp_path / "objects.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "objects.npz", w=np.array([Payload(marker)], dtype=object))
    files = {"pickle.pkl": "it is a pickle", "objects.npy": "object arrays", "objects.npz": "object arrays"}
    try:
        import torch
    except ImportError:  # the other formats are still tested
        torch = None
    if torch is not None:
        torch.save({"w": torch.ones(2), "p": Payload(marker)}, tmp_path / "torch.pt")
        torch.save({"w": torch.ones(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
        files.update({"torch.pt": "written by torch.save", "legacy.pt": "it is a pickle"})
    for name, what in files.items():
        for weights_only in (True, False):
            with pytest.raises(ValueError, match=rf"{what}.*never does.*safetensors") as err:
                tinypix.load(tmp_path / name, weights_only=weights_only)
            assert str(tmp_path / name) in str(err.value)
    assert not os.path.exists(marker)
    with open(tmp_path / "pickle.pkl", "rb") as f:
        pickle.load(f)  # the payload is live: unpickling does run it
    assert os.path.exists(marker)


def test_truncated_garbage_and_single_arrays_fail_cleanly(tmp_path):
    net, _, _ = _trained()
    for suffix in (".npz", ".safetensors"):
        tinypix.save(net.state_dict(), tmp_path / f"good{suffix}")
        data = (tmp_path / f"good{suffix}").read_bytes()
        (tmp_path / f"truncated{suffix}").write_bytes(data[: len(data) // 2])
        (tmp_path / f"tail_cut{suffix}").write_bytes(data[:-30])
    (tmp_path / "garbage.npz").write_bytes(b"\x00hello" * 50)
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "single.npy", np.ones(3))
    np.savez(tmp_path / "strings.npz", names=np.array(["a"]))
    for name in sorted(os.listdir(tmp_path)):
        if name.startswith("good"):
            continue
        path = str(tmp_path / name)
        with pytest.raises(ValueError, match="is not a readable tinypix checkpoint") as err:
            tinypix.load(path)
        assert path in str(err.value)
    with pytest.raises(ValueError, match=r"single array written by np\.save.*from_numpy"):
        tinypix.load(tmp_path / "single.npy")
    with pytest.raises(ValueError, match="'names' has dtype <U1, which a tensor cannot hold"):
        tinypix.load(tmp_path / "strings.npz")
    with pytest.raises(FileNotFoundError):
        tinypix.load(tmp_path / "missing.npz")


def test_checkpoints_are_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "plain.npz"
    tinypix.save({"w": tinypix.ones(2)}, path)
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"w", "__tinypix__"}
    assert zipfile.is_zipfile(path)
    with pytest.raises(TypeError, match=r"type object at obj\['bad'\]\[1\]"):
        tinypix.save({"bad": [1, object()]}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dtype object"):
        tinypix.save({"bad": np.array([None, 1])}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"Sequential at obj; .*save its \.state_dict\(\) instead"):
        tinypix.save(_net(), tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
