"""kernels/registry.py: one seam picks, per call, which implementation of an op runs.

- every registered implementation equals the op's readable one on hypothesis-drawn inputs where
  it applies (for Winograd, with its size thresholds lowered so that small draws reach it);
- a call runs the first implementation of its device that applies, else the readable one;
  TINYPIX_KERNELS=reference runs the readable one always; explain and trace say what ran;
- importing tinypix imports no engine (Numba stays unloaded).
"""
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinypix
import tinypix.functional as F
from tinypix import kernels
from tinypix.functional import conv
from tinypix.kernels import cpu_winograd, reference as ref, registry
from tinypix.testing.strategies import conv_geometries

from kernel_strategies import geometries, pool_input, resizes

DTYPES = st.sampled_from([np.float32, np.float64])
SEEDS = st.integers(0, 2**32 - 1)


def _rng(data):
    return np.random.default_rng(data.draw(SEEDS))


def _conv(data, dtype, stride_one=False):
    """x, w, dy and the Geometry of a conv2d; at stride one often a Winograd-sized 3x3 layer."""
    if stride_one or data.draw(st.booleans()):
        g = data.draw(conv_geometries(max_batch=3, max_size=10, max_channels=4, max_kernel=3,
                                      max_stride=1, max_dilation=1, max_groups=1))
        g["kernel_size"] = (3, 3)
        g["padding"] = tuple(data.draw(st.integers(0, 2)) for _ in "hw")
        g["H"], g["W"] = max(g["H"], 3), max(g["W"], 3)
    else:
        g = data.draw(conv_geometries(max_batch=3, max_size=8, max_channels=4))
    rng = _rng(data)
    geo = conv.Geometry(g["kernel_size"], g["stride"], g["padding"], g["dilation"], g["groups"])
    x = rng.standard_normal((g["N"], g["C"], g["H"], g["W"])).astype(dtype)
    w = rng.standard_normal((g["F"], g["C"] // g["groups"]) + geo.kernel_size).astype(dtype)
    out = tuple(kernels.conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                zip(x.shape[2:], geo.kernel_size, geo.stride, geo.padding, geo.dilation))
    dy = rng.standard_normal((g["N"], g["F"]) + out).astype(dtype)
    return x, w, dy, geo


def _tiling(data, dtype):
    """x, w, dy and the Geometry of a conv2d whose windows tile the image (cpu_patches)."""
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    N, C, Fo = data.draw(st.integers(0, 3)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    OH, OW = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    rng = _rng(data)
    x = rng.standard_normal((N, C, kh * OH + data.draw(st.integers(0, kh - 1)),
                             kw * OW + data.draw(st.integers(0, kw - 1)))).astype(dtype)
    return (x, rng.standard_normal((Fo, C, kh, kw)).astype(dtype),
            rng.standard_normal((N, Fo, OH, OW)).astype(dtype), conv.Geometry((kh, kw), (kh, kw), (0, 0), (1, 1), 1))


def _conv_args(data, dtype, op):
    x, w, dy, geo = _tiling(data, dtype) if data.draw(st.booleans()) else _conv(data, dtype)
    return {"conv2d": (x, w, geo), "conv2d_backward_data": (dy, w, geo, x.shape),
            "conv2d_backward_weight": (dy, x, w.shape, geo), "conv2d_backward": (dy, x, w, geo),
            "conv_transpose2d_backward": (x, dy, w, geo)}[op]  # (its input is dy, its dy x)


def _kernel_args(data, dtype, op):
    rng = _rng(data)
    if op in ("im2col", "col2im"):
        shape, geometry, _ = data.draw(geometries())
        x = rng.standard_normal(shape).astype(dtype)
        if op == "im2col":
            return (x, *geometry)
        return (rng.standard_normal(ref.im2col(x, *geometry).shape).astype(dtype), shape, *geometry)
    if op.startswith("max_"):
        shape, geometry, ceil_mode = data.draw(geometries(pool=True))
        x = pool_input(rng, shape, dtype)
        y, indices = ref.max_pool2d(x, *geometry, ceil_mode)
        return {"max_pool2d": (x, *geometry, ceil_mode),
                "max_pool2d_backward": (rng.standard_normal(y.shape).astype(dtype), indices, shape),
                "max_unpool2d": (y, indices, shape[2:]),
                "max_unpool2d_backward": (rng.standard_normal(shape).astype(dtype), indices)}[op]
    shape, out_hw, align_corners, scale_hw = data.draw(resizes())
    if op == "bilinear_interpolate":
        return rng.standard_normal(shape).astype(dtype), out_hw, align_corners, scale_hw
    return rng.standard_normal(shape[:2] + out_hw).astype(dtype), shape[2:], align_corners, scale_hw


def _elementwise_args(data, dtype, op):
    rng = _rng(data)
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=2, max_size=4)))
    x = rng.standard_normal(shape).astype(dtype)
    if op == "batch_norm":
        assume(x.size // shape[1] > 1)
        w, b = (rng.standard_normal(shape[1]).astype(dtype) if data.draw(st.booleans()) else None
                for _ in "wb")
        return x, w, b, data.draw(st.sampled_from([1e-5, 1e-3]))
    if op == "batch_norm_backward":
        return x, rng.standard_normal(shape).astype(dtype), np.abs(rng.standard_normal(shape[1])).astype(dtype)
    x[rng.random(shape) < 0.2] = 0.0
    slope = data.draw(st.sampled_from([0.0, 0.01, 0.3, -0.5]))
    return (x, slope) if op == "leaky_relu" else (rng.standard_normal(shape).astype(dtype), x, slope)


ARGS = {"im2col": _kernel_args, "col2im": _kernel_args, "max_pool2d": _kernel_args,
        "max_pool2d_backward": _kernel_args, "max_unpool2d": _kernel_args,
        "max_unpool2d_backward": _kernel_args, "bilinear_interpolate": _kernel_args,
        "bilinear_interpolate_backward": _kernel_args, "conv2d": _conv_args,
        "conv2d_backward_data": _conv_args, "conv2d_backward_weight": _conv_args,
        "conv2d_backward": _conv_args, "conv_transpose2d_backward": _conv_args,
        "batch_norm": _elementwise_args, "batch_norm_backward": _elementwise_args,
        "leaky_relu": _elementwise_args, "leaky_relu_backward": _elementwise_args}
FASTER = [pytest.param(impl, id=f"{impl.op}-{impl.name}")
          for op in ARGS for impl in registry.implementations(op)[:-1]]


def test_every_op_has_arguments_drawn_and_one_readable_implementation():
    assert set(ARGS) == set(registry._readable)
    assert all(registry.implementations(op)[-1].name == "readable" for op in ARGS)


def _on_device(impl, args):
    if impl.device == "cpu":
        return args
    cupy = pytest.importorskip("cupy")
    if not tinypix.is_cuda_available():
        pytest.skip("CuPy is installed but sees no GPU")
    return tuple(cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args)


def _close(actual, expected, dtype):
    actual = actual.get() if hasattr(actual, "get") else actual
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if actual.dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected)  # max-pool indices
        return
    tol = 1e-4 if dtype == np.float32 else 1e-10
    scale = max(1.0, float(np.abs(expected[np.isfinite(expected)]).max(initial=0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("impl", FASTER)
@given(data=st.data(), dtype=DTYPES)
def test_every_faster_implementation_equals_the_readable_one(impl, data, dtype):
    with pytest.MonkeyPatch.context() as m:  # Winograd for every channel count and batch size
        for name, value in (("MIN_CHANNELS", 1), ("MIN_WIDER", 1), ("MIN_MULTIPLY_ADDS", 0)):
            m.setattr(cpu_winograd, name, value)
        args = ARGS[impl.op](data, dtype, impl.op)
        assume(impl.applies is None or impl.applies(*args))
        got = impl.fn(*_on_device(impl, args))
        m.setenv(kernels.ENV_VAR, "reference")
        expected = registry._readable[impl.op].fn(*args)
    got, expected = (got, expected) if isinstance(expected, tuple) else ((got,), (expected,))
    for a, b in zip(got, expected):
        _close(a, b, dtype)


# -- choosing ---------------------------------------------------------------------------------
def test_a_students_own_implementation_is_asked_first(monkeypatch):
    monkeypatch.setitem(registry._faster, "leaky_relu", list(registry._faster["leaky_relu"]))
    kernels.register("leaky_relu", "cpu", "mine", applies=lambda x, s: s == 0.25)(
        lambda x, s: "mine")
    assert [i.name for i in registry._faster["leaky_relu"]][0] == "test_registry"
    assert F.elementwise._leaky_relu(np.zeros(2), 0.25) == "mine"
    assert "runs cpu_relu" in kernels.explain("leaky_relu", np.zeros(2), 0.5)


def test_the_first_that_applies_runs_else_the_readable_one(monkeypatch):
    """Two stand-ins for leaky_relu's engines: the first asked runs where it applies, the second
    where only it does, the readable one where neither does or TINYPIX_KERNELS=reference."""
    first = registry.Implementation("leaky_relu", "cpu", "first", "", lambda x, s: "first",
                                    lambda x, s: x.dtype == np.float32, __name__)
    second = first._replace(name="second", fn=lambda x, s: "second", applies=lambda x, s: s > 0)
    monkeypatch.setitem(registry._faster, "leaky_relu", [first, second])
    run = F.elementwise._leaky_relu
    assert run(np.zeros(2, np.float32), 0.5) == "first"
    assert run(np.zeros(2), 0.5) == "second"
    assert np.array_equal(run(np.array([-1.0, 2.0]), 0.0), [0.0, 2.0])  # the readable one
    assert "not first: does not apply" in kernels.explain("leaky_relu", np.zeros(2), 0.5)
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    assert np.array_equal(run(np.array([-1.0, 2.0], np.float32), 0.5), [-0.5, 2.0])
    monkeypatch.setenv(kernels.ENV_VAR, "numba")
    with pytest.raises(ValueError, match="TINYPIX_KERNELS='numba' is not one of '', 'reference'"):
        run(np.zeros(2), 0.5)


def test_explain_names_the_implementation_and_why_not_the_others(monkeypatch):
    x, w = np.zeros((16, 32, 8, 8), np.float32), np.zeros((64, 32, 3, 3), np.float32)
    geo = conv.Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1)
    text = kernels.explain("conv2d", x, w, geo)
    assert text.splitlines()[0].startswith("conv2d on cpu, float32 (16, 32, 8, 8), float32 (64, 32, 3, 3)")
    assert "runs cpu_winograd (tinypix.kernels.cpu_winograd)" in text
    assert "not cpu_patches: does not apply" in text
    assert "runs cpu_conv" in kernels.explain("conv2d", x[:, :8], w[:, :8], geo)
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    assert "runs readable (tinypix.functional.conv)" in kernels.explain("conv2d", x, w, geo)
    with pytest.raises(KeyError, match="no op 'conv3d'; the ops are: batch_norm"):
        kernels.implementations("conv3d")


def test_trace_records_each_op_call_in_order():
    x = tinypix.randn(2, 3, 8, 8, requires_grad=True)
    w = tinypix.randn(4, 3, 3, 3, requires_grad=True)
    with kernels.trace() as ran:
        F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2).sum().backward()
    assert [c.op for c in ran] == ["conv2d", "leaky_relu", "max_pool2d", "max_pool2d_backward",
                                   "leaky_relu_backward", "conv2d_backward"]
    assert ran[0].device == "cpu" and ran[0].shapes[:2] == ((2, 3, 8, 8), (4, 3, 3, 3))
    assert all(c.implementation != "readable" for c in ran)
    with kernels.trace() as outer:   # nested blocks, the inner one empty: each records its own
        with kernels.trace() as nothing:
            pass
        F.relu(x)
    assert nothing == [] and [c.op for c in outer] == ["leaky_relu"]
    seen = []                         # another thread's calls are not this thread's
    with kernels.trace() as mine:
        worker = threading.Thread(target=lambda: seen.append(F.relu(x)))
        worker.start()
        worker.join()
    assert seen and mine == []


def test_importing_tinypix_loads_no_engine():
    code = ("import sys, tinypix, tinypix.kernels; "
            "assert 'numba' not in sys.modules and 'tinypix.kernels.cpu' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
