"""Whole training loops: a PyTorch twin takes the same steps; memory stays flat over many steps."""
import sys

import numpy as np
import pytest

import tinypix
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix import optim


def _net(lib):
    """conv -> batchnorm -> relu -> maxpool -> transpose conv, in tinypix.nn or torch.nn."""
    return lib.Sequential(lib.Conv2d(3, 6, 3, padding=1), lib.BatchNorm2d(6), lib.ReLU(), lib.MaxPool2d(2),
                          lib.ConvTranspose2d(6, 4, 2, stride=2))


def test_small_conv_net_takes_the_same_sgd_steps_as_its_pytorch_twin():
    torch = pytest.importorskip("torch")
    tinypix.manual_seed(0)
    ours = _net(nn).double()
    theirs = _net(torch.nn).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    kwargs = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)
    opt, topt = optim.SGD(ours.parameters(), **kwargs), torch.optim.SGD(theirs.parameters(), **kwargs)
    rng = np.random.default_rng(0)
    for step in range(5):
        xs, labels = rng.standard_normal((2, 3, 8, 8)), rng.integers(0, 4, (2, 8, 8))
        labels[0, :2] = 255
        opt.zero_grad()
        topt.zero_grad()
        loss = F.cross_entropy(ours(tinypix.tensor(xs)), tinypix.tensor(labels), ignore_index=255)
        tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(xs)), torch.tensor(labels),
                                                  ignore_index=255)
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-8)
        theirs_sd = theirs.state_dict()
        for name, value in ours.state_dict().items():
            np.testing.assert_allclose(value.numpy(), theirs_sd[name].numpy(), rtol=1e-8, atol=1e-12,
                                       err_msg=f"{name} after step {step}")


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_stays_flat_over_300_training_steps():
    tinypix.manual_seed(0)
    net = nn.Sequential(_net(nn), nn.Dropout2d(0.1))
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, decoupled_weight_decay=True)
    x, y = tinypix.randn(2, 3, 12, 12), tinypix.randint(0, 4, (2, 12, 12))
    for step in range(300):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if step == 20:
            baseline = _rss_bytes()
    growth = _rss_bytes() / baseline - 1
    assert growth < 0.05, f"resident memory grew by {growth:.1%} between step 20 and step 300"
    assert np.isfinite(loss.item())
