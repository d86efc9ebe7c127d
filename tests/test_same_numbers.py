"""The same numbers on any machine: the algorithm for an op depends on shapes and dtype only, so
1, 2, 4 or 16 threads change no more than the order of some sums (DESIGN.md, rule 2).

Each layer's output and gradients, in float32, agree across team sizes within 2e-6 of their
largest magnitude. The layers cover every CPU implementation and its ways of sharing out work:
im2col by chunks (unfolding either side, col2im where dy has more channels), Winograd by chunks
of images and pass by pass (with fewer chunks than threads), the tiling windows
of 2x2 transpose convolutions and 1x1 convolutions, batch norm, ReLU, pooling and resizing. (A
whole network is no test of this: its float32 gradients at initialization differ from float64's
by far more than that on any path, and reordering moves them around within that error.)
"""
import numpy as np
import pytest

import tinypix
import tinypix.functional as F
from tinypix import kernels
from tinypix.kernels import cpu_team

# name, (N, C, H, F), kernel, stride, padding, transpose, and the implementation it must reach
CONVS = [("im2col, C < F", (16, 3, 40, 16), 3, 1, 1, False, "cpu_conv"),
         ("im2col, C > F", (16, 32, 40, 8), 3, 1, 1, False, "cpu_conv"),
         ("im2col, stride 2", (16, 16, 33, 24), 3, 2, 1, False, "cpu_conv"),
         ("Winograd by chunks of images", (16, 32, 32, 64), 3, 1, 1, False, "cpu_winograd"),
         ("Winograd pass by pass", (4, 64, 16, 64), 3, 1, 1, False, "cpu_winograd"),
         ("transpose 3x3", (8, 32, 16, 32), 3, 1, 1, True, "cpu_winograd"),
         ("transpose 2x2 stride 2", (16, 64, 8, 32), 2, 2, 0, True, "cpu_patches"),
         ("1x1", (16, 16, 32, 4), 1, 1, 0, False, "cpu_patches")]
THREADS = (1, 2, 4, 16)


@pytest.fixture
def restore_threads():
    before = cpu_team._size
    yield
    cpu_team._size = before


def _agree(runs):
    """Every run's arrays within 2e-6 of the largest magnitude of the one-thread run's."""
    for threads, arrays in runs.items():
        for a, b in zip(arrays, runs[1]):
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
            assert np.abs(a - b).max() <= 2e-6 * np.abs(b).max(), threads


def _layer(fn, *arrays):
    """fn's output and the gradients of every input, for a fixed output gradient."""
    tensors = [tinypix.tensor(a, requires_grad=True) for a in arrays]
    with kernels.trace() as ran:
        y = fn(*tensors)
        y.backward(tinypix.tensor(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)))
    return [y.detach().numpy()] + [t.grad.numpy() for t in tensors], {c.implementation for c in ran}


@pytest.mark.parametrize("name, shape, k, s, p, transpose, engine", CONVS, ids=[c[0] for c in CONVS])
def test_convolutions(restore_threads, name, shape, k, s, p, transpose, engine):
    N, C, H, Fo = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    w = (rng.standard_normal((C, Fo, k, k) if transpose else (Fo, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    b = rng.standard_normal(Fo).astype(np.float32)
    op = F.conv_transpose2d if transpose else F.conv2d
    runs = {}
    for threads in THREADS:
        tinypix.set_num_threads(threads)
        runs[threads], used = _layer(lambda x, w, b: op(x, w, b, stride=s, padding=p), x, w, b)
        assert used == {engine}
    _agree(runs)


def test_norm_relu_pooling_and_resizing(restore_threads):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((16, 24, 32, 32)) * 3 + 1).astype(np.float32)
    gamma, beta = rng.standard_normal((2, 24)).astype(np.float32)

    def layers(x, gamma, beta):
        y = F.relu(F.batch_norm(x, None, None, gamma, beta, training=True))
        y = F.max_pool2d(y, 2)
        return F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
    runs = {}
    for threads in THREADS:
        tinypix.set_num_threads(threads)
        runs[threads], used = _layer(layers, x, gamma, beta)
        assert used == {"cpu_norm", "cpu_relu", "cpu"}
    _agree(runs)
