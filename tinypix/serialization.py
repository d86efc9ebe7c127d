"""Checkpoints and weights: ``tinypix.save(obj, f)`` and ``tinypix.load(f)``.

Two formats, neither of them a pickle, so loading a file never runs code from it:

* ``*.safetensors`` -- the field's format for weights (Hugging Face's safetensors). ``obj`` must be
  a flat dict of name -> Tensor/array, e.g. ``net.state_dict()``; the file is readable without
  tinypix (``safetensors.numpy.load_file``, ``safetensors.torch.load_file``, ...).
* anything else (``.pt``, ``.pth``, ``.npz``, ...) -- a tinypix checkpoint: a NumPy ``.npz`` archive
  holding a nest of dicts, lists and tuples of Tensors, NumPy arrays, numbers, strings, bools and
  None, e.g. ``{"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}``. Each array
  is stored under its place in the nest (``model/encoders.0.0.weight``, ``optimizer/state/0/
  momentum_buffer``) where that path is plain (letters, digits, ``_ . -``), else under ``#<n>``;
  the shape of the nest is JSON text kept as a uint8 array under ``__tinypix__``. ``np.load``
  opens it and lists the layers by name.

``load`` tells the formats apart by content, not name, and also reads plain ``np.savez`` archives
of named arrays and tinypix checkpoints written before arrays were named (``a0, a1, ...``). It
refuses pickles -- ``torch.save`` files, ``pickle.dump`` files, object arrays in ``.npy``/``.npz``
-- with a message saying how to export weights to safetensors instead.

Saving to a path writes a temporary file next to it and renames it over the path only when it is
complete, so a crash mid-save leaves the previous file intact; the file gets the mode ``open()``
would give it (0o666 less the process's umask).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import threading
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np
import safetensors
import safetensors.numpy

from .backend import module_for, normalize_device, to_device
from .tensor import Tensor

if TYPE_CHECKING:
    from .typing import FileLike, MapLocation

MARKER = "__tinypix__"
FORMAT = "tinypix-checkpoint"
VERSION = 1  # array names are free-form references, so named files read in older tinypix too
PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]+")

# safetensors' dtype codes that NumPy has a type for (bfloat16 and the float8s it has not)
SAFETENSORS_DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
                      "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64,
                      "F16": np.float16, "F32": np.float32, "F64": np.float64, "C64": np.complex64}
SAVABLE = {np.dtype(t) for t in SAFETENSORS_DTYPES.values()}
EXPORT_HINT = ("export the weights from PyTorch as safetensors instead: `from safetensors.torch import "
               "save_file; save_file(model.state_dict(), 'model.safetensors')`, then "
               "`tinypix.load('model.safetensors')`")

PROC_STATUS = "/proc/self/status"
_umask_lock = threading.Lock()


# -- saving --------------------------------------------------------------------------------------
def save(obj: object, f: FileLike) -> None:
    """Write ``obj`` to ``f``: a path (atomically) or a file object opened in binary mode ('wb').

    The format follows the name (of the path, or the file object's ``name``): ``*.safetensors``
    takes a flat dict of str -> Tensor/array (a state_dict); any other name gets a tinypix
    checkpoint, which takes nests. See the module docstring.
    """
    is_path = isinstance(f, (str, bytes, os.PathLike))
    if is_path:
        name = os.fsdecode(os.fspath(f))
    elif hasattr(f, "write"):
        if isinstance(f, io.TextIOBase):
            raise TypeError("save: the file is open in text mode; open it in binary mode, "
                            "e.g. open(path, 'wb')")
        name = getattr(f, "name", None)
    else:
        raise TypeError(f"save: f must be a path or a binary file object, got {type(f).__name__}")
    # Everything is checked and encoded before a file is touched: a bad obj leaves no trace.
    if isinstance(name, str) and name.lower().endswith(".safetensors"):
        data = _safetensors_bytes(obj, name)

        def write(file):
            file.write(data)
    else:
        write = _checkpoint_writer(obj)
    if is_path:
        _write_atomically(name, write)
    else:
        write(f)


def _safetensors_bytes(obj, name):
    """The bytes of a safetensors file holding the flat dict ``obj`` of name -> Tensor/array."""
    nest_hint = "save nests (optimizer state, config, epoch, ...) to a .pt or .npz checkpoint instead"
    if not isinstance(obj, dict):
        raise TypeError(f"save: {name!r} is a .safetensors file, which holds a flat dict of name -> "
                        f"Tensor (a state_dict), but got {type(obj).__name__}; {nest_hint}")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str) or key == "__metadata__":
            raise TypeError(f"save: {name!r} is a .safetensors file, whose names are strings other than "
                            f"'__metadata__', but got the key {key!r}; {nest_hint}")
        if not (isinstance(value, (Tensor, np.ndarray)) or hasattr(value, "__cuda_array_interface__")):
            raise TypeError(f"save: {name!r} is a .safetensors file, which holds only Tensors and arrays, "
                            f"but {key!r} holds a value of type {type(value).__name__}; {nest_hint}")
        array = _host_array(value)
        if array.dtype.newbyteorder("=") not in SAVABLE:
            raise TypeError(f"save: {key!r} has dtype {array.dtype}, which safetensors cannot store; "
                            f"convert it (e.g. x.float()) or save to a .pt/.npz checkpoint")
        # safetensors copies raw memory: one contiguous block, little-endian as the format is
        arrays[key] = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")
    # "pt": the names and weight layouts are PyTorch's, which is what loaders checking this expect
    return safetensors.numpy.save(arrays, metadata={"format": "pt"})


def _host_array(value):
    """A NumPy array holding the values of a Tensor or a NumPy/CuPy array."""
    return np.asarray(to_device(value.data if isinstance(value, Tensor) else value, "cpu"))


def _checkpoint_writer(obj):
    """A function that writes ``obj`` as a tinypix checkpoint to a binary file object."""
    arrays = {}
    structure = {"format": FORMAT, "version": VERSION, "root": _encode(obj, arrays, "obj", ())}
    arrays[MARKER] = np.frombuffer(json.dumps(structure).encode("utf-8"), dtype=np.uint8)

    def write(file):
        # np.savez's layout (one .npy per array in an uncompressed zip), written here so that names
        # such as "file" cannot clash with its keyword arguments, and with pickles refused
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in arrays.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
    return write


def _encode(obj, arrays, where, path):
    """A JSON-able description of ``obj``; arrays go into ``arrays``, named after their ``path``
    (the keys leading to them) where that is plain, and are referenced by that name."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (Tensor, np.ndarray, np.generic)) or hasattr(obj, "__cuda_array_interface__"):
        kind = "tensor" if isinstance(obj, Tensor) else "scalar" if isinstance(obj, np.generic) else "array"
        array = _host_array(obj)
        if array.dtype.hasobject:
            raise TypeError(f"save: the array at {where} has dtype object, which cannot be stored "
                            "without pickle; convert it to a numeric dtype")
        name = "/".join(path) if path and None not in path else None
        if name is None or name in arrays or name == MARKER:
            name = f"#{len(arrays)}"  # '#' is never in a plain path, so this cannot clash
        arrays[name] = array
        return {"type": kind, "name": name}
    if isinstance(obj, (int, float)):  # after np.generic: np.float64 is a float subclass
        return obj
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: dict keys must be str or int, got {type(k).__name__} at {where}")
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]", path + (_plain(k),))])
        return {"type": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"type": "tuple" if isinstance(obj, tuple) else "list",  # namedtuples become tuples
                "items": [_encode(v, arrays, f"{where}[{i}]", path + (str(i),)) for i, v in enumerate(obj)]}
    hint = "; save its .state_dict() instead" if hasattr(obj, "state_dict") else ""
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} at {where}; a checkpoint "
                    f"holds dicts, lists, tuples, Tensors, arrays, numbers, str and None{hint}")


def _plain(key):
    """``key`` as one segment of an array's name, or None when it would not read plainly."""
    key = str(key)
    return key if PLAIN_NAME.fullmatch(key) and key not in (".", "..") else None


def _write_atomically(path, write):
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path = os.path.realpath(path)  # through a symlink: replace the file it names, keep the link
    directory, base = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the file
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it 0600; give it the mode open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask():
    """The process's umask. Linux shows it in /proc; elsewhere os.umask reads it only by setting
    it, which changes it for every thread, so it is set straight back under a lock (to 0o077
    meanwhile: a file another thread makes in that instant is private, not world-writable)."""
    try:
        with open(PROC_STATUS) as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


# -- loading -------------------------------------------------------------------------------------
def load(f: FileLike, map_location: MapLocation = None, *, weights_only: bool | None = None) -> Any:
    """Read a safetensors file, a tinypix checkpoint or a plain ``np.savez`` archive.

    Args:
        f: a path, or a file object opened in binary mode (read from its current position).
        map_location: where Tensors go (NumPy arrays in a checkpoint stay NumPy arrays). None or
            'cpu': the CPU. 'cuda', 'cuda:0' (or a ``torch.device`` of those): the GPU. A dict maps
            saved locations to targets; files hold host memory, so the saved location is always
            'cpu' and only ``{'cpu': target}`` has an effect. A callable is called as
            ``map_location(tensor, 'cpu')`` with each loaded CPU Tensor and returns a Tensor, or
            None to keep that one.
        weights_only: accepted for PyTorch's signature, True or False alike: tinypix never
            unpickles, so only tensors, arrays and plain data are ever loaded.

    Returns:
        A safetensors file or an ``np.savez`` archive: a dict name -> Tensor (safetensors' names
        sorted). A checkpoint: the nest that was saved, Tensors as Tensors and arrays as arrays,
        bit for bit.

    Raises ValueError naming the file when it is not in one of these formats, is damaged, or
    holds pickles.
    """
    place = _placement(map_location)  # checked before the file is read
    if isinstance(f, (str, bytes, os.PathLike)):
        name = os.fsdecode(os.fspath(f))
        with open(name, "rb") as file:  # a missing file raises FileNotFoundError as it is
            obj = _read_or_explain(file, name)
    elif hasattr(f, "read"):
        if isinstance(f, io.TextIOBase):
            raise TypeError("load: the file is open in text mode; open it in binary mode, "
                            "e.g. open(path, 'rb')")
        name = getattr(f, "name", None) or f"<{type(f).__name__}>"
        obj = _read_or_explain(f if _seekable(f) else io.BytesIO(f.read()), name)
    else:
        raise TypeError(f"load: f must be a path or a binary file object, got {type(f).__name__}")
    return obj if place is None else _placed(obj, place)


def _seekable(f):
    return callable(getattr(f, "seekable", None)) and f.seekable()


def _read_or_explain(file, name):
    try:
        return _read(file)
    except (OSError, ValueError, TypeError, EOFError, KeyError, zipfile.BadZipFile,
            safetensors.SafetensorError) as e:
        raise ValueError(f"load: {name!r} is not a readable tinypix checkpoint ({e})") from e


def _read(file):
    """The contents of a seekable binary file, whose format is recognised by its first bytes."""
    start = file.tell()
    head = file.read(16)
    file.seek(start)
    if not head:
        raise ValueError("it is empty")
    if head.startswith(b"PK"):
        return _read_npz(file)
    if head.startswith(b"\x93NUMPY"):
        with _refusing_object_arrays():
            np.load(file, allow_pickle=False)
        raise ValueError("it holds a single array written by np.save, not a checkpoint; read it with "
                         "tinypix.from_numpy(np.load(path))")
    if head[0] == 0x80:  # the PROTO opcode that starts every pickle since protocol 2
        raise _pickle_refusal("it is a pickle (from pickle.dump, or torch.save's legacy format)")
    if head[8:9] == b"{":  # safetensors: the JSON header's length in 8 bytes, then the header
        return _read_safetensors(file.read())
    raise ValueError("it is neither a safetensors file nor a NumPy .npz archive")


def _read_npz(file):
    with np.load(file, allow_pickle=False) as archive:
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in archive.files):
            raise _pickle_refusal("it was written by torch.save, whose format is a pickle in a zip")
        # Read every entry now: a truncated or corrupted member fails here, not later.
        with _refusing_object_arrays():
            arrays = {name: archive[name] for name in archive.files}
    if MARKER not in arrays:
        for name, array in arrays.items():
            if array.dtype.kind not in "biufc":
                raise ValueError(f"it is a plain .npz archive, read as a dict of tensors, but its "
                                 f"array {name!r} has dtype {array.dtype}, which a tensor cannot hold; "
                                 "read it with np.load")
        return {name: Tensor._wrap(_native(array)) for name, array in arrays.items()}
    structure = json.loads(arrays[MARKER].tobytes().decode("utf-8"))
    if structure.get("format") != FORMAT:
        raise ValueError(f"unknown format {structure.get('format')!r}")
    if structure.get("version", 0) > VERSION:
        raise ValueError(f"format version {structure['version']} is newer than this tinypix reads "
                         f"({VERSION}); upgrade tinypix")
    return _decode(structure["root"], arrays)


def _pickle_refusal(what):
    return ValueError(f"{what}; unpickling can run arbitrary code, so tinypix never does; {EXPORT_HINT}")


@contextlib.contextmanager
def _refusing_object_arrays():
    """Turn NumPy's refusal of an object array (allow_pickle=False) into tinypix's."""
    try:
        yield
    except ValueError as e:
        if "pickle" not in str(e):
            raise
        raise _pickle_refusal("it holds object arrays, which NumPy stores as pickles") from e


def _decode(desc, arrays):
    if not isinstance(desc, dict):
        return desc
    kind = desc["type"]
    if kind == "dict":
        return {k: _decode(v, arrays) for k, v in desc["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays) for v in desc["items"]]
        return items if kind == "list" else tuple(items)
    array = arrays[desc["name"]]
    if kind == "tensor":
        return Tensor._wrap(_native(array))
    return array[()] if kind == "scalar" else array


def _read_safetensors(data):
    tensors = {}
    for name, view in sorted(safetensors.deserialize(data), key=lambda item: item[0]):
        dtype = SAFETENSORS_DTYPES.get(view["dtype"])
        if dtype is None:
            raise ValueError(f"its tensor {name!r} has dtype {view['dtype']}, which NumPy (and so tinypix) "
                             "has no type for; convert it before exporting, e.g. in PyTorch "
                             "{k: v.float() for k, v in state_dict.items()}")
        array = np.frombuffer(view["data"], dtype=np.dtype(dtype).newbyteorder("<"))
        if not array.flags.writeable:  # older safetensors hand out bytes rather than a bytearray
            array = array.copy()
        tensors[name] = Tensor._wrap(_native(array.reshape(view["shape"])))
    return tensors


def _native(array):
    """``array`` in this machine's byte order, as tinypix's tensors always are."""
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _placement(map_location):
    """A function that puts a loaded CPU Tensor where ``map_location`` says; None for the CPU."""
    if map_location is None:
        return None
    if isinstance(map_location, dict):
        targets = {str(k): v for k, v in map_location.items()}
        return _placement(targets["cpu"]) if "cpu" in targets else None
    if callable(map_location):
        def place(t):
            out = map_location(t, "cpu")
            if out is None:
                return t
            if not isinstance(out, Tensor):
                raise TypeError(f"load: map_location returned a {type(out).__name__}; it must return a "
                                "tinypix Tensor (e.g. `lambda t, loc: t.cuda()`) or None")
            return out
        return place
    try:
        device = normalize_device(map_location)  # a str, or a torch.device through its str()
    except ValueError as e:
        raise ValueError(f"load: map_location: {e}; or pass a dict or a callable") from None
    if device == "cpu":
        return None
    module_for(device)  # no GPU: fail now, before reading the file
    return lambda t: Tensor._wrap(to_device(t.data, device))


def _placed(obj, place):
    if isinstance(obj, Tensor):
        return place(obj)
    if isinstance(obj, dict):
        return {k: _placed(v, place) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_placed(v, place) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    return obj
