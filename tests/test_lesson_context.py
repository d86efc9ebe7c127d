"""The lessons of examples/wrong_ways.py, held to their direction on small, fast versions.

The example's own functions run here on boat-or-car scenes (``tinypix.data.context``) smaller than
the example's: windows 5, 9 and 17 on 20 x 20 scenes instead of 5, 13 and 29 on 32 x 32. The
margins sit below the smallest gaps measured over seeds 0-3 (13x13 vs 5x5: 0.14 to 0.20 mIoU;
17x17 vs 9x9: 0.12 to 0.16), and above anything the mechanism gives when it is taken away (the
same window for every arm gives gaps of about 0).
"""
import os
import sys

import numpy as np
import pytest

import tinypix
from tinypix.data.context import ContextScenes, context_ceiling
from tinypix.metrics import ConfusionMatrix

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import wrong_ways  # noqa: E402  (the example, from examples/)


@pytest.fixture(scope="module")
def small_scenes():
    """(train images, train masks, held-out images, held-out masks) of 20 x 20 scenes."""
    return (*ContextScenes(200, size=20, seed=0).arrays(), *ContextScenes(50, size=20, seed=1000).arrays())


def trained_miou(k, scenes, steps=300):
    train_x, train_y, test_x, test_y = scenes
    model = wrong_ways.train_patch_classifier(k, train_x, train_y, steps, 128, 3e-3, seed=0, width=8)
    fcn = wrong_ways.as_fully_convolutional(model)
    labels = wrong_ways.scores_fully_convolutional(fcn, test_x, k).argmax(1)
    return wrong_ways.held_out(labels, test_y).miou()


def test_more_context_labels_better(small_scenes):
    miou = {k: trained_miou(k, small_scenes) for k in (5, 9, 17)}
    assert miou[9] > miou[5] + 0.08, miou
    assert miou[17] > miou[9] + 0.07, miou
    # No labeler beats the best a window allows (a little slack: the ceiling is an expectation).
    test_y = small_scenes[3]
    for k, value in miou.items():
        assert value < context_ceiling(test_y, k).miou() + 0.02, (k, value)


@pytest.fixture(scope="module")
def patch_cnn_13():
    """A 13 x 13 patch classifier after a few steps, its FCN form and two 32 x 32 scenes."""
    train_x, train_y = ContextScenes(20, size=32, seed=0).arrays()
    model = wrong_ways.train_patch_classifier(13, train_x, train_y, 30, 64, 3e-3, seed=0, width=8)
    return model, wrong_ways.as_fully_convolutional(model), ContextScenes(2, size=32, seed=7).arrays()[0]


def test_patch_cnn_as_fcn_gives_identical_labels(patch_cnn_13):
    model, fcn, images = patch_cnn_13
    by_patch = np.stack([wrong_ways.scores_by_patches(model, image, 13) for image in images])
    by_fcn = wrong_ways.scores_fully_convolutional(fcn, images, 13)
    assert by_fcn.shape == by_patch.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(by_fcn, by_patch, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(by_fcn.argmax(1), by_patch.argmax(1))
    assert isinstance(list(fcn)[-1], tinypix.nn.Conv2d) and not any(
        isinstance(m, (tinypix.nn.Linear, tinypix.nn.Flatten)) for m in fcn.modules())


def test_fcn_on_an_unpadded_image_gives_n_minus_k_plus_1_outputs(patch_cnn_13):
    # The lecture's 32 - 3 + 1 = 30: a window classifier slid over an n-pixel image without padding.
    _, fcn, images = patch_cnn_13
    out = wrong_ways.common.predict(fcn, tinypix.from_numpy(np.ascontiguousarray(images)))
    assert out.shape == (2, 3, 32 - 13 + 1, 32 - 13 + 1)


def test_fcn_does_far_less_work_than_patch_by_patch(patch_cnn_13):
    """The speed-up's cause, counted rather than timed (examples/wrong_ways.py times it): one
    pass shares the convolutions of overlapping windows."""
    model, fcn, images = patch_cnn_13
    per_patch = 32 * 32 * wrong_ways.multiply_adds(model, (3, 13, 13))
    one_pass = wrong_ways.multiply_adds(fcn, (3, 32 + 12, 32 + 12))
    assert per_patch > 20 * one_pass


def test_all_background_scores_high_pixel_accuracy_and_low_miou():
    masks = ContextScenes(100, size=32, seed=1000).arrays()[1]
    confusion = ConfusionMatrix(ContextScenes.num_classes)
    confusion.update(np.zeros_like(masks), masks)
    background = np.mean(masks == 0)
    assert confusion.pixel_accuracy() == pytest.approx(background) and confusion.pixel_accuracy() > 0.6
    # Boats and cars are in the truth and never predicted: IoU 0 each, and they count in the mean.
    np.testing.assert_allclose(confusion.iou(), [background, 0, 0])
    assert confusion.miou() == pytest.approx(background / 3) and confusion.miou() < 0.25
    # Reading only each pixel's own colour (a 1 x 1 window) already more than doubles the mIoU.
    assert context_ceiling(masks, 1).miou() > 2 * confusion.miou()

