"""The lecture's pictures, computed by tinypix: every number in them comes out of a tinypix op.

Lecture ideas, one picture each (all written to examples/out/lecture_pictures/):
  1. unpooling.png -- max pooling remembers where each maximum was (``max_pool2d(...,
     return_indices=True)``); max unpooling (``max_unpool2d``) puts each value back there and
     zeros elsewhere. Next to it: nearest-neighbour unpooling (``interpolate``), the lecture's
     8 8 6 6 grid, and "bed of nails" (``max_unpool2d`` with every index at a window's corner).
  2. conv_matrix_1d.png -- the 1-D convolution as a matrix with symbols (pixels a b c d, filter
     x y z) and its transpose, both computed on one-hot inputs (from transpose_conv.py).
  3. tiles_and_checkerboard.png -- a stride-2 transpose convolution lays a scaled copy of the
     kernel per input pixel; overlaps add, unevenly for a 3x3 kernel (from transpose_conv.py).
  4. receptive_field.png -- which input pixels one output pixel sees, read off the gradient of
     that pixel with respect to the input: n stacked 3x3 convs see 2n + 1 pixels; each 2x2
     pooling doubles how much every later conv adds. Checked against ``tinypix.receptive_field``.
  5. patch_windows.png -- the windows a per-patch classifier sees, cut out by conv2d with one-hot
     filters (im2col is a convolution), and how many windows read each pixel (conv_transpose2d of
     the windows: k*k in the interior -- the work the fully convolutional net does not repeat).

Nothing here trains or draws random numbers (except the scene for picture 5), so the lessons are
exact claims rather than comparisons over seeds.

Run:  python examples/lecture_pictures.py           (seconds; --quick is the same)
"""
import numpy as np

import common
import tinypix
import tinypix.nn.functional as F
import transpose_conv
from tinypix import nn
from tinypix.data import SyntheticScenes

SETTINGS = dict(size=32, patch_sizes=(3, 5, 13), stack_depths=(1, 2, 3, 4, 5, 6), rf_input=64)

# The lecture's 4x4 input: its 2x2 max pooling is [[8, 6], [4, 3]], each maximum somewhere else
# in its window, so max unpooling visibly differs from the two unpoolings that forget positions.
POOLING_INPUT = np.array([[1, 2, 6, 3],
                          [3, 8, 2, 1],
                          [1, 2, 2, 3],
                          [4, 0, 1, 1]], dtype=np.float32)


# -- 1. unpooling ----------------------------------------------------------------------------------
def unpooling(x=POOLING_INPUT):
    """Pool ``x: (H, W)`` 2x2 and unpool it three ways; returns a dict of (H, W) / (H/2, W/2) arrays.

    Keys: input, pooled, indices (flat h*W + w of each maximum), nearest (each value copied to its
    2x2 block), bed_of_nails (each value at its window's top-left corner), max_unpool (each value
    back at its maximum's position).
    """
    H, W = x.shape
    pooled, indices = F.max_pool2d(tinypix.tensor(x[None, None]), 2, return_indices=True)
    r, c = np.meshgrid(np.arange(H // 2), np.arange(W // 2), indexing="ij")
    corners = tinypix.tensor((2 * r * W + 2 * c)[None, None])   # the same index format, fixed positions
    return {"input": x, "pooled": pooled.numpy()[0, 0], "indices": indices.numpy()[0, 0],
            "nearest": F.interpolate(pooled, scale_factor=2, mode="nearest").numpy()[0, 0],
            "bed_of_nails": F.max_unpool2d(pooled, corners, 2).numpy()[0, 0],
            "max_unpool": F.max_unpool2d(pooled, indices, 2, output_size=(H, W)).numpy()[0, 0]}


def draw_grid(ax, values, title, windows=2, marked=()):
    """A small grid with its numbers written in, 2x2 windows outlined, ``marked`` cells in bold."""
    ax.imshow(values, cmap="Blues", vmin=0, vmax=1.6 * max(values.max(), 1), interpolation="nearest")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=14,
                weight="bold" if (i, j) in marked else "normal", color="k" if v else "0.55")
    for k in range(0, values.shape[0] + 1, windows):
        ax.axhline(k - 0.5, color="k", lw=2)
        ax.axvline(k - 0.5, color="k", lw=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def unpooling_picture(cfg):
    g = unpooling()
    W = g["input"].shape[1]
    argmax = {divmod(int(i), W) for i in g["indices"].ravel()}
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.4))
    draw_grid(axes[0], g["input"], "input (maxima in bold)", marked=argmax)
    draw_grid(axes[1], g["pooled"], "max_pool2d(2)\nremembers where each max was", windows=1)
    draw_grid(axes[2], g["nearest"], "nearest unpooling\n(interpolate, x2)")
    draw_grid(axes[3], g["bed_of_nails"], "bed of nails\n(max_unpool2d, corner indices)")
    draw_grid(axes[4], g["max_unpool"], "max unpooling\n(max_unpool2d, pooling's indices)", marked=argmax)
    common.save_figure(fig, cfg.out, "unpooling.png")

    rows = [[name] + [" ".join(f"{v:g}" for v in row) for row in g[key]] + [""] * (4 - len(g[key]))
            for name, key in (("input", "input"), ("max_pool2d 2x2", "pooled"), ("nearest unpooling", "nearest"),
                              ("bed of nails", "bed_of_nails"), ("max unpooling", "max_unpool"))]
    common.print_table(["grid", "row 0", "row 1", "row 2", "row 3"], rows,
                       title="1. pooling and unpooling 4x4 -> 2x2 -> 4x4")
    back = all(g["max_unpool"][i, j] == g["input"][i, j] for i, j in argmax)
    zeros = int((g["max_unpool"] == 0).sum()) == g["input"].size - len(argmax)
    print(f"lesson: max unpooling puts each value back where its maximum was, zeros elsewhere — "
          f"{'shown' if back and zeros else 'NOT shown'} ({len(argmax)} of {g['pooled'].size} values at their "
          f"argmax, {int((g['max_unpool'] == 0).sum())} zeros; nearest unpooling's first row "
          f"{' '.join(f'{v:g}' for v in g['nearest'][0])})\n")


# -- 4. receptive fields -------------------------------------------------------------------------
def layer_stack(stages, pool=nn.AvgPool2d):
    """A 1-channel net: ``stages`` is a string like 'cc p cc' (c = 3x3 conv of ones, p = 2x2 pooling).

    The convs are linear with all-one weights, so the gradient of an output pixel with respect to
    an input pixel counts the paths between them: positive exactly on the receptive field.
    Average pooling keeps that; max pooling's gradient would reach only each window's winner,
    though the pixels it looks at are the same.
    """
    layers = []
    for s in stages.replace(" ", ""):
        if s == "c":
            conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
            nn.init.ones_(conv.weight)
            layers.append(conv)
        else:
            layers.append(pool(2))
    return nn.Sequential(*layers)


def gradient_map(model, size):
    """d(centre output pixel) / d(input): an (size, size) array, nonzero where the pixel looks."""
    x = tinypix.zeros(1, 1, size, size, requires_grad=True)
    y = model(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    return x.grad.numpy()[0, 0]


def extent(g):
    """Width of the nonzero region of a gradient map (its height is the same for square kernels)."""
    cols = np.nonzero(np.abs(g).sum(axis=0) > 0)[0]
    return int(cols.max() - cols.min() + 1)


def receptive_fields(cfg):
    """Rows (name, stages, gradient rf, tinypix.receptive_field, lecture's rule) and the maps to draw."""
    plain = [("c" * n, f"{n} conv{'s' if n > 1 else ''}", 2 * n + 1) for n in cfg.stack_depths]
    rule_rf, jump, pooled = 1, 1, []
    for upto, stage in enumerate(["cc", "p", "cc", "p", "cc"]):
        for s in stage:
            rule_rf, jump = (rule_rf + 2 * jump, jump) if s == "c" else (rule_rf + jump, 2 * jump)
        stages = " ".join(["cc", "p", "cc", "p", "cc"][:upto + 1])
        pooled.append((stages, " + ".join("2 convs" if t == "cc" else "pool" for t in stages.split()), rule_rf))
    rows, maps = [], []
    for stages, name, rule in plain + pooled:
        g = gradient_map(layer_stack(stages), cfg.rf_input)
        by_summary = tinypix.receptive_field(layer_stack(stages, nn.MaxPool2d), (1, cfg.rf_input, cfg.rf_input))
        rows.append([name, stages.count("c"), stages.count("p"), extent(g), by_summary, rule])
        maps.append((name, g))
    common.print_table(["layers", "3x3 convs", "2x2 poolings", "rf from the gradient", "tinypix.receptive_field",
                        "lecture's rule"], rows,
                       title=f"4. receptive fields: input pixels one centre output pixel depends on "
                             f"({cfg.rf_input}x{cfg.rf_input} input)")
    return rows, maps


def receptive_field_picture(cfg):
    rows, maps = receptive_fields(cfg)
    n_plain = len(cfg.stack_depths)
    plt = common.pyplot()
    cols = max(n_plain, len(maps) - n_plain)
    fig, axes = plt.subplots(2, cols, figsize=(2.2 * cols, 5.2), squeeze=False)
    half, c = 18, cfg.rf_input // 2
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, ((name, g), row) in enumerate(zip(maps, rows)):
        ax = axes[0, k] if k < n_plain else axes[1, k - n_plain]
        crop = g[c - half:c + half, c - half:c + half]
        # Path counts fall off fast from the centre: a log scale shows the whole window.
        ax.imshow(np.log10(np.maximum(crop / crop.max(), 1e-8)), cmap="magma", vmin=-8, vmax=0,
                  interpolation="nearest")
        stage = name if k <= n_plain else "+ " + name.split(" + ")[-1]
        ax.set_title(f"{stage}\nsees {row[3]}x{row[3]} px", fontsize=8)
    fig.suptitle("gradient of the centre output pixel with respect to the input (central 36x36 px, log scale; "
                 "black: 0)\ntop: n stacked 3x3 convs see 2n+1 px; bottom: the same convs with 2x2 pooling between",
                 fontsize=9)
    common.save_figure(fig, cfg.out, "receptive_field.png")
    plain, last = rows[:n_plain], rows[-1]
    ok = all(r[3] == r[4] == r[5] for r in rows)
    print(f"lesson: n stacked 3x3 convs see 2n+1 pixels; each pooling doubles what later convs add — "
          f"{'shown' if ok else 'NOT shown'} (widths from the gradient {' '.join(str(r[3]) for r in plain)} for "
          f"n = {' '.join(str(r[1]) for r in plain)}; {last[1]} convs and {last[2]} poolings see {last[3]} px, "
          f"which takes {last[3] // 2} convs without pooling; all equal tinypix.receptive_field)\n")


# -- 5. patch windows ----------------------------------------------------------------------------------
def windows(x, k):
    """Every k x k window of ``x: (1, C, H, W)``, centred on each pixel (zero padding k // 2).

    Cut out by conv2d with C*k*k one-hot filters, each copying one (channel, row, column) of the
    window: (1, C*k*k, H, W), so ``windows(x, k)[0, :, i, j].reshape(C, k, k)`` is the patch a
    per-patch classifier labels pixel (i, j) from.
    """
    C = x.shape[1]
    one_hot = tinypix.tensor(np.eye(C * k * k, dtype=np.float32).reshape(C * k * k, C, k, k))
    return F.conv2d(x, one_hot, padding=k // 2)


def reads_per_pixel(size, k):
    """How many of the size x size centred k x k windows read each pixel: conv_transpose2d lays a
    k x k tile of ones per window (the adjoint of cutting them out). (size, size) array."""
    return F.conv_transpose2d(tinypix.ones(1, 1, size, size), tinypix.ones(1, 1, k, k), padding=k // 2).numpy()[0, 0]


def patch_windows_picture(cfg):
    scene = SyntheticScenes(1, size=cfg.size, seed=cfg.seed)[0]
    image, mask = scene["image"], scene["mask"]
    x = tinypix.tensor(image[None])
    # One pixel of each class in the scene (the middle one in reading order), then a corner.
    centres = [tuple(int(v) for v in np.argwhere(mask == c)[len(np.argwhere(mask == c)) // 2])
               for c in range(SyntheticScenes.num_classes) if (mask == c).any()]
    centres = (centres + [(cfg.size // 4, cfg.size // 4)])[:4]
    shown = (cfg.patch_sizes[1], cfg.patch_sizes[-1])
    plt = common.pyplot()
    fig = plt.figure(figsize=(13, 4.6))
    grid = fig.add_gridspec(2, 2 + len(centres), width_ratios=[3.2, 0.2] + [1] * len(centres))
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(common.as_rgb(image), interpolation="nearest")
    for number, ((i, j), color) in enumerate(zip(centres, ["w", "c", "y", "m"]), 1):
        for k, style in zip(shown, ["-", "--"]):
            ax.add_patch(plt.Rectangle((j - k // 2 - 0.5, i - k // 2 - 0.5), k, k, fill=False, ec=color, ls=style))
        ax.plot(j, i, "o", color=color, ms=3)
        ax.text(j + 0.8, i - 0.8, str(number), color=color, fontsize=9, weight="bold")
    ax.set_title(f"windows {shown[0]}x{shown[0]} (solid) and {shown[1]}x{shown[1]} (dashed),\n"
                 f"one per pixel to label", fontsize=8)
    ax.set_axis_off()
    names = SyntheticScenes.classes
    for row, k in enumerate(shown):
        cut = windows(x, k).numpy()[0]
        for col, (i, j) in enumerate(centres):
            a = fig.add_subplot(grid[row, 2 + col])
            a.imshow(common.as_rgb(cut[:, i, j].reshape(3, k, k)), interpolation="nearest")
            label = names[mask[i, j]] if mask[i, j] != 255 else "boundary (ignored)"
            a.set_title(f"{col + 1}: {k}x{k} at ({i}, {j})\nlabel: {label}", fontsize=7)
            a.set_axis_off()
    fig.suptitle("5. what a per-patch classifier sees: patches cut out by conv2d with one-hot filters", fontsize=9)
    common.save_figure(fig, cfg.out, "patch_windows.png")

    rows, reads_inside = [], []
    for k in cfg.patch_sizes:
        reads = reads_per_pixel(cfg.size, k)
        reads_inside.append((k, int(reads.max())))
        rows.append([f"{k}x{k}", cfg.size * cfg.size, int(reads.sum()), int(reads.max()),
                     f"{cfg.size} - {k} + 1 = {cfg.size - k + 1}"])
    common.print_table(["patch", f"windows per {cfg.size}x{cfg.size} image", "pixels read", "reads per interior pixel",
                        "windows per row without padding"], rows,
                       title="5. patch windows (pixels read: image pixels, not padding)")
    ok = all(n == k * k for k, n in reads_inside)
    print(f"lesson: a per-patch classifier reads each pixel k*k times (the windows overlap) — "
          f"{'shown' if ok else 'NOT shown'} (" + ", ".join(f"{k}x{k}: {n}" for k, n in reads_inside) +
          " reads per interior pixel, from conv_transpose2d of the windows)\n")


def main():
    cfg = common.setup("lecture_pictures", __doc__, SETTINGS, SETTINGS)
    unpooling_picture(cfg)
    worst = transpose_conv.one_d(cfg)
    gaps = transpose_conv.two_d(cfg)
    counts, interior = transpose_conv.tiles(cfg)
    transpose_conv.lessons(worst, gaps, counts, interior)
    print()
    receptive_field_picture(cfg)
    patch_windows_picture(cfg)


if __name__ == "__main__":
    main()
