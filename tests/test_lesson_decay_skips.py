"""Three lessons of the lecture, held to their direction with a margin, in seconds.

Fast versions of what ``examples/init_and_decay.py`` and ``examples/skips.py`` show at full size,
run with those scripts' own functions:

- init: through 20 ReLU conv layers Kaiming keeps the activation and gradient scale, Normal(0, 0.01)
  collapses both (and Xavier loses a factor 2 every two layers);
- decay: L2 inside Adam is divided by each weight's gradient RMS, so it decays weights with small
  gradients far faster than weights with large ones; AdamW removes the same lr * wd from each;
- skips: an encoder-decoder whose bottleneck is 4 x 4 cannot place a boundary to the pixel; the
  same U-Net with skip connections can.

The margins sit beyond the spread measured over seeds (noted at each assertion).
"""
import importlib
import os
import sys
import types

import numpy as np
import pytest

import tinypix
import tinypix.nn.functional as F
from tinypix import optim
from tinypix.models import UNet

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def example(name):
    """Import ``examples/<name>.py`` (which imports its neighbour ``common``) as a module."""
    sys.path.insert(0, EXAMPLES)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(EXAMPLES)


# -- init -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kaiming_keeps_the_scale_through_depth_and_normal_001_collapses(seed):
    init_and_decay = example("init_and_decay")
    cfg = types.SimpleNamespace(layers=20, channels=32, image=16, batch=4)
    stats = {}
    for name, initialize in init_and_decay.RECIPES.items():
        tinypix.manual_seed(seed)
        stats[name] = init_and_decay.layer_statistics(initialize, cfg)
    forward, backward = stats["Kaiming normal"]
    # Measured over 8 seeds: every layer's activation std in [0.24, 1.31], gradient std >= 0.55.
    assert 0.1 < min(forward) and max(forward) < 3.0, forward
    assert min(backward) > 0.2, backward
    forward, backward = stats["Normal(0, 0.01)"]
    assert forward[-1] < 1e-12 and backward[0] < 1e-12, (forward[-1], backward[0])  # measured ~1e-19
    forward, _ = stats["Xavier normal"]
    assert 1e-6 < forward[-1] < 1e-2, forward[-1]  # measured 2e-4 .. 7e-4: halves every two layers


# -- decay ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_l2_inside_adam_decays_by_gradient_history_adamw_uniformly(seed):
    init_and_decay = example("init_and_decay")
    cfg = types.SimpleNamespace(width=8, decay_batch=8, warmup=60, branch=10)
    train = init_and_decay.scenes(8, 16, seed)
    lr, wds = 5e-3, {"Adam + L2": 0.03, "AdamW": 3.0}
    uneven, median = {}, {}
    for rule, wd in wds.items():
        rms, shrink = init_and_decay.shrinkage(cfg, seed, rule, lr, wd, train)
        uneven[rule], median[rule] = init_and_decay.unevenness(rms, shrink), float(np.median(shrink))
    # Measured over 4 seeds: L2 8 .. 22, AdamW 1.02 .. 1.05.
    assert uneven["Adam + L2"] > 4.0, uneven
    assert 0.8 < uneven["AdamW"] < 1.25, uneven
    # AdamW removes lr * wd of each weight per step, compounded over the branch's steps.
    a = lr * wds["AdamW"]
    np.testing.assert_allclose(median["AdamW"], (1 - (1 - a) ** cfg.branch) / cfg.branch, rtol=0.1)


def test_best_wd_is_the_vertex_of_the_loss_in_log_wd():
    init_and_decay = example("init_and_decay")
    wds = np.array([1e-3, 1e-2, 1e-1, 1.0])
    assert init_and_decay.best_wd(wds, (np.log10(wds) + 1.6) ** 2) == pytest.approx(10 ** -1.6)
    assert init_and_decay.best_wd(wds, -np.log10(wds)) == 1.0  # lowest at the grid's edge: the edge
    lrs = np.array([1e-3, 1e-2, 1e-1])
    assert init_and_decay.slope(lrs, 0.5 * lrs ** -0.7) == pytest.approx(-0.7)


# -- skips ------------------------------------------------------------------------------------------
def test_boundary_band_marks_labelled_pixels_near_a_class_change():
    skips = example("skips")
    mask = np.zeros((1, 4, 8), np.int64)
    mask[:, :, 4:] = 1
    assert np.flatnonzero(skips.boundary_band(mask, radius=1)[0, 0]).tolist() == [3, 4]
    assert np.flatnonzero(skips.boundary_band(mask, radius=2)[0, 0]).tolist() == [2, 3, 4, 5]
    mask[:, :, 4] = 255  # an ignore band on the boundary: itself unscored, its neighbours in the band
    assert np.flatnonzero(skips.boundary_band(mask, radius=1)[0, 0]).tolist() == [3, 5]
    pred = np.ones_like(mask)
    boundary, interior, n_band, n_inside = skips.band_accuracies(pred, mask, radius=1)
    assert (boundary, interior, n_band, n_inside) == (0.5, 0.4, 8, 20)


def boxes(n, size, rng):
    """Noisy pictures of 1 to 3 bright rectangles; label 1 inside a rectangle, 0 outside."""
    images = 0.2 * rng.standard_normal((n, 3, size, size)).astype(np.float32)
    labels = np.zeros((n, size, size), np.int64)
    for k in range(n):
        for _ in range(rng.integers(1, 4)):
            h, w = rng.integers(3, size // 2, 2)
            r, c = rng.integers(0, size - h), rng.integers(0, size - w)
            labels[k, r:r + h, c:c + w] = 1
        images[k] += labels[k]
    return images, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_skip_connections_place_the_boundaries(seed):
    skips = example("skips")
    rng = np.random.default_rng(seed)
    (images, labels), (test_images, test_labels) = boxes(64, 16, rng), boxes(32, 16, rng)
    scores = {}
    for with_skips in (False, True):
        tinypix.manual_seed(seed)
        model = UNet(3, 2, base_channels=4, depth=2, skips=with_skips)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        batches = np.random.default_rng(seed)
        for _ in range(60):
            pick = batches.choice(len(images), 8, replace=False)
            loss = F.cross_entropy(model(tinypix.tensor(images[pick])), tinypix.tensor(labels[pick]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        scores[with_skips] = skips.band_accuracies(skips.predict_labels(model, test_images), test_labels, radius=1)
    (plain_boundary, plain_interior, _, _), (unet_boundary, unet_interior, _, _) = scores[False], scores[True]
    # Measured over 5 seeds: boundary accuracy 0.60 .. 0.76 without skips, 0.97 .. 1.00 with them;
    # interior accuracy 0.97 .. 1.00 for both.
    assert unet_boundary > 0.9 and unet_boundary - plain_boundary > 0.1, scores
    assert unet_boundary - plain_boundary > (unet_interior - plain_interior) + 0.05, scores
