"""The handle that registering a hook returns, as ``torch.utils.hooks.RemovableHandle``."""
from __future__ import annotations

import itertools
from typing import Any


class RemovableHandle:
    """What ``register_forward_hook`` and ``register_forward_pre_hook`` return: ``remove()``
    takes the hook out again (also on leaving a ``with handle:`` block)."""

    _next_id = itertools.count()

    def __init__(self, hooks: dict[int, Any] | set[int], *extra: dict[int, Any] | set[int]) -> None:
        self.id = next(RemovableHandle._next_id)
        self._registries = (hooks,) + extra

    def remove(self) -> None:
        for registry in self._registries:
            if isinstance(registry, set):
                registry.discard(self.id)
            else:
                registry.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
