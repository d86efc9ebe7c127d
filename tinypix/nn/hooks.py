"""The handle that registering a hook returns, as ``torch.utils.hooks.RemovableHandle``."""
import itertools


class RemovableHandle:
    """What ``register_forward_hook`` and ``register_forward_pre_hook`` return: ``remove()``
    takes the hook out again (also on leaving a ``with handle:`` block)."""

    _next_id = itertools.count()

    def __init__(self, hooks, *extra):
        self.id = next(RemovableHandle._next_id)
        self._registries = (hooks,) + extra

    def remove(self):
        for registry in self._registries:
            if isinstance(registry, set):
                registry.discard(self.id)
            else:
                registry.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
