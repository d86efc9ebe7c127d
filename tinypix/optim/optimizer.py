"""The Optimizer base class: parameter groups, zero_grad, and state that can be saved.

Parameters are split into groups, each a dict with a "params" list and its own hyper-parameters
(missing ones come from the optimizer's defaults)::

    decay = [p for n, p in net.named_parameters() if n.endswith("weight") and p.ndim > 1]
    no_decay = [p for n, p in net.named_parameters() if not (n.endswith("weight") and p.ndim > 1)]
    opt = SGD([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=0.1,
              weight_decay=5e-4)

Updates run on the raw arrays (``p.data``, ``p.grad.data``) in place, with the array module of
each parameter, so the same code steps NumPy and CuPy parameters.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, Union

from ..backend import get_array_module, to_device
from ..tensor import Tensor

# What an optimizer takes as ``params``: Tensors (``model.parameters()``) or parameter-group dicts.
ParamsT = Union[Iterable[Tensor], Iterable[dict[str, Any]]]

# Marks a default that every group must set, e.g. SGD's lr; typed Any so that ``lr: float = _REQUIRED`` checks.
_REQUIRED: Any = object()


class Optimizer:
    """Base class: subclasses implement ``step()`` using ``self.param_groups`` and ``self.state``.

    ``state`` maps each parameter to a dict of arrays and numbers (momentum buffers, step counts).
    """

    defaults: dict[str, Any]
    param_groups: list[dict[str, Any]]
    state: dict[Tensor, dict[str, Any]]

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.param_groups = []
        self.state = {}
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list; pass "
                             "model.parameters() of a model that has parameters")
        for group in (params if isinstance(params[0], dict) else [{"params": params}]):
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a dict {"params": [...], hyper-parameter: value, ...} (e.g. when unfreezing layers)."""
        name = type(self).__name__
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (one computed from "
                                 "others); optimize the leaf parameters it was made from")
        for key, default in self.defaults.items():
            if default is _REQUIRED and key not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of required "
                                 f"hyper-parameter {key!r}")
            group.setdefault(key, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients before the next backward (they accumulate otherwise)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.grad is not None:
                yield p, p.data, p.grad.data, self.state.setdefault(p, {})

    # -- saving and resuming -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {name: Tensor or number}}, "param_groups": [{..., "params": [index]}]}.

        Parameters are named by their position across the groups, as in PyTorch, so the dict can
        be saved with ``tinypix.save`` and loaded into an optimizer over the same model.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: {k: Tensor._wrap(v) if hasattr(v, "shape") else v for k, v in s.items()}
                 for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and buffers saved by ``state_dict`` (copies; device and dtype
        follow each parameter)."""
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(saved_groups)} parameter "
                             f"groups but this optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has "
                                 f"{len(saved['params'])} parameters in the state but "
                                 f"{len(group['params'])} here; was it saved from another model?")
        by_index = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for i, p in zip(saved["params"], group["params"]):
                by_index[i] = p
        self.state = {}
        for key, s in state_dict["state"].items():
            p = by_index[int(key)]
            self.state[p] = {k: self._restore(k, v, p) for k, v in s.items()}
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})

    def _restore(self, key, value, p):
        value = value.data if isinstance(value, Tensor) else value
        if not hasattr(value, "shape"):
            return value
        if tuple(value.shape) != p.shape:
            raise ValueError(f"{type(self).__name__}.load_state_dict: state '{key}' has shape "
                             f"{tuple(value.shape)} but its parameter has shape {p.shape}")
        value = to_device(get_array_module(value).asarray(value), p.device)
        return value.astype(p.dtype, copy=True)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
