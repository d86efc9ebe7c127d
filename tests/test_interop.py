"""tinypix.interop: DLPack both ways, NumPy's __array__ with copy=, __cuda_array_interface__.

The protocols are tested as other libraries use them (``np.from_dlpack(t)``, ``np.array(t,
copy=True)``, ``torch.from_dlpack(t)``).
"""
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinypix
from tinypix import interop
from tinypix.tensor import Tensor

NUMPY_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
needs_numpy_2 = pytest.mark.skipif(not NUMPY_2, reason="NumPy passes copy= to __array__ from 2.0 on")
DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]


def test_tensor_protocols_are_interops():
    """What the tests below exercise is what Tensor exposes, not a copy."""
    assert Tensor.__dict__["__array__"] is interop.as_array
    assert Tensor.__dict__["__dlpack__"] is interop.dlpack
    assert Tensor.__dict__["__dlpack_device__"] is interop.dlpack_device
    assert Tensor.__dict__["__cuda_array_interface__"].fget is interop.cuda_array_interface
    assert tinypix.from_dlpack is interop.from_dlpack


@st.composite
def arrays(draw, dtypes=DTYPES):
    """Arrays of any listed dtype, 0-d to 4-d, sometimes empty, sometimes a strided view."""
    a = draw(hnp.arrays(st.sampled_from(dtypes), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                                   max_side=4)))
    return a[..., ::2] if a.ndim and draw(st.booleans()) else a


def _shares(a, b):
    return a.size == 0 or np.shares_memory(a, b)


def _scribble(a):
    """Write a value into ``a`` that differs from what was there (NaN included); return where."""
    where = (0,) * a.ndim
    a[where] = not a[where] if a.dtype == np.bool_ else 2 if a[where] == 1 else 1
    return where


@given(arrays())
def test_numpy_and_tinypix_share_memory_through_dlpack(a):
    t = tinypix.from_dlpack(a)
    assert isinstance(t, Tensor) and t.device == "cpu" and t.dtype == a.dtype and t.shape == a.shape
    assert _shares(t.data, a)
    back = np.from_dlpack(t)
    assert back.dtype == a.dtype and back.shape == a.shape and _shares(back, a)
    np.testing.assert_array_equal(back, a)
    if a.size:
        where = _scribble(back)
        assert t.data[where] == a[where] == back[where]


def test_the_functions_themselves_export_a_capsule_numpy_reads():
    t = tinypix.from_numpy(np.arange(6.0).reshape(2, 3))

    class Exporter:  # hands the tensor out only through interop's functions
        def __dlpack__(self, **kwargs):
            return interop.dlpack(t, **kwargs)

        def __dlpack_device__(self):
            return interop.dlpack_device(t)

    assert type(interop.dlpack(t)).__name__ == "PyCapsule" and tuple(interop.dlpack_device(t)) == (1, 0)
    a = np.from_dlpack(Exporter())
    a[1, 2] = -1
    assert t.tolist() == [[0, 1, 2], [3, 4, -1]]
    assert np.shares_memory(interop.from_dlpack(Exporter()).data, t.data)
    assert np.shares_memory(tinypix.from_dlpack(t).data, t.data)


@given(arrays())
def test_pytorch_cpu_tensors_round_trip_sharing_memory(a):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(a)
    t = tinypix.from_dlpack(x)
    assert t.shape == tuple(x.shape) and t.dtype == a.dtype
    np.testing.assert_array_equal(t.data, a)
    y = torch.from_dlpack(t)
    assert y.dtype == x.dtype and y.shape == x.shape
    if a.size:
        assert y.data_ptr() == x.data_ptr()
        where = _scribble(t.data)
        assert x[where].item() == y[where].item() == t.data[where].item()


def test_tensors_that_require_grad_are_not_exported():
    torch = pytest.importorskip("torch")
    w = tinypix.ones(3, requires_grad=True)
    message = "Can't export tensors that require gradient, use tensor.detach()"
    for export in (np.from_dlpack, torch.from_dlpack, tinypix.from_dlpack, interop.dlpack):
        with pytest.raises(BufferError, match=message):
            export(w)
    assert np.from_dlpack(w.detach()).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(BufferError, match=r"from_dlpack: cannot import this Tensor: Can't export"):
        tinypix.from_dlpack(torch.ones(2, requires_grad=True))  # PyTorch's own refusal, named


def test_from_dlpack_names_what_tinypix_cannot_hold():
    with pytest.raises(TypeError, match=r"from_dlpack: expected an object with __dlpack__.*got list"):
        tinypix.from_dlpack([1.0, 2.0])

    class Elsewhere:
        def __init__(self, device):
            self.device = device

        def __dlpack__(self, **kwargs):
            raise AssertionError("must not be asked for its memory")

        def __dlpack_device__(self):
            return self.device

    for device, where in (((10, 0), r"ROCm memory \(DLPack device type 10, id 0\)"),
                          ((2, 1), r"CUDA memory \(DLPack device type 2, id 1\).*'cuda' \(GPU 0\)"),
                          ((99, 0), r"unknown memory")):
        with pytest.raises(ValueError, match=where):
            tinypix.from_dlpack(Elsewhere(device))
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match=r"from_dlpack: cannot import this Tensor.*bfloat16.*x\.float\(\)"):
        tinypix.from_dlpack(torch.ones(2, dtype=torch.bfloat16))


@needs_numpy_2
@given(arrays([np.int32, np.int64, np.float32, np.float64]), st.sampled_from([np.float64, np.complex128]))
def test_numpy_array_copies_and_asarray_shares(a, other):
    t = tinypix.from_numpy(a)
    before = a.copy()
    for copied in (np.array(t), np.array(t, copy=True), interop.as_array(t, copy=True)):
        assert copied.dtype == t.dtype and copied.shape == t.shape
        if copied.size:
            assert not np.shares_memory(copied, t.data)
            _scribble(copied)
        np.testing.assert_array_equal(t.data, before)  # writing to the copy leaves the tensor alone
    for shared in (np.asarray(t), np.asarray(t, copy=False), interop.as_array(t, copy=False)):
        assert shared is t.data
    converted = np.asarray(t, dtype=other)
    if np.dtype(other) != t.dtype:
        assert converted.dtype == other and (converted.size == 0 or not np.shares_memory(converted, t.data))
        np.testing.assert_array_equal(converted, before.astype(other))
        with pytest.raises(ValueError, match=rf"{t.dtype}, not {np.dtype(other)}.*copy=False"):
            np.asarray(t, dtype=other, copy=False)
        with pytest.raises(ValueError, match="copy=False forbids"):
            interop.as_array(t, other, copy=False)


def test_cuda_tensors_are_not_converted_implicitly():
    # interop's functions read only .device, .dtype and .data, so a stand-in for a 'cuda' tensor
    # checks these branches on machines without a GPU too (the real one is tested below)
    gpu = types.SimpleNamespace(device="cuda", dtype=np.dtype(np.float32), data=None, requires_grad=False)
    for copy in (None, True):
        with pytest.raises(TypeError, match=r"'cuda' tensor.*call \.cpu\(\) first"):
            interop.as_array(gpu, copy=copy)
    with pytest.raises(ValueError, match=r"on 'cuda'.*copy=False forbids.*after \.cpu\(\)"):
        interop.as_array(gpu, copy=False)


def test_cpu_tensors_have_no_cuda_array_interface():
    t = tinypix.ones(2)
    assert not hasattr(t, "__cuda_array_interface__")
    with pytest.raises(AttributeError, match="only 'cuda' tensors have one"):
        interop.cuda_array_interface(t)


# ---- on the GPU ---------------------------------------------------------------------------------

def test_cupy_and_tinypix_share_gpu_memory(cupy):
    c = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
    t = tinypix.from_dlpack(c)
    assert t.device == "cuda" and t.data.data.ptr == c.data.ptr
    t.data[0, 0] = 9
    assert float(c[0, 0]) == 9
    back = cupy.from_dlpack(t)
    assert back.data.ptr == c.data.ptr
    assert hasattr(t, "__cuda_array_interface__")
    assert t.__cuda_array_interface__ == c.__cuda_array_interface__
    assert cupy.asarray(t).data.ptr == c.data.ptr  # through __cuda_array_interface__
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        np.asarray(t)
    if NUMPY_2:
        with pytest.raises(ValueError, match="on 'cuda'"):
            np.asarray(t, copy=False)
    assert np.asarray(t.cpu()).tolist() == [[9, 1, 2], [3, 4, 5]]
    w = tinypix.ones(2, device="cuda", requires_grad=True)
    with pytest.raises(BufferError, match="require gradient"):
        cupy.from_dlpack(w)
