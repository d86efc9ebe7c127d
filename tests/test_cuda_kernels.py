"""Tests for the CUDA kernels (tinypix.kernels.cuda and kernels/*.cu).

- every .cu file compiles with nvcc, float and double instances alike (needs only nvcc, no GPU);
- on a GPU, every kernel on CuPy arrays equals reference.py on NumPy on drawn geometries,
  float32 and float64 (skipped with a reason where CuPy or a GPU is missing);
- the modules are compiled once per process, and bad inputs fail as in reference.py.
"""
import shutil
import subprocess
from importlib import resources

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinypix.kernels import cuda
from tinypix.kernels import reference as ref

DTYPES = [np.float32, np.float64]
seeds = st.integers(0, 2**32 - 1)


# ---- the sources compile, without a GPU ----------------------------------------------------------

@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_cu_files_compile_with_nvcc(tmp_path):
    """Compile each file as CuPy would, with every instance cuda.py asks for.

    A template is only compiled once instantiated: taking the address of each instance
    (``&im2col<float>``, CuPy's name expressions) makes nvcc compile it, so an error inside a
    kernel body or a kernel name that cuda.py misspells fails here. sm_90 is the H200's
    architecture (double atomicAdd needs 6.0 or newer). The three files compile in parallel.
    """
    runs = {}
    for filename in cuda.SOURCES:
        code = resources.files("tinypix.kernels").joinpath(filename).read_text(encoding="utf-8")
        instances = ", ".join(f"(void *)&{name}" for name in cuda.name_expressions(filename))
        unit = tmp_path / filename
        unit.write_text(f"{code}\nvoid *instances[] = {{{instances}}};\n", encoding="utf-8")
        command = ["nvcc", *cuda.OPTIONS, "-arch=sm_90", "-cubin", "-o", str(unit.with_suffix(".cubin")), str(unit)]
        runs[filename] = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True)
    for filename, run in runs.items():
        output, _ = run.communicate(timeout=120)
        assert run.returncode == 0, f"nvcc could not compile {filename}:\n{output}"


# ---- on the GPU: every kernel against the reference ----------------------------------------------

def assert_close(actual, expected, dtype):
    """A GPU result (fetched to the host) against a reference one; float32 to 1e-5, float64 to 1e-12.

    The tolerance covers atomicAdd, whose additions land in a different order on every run.
    """
    actual = actual.get()
    assert actual.dtype == expected.dtype == dtype
    assert actual.shape == expected.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def assert_equal(actual, expected):
    """A GPU result that must equal the reference exactly: copies, maxima and indices."""
    actual = actual.get()
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


from kernel_strategies import geometries as _geometries, pool_input, resizes as _resizes  # noqa: E402


def geometries(pool=False):
    return _geometries(pool=pool, max_batch=3, max_channels=4)  # a little larger: several GPU blocks


def resizes():
    return _resizes(max_batch=3, max_channels=4)


@pytest.mark.parametrize("dtype", DTYPES)
@given(g=geometries(), seed=seeds)
def test_im2col_col2im_match_reference(cupy, dtype, g, seed):
    shape, geometry, _ = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    cols = cuda.im2col(cupy.asarray(x), *geometry)
    assert cols.flags.c_contiguous
    assert_equal(cols, ref.im2col(x, *geometry))  # a pure copy: exact
    c = rng.standard_normal(cols.shape).astype(dtype)
    assert_close(cuda.col2im(cupy.asarray(c), shape, *geometry), ref.col2im(c, shape, *geometry), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(g=geometries(pool=True), seed=seeds)
def test_pool_unpool_match_reference(cupy, dtype, g, seed):
    shape, geometry, ceil_mode = g
    rng = np.random.default_rng(seed)
    x = pool_input(rng, shape, dtype)
    y, indices = cuda.max_pool2d(cupy.asarray(x), *geometry, ceil_mode)
    y_ref, indices_ref = ref.max_pool2d(x, *geometry, ceil_mode)
    assert_equal(y, y_ref)
    assert_equal(indices, indices_ref)
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    assert_close(cuda.max_pool2d_backward(cupy.asarray(dy), indices, shape),
                 ref.max_pool2d_backward(dy, indices_ref, shape), dtype)
    # Unpooling the pooled values: a repeated index always carries the same value, so the
    # threads that race to write it agree.
    assert_equal(cuda.max_unpool2d(y, indices, shape[2:]), ref.max_unpool2d(y_ref, indices_ref, shape[2:]))
    g_up = rng.standard_normal(shape).astype(dtype)
    assert_equal(cuda.max_unpool2d_backward(cupy.asarray(g_up), indices),
                 ref.max_unpool2d_backward(g_up, indices_ref))


@pytest.mark.parametrize("dtype", DTYPES)
@given(r=resizes(), seed=seeds)
def test_bilinear_matches_reference(cupy, dtype, r, seed):
    shape, out_hw, align_corners, scale_hw = r
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    assert_close(cuda.bilinear_interpolate(cupy.asarray(x), out_hw, align_corners, scale_hw),
                 ref.bilinear_interpolate(x, out_hw, align_corners, scale_hw), dtype)
    dy = rng.standard_normal(shape[:2] + out_hw).astype(dtype)
    assert_close(cuda.bilinear_interpolate_backward(cupy.asarray(dy), shape[2:], align_corners, scale_hw),
                 ref.bilinear_interpolate_backward(dy, shape[2:], align_corners, scale_hw), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_larger_strided_inputs_match_reference(cupy, dtype):
    """Many blocks, odd sizes, and inputs that are views (not C-contiguous) on the GPU."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7, 41, 66)).astype(dtype)
    view = cupy.asarray(x)[:, :, :, ::2]  # every other column: a strided view
    x = x[:, :, :, ::2]
    geometry = (3, 2), (2, 1), (1, 1), (1, 2)
    cols = cuda.im2col(view, *geometry)
    assert_equal(cols, ref.im2col(x, *geometry))
    assert_close(cuda.col2im(cols[:, :, ::-1], x.shape, *geometry),  # reversed: a view again
                 ref.col2im(ref.im2col(x, *geometry)[:, :, ::-1], x.shape, *geometry), dtype)
    y, indices = cuda.max_pool2d(view, *geometry, True)
    y_ref, indices_ref = ref.max_pool2d(x, *geometry, True)
    assert_equal(y, y_ref)
    assert_equal(indices, indices_ref)
    dy = rng.standard_normal(y_ref.shape[:3] + (2 * y_ref.shape[3],)).astype(dtype)[..., ::2]
    assert_close(cuda.max_pool2d_backward(cupy.asarray(dy), indices, x.shape),
                 ref.max_pool2d_backward(dy, indices_ref, x.shape), dtype)
    assert_close(cuda.bilinear_interpolate(view, (64, 17), False, (None, None)),
                 ref.bilinear_interpolate(x, (64, 17), False, (None, None)), dtype)
    dy = rng.standard_normal((5, 7, 100, 90)).astype(dtype)
    assert_close(cuda.bilinear_interpolate_backward(cupy.asarray(dy)[:, :, ::-1], x.shape[2:], True),
                 ref.bilinear_interpolate_backward(dy[:, :, ::-1], x.shape[2:], True), dtype)


def test_empty_batch(cupy):
    """No elements, no launch (CUDA refuses a grid of zero blocks)."""
    cols = cuda.im2col(cupy.zeros((0, 2, 5, 5), dtype=np.float32), (3, 3), (1, 1), (1, 1), (1, 1))
    assert cols.shape == (0, 18, 25)
    y, indices = cuda.max_pool2d(cupy.zeros((0, 2, 5, 5)), (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert y.shape == indices.shape == (0, 2, 2, 2)


def test_modules_compile_once(cupy):
    x = cupy.ones((1, 1, 4, 4), dtype=np.float32)
    cuda.im2col(x, (2, 2), (1, 1), (0, 0), (1, 1))
    compiles = cuda._module.cache_info().misses
    for _ in range(3):  # more calls, the other kernel of the file, the other dtype
        cuda.im2col(x, (2, 2), (1, 1), (0, 0), (1, 1))
        cuda.col2im(cuda.im2col(x.astype(np.float64), (2, 2), (1, 1), (0, 0), (1, 1)),
                    x.shape, (2, 2), (1, 1), (0, 0), (1, 1))
    assert cuda._module.cache_info().misses == compiles


def test_errors(cupy):
    with pytest.raises(ValueError, match="does not fit"):
        cuda.im2col(cupy.zeros((1, 1, 2, 2)), (3, 3), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="output size"):
        cuda.bilinear_interpolate(cupy.zeros((1, 1, 2, 2)), (0, 3), False)
    # Dilation 2 with padding 1 on one row: the window taps rows -1 and 1, neither inside.
    with pytest.raises(ValueError, match="only padding"):
        cuda.max_pool2d(cupy.zeros((1, 1, 1, 3)), (2, 1), (1, 1), (1, 0), (2, 1), False)
    with pytest.raises(TypeError, match="float32 or float64"):
        cuda.im2col(cupy.zeros((1, 1, 2, 2), dtype=np.float16), (1, 1), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="indices have shape"):
        cuda.max_unpool2d(cupy.zeros((1, 1, 2, 2)), cupy.zeros((1, 1, 2, 3), dtype=np.int64), (4, 4))
