"""``import tinypix.nn.functional as F``: every function of :mod:`tinypix.functional`, under the
name PyTorch users expect. The functions live (and are documented) in ``tinypix/functional/``."""
from ..functional import *  # noqa: F401,F403  -- the re-export is this module's purpose
