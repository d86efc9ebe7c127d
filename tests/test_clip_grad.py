"""nn.utils: clip_grad_norm_ / clip_grad_value_ / get_total_norm against PyTorch for drawn
gradients and norm types; parameters_to_vector and back."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinypix
import tinypix.nn as nn
from tinypix.testing import strategies as tst

SHAPES = st.lists(tst.shapes(min_dims=0, max_dims=3, max_side=4), min_size=1, max_size=4)


def _pair(torch, arrays, with_grad):
    """Parameters with gradients ``arrays`` (None: no gradient), in tinypix and in PyTorch."""
    ours, theirs = [], []
    for a, g in zip(arrays, with_grad):
        p, pt = nn.Parameter(tinypix.tensor(a)), torch.nn.Parameter(torch.tensor(a))
        if g:
            p.grad, pt.grad = tinypix.tensor(a * 3.0), torch.tensor(a * 3.0)
        ours.append(p)
        theirs.append(pt)
    return ours, theirs


@given(SHAPES.flatmap(lambda shapes: st.tuples(*[tst.arrays(s, min_value=-5, max_value=5) for s in shapes])),
       st.sampled_from([2.0, 1.0, 3.0, 0.5, math.inf, "inf", 0.0]), st.floats(0.01, 30.0), st.data())
def test_clip_grad_norm_matches_pytorch(arrays, norm_type, max_norm, data):
    torch = pytest.importorskip("torch")
    with_grad = data.draw(st.lists(st.booleans(), min_size=len(arrays), max_size=len(arrays)))
    ours, theirs = _pair(torch, arrays, with_grad)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, tinypix.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), t_total.item(), rtol=1e-12)
    for p, pt in zip(ours, theirs):
        assert (p.grad is None) == (pt.grad is None)
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(nn.utils.get_total_norm([p.grad for p in ours if p.grad is not None],
                                                       norm_type).item(),
                               torch.nn.utils.get_total_norm([p.grad for p in theirs if p.grad is not None],
                                                             norm_type).item(), rtol=1e-12)


@given(SHAPES.flatmap(lambda shapes: st.tuples(*[tst.arrays(s, min_value=-5, max_value=5) for s in shapes])),
       st.floats(0.0, 4.0))
def test_clip_grad_value_matches_pytorch(arrays, clip_value):
    torch = pytest.importorskip("torch")
    ours, theirs = _pair(torch, arrays, [True] * len(arrays))
    assert nn.utils.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, pt in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), pt.grad.numpy())


def test_clip_grad_norm_in_a_training_step_and_its_errors():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    (net(tinypix.randn(8, 3)) * 100).sum().backward()
    before = nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0)
    assert before.item() > 1.0
    after = nn.utils.get_total_norm([p.grad for p in net.parameters()])
    assert after.item() == pytest.approx(1.0, rel=1e-5)
    single = nn.Parameter(tinypix.ones(2))
    single.grad = tinypix.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 .* is non-finite"):
        nn.utils.clip_grad_norm_(single, 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_([], 1.0).item() == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        nn.utils.clip_grad_norm_((p for p in []), 1.0)


def test_parameters_to_vector_and_back():
    torch = pytest.importorskip("torch")
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)).double()
    t_net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)).double()
    net.load_state_dict(t_net.state_dict())
    vec = nn.utils.parameters_to_vector(net.parameters())
    np.testing.assert_array_equal(vec.detach().numpy(),
                                  torch.nn.utils.parameters_to_vector(t_net.parameters()).detach().numpy())
    (vec * tinypix.arange(vec.numel(), dtype=tinypix.float64)).sum().backward()  # differentiable
    np.testing.assert_array_equal(net[0].weight.grad.numpy().ravel(), np.arange(6))
    nn.utils.vector_to_parameters(tinypix.arange(11, dtype=tinypix.float64), net.parameters())
    assert net[0].weight.tolist() == [[0, 1, 2], [3, 4, 5]] and net[1].bias.tolist() == [10.0]
    with pytest.raises(ValueError, match=r"vec of shape \(4,\) must be 1-D with 11 entries"):
        nn.utils.vector_to_parameters(tinypix.zeros(4), net.parameters())
