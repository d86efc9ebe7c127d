"""tinypix.nn: Module and Parameter, layers, losses, ``init`` and ``functional`` (as F).

    import tinypix.nn as nn
    import tinypix.nn.functional as F

    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
"""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .conv import AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d, MaxUnpool2d, Upsample
from .layers import (BatchNorm2d, Dropout, Dropout2d, Flatten, Identity, LeakyReLU, Linear, ReLU,
                     Sigmoid, Tanh)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .module import Module
from .parameter import Parameter
