"""Tensor construction, dtype rules, conversion and printing."""
import subprocess
import sys

import numpy as np
import pytest

import tinypix as tp


def test_default_dtypes_follow_pytorch():
    assert tp.tensor([1.0, 2.0]).dtype == np.float32
    assert tp.tensor([1, 2]).dtype == np.int64
    assert tp.tensor([True]).dtype == np.bool_
    assert tp.tensor(np.zeros(2)).dtype == np.float64  # float64 kept when given
    assert tp.zeros(2).dtype == np.float32 and tp.randn(2, 2).dtype == np.float32
    assert tp.arange(3).dtype == np.int64 and tp.arange(0.0, 1.0, 0.5).dtype == np.float32


def test_python_scalars_do_not_promote():
    x = tp.ones(2)
    assert (x * 2.5).dtype == np.float32 and (2.5 - x).dtype == np.float32
    assert (tp.ones(2, dtype=tp.float64) + 1).dtype == np.float64
    assert (tp.arange(3) + 1).dtype == np.int64
    assert (tp.arange(3) * 0.5).dtype == np.float32  # int tensor, float scalar -> default float
    assert (tp.arange(3) / 2).dtype == np.float32
    assert (tp.ones(2) + tp.ones(2, dtype=tp.float64)).dtype == np.float64
    assert (tp.ones(2) + tp.arange(2)).dtype == np.float32


def test_creation_functions():
    assert tp.full((2, 3), 7.0).tolist() == [[7.0] * 3] * 2
    assert tp.full((2,), 7).dtype == np.int64
    assert tp.zeros_like(tp.ones(2, 3, dtype=tp.float64)).dtype == np.float64
    assert tp.ones_like(tp.ones(4)).shape == (4,)
    assert tp.empty(2, 5).shape == (2, 5)
    r = tp.rand(1000)
    assert 0 <= r.numpy().min() and r.numpy().max() < 1
    tp.manual_seed(3)
    a = tp.randn(5).numpy().copy()
    tp.manual_seed(3)
    assert np.array_equal(a, tp.randn(5).numpy())
    assert tp.stack([tp.ones(2), tp.zeros(2)]).shape == (2, 2)
    assert tp.where(tp.tensor([True, False]), tp.ones(2), tp.zeros(2)).tolist() == [1.0, 0.0]


def test_numpy_interop_shares_memory():
    a = np.zeros(3, dtype=np.float32)
    t = tp.from_numpy(a)
    a[0] = 5
    assert t[0].item() == 5
    t.numpy()[1] = 7
    assert a[1] == 7
    assert np.asarray(tp.ones(2)).tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="detach"):
        tp.ones(2, requires_grad=True).numpy()


def test_foreign_byte_order_is_copied_to_native_or_refused():
    """Big-endian data (e.g. read from a file) becomes a native tensor that backward accepts;
    from_numpy, which cannot copy, says why and what to do."""
    big = np.arange(4, dtype=">f4")
    t = tp.tensor(big, requires_grad=True)
    assert t.dtype == np.float32 and t.dtype.isnative and t.tolist() == [0, 1, 2, 3]
    (t * t).sum().backward()
    assert t.grad.tolist() == [0, 2, 4, 6]
    assert tp.tensor(big, dtype=">f8").dtype == np.float64
    with pytest.raises(ValueError, match="from_numpy: .*byte order.*tinypix.tensor"):
        tp.from_numpy(big)


def test_item_tolist_and_properties():
    x = tp.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.device == "cpu" and x.requires_grad
    assert x.sum().item() == 10.0 and x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match="one element"):
        x.item()
    assert x.to("cpu") is x and x.cpu() is x
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64
    assert not x.detach().requires_grad


def test_cast_is_differentiable():
    x = tp.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 3.0]


def test_comparisons_give_bool_tensors_outside_the_graph():
    x = tp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == np.bool_ and not m.requires_grad and m.tolist() == [False, True, True]
    assert (x == x).all().item()


def test_argmax_and_max_with_dim():
    x = tp.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 1.0]])
    assert x.argmax().item() == 3 and x.argmax(1).tolist() == [1, 0]
    values, indices = x.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert x.max((0, 1)).item() == 7.0


def test_softmax_is_stable_for_huge_logits():
    x = tp.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], requires_grad=True)
    p = x.softmax(1)
    lp = x.log_softmax(1)
    assert np.isfinite(p.detach().numpy()).all() and np.isfinite(lp.detach().numpy()).all()
    np.testing.assert_allclose(p.detach().numpy()[1], [1 / 3] * 3, rtol=1e-6)
    lp.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_index_backward_accumulates_repeated_indices():
    x = tp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[tp.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]
    y = tp.ones(2, 3, requires_grad=True)
    y[y.detach() > 0].sum().backward()
    assert y.grad.tolist() == [[1.0] * 3] * 2


def test_setitem_and_inplace_need_no_grad_for_leaves():
    w = tp.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad.*no_grad"):
        w[0] = 1.0
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad.*no_grad"):
        w.fill_(2.0)
    with tp.no_grad():
        w[0] = 1.0
        w[1:].fill_(2.0)
    assert w.tolist() == [1.0, 2.0, 2.0] and w.is_leaf and w.requires_grad
    with pytest.raises(RuntimeError, match="part of a graph.*masked_fill"):
        (w * 2)[0] = 1.0


def test_an_element_is_a_view_as_in_pytorch():
    x = tp.zeros(2, 3)
    x[1, 2].add_(5)
    x[0][1].fill_(1)
    assert x.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 5.0]]


def test_repr_is_readable():
    assert repr(tp.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert "requires_grad=True" in repr(tp.ones(2, requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(tp.ones(2, requires_grad=True) * 2)
    assert "dtype=tinypix.float64" in repr(tp.ones(1, dtype=tp.float64))


def test_import_does_not_need_a_top_level_kernels_module_or_cupy(tmp_path):
    # Run from outside the repository, so only the installed package can be imported.
    code = ("import sys, tinypix, tinypix.kernels; "
            "assert 'kernels' not in sys.modules, 'a bare kernels module was imported'; "
            "assert 'cupy' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_subpackages_load_on_first_use(tmp_path):
    # import tinypix leaves them out (import time); naming one as an attribute loads it.
    code = ("import sys, tinypix\n"
            "names = ['models', 'metrics', 'data', 'viz', 'testing', 'utils', 'utils.data']\n"
            "loaded = [n for n in names if 'tinypix.' + n in sys.modules]\n"
            "assert not loaded, f'loaded by import tinypix: {loaded}'\n"
            "assert 'tinypix.typing' not in sys.modules\n"
            "assert tinypix.models.UNet and tinypix.metrics and tinypix.data and tinypix.viz\n"
            "assert tinypix.testing.gradcheck and tinypix.utils.data.DataLoader\n"
            "missing = [n for n in names if 'tinypix.' + n not in sys.modules]\n"
            "assert not missing, f'not loaded on use: {missing}'\n"
            "assert {'models', 'utils'} <= set(dir(tinypix))\n"
            "try:\n    tinypix.no_such_module\nexcept AttributeError as e:\n    assert 'no_such_module' in str(e)\n"
            "else:\n    raise AssertionError('no AttributeError')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
