"""A training step on the GPU stays on the GPU: no host<->device copy from forward to optimizer.

A U-Net step -- forward with BatchNorm in training mode, cross_entropy with ignore_index,
backward, then SGD (momentum, weight decay) or AdamW -- must not read a device array on the host
(a device-to-host copy, which also makes the host wait for every queued kernel) nor copy host
data to the device. On a GPU (skipped with a reason without CuPy or a GPU):

- numpy.asarray(cupy_array) raises TypeError (CuPy's default), cupyx.allow_synchronize(False)
  makes every device-to-host read raise (.get(), .item(), float(), bool(), cupy.asnumpy all
  go through ndarray.get, which declares the synchronization), and cupy.asarray / cupy.array of
  host data raise too (host-to-device copies);
- the loss, the gradients, the optimizer's state and the batch norm statistics are CuPy arrays;
- tinypix.manual_seed(s) repeats randn, dropout masks (drawn on the CPU, so the same on any
  device) and CuPy's own generator.

On the CPU, the same step runs on a simulated device: arrays of an ndarray subclass whose host
reads (bool, int, float, item, tolist) raise while the step runs, and whose NumPy results stay in
the subclass. It checks the readable implementations (TINYPIX_KERNELS=reference), which are
what runs on CuPy arrays wherever no CUDA kernel is registered. It cannot see numpy.asarray of a
device array (a subclass converts silently), which the GPU test above catches.
"""
import contextlib
import warnings

import numpy as np
import pytest

import tinypix
import tinypix.functional.loss as loss_module
import tinypix.nn.functional as F
from tinypix import kernels, nn
from tinypix.autograd import detect_anomaly
from tinypix.backend import device_of
from tinypix.models import UNet

CLASSES, IGNORE = 3, 255
OPTIMIZERS = {
    "sgd": lambda params: tinypix.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4),
    "adamw": lambda params: tinypix.optim.AdamW(params, lr=1e-3, weight_decay=1e-2),
}


def make_run(device, optimizer):
    """(model, optimizer, x, target): a small U-Net with BatchNorm, seeded, and one batch whose
    first rows of labels are IGNORE."""
    tinypix.manual_seed(0)
    model = UNet(3, CLASSES, base_channels=4, depth=2).to(device)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the step must cover batch norm"
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 16, 16), dtype=np.float32)
    target = rng.integers(0, CLASSES, (2, 16, 16))
    target[0, :4] = IGNORE
    return (model, OPTIMIZERS[optimizer](list(model.parameters())),
            tinypix.tensor(x, device=device), tinypix.tensor(target, device=device))


def step(model, opt, x, target):
    loss = F.cross_entropy(model(x), target, ignore_index=IGNORE)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def batch_norm_buffers(model):
    return [b for m in model.modules() if isinstance(m, nn.BatchNorm2d)
            for b in (m.running_mean, m.running_var, m.num_batches_tracked)]


# ---- on the GPU ----------------------------------------------------------------------------------

@contextlib.contextmanager
def no_host_transfers(cupy):
    """Inside: any device-to-host read or host-to-device copy through CuPy raises."""
    import cupyx
    if not hasattr(cupyx, "allow_synchronize"):
        pytest.skip("this CuPy has no cupyx.allow_synchronize to detect device-to-host reads")

    def refuse(name, real):
        def guarded(a, *args, **kwargs):
            if not isinstance(a, cupy.ndarray):
                raise AssertionError(f"host-to-device copy inside a training step: cupy.{name} of a "
                                     f"{type(a).__name__} {getattr(a, 'shape', '')}")
            return real(a, *args, **kwargs)
        return guarded

    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as stack:
        for name in ("asarray", "array"):
            patch.setattr(cupy, name, refuse(name, getattr(cupy, name)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated since CuPy 10, and still what detects
            stack.enter_context(cupyx.allow_synchronize(False))
        yield


def test_the_guard_catches_reads_and_copies(cupy):
    import cupyx
    a = cupy.ones(3)
    for read in (lambda: a.get(), lambda: float(a.sum()), lambda: bool(a.all()), lambda: a[0].item(),
                 lambda: cupy.asnumpy(a), lambda: cupy.asarray(np.ones(3)), lambda: np.asarray(a)):
        # DeviceSynchronized for reads, AssertionError for copies to the device, TypeError for
        # numpy.asarray (CuPy's own refusal)
        with no_host_transfers(cupy), pytest.raises((cupyx.DeviceSynchronized, AssertionError, TypeError)):
            read()
    with no_host_transfers(cupy):
        (a * 2).sum()  # work on the device alone passes


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_training_step_on_the_gpu_makes_no_host_transfer(cupy, optimizer):
    model, opt, x, target = make_run("cuda", optimizer)
    with no_host_transfers(cupy):
        losses = [step(model, opt, x, target) for _ in range(2)]  # the first creates the state
    arrays = [loss.data for loss in losses] + batch_norm_buffers(model)
    arrays += [p.grad.data for p in model.parameters()]
    arrays += [v for state in opt.state.values() for v in state.values() if hasattr(v, "shape")]
    kinds = {type(a.data if isinstance(a, tinypix.Tensor) else a).__module__.split(".")[0] for a in arrays}
    assert kinds == {"cupy"}
    assert len(opt.state) == len(list(model.parameters()))
    assert all(int(m.num_batches_tracked.item()) == 2 for m in model.modules() if isinstance(m, nn.BatchNorm2d))

    cpu_model, cpu_opt, cpu_x, cpu_target = make_run("cpu", optimizer)  # the same numbers, up to float32
    cpu_losses = [step(cpu_model, cpu_opt, cpu_x, cpu_target) for _ in range(2)]
    np.testing.assert_allclose([loss.item() for loss in losses], [loss.item() for loss in cpu_losses],
                               rtol=1e-3)
    for theirs, ours in zip(batch_norm_buffers(cpu_model), batch_norm_buffers(model)):
        np.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), rtol=1e-3, atol=1e-4)


def test_bad_label_on_the_gpu_gives_nan_and_raises_under_detect_anomaly(cupy):
    x = tinypix.randn(2, 3, 4, 4, device="cuda", requires_grad=True)
    target = tinypix.zeros(2, 4, 4, dtype=tinypix.int64, device="cuda")
    target[1, 2, 0] = 7
    with no_host_transfers(cupy):
        loss = F.cross_entropy(x, target)
        loss.backward()
    assert np.isnan(loss.item())
    with detect_anomaly(), pytest.raises(ValueError, match=r"label 7, outside \[0, 3\)"):
        F.cross_entropy(x, target)


def test_manual_seed_repeats_the_draws_on_the_gpu(cupy):
    def draws(device):
        tinypix.manual_seed(11)
        x = tinypix.randn(4, 5, device=device)
        return x, F.dropout(tinypix.ones(64, device=device), 0.5), F.dropout2d(tinypix.ones(2, 8, 3, 3, device=device))

    first, again, on_cpu = draws("cuda"), draws("cuda"), draws("cpu")
    for a, b, c in zip(first, again, on_cpu):
        assert isinstance(a.data, cupy.ndarray)
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
        np.testing.assert_array_equal(a.cpu().numpy(), c.numpy())  # a seed draws the same on any device
    tinypix.manual_seed(3)
    mine = cupy.random.random(8)
    tinypix.manual_seed(3)
    assert cupy.array_equal(mine, cupy.random.random(8)).item()


# ---- on a simulated device, on the CPU ------------------------------------------------------------

class HostRead(AssertionError):
    """A device array was read on the host inside the simulated step."""


_reads_refused = False


class OnDevice(np.ndarray):
    """A NumPy array standing for a device array: NumPy's results on it stay OnDevice (0-d ones
    too, where NumPy would return a scalar), and reading its values into Python raises while
    ``_reads_refused`` is set, as reading a CuPy array synchronizes with the GPU."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if out is not None:
            kwargs["out"] = tuple(_host(o) for o in out)
        result = getattr(ufunc, method)(*(_host(a) for a in inputs), **kwargs)
        return _device(result) if out is None else (out[0] if len(out) == 1 else out)

    def __array_function__(self, func, types, args, kwargs):
        return _device(func(*_host(args), **_host(kwargs)))

    def __getitem__(self, key):  # one element is a 0-d device array too, as in CuPy
        return _device(super().__getitem__(key))

    def _read(self, how):
        if _reads_refused:
            raise HostRead(f"{how} of a device array of shape {self.shape} inside the training step")
        return getattr(self.view(np.ndarray), how)

    def __bool__(self):
        return self._read("__bool__")()

    def __int__(self):
        return self._read("__int__")()

    def __float__(self):
        return self._read("__float__")()

    def __index__(self):
        return self._read("__index__")()

    def item(self, *args):
        return self._read("item")(*args)

    def tolist(self):
        return self._read("tolist")()


def _host(v):
    """Plain ndarrays for OnDevice ones, inside tuples, lists and dicts too."""
    if isinstance(v, OnDevice):
        return v.view(np.ndarray)
    if isinstance(v, (tuple, list)):
        return type(v)(_host(a) for a in v)
    if isinstance(v, dict):
        return {k: _host(a) for k, a in v.items()}
    return v


def _device(v):
    if isinstance(v, np.generic):
        v = np.asarray(v)
    if isinstance(v, np.ndarray) and not isinstance(v, OnDevice):
        return v.view(OnDevice)
    return type(v)(_device(a) for a in v) if isinstance(v, (tuple, list)) else v


@contextlib.contextmanager
def reads_refused():
    global _reads_refused
    _reads_refused = True
    try:
        yield
    finally:
        _reads_refused = False


@pytest.fixture
def simulated_device(monkeypatch):
    """The readable implementations, and cross_entropy's label check as on a GPU for OnDevice labels."""
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    monkeypatch.setattr(loss_module, "device_of", lambda a: "cuda" if isinstance(a, OnDevice) else device_of(a))


def to_simulated_device(model, x, target):
    for t in [*model.parameters(), *batch_norm_buffers(model), x, target]:
        t.data = t.data.view(OnDevice)


def test_the_simulated_device_refuses_reads():
    a = np.ones(3).view(OnDevice)
    assert isinstance(a.sum(), OnDevice) and isinstance(np.maximum(a, 0).mean(), OnDevice)
    for read in (lambda: bool(a.all()), lambda: float(a.sum()), lambda: int(a[0]), lambda: a.sum().item(),
                 lambda: a.tolist(), lambda: tinypix.from_numpy(a[:1]).item()):
        with reads_refused(), pytest.raises(HostRead):
            read()
    assert float(a.sum()) == 3.0  # outside the step, reads work


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_training_step_reads_no_device_array_on_the_host(simulated_device, optimizer):
    model, opt, x, target = make_run("cpu", optimizer)
    plain = make_run("cpu", optimizer)
    to_simulated_device(model, x, target)
    with reads_refused():
        losses = [step(model, opt, x, target) for _ in range(2)]
    assert all(isinstance(loss.data, OnDevice) for loss in losses)
    assert all(isinstance(b.data, OnDevice) for b in batch_norm_buffers(model))
    plain_losses = [step(*plain) for _ in range(2)]  # and the simulation changed no number
    assert [loss.item() for loss in losses] == [loss.item() for loss in plain_losses]
    for ours, theirs in zip([*model.parameters(), *batch_norm_buffers(model)],
                            [*plain[0].parameters(), *batch_norm_buffers(plain[0])]):
        np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


def test_bad_label_without_the_check_gives_nan_never_a_wrong_class(simulated_device):
    x = tinypix.randn(2, 3, 4, 4, requires_grad=True)
    target = tinypix.zeros(2, 4, 4, dtype=tinypix.int64)
    target[1, 2, 0], target[0, 0, 0] = 7, IGNORE
    target.data = target.data.view(OnDevice)
    weight = tinypix.tensor([1.0, 2.0, 0.5])
    for kwargs in ({}, {"weight": weight}, {"label_smoothing": 0.1}):
        with reads_refused():
            loss = F.cross_entropy(x, target, ignore_index=IGNORE, **kwargs)
            loss.backward()
        assert np.isnan(loss.item()) and np.isnan(x.grad.numpy()).any()
        per_pixel = F.cross_entropy(x, target, ignore_index=IGNORE, reduction="none", **kwargs).detach().numpy()
        assert np.isnan(per_pixel[1, 2, 0]) and np.isfinite(np.delete(per_pixel.ravel(), 1 * 16 + 2 * 4)).all()
        x.grad = None
    with detect_anomaly(), pytest.raises(ValueError, match=r"label 7, outside \[0, 3\)"):
        F.cross_entropy(x, target, ignore_index=IGNORE)
    target.data[1, 2, 0] = 2  # the same labels in range: the loss is finite and as on the CPU
    expected = F.cross_entropy(x, tinypix.tensor(np.asarray(target.data)), ignore_index=IGNORE).item()
    assert F.cross_entropy(x, target, ignore_index=IGNORE).item() == expected
