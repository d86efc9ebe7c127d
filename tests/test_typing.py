"""Editors and type checkers see the public API: every public function, method and property has
annotations for all its parameters and its result, and they resolve to real types.

The library's modules annotate with strings (``from __future__ import annotations``) and import
``tinypix.typing``'s aliases only for type checkers, so resolving here supplies those names.
"""
import importlib
import inspect
import pathlib
import typing

import pytest

import tinypix

MODULES = ["tinypix", "tinypix.functional", "tinypix.nn", "tinypix.nn.init", "tinypix.nn.utils",
           "tinypix.optim", "tinypix.optim.lr_scheduler", "tinypix.utils.data", "tinypix.metrics",
           "tinypix.testing", "tinypix.models", "tinypix.viz", "tinypix.distributed", "tinypix.nn.parallel"]
DUNDERS = {"__init__", "__call__", "__len__", "__getitem__", "__iter__"}


def public_names(module):
    names = getattr(module, "__all__", None)
    return names if names is not None else [n for n in vars(module) if not n.startswith("_")]


def members(cls):
    """The public functions and properties of a class and its tinypix bases, skipping autograd's
    forward/backward on raw arrays."""
    if issubclass(cls, tinypix.autograd.Function):
        return
    own = [vars(base) for base in cls.__mro__ if base.__module__.startswith("tinypix")]
    for name, value in [item for namespace in own for item in namespace.items()]:
        if name.startswith("_") and name not in DUNDERS:
            continue
        if isinstance(value, property):
            yield value.fget
        elif isinstance(value, (staticmethod, classmethod)):
            yield value.__func__
        elif inspect.isfunction(value):
            yield value


def api():
    """('module:qualified.name', function) for every public callable of the modules above, once each."""
    seen = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in public_names(module):
            obj = getattr(module, name)
            if not getattr(obj, "__module__", "").startswith("tinypix"):
                continue
            found = members(obj) if inspect.isclass(obj) else [obj] if inspect.isfunction(obj) else []
            for function in found:  # (matplotlib writes a `set` method into a Figure subclass)
                if function not in seen and function.__module__.startswith("tinypix"):
                    seen.add(function)
                    yield f"{function.__module__}:{function.__qualname__}", function


API = sorted(api(), key=lambda item: item[0])


def test_the_api_walked_is_the_real_one():
    names = {name for name, _ in API}
    for expected in ["tinypix.tensor_methods:TensorMethods.reshape", "tinypix.tensor:Tensor.backward", "tinypix.functional.conv:conv2d",
                     "tinypix.nn.conv:Conv2d.__init__", "tinypix.optim.sgd:SGD.step",
                     "tinypix.utils.data.dataloader:DataLoader.__init__", "tinypix.creation:zeros"]:
        assert expected in names
    assert len(API) > 300


@pytest.mark.parametrize("name, function", API, ids=[name for name, _ in API])
def test_public_callables_are_annotated(name, function):
    signature = inspect.signature(function)
    params = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
    missing = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    assert not missing, f"{name}: no annotation for {', '.join(missing)}"
    namespace = {**vars(importlib.import_module("tinypix.typing")), "Tensor": tinypix.Tensor,
                 "Module": tinypix.nn.Module, "RemovableHandle": tinypix.nn.hooks.RemovableHandle}
    typing.get_type_hints(function, globalns={**namespace, **inspect.unwrap(function).__globals__})


def test_py_typed_ships_with_the_package():
    assert (pathlib.Path(tinypix.__file__).parent / "py.typed").is_file()
