"""Pixel-labeling models: U-Net, FCN-32s/16s/8s, SegNet, and a convolutional AutoEncoder."""
from .autoencoder import AutoEncoder
from .fcn import FCN
from .heads import TASKS, TaskHead, default_out_channels
from .segnet import SegNet
from .unet import UNet

__all__ = ["AutoEncoder", "FCN", "SegNet", "TASKS", "TaskHead", "UNet", "default_out_channels"]
