"""Look inside a network: the layer table, the graph autograd builds, filters and feature maps.

Lecture idea: a CNN is understood through a few numbers -- the output size of each layer
(32 - 3 + 1 = 30), how far each output pixel sees (n stacked 3x3 convolutions see 2n + 1 pixels)
and how much memory the activations take (200 float32 channels at 400 x 400 are 122 MB per layer
per image) -- and through pictures of what it computes.

The script
  1. prints ``tinypix.summary`` of the built-in U-Net (base 16, depth 3) and FCN-8s at 64 x 64:
     every layer's output shape, parameters, receptive field, jump and activation memory,
     following the skip connections (the ``cat`` and ``add`` rows);
  2. prints the lecture's numbers, computed by tinypix;
  3. draws the autograd graph of a small U-Net's loss (``unet_graph.png``, or ``unet_graph.dot``
     when Graphviz's ``dot`` is not installed), the U-Net's first-layer filters (``kernels.png``)
     and its feature maps on a synthetic scene (``feature_maps.png``). The network is untrained,
     so its filters are random; they still respond to the scene's edges.

Run:  python examples/look_inside.py           (seconds; --quick is the same)
"""
import os

import common
import tinypix
import tinypix.nn.functional as F
from tinypix import nn, viz
from tinypix.data.scenes import SyntheticScenes
from tinypix.models import FCN, UNet
from tinypix.summary import format_bytes
from common import count_parameters

SETTINGS = dict(size=64)
cfg = common.setup("look_inside", __doc__, SETTINGS, SETTINGS)

# 1. Layer tables. summary runs one zero image through the model and follows every tensor.
unet = UNet(base_channels=16, depth=3)
print(tinypix.summary(unet, (3, cfg.size, cfg.size)), "\n")
print(tinypix.summary(FCN(variant="8s"), (3, cfg.size, cfg.size)), "\n")

# 2. The lecture's numbers.
stack = lambda n: nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(n)])  # noqa: E731
seen = {n: tinypix.receptive_field(stack(n), (1, 8, 8)) for n in (99, 100)}
activations = 200 * 400 * 400 * 4                       # bytes: 200 float32 maps of 400 x 400, one image
weights = 4 * count_parameters(nn.Conv2d(200, 200, 3))  # bytes: the 3x3 conv that makes them
common.print_table(["quantity", "tinypix"], [
    ["receptive field of 99 stacked 3x3 convs", seen[99]],
    ["receptive field of 100 stacked 3x3 convs", seen[100]],
    ["3x3 conv on 32 pixels", tinypix.conv_output_size(32, 3)],
    ["3x3 conv on 50 pixels", tinypix.conv_output_size(50, 3)],
    ["200 float32 channels at 400x400, one image", format_bytes(activations)],
    ["100 such layers, batch of 20", format_bytes(100 * 20 * activations)],
    ["weights of the 3x3 conv from 200 to 200 channels", format_bytes(weights)],
    ["AlexNet: 11x11 conv, stride 4, on 227", tinypix.conv_output_size(227, 11, 4)],
    ["then 3x3 max-pool, stride 2", tinypix.conv_output_size(55, 3, 2)],
    ["then 5x5 conv, padding 2, and 3x3 max-pool, stride 2",
     tinypix.conv_output_size(tinypix.conv_output_size(27, 5, padding=2), 3, 2)],
], title="the lecture's numbers (1 MB = 2^20 bytes)")
shown = lambda ok: "shown" if ok else "NOT shown"  # noqa: E731
print(f"lesson: n stacked 3x3 convs see 2n+1 pixels — {shown(seen == {99: 199, 100: 201})} "
      f"(99 convs see {seen[99]}, 100 see {seen[100]}; counted by tinypix.receptive_field)")
print(f"lesson: at full resolution the activations, not the weights, fill the memory — "
      f"{shown(activations > 50 * weights)} (one 200-channel layer at 400x400: {format_bytes(activations)} of "
      f"activations per image, {format_bytes(weights)} of weights; 100 layers, batch 20: "
      f"{format_bytes(100 * 20 * activations)})")

# 3. Pictures. A small U-Net keeps the graph readable: every box is one op autograd recorded.
scene = SyntheticScenes(1, size=cfg.size, seed=cfg.seed)[0]
x = tinypix.tensor(scene["image"][None])
small = UNet(base_channels=4, depth=1)
crop = x[:, :, :16, :16]
target = tinypix.tensor(scene["mask"][None, :16, :16])
loss = F.cross_entropy(small(crop), target, ignore_index=SyntheticScenes.ignore_index)
names = {**dict(small.named_parameters()), **dict(small.named_buffers()), "image": crop, "mask": target}
viz.graph(loss, os.path.join(cfg.out, "unet_graph.png"), params=names)
print(f"wrote the autograd graph of the loss ({loss.item():.3f}) to {cfg.out}")
print("wrote", viz.save(viz.plot_kernels(unet.encoders[0][0]), os.path.join(cfg.out, "kernels.png")))
print("wrote", viz.save(viz.plot_feature_maps(unet, x[0]), os.path.join(cfg.out, "feature_maps.png")))
