"""Models: output shapes for any input size, FCN's bilinear init, finite normals gradients,
and a U-Net that learns a labelling unlike the built-in scenes through the public API."""
import numpy as np
import pytest

import tinypix
import tinypix.nn.functional as F
from tinypix.metrics import ConfusionMatrix
from tinypix.models import FCN, AutoEncoder, SegNet, UNet
from tinypix.models.fcn import upsampler
from tinypix.models.unet import ConvBlock


@pytest.mark.parametrize("make", [lambda: UNet(3, 5, base_channels=4, depth=2),
                                  lambda: UNet(3, 5, base_channels=4, depth=2, upsample="bilinear"),
                                  lambda: FCN(3, 5, variant="8s", width=4),
                                  lambda: FCN(3, 5, variant="32s", width=4),
                                  lambda: SegNet(3, 5, base_channels=4, depth=2)])
@pytest.mark.parametrize("hw", [(16, 16), (13, 22)])
def test_output_has_the_input_size(make, hw):
    model = make()
    assert model(tinypix.randn(2, 3, *hw)).shape == (2, 5) + hw


def test_task_heads_give_positive_depth_and_unit_normals():
    x = tinypix.randn(1, 3, 16, 16)
    assert (UNet(3, 1, 4, 2, task="depth")(x).detach().numpy() > 0).all()
    n = UNet(3, 3, 4, 2, task="normals")(x).detach().numpy()
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, rtol=1e-4)


def test_fcn_upsampler_starts_as_bilinear_upsampling():
    up = upsampler(1, 2)
    x = tinypix.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    y = up(x).detach().numpy()[0, 0]
    # Inside the image (away from the zero-padded border) bilinear upsampling of a ramp is a ramp.
    np.testing.assert_allclose(np.diff(y[2:-2, 2:-2], axis=1), 0.5, atol=1e-6)


def test_normals_gradient_stays_finite_where_the_raw_output_is_zero():
    model = UNet(3, 3, base_channels=4, depth=2, task="normals")
    with tinypix.no_grad():
        model.head.weight.fill_(0.0)  # every raw output exactly 0: the worst case
    x, target = tinypix.randn(2, 3, 8, 8), tinypix.randn(2, 3, 8, 8)
    F.cosine_normal_loss(model(x), target).backward()
    assert np.isfinite(model.head.bias.grad.numpy()).all()
    assert np.abs(model.head.bias.grad.numpy()).max() < 1e8


def _block_step(block, x, dy):
    x = tinypix.tensor(x, requires_grad=True)
    y = block(x)
    y.backward(tinypix.tensor(dy))
    return [y.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in block.parameters()]


@pytest.mark.parametrize("swap", [None, 2, 5])
def test_conv_block_in_training_equals_its_modules_one_by_one(swap):
    blocks = []
    for _ in range(2):
        tinypix.manual_seed(3)
        blocks.append(ConvBlock(3, 4))
        if swap is not None:  # a swapped-in activation is used, not fused away
            blocks[-1][swap] = tinypix.nn.LeakyReLU(0.2)
    block, plain = blocks[0], tinypix.nn.Sequential(*blocks[1])  # Sequential: one by one
    rng = np.random.default_rng(0)
    x, dy = (rng.standard_normal(shape).astype(np.float32) for shape in ((2, 3, 6, 7), (2, 4, 6, 7)))
    fused, one_by_one = _block_step(block, x, dy), _block_step(plain, x, dy)
    for a, b in zip(fused, one_by_one):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert (fused[0] < 0).any() == (swap == 5)  # a leaky last activation lets negatives through
    np.testing.assert_allclose(block.state_dict()["4.running_mean"].numpy(),
                               plain.state_dict()["4.running_mean"].numpy(), rtol=1e-5, atol=1e-6)


def test_autoencoder_encode_decode_shapes():
    ae = AutoEncoder(3, size=16, latent_dim=8, base_channels=4, stages=2)
    z = ae.encode(tinypix.rand(2, 3, 16, 16))
    assert z.shape == (2, 8) and ae.decode(z).shape == (2, 3, 16, 16)


def stripes(n, size, rng):
    """Images whose label is the orientation of the local stripe pattern (a texture task,
    unlike the built-in scenes): left half one orientation, right half the other, split at a
    random column."""
    images = np.empty((n, 3, size, size), np.float32)
    labels = np.empty((n, size, size), np.int64)
    yy, xx = np.mgrid[:size, :size]
    for k in range(n):
        cut = rng.integers(size // 4, 3 * size // 4)
        vertical = (xx % 4 < 2).astype(np.float32)
        horizontal = (yy % 4 < 2).astype(np.float32)
        left = xx < cut
        images[k] = np.where(left, vertical, horizontal) + 0.1 * rng.standard_normal((3, size, size))
        labels[k] = np.where(left, 0, 1)
    return images, labels


def test_unet_learns_a_generated_labelling():
    rng = np.random.default_rng(0)
    tinypix.manual_seed(0)
    images, labels = stripes(32, 16, rng)
    model = UNet(3, 2, base_channels=8, depth=2)
    opt = tinypix.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(40):
        idx = rng.choice(32, 8, replace=False)
        loss = F.cross_entropy(model(tinypix.tensor(images[idx])), tinypix.tensor(labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test_images, test_labels = stripes(16, 16, np.random.default_rng(1))
    model.eval()
    with tinypix.no_grad():
        pred = model(tinypix.tensor(test_images)).argmax(1)
    cm = ConfusionMatrix(2)
    cm.update(pred, test_labels)
    assert cm.miou() > 0.8, f"held-out mIoU {cm.miou():.3f} after 40 steps"


def _outputs_with_bottleneck_held(model, inputs):
    """The model's outputs for ``inputs`` when every input gets the same bottleneck features."""
    model.eval()
    fixed = []

    def hold(module, args, output):
        if not fixed:
            fixed.append(output.detach())
        return fixed[0]

    handle = model.encoders[-1].register_forward_hook(hold)
    with tinypix.no_grad():
        outputs = [model(x).numpy() for x in inputs]
    handle.remove()
    return outputs


def test_unet_without_skips_sees_the_input_only_through_its_bottleneck():
    tinypix.manual_seed(0)
    x1, x2 = tinypix.randn(1, 3, 16, 16), tinypix.randn(1, 3, 16, 16)
    tinypix.manual_seed(1)
    plain = UNet(3, 4, base_channels=4, depth=2, skips=False)
    a, b = _outputs_with_bottleneck_held(plain, [x1, x2])
    np.testing.assert_array_equal(a, b)
    tinypix.manual_seed(1)
    unet = UNet(3, 4, base_channels=4, depth=2)
    a, b = _outputs_with_bottleneck_held(unet, [x1, x2])
    assert np.abs(a - b).max() > 1e-3  # the skips carry the input's detail past the bottleneck
    # Without skips each decoder block takes only the upsampled map: half the input channels.
    assert [d[0].in_channels for d in plain.decoders] == [8, 4]
    assert [d[0].in_channels for d in unet.decoders] == [16, 8]


def test_unet_skips_default_is_the_unet():
    tinypix.manual_seed(2)
    a = UNet(3, 4, base_channels=4, depth=2)
    tinypix.manual_seed(2)
    b = UNet(3, 4, base_channels=4, depth=2, skips=True)
    x = tinypix.randn(2, 3, 12, 12)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
