"""Lesson tests: small, fast versions of the lessons examples/depth.py and examples/transfer.py print.

They train tiny networks on tiny scenes, so they assert only the direction of a lesson, with a
margin well beyond the spread over seeds measured for these settings.
"""
import sys
import types

import numpy as np

import tinypix
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.data.transforms import RandomDepthScale
from tinypix.models import UNet

from example_scripts import example


def test_scale_invariant_loss_learns_shape_despite_a_random_scale_per_scene():
    # Every scene's depth labels are scaled by its own factor in [1/4, 4] (the doll's-house
    # ambiguity). L1 on log-depth is charged for a factor no picture shows; the scale-invariant loss
    # (lambda = 1) is not, and learns the shape as fast as without the factor. Measured on these
    # settings, held-out si-RMSE log over seeds 0-2: scale-invariant 0.166-0.178, L1 0.270-0.380;
    # without the random factor (scale (1, 1)) both 0.166-0.182, within 0.005 of each other.
    depth = example("depth")
    common = sys.modules["common"]
    scale = RandomDepthScale((0.25, 4.0))
    test = next(iter(DataLoader(depth.PerScene(SyntheticScenes(60, size=16, seed=1000), scale, seed=1000),
                                batch_size=60)))
    train = depth.WithHoles(depth.PerScene(SyntheticScenes(80, size=16, seed=0), scale, seed=0), holes=0)
    loader = DataLoader(train, batch_size=16, shuffle=True, drop_last=True, seed=0)
    error = {}
    for name, loss_fn in (("L1 log", depth.l1_log_loss), ("scale-invariant", depth.scale_invariant_loss)):
        tinypix.manual_seed(0)
        model = UNet(3, 1, base_channels=4, depth=2, task="depth")
        model.head.bias.data[...] = np.log(6.0)
        common.train(model, loader, loss_fn, 100, optim.Adam(model.parameters(), lr=5e-3))
        pred = common.predict(model, test["image"]).numpy()[:, 0]
        error[name] = depth.scores(pred, test["depth"].numpy())["si-RMSE log"]
    assert error["scale-invariant"] < error["L1 log"] - 0.04, error


def test_hypercolumn_probe_of_a_normals_pre_trained_net_beats_a_random_net():
    # Pre-train a U-Net on normals, freeze it, fit a 1x1 conv on the hypercolumns of all its encoder
    # levels for segmentation from 20 labelled scenes; the control is the same probe on the same
    # architecture with random weights, frozen as initialised. Measured on these settings over
    # seeds 0-2: pre-trained 0.287-0.307 held-out mIoU, random 0.255-0.276, gap 0.024-0.040; with
    # 0 pre-training steps the two arms are the same network and the gap is 0.
    transfer = example("transfer")
    common = sys.modules["common"]
    cfg = types.SimpleNamespace(size=16, base=8, probe_lr=1e-2, probe_steps=200)
    test = next(iter(DataLoader(SyntheticScenes(60, size=16, seed=1000), batch_size=60)))
    unlabelled = SyntheticScenes(200, size=16, seed=500)
    few = next(iter(DataLoader(SyntheticScenes(20, size=16, seed=0), batch_size=20)))
    tinypix.manual_seed(0)
    pretrained = transfer.unet(cfg, 3, "normals")
    common.train(pretrained, DataLoader(unlabelled, batch_size=8, shuffle=True, drop_last=True, seed=0),
                 transfer.normals_loss, 300, optim.Adam(pretrained.parameters(), lr=5e-3))
    tinypix.manual_seed(0)
    random_net = transfer.unet(cfg, 3, "normals")
    score = {}
    for name, net in (("random", random_net), ("pre-trained", pretrained)):
        labels = transfer.linear_probe(cfg, transfer.hypercolumns(net, few["image"]), few["mask"],
                                       transfer.hypercolumns(net, test["image"]), seed=0)
        score[name] = transfer.miou(labels, test["mask"].numpy())
    assert score["pre-trained"] > score["random"] + 0.012, score
