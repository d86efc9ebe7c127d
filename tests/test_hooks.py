"""Module machinery beyond registration: forward hooks and pre-hooks, requires_grad_,
named_modules / get_submodule, dtype casts, Unflatten, and state_dict names of shared modules."""
import numpy as np
import pytest

import tinypix
import tinypix.nn as nn


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2), nn.Tanh()))


def test_forward_hooks_see_and_may_replace_inputs_and_outputs():
    net = _net()
    calls = []
    h1 = net[0].register_forward_pre_hook(lambda m, args: calls.append(("pre", args[0].shape)))
    h2 = net[0].register_forward_hook(lambda m, args, out: calls.append(("post", out.shape)))
    x = tinypix.randn(5, 3)
    y = net(x)
    assert calls == [("pre", (5, 3)), ("post", (5, 4))]
    h1.remove()
    h2.remove()
    h2.remove()  # removing twice is harmless
    net(x)
    assert len(calls) == 2
    np.testing.assert_array_equal(net(x).detach().numpy(), y.detach().numpy())

    # A pre-hook's return value replaces the inputs (a single value is wrapped in a tuple); a
    # forward hook's replaces the output, for the hooks after it and for the caller.
    with net[2].register_forward_pre_hook(lambda m, args: args[0] * 0):
        expected = np.tanh(net[2][0].bias.detach().numpy())[None].repeat(5, 0)
        np.testing.assert_allclose(net(x).detach().numpy(), expected, rtol=1e-6)
    order = []
    net.register_forward_hook(lambda m, args, out: order.append("second") or out + 1)
    net.register_forward_hook(lambda m, args, out: order.append("first") or out * 0, prepend=True)
    out = net(x)
    assert order == ["first", "second"]
    np.testing.assert_array_equal(out.detach().numpy(), np.ones((5, 2), np.float32))


def test_hooks_with_kwargs_and_always_call():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            if factor < 0:
                raise ValueError("negative factor")
            return x * factor

    m = Scale()
    seen = []
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": kwargs["factor"] * 2}),
                                with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(kwargs["factor"]), with_kwargs=True,
                            always_call=True)
    assert m(tinypix.ones(2), factor=3.0).tolist() == [6.0, 6.0]
    assert seen == [6.0]
    with pytest.raises(ValueError, match="negative factor"):
        m(tinypix.ones(2), factor=-1.0)
    assert seen == [6.0, -2.0]  # always_call: run although forward raised
    m.register_forward_pre_hook(lambda mod, args, kwargs: 5, with_kwargs=True)
    with pytest.raises(RuntimeError, match="must return None or \\(args, kwargs\\)"):
        m(tinypix.ones(2), factor=1.0)
    with pytest.raises(TypeError, match="a hook must be callable"):
        m.register_forward_hook(3)


def test_hooks_collect_features_like_pytorchs():
    """The homework idiom: record intermediate activations with hooks, same numbers as PyTorch."""
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    ours = _net().double()
    theirs = tnn.Sequential(tnn.Linear(3, 4), tnn.ReLU(), tnn.Sequential(tnn.Linear(4, 2), tnn.Tanh())).double()
    ours.load_state_dict(theirs.state_dict())
    feats, t_feats = {}, {}
    for model, store in ((ours, feats), (theirs, t_feats)):
        for name, m in model.named_modules():
            if name:
                m.register_forward_hook(lambda m, a, out, k=name, store=store: store.__setitem__(k, out))
    xs = np.random.default_rng(0).standard_normal((4, 3))
    ours(tinypix.tensor(xs))
    theirs(torch.tensor(xs))
    assert list(feats) == list(t_feats) == ["0", "1", "2.0", "2.1", "2"]
    for k in feats:
        np.testing.assert_allclose(feats[k].detach().numpy(), t_feats[k].detach().numpy(), rtol=1e-12)


def test_requires_grad_freezes_parameters():
    net = _net()
    assert net[2].requires_grad_(False) is net[2]
    net(tinypix.randn(2, 3)).sum().backward()
    assert net[0].weight.grad is not None and net[2][0].weight.grad is None
    assert [p.requires_grad for p in net.parameters()] == [True, True, False, False]
    net.requires_grad_()
    assert all(p.requires_grad for p in net.parameters())


def test_named_modules_get_submodule_and_shared_modules_match_pytorch():
    torch = pytest.importorskip("torch")
    lin, t_lin = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ours = nn.Sequential(lin, nn.ReLU(), nn.Sequential(lin, nn.Linear(2, 3)))
    theirs = torch.nn.Sequential(t_lin, torch.nn.ReLU(), torch.nn.Sequential(t_lin, torch.nn.Linear(2, 3)))
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert ([n for n, _ in ours.named_modules(remove_duplicate=False)] ==
            [n for n, _ in theirs.named_modules(remove_duplicate=False)])
    assert [n for n, _ in ours.named_modules(prefix="net")][:2] == ["net", "net.0"]
    assert list(ours.state_dict()) == list(theirs.state_dict())  # a shared module under each name
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ours.get_submodule("2.1") is ours[2][1] and ours.get_submodule("") is ours
    assert ours.get_parameter("2.1.bias") is ours[2][1].bias
    bn = nn.Sequential(nn.BatchNorm1d(2))
    assert bn.get_buffer("0.running_var") is bn[0].running_var
    with pytest.raises(AttributeError, match="Sequential has no attribute `7`"):
        ours.get_submodule("2.7")
    with pytest.raises(AttributeError, match="`weight` is not an nn.Module"):
        ours.get_submodule("0.weight")
    with pytest.raises(AttributeError, match="Linear has no parameter `gamma`"):
        ours.get_parameter("0.gamma")


def test_dtype_casts_and_apply():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    assert net.half()[0].weight.dtype == np.float16
    assert net[1].num_batches_tracked.dtype == np.int64
    assert net.float()[0].weight.dtype == np.float32
    assert net.double()[1].running_mean.dtype == np.float64
    names = []
    assert net.apply(lambda m: names.append(type(m).__name__)) is net
    assert names == ["Linear", "BatchNorm1d", "Sequential"]  # children first, as in PyTorch


def test_unflatten_inverts_flatten_like_pytorch():
    torch = pytest.importorskip("torch")
    x = np.arange(2 * 12 * 5, dtype=np.float64).reshape(2, 12, 5)
    for dim, size in ((1, (3, 4)), (-2, (2, -1, 3)), (2, (5, 1))):
        ours, theirs = nn.Unflatten(dim, size), torch.nn.Unflatten(dim, size)
        assert repr(ours) == repr(theirs)
        np.testing.assert_array_equal(ours(tinypix.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy())
    y = nn.Unflatten(1, (3, 4))(tinypix.tensor(x, requires_grad=True))
    assert nn.Flatten(1, 2)(y).shape == (2, 12, 5)
    with pytest.raises(IndexError, match="dim 3 is out of range"):
        nn.Unflatten(3, (2, 2))(tinypix.tensor(x))
