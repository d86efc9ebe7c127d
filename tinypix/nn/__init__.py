"""tinypix.nn: Module and Parameter, layers, losses, ``init``, ``utils`` and ``functional`` (as F).

    import tinypix.nn as nn
    import tinypix.nn.functional as F

    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
"""
from . import functional, init, utils
from .activation import (ELU, GELU, Hardtanh, LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, SiLU,
                         Softmax, Tanh)
from .containers import ModuleDict, ModuleList, Sequential
from .conv import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, Conv2d, ConvTranspose2d,
                   MaxPool2d, MaxUnpool2d, Upsample)
from .layers import Dropout, Dropout2d, Flatten, Identity, Linear, Unflatten
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss,
                   NLLLoss, SmoothL1Loss)
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .sync_batchnorm import SyncBatchNorm
from . import parallel
from .parameter import Parameter
