"""Checkpoints: ``tinypix.save(obj, path)`` and ``tinypix.load(path)``.

``obj`` is a nest of dicts, lists and tuples holding Tensors, NumPy arrays, numbers, strings,
bools and None -- e.g. ``{"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}``.
The file is one NumPy ``.npz`` archive without pickles (any ``np.load(path)`` can open it and
nothing in it can run code): every array is stored under a name ``a0, a1, ...`` and the shape of
the nest is JSON text kept as a uint8 array under ``__tinypix__``.

Saving writes a temporary file next to ``path`` and renames it over ``path`` only when it is
complete, so a crash mid-save leaves the previous checkpoint intact.
"""
import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from .backend import to_device
from .tensor import Tensor

MARKER = "__tinypix__"
FORMAT = "tinypix-checkpoint"
VERSION = 1


def _encode(obj, arrays, where):
    """A JSON-able description of ``obj``; arrays are appended to ``arrays`` and referenced by name."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (Tensor, np.ndarray, np.generic)) or hasattr(obj, "__cuda_array_interface__"):
        kind = "tensor" if isinstance(obj, Tensor) else "scalar" if isinstance(obj, np.generic) else "array"
        array = np.asarray(to_device(obj.data if isinstance(obj, Tensor) else obj, "cpu"))
        if array.dtype.hasobject:
            raise TypeError(f"save: the array at {where} has dtype object, which cannot be stored "
                            "without pickle; convert it to a numeric dtype")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {"type": kind, "name": name}
    if isinstance(obj, (int, float)):  # after np.generic: np.float64 is a float subclass
        return obj
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: dict keys must be str or int, got {type(k).__name__} at {where}")
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"type": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"type": "tuple" if isinstance(obj, tuple) else "list",  # namedtuples become tuples
                "items": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} at {where}; a "
                    "checkpoint holds dicts, lists, tuples, Tensors, arrays, numbers, str and None")


def _decode(desc, archive):
    if not isinstance(desc, dict):
        return desc
    kind = desc["type"]
    if kind == "dict":
        return {k: _decode(v, archive) for k, v in desc["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(v, archive) for v in desc["items"]]
        return items if kind == "list" else tuple(items)
    array = archive[desc["name"]]
    if kind == "tensor":
        return Tensor._wrap(array)
    return array[()] if kind == "scalar" else array


def save(obj, path):
    """Write ``obj`` to ``path`` (exactly that name; ``.npz`` is the convention) atomically."""
    arrays = {}
    structure = {"format": FORMAT, "version": VERSION, "root": _encode(obj, arrays, "obj")}
    arrays[MARKER] = np.frombuffer(json.dumps(structure).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the checkpoint
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load(path):
    """Read a checkpoint written by :func:`save`. Tensors come back as CPU tinypix Tensors,
    arrays as arrays, bit for bit. A file that is not a complete tinypix checkpoint raises
    ValueError naming the path."""
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an archive written by tinypix.save")
        with archive:
            if MARKER not in archive.files:
                raise ValueError(f"no '{MARKER}' entry: it was not written by tinypix.save")
            structure = json.loads(archive[MARKER].tobytes().decode("utf-8"))
            if structure.get("format") != FORMAT:
                raise ValueError(f"unknown format {structure.get('format')!r}")
            if structure.get("version", 0) > VERSION:
                raise ValueError(f"format version {structure['version']} is newer than this tinypix "
                                 f"reads ({VERSION}); upgrade tinypix")
            # Read every entry now: a truncated or corrupted member fails here, not later.
            return _decode(structure["root"], {name: archive[name] for name in archive.files})
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"load: {path!r} is not a readable tinypix checkpoint ({e})") from e
