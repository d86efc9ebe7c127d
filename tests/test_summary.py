"""tinypix.summary: layer tables of the built-in models, receptive fields checked by brute force
(the input pixels that get a gradient from one output pixel), and the lecture's numbers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinypix
import tinypix.nn.functional as F
from tinypix import nn
from tinypix.models import FCN, UNet
from tinypix.summary import SummaryError, format_bytes


def by_name(s):
    return {r["name"]: r for r in s.rows}


# -- the built-in models ---------------------------------------------------------------------------
def test_unet_shapes_params_and_skip_connections():
    model = UNet(base_channels=16, depth=3)
    s = tinypix.summary(model, (3, 64, 64), batch_size=2)
    rows = by_name(s)
    assert s.total_params == sum(p.numel() for p in model.parameters()) == sum(r["params"] for r in s.rows)
    assert rows["encoders.0.0"]["output_shape"] == (2, 16, 64, 64)
    assert rows["encoders.3.5"]["output_shape"] == (2, 128, 8, 8)        # the bottleneck
    assert rows["ups.0"]["output_shape"] == (2, 64, 16, 16)
    assert rows["cat#1"]["output_shape"] == (2, 128, 16, 16)             # skip + upsampled
    assert rows["activation"]["output_shape"] == (2, 4, 64, 64)
    assert [r["name"] for r in s.rows if r["type"] == "Cat"] == ["cat#1", "cat#2", "cat#3"]
    # The lecture's rules along the encoder: 3x3 convs add 2 jumps, a 2x2 pool adds 1 and doubles it.
    assert [rows[n]["receptive_field"] for n in ("encoders.0.0", "encoders.0.3", "pool", "encoders.1.0")] \
        == [3, 5, 6, 10]
    assert (rows["pool"]["jump"], rows["pool (call 3)"]["jump"], rows["ups.0"]["jump"]) == (2, 8, 4)
    assert (s.receptive_field, s.jump, s.problems) == (100, 1, [])
    assert rows["encoders.0.0"]["activation_bytes"] == 2 * 16 * 64 * 64 * 4
    assert s.activation_bytes == sum(r["activation_bytes"] for r in s.rows)
    text = str(s)
    assert "cat#3" in text and "receptive field 100" in text and "1 MB = 2^20" in text


def test_fcn8s_fuses_skips_at_one_sixteenth_and_one_eighth():
    model = FCN(variant="8s")
    s = tinypix.summary(model, (3, 64, 64))
    rows = by_name(s)
    assert s.total_params == sum(p.numel() for p in model.parameters()) == sum(r["params"] for r in s.rows)
    assert rows["stage5.6"]["output_shape"] == (1, 128, 2, 2) and rows["stage5.6"]["jump"] == 32
    assert (rows["add#1"]["output_shape"], rows["add#1"]["jump"]) == ((1, 4, 4, 4), 16)
    assert (rows["add#2"]["output_shape"], rows["add#2"]["jump"]) == ((1, 4, 8, 8), 8)
    assert rows["score8"]["receptive_field"] == 36 < rows["add#2"]["receptive_field"]
    assert (rows["up_final"]["output_shape"], s.receptive_field, s.problems) == ((1, 4, 64, 64), 284, [])


def test_summary_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5),
                          nn.MaxPool2d(2, return_indices=True))
    apply = tinypix.autograd.Function.__dict__["apply"]
    s = tinypix.summary(model, (3, 10, 10))
    assert all(m.training and "forward" not in m.__dict__ for m in model.modules())
    assert tinypix.autograd.Function.__dict__["apply"] is apply
    assert s.rows[2]["activation_bytes"] == 0                    # eval Dropout returns its input
    assert s.rows[3]["activation_bytes"] == 4 * 4 * 4 * (4 + 8)  # pooled values and int64 indices


def test_a_shared_layer_gets_a_row_per_call_and_its_parameters_once():
    conv = nn.Conv2d(2, 2, 3, padding=1)
    s = tinypix.summary(nn.Sequential(conv, nn.ReLU(), conv), (2, 8, 8))
    assert [r["name"] for r in s.rows] == ["0", "1", "0 (call 2)"]
    assert s.total_params == 2 * 2 * 9 + 2 and s.receptive_field == 5


# -- receptive fields, measured --------------------------------------------------------------------
def measured_receptive_field(model, shape, pixels):
    """The widest set of input pixels that get a nonzero gradient from one of ``pixels``.

    Weights and inputs are positive so that nothing cancels; the model runs in eval mode (batch
    norm then treats each pixel alone) and in float64.
    """
    model.double().eval()
    for p in model.parameters():
        p.data = np.abs(p.data) + 0.01
    x = tinypix.tensor(np.random.default_rng(0).random((1,) + shape) + 0.5, requires_grad=True)
    y = model(x)
    extent = [0, 0]
    for i, j in pixels:
        x.grad = None
        y[0, 0, i, j].backward(retain_graph=True)
        g = np.abs(x.grad.numpy()).sum(axis=(0, 1))
        for axis in (0, 1):
            hit = np.flatnonzero(g.sum(axis=1 - axis))
            if hit.size:
                assert 0 < hit[0] and hit[-1] < shape[1 + axis] - 1, "the border clipped the field"
                extent[axis] = max(extent[axis], int(hit[-1] - hit[0] + 1))
    return extent[0] if extent[0] == extent[1] else tuple(extent)


@pytest.mark.parametrize("upsample, depth, size, expected", [("transpose", 3, 160, 100),
                                                              ("bilinear", 2, 64, 52)])
def test_unet_receptive_field_matches_gradients(upsample, depth, size, expected):
    model = UNet(base_channels=1, depth=depth, upsample=upsample)
    model.pool = nn.AvgPool2d(2)  # max-pool sends gradients only to each window's maximum
    assert tinypix.receptive_field(model, (3, size, size)) == expected
    c = size // 2 - 4  # 8 neighbouring output pixels: every way the upsampling layers place windows
    assert measured_receptive_field(model, (3, size, size), [(c + i, c + i) for i in range(8)]) == expected


LAYERS = st.one_of(
    st.tuples(st.just("conv"), st.integers(1, 4), st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.just("pool"), st.integers(2, 3), st.integers(1, 2), st.just(1)),
    st.tuples(st.just("transpose"), st.integers(1, 4), st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.sampled_from(["nearest", "bilinear"]), st.just(2), st.just(2), st.just(1)))


def build(spec):
    layers = []
    for kind, k, s, d in spec:
        if kind == "conv":
            layers.append(nn.Conv2d(1, 1, k, stride=s, padding=(k - 1) * d // 2, dilation=d))
        elif kind == "pool":
            layers.append(nn.AvgPool2d(k, stride=s))
        elif kind == "transpose":
            layers.append(nn.ConvTranspose2d(1, 1, k, stride=s, dilation=d))
        else:
            layers.append(nn.Upsample(scale_factor=2, mode=kind))
    return nn.Sequential(*layers)


@settings(deadline=None)
@given(st.lists(LAYERS, min_size=1, max_size=4).filter(
    lambda spec: sum(kind not in ("conv", "pool") for kind, *_ in spec) <= 2))
def test_receptive_field_matches_gradients(spec):
    model = build(spec)
    s = tinypix.summary(model, (1, 64, 64))
    n = 3 * np.max(s.receptive_field) + 16 * int(np.ceil(np.max(s.jump))) + 40  # room around the centre
    out = tinypix.summary(model, (1, n, n)).rows[-1]["output_shape"]
    c = min(out[2:]) // 2 - 4
    assert measured_receptive_field(model, (1, n, n), [(c + i, c + i) for i in range(8)]) == s.receptive_field


# -- the lecture's numbers -------------------------------------------------------------------------
def stacked_3x3(n):
    return nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(n)])


def test_stacked_3x3_convs_see_2n_plus_1_pixels():
    assert [tinypix.receptive_field(stacked_3x3(n), (1, 8, 8)) for n in (1, 2, 5)] == [3, 5, 11]
    assert tinypix.receptive_field(stacked_3x3(99), (1, 8, 8)) == 199     # not yet 200
    assert tinypix.receptive_field(stacked_3x3(100), (1, 8, 8)) == 201    # >= 200 needs 100 layers


def test_activation_memory_in_the_lectures_units():
    s = tinypix.summary(nn.Conv2d(1, 200, 1), (1, 400, 400), batch_size=20)  # 200 channels, 400x400
    per_image = s.rows[0]["activation_bytes"] // 20
    assert per_image == 200 * 400 * 400 * 4 and format_bytes(per_image) == "122 MB"
    assert format_bytes(100 * s.activation_bytes) == "238 GB"                # 100 layers, batch 20
    assert "2.38 GB" in str(s)


def test_output_sizes_and_the_alexnet_table():
    assert tinypix.conv_output_size(32, 3) == 30 and tinypix.conv_output_size(50, 3) == 48
    alexnet = nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2))
    s = tinypix.summary(alexnet, (3, 227, 227))
    sizes = [r["output_shape"][2] for r in s.rows if r["type"] in ("Conv2d", "MaxPool2d")]
    assert sizes == [55, 27, 27, 13, 13, 13, 13, 6]
    assert s.total_params == 3_747_200


def test_conv_output_size_rejects_bad_arguments():
    with pytest.raises(ValueError, match="does not fit"):
        tinypix.conv_output_size(2, 5)
    with pytest.raises(ValueError, match="stride"):
        tinypix.conv_output_size(10, 3, stride=0)


# -- problems --------------------------------------------------------------------------------------
class Skip(nn.Module):
    """Joins x with a branch that pools and upsamples it (the smallest U-Net)."""

    def __init__(self, shift=False):
        super().__init__()
        self.down, self.up, self.shift = nn.MaxPool2d(2), nn.Upsample(scale_factor=2), shift

    def forward(self, x):
        y = self.up(self.down(x))
        if self.shift:  # same size, but moved by one pixel
            y = F.pad(y, (1, 0, 1, 0))[:, :, :y.shape[2], :y.shape[3]]
        return tinypix.cat([x, y], dim=1)


def test_joining_tensors_of_different_sizes_names_the_layers():
    with pytest.raises(SummaryError, match=r"(?s)failed in Skip.forward, after 'up'.*cat: shapes.*"
                                           r"came from 'input' \(1, 1, 17, 17\), 'up' \(1, 1, 16, 16\)"):
        tinypix.summary(Skip(), (1, 17, 17))
    assert tinypix.summary(Skip(), (1, 16, 16)).problems == []


def test_joining_tensors_that_do_not_line_up_is_a_problem():
    s = tinypix.summary(Skip(shift=True), (1, 16, 16))
    assert len(s.problems) == 1 and s.problems[0].startswith("cat#1 joins tensors that do not line up")
    assert "problems:" in str(s)


def test_flattened_outputs_have_no_receptive_field():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    s = tinypix.summary(model, (1, 8, 8))
    assert s.rows[0]["receptive_field"] == 3 and s.rows[-1]["receptive_field"] is None
    with pytest.raises(ValueError, match="not an image"):
        tinypix.receptive_field(model, (1, 8, 8))


def test_bad_arguments():
    with pytest.raises(TypeError, match="Module"):
        tinypix.summary(lambda x: x, (1, 8, 8))
    with pytest.raises(ValueError, match="batch_size="):
        tinypix.summary(nn.ReLU(), (1, 1, 8, 8))
    with pytest.raises(ValueError, match="batch_size"):
        tinypix.summary(nn.ReLU(), (1, 8, 8), batch_size=0)
    with pytest.raises(SummaryError, match=r"(?s)'0' \(Conv2d\).*expected input of shape \(N, 3"):
        tinypix.summary(nn.Sequential(nn.Conv2d(3, 1, 3)), (1, 8, 8))
