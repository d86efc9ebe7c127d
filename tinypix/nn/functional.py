"""``import tinypix.nn.functional as F``: every function of :mod:`tinypix.functional`, under the
name PyTorch users expect. The functions live (and are documented) in ``tinypix/functional/``."""
from ..functional import *  # noqa: F401,F403  -- the re-export is this module's purpose
from ..functional.activation import elu, erf, gelu, hardtanh, relu6, silu  # noqa: F401
from ..functional.loss import binary_cross_entropy, huber_loss  # noqa: F401
from ..functional.norm import group_norm, layer_norm  # noqa: F401
from ..functional.pool import adaptive_max_pool2d  # noqa: F401
