"""Transpose convolution is convolution, transposed -- and why it can paint checkerboards.

Lecture idea: a convolution is a matrix. Flatten the input image into a vector x and the output
into y; then y = C x for a big, sparse matrix C whose rows hold copies of the filter, shifted.
``tinypix.nn.functional.conv_matrix`` builds C. Multiplying by its transpose C^T goes the other
way, from the output size back to the input size -- from few pixels to many at stride 2. That is
all ``conv_transpose2d`` is (same weight, same layout): each input pixel lays down a copy of the
filter scaled by its value, ``stride`` pixels apart, and overlapping tiles add up.

The script
  1. writes the lecture's 1-D example with symbols -- pixels a b c d, filter x y z, padding 1 --
     at stride 1 and at stride 2, where C^T maps 3 values to 5 (upsampling). Both matrices are
     computed, not typed in: C by running conv2d on one-hot inputs (``conv_matrix``) and C^T by
     running conv_transpose2d on one-hot inputs, with the filter x y z = 1 2 4 so that every
     cell's number names the taps in it (one bit per symbol);
  2. builds C for a small 2-D case (4x4 input, 3x3 kernel, stride 2, padding 1), checks that
     conv_transpose2d(y) == C^T y, and that <conv(x), y> == <x, conv_transpose(y)>, and draws C;
  3. draws "each low-res pixel lays a tile" at stride 2, and what uneven overlap does: a 3x3
     kernel at stride 2 covers some output pixels once, some twice, some four times (a
     checkerboard even for a constant input), a 4x4 kernel covers them evenly, and bilinear
     upsampling gives a flat result.

Run:  python examples/transpose_conv.py           (seconds; --quick is the same)
"""
import numpy as np

import common
import tinypix
import tinypix.nn.functional as F

SYMBOLS = "xyz"           # the filter's taps, in the lecture's letters
BITS = (1.0, 2.0, 4.0)    # their stand-in numbers: a sum of taps in one cell stays readable


def taps(value):
    """The symbols in one matrix cell: 2 -> 'y', 6 -> 'y+z' (from the bits of the number), 0 -> ''."""
    return "+".join(s for bit, s in zip(BITS, SYMBOLS) if int(value) & int(bit))


def product(matrix, names):
    """``matrix @ names`` written out: each row as 'ay+bz' (a vector symbol times a filter symbol)."""
    return ["+".join(f"{names[j]}{taps(v)}" for j, v in enumerate(row) if v) or "0" for row in matrix]


def matrices_1d(n, stride, padding):
    """C and C^T of the 1-D convolution with filter x y z on ``n`` pixels, both computed.

    C comes from conv2d applied to the n one-hot inputs (``conv_matrix``); T from conv_transpose2d
    applied to the one-hot inputs of the output size (its column j is conv_transpose2d of the j-th
    one), with output_padding restoring the pixels a strided conv2d skipped. The lecture's claim is
    T == C.T. Returns (C, T) as float64 arrays of shapes (m, n) and (n, m).
    """
    w = tinypix.tensor([[list(BITS)]], dtype=tinypix.float64).unsqueeze(0)     # (1, 1, 1, 3)
    C = F.conv_matrix(w, (1, 1, n), stride=(1, stride), padding=(0, padding)).numpy()
    m = C.shape[0]
    extra = (n + 2 * padding - len(BITS)) % stride
    basis = tinypix.tensor(np.eye(m).reshape(m, 1, 1, m))
    T = F.conv_transpose2d(basis, w, stride=(1, stride), padding=(0, padding), output_padding=(0, extra))
    return C, T.numpy().reshape(m, n).T


def one_d(cfg):
    """Print and draw the symbolic 1-D conv matrices; return the largest |conv_transpose - C^T|."""
    cases = [("stride 1, padding 1", 4, 1, 1), ("stride 2, padding 1", 5, 2, 1)]
    plt = common.pyplot()
    fig, axes = plt.subplots(len(cases), 2, figsize=(10, 6), gridspec_kw={"width_ratios": [5, 3]})
    worst = 0.0
    for row, (title, n, stride, padding) in zip(axes, cases):
        C, T = matrices_1d(n, stride, padding)
        worst = max(worst, float(np.abs(T - C.T).max()))
        pixels, outputs = "abcde"[:n], "abcde"[:C.shape[0]]
        print(f"1-D convolution, filter x y z, {title}: C is {C.shape[0]} x {C.shape[1]}")
        for cells, expr in zip(C, product(C, pixels)):
            print("   [" + " ".join(f"{taps(v) or '0':>3}" for v in cells) + f" ]   {expr}")
        print(f"C^T = conv_transpose2d on one-hot inputs ({T.shape[0]} x {T.shape[1]}):")
        for cells, expr in zip(T, product(T, outputs)):
            print("   [" + " ".join(f"{taps(v) or '0':>3}" for v in cells) + f" ]   {expr}")
        print()
        draw_symbolic(row[0], C, pixels, f"C: conv, {title}\n(columns: input pixels; right: C·[{' '.join(pixels)}])")
        draw_symbolic(row[1], T, outputs, f"C^T: conv_transpose, {title}\n(right: C^T·[{' '.join(outputs)}])")
    fig.suptitle("computed: C = conv2d of one-hot inputs, C^T = conv_transpose2d of one-hot inputs "
                 "(filter x y z = 1 2 4)", fontsize=9)
    fig.tight_layout()
    common.save_figure(fig, cfg.out, "conv_matrix_1d.png")
    return worst


def draw_symbolic(ax, M, names, title):
    """A matrix as a grid of symbols, its columns named, each row's product written on the right."""
    ax.imshow(M != 0, cmap="Blues", vmin=0, vmax=2.5)
    for (i, j), v in np.ndenumerate(M):
        ax.text(j, i, taps(v) or "0", ha="center", va="center", fontsize=13, color="k" if v else "0.6")
    ax.set_xticks(range(M.shape[1]), list(names))
    ax.xaxis.tick_top()
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(M.shape[0]), ["= " + e for e in product(M, names)])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def two_d(cfg):
    """The 2-D case in float64; returns (|conv - C x|, |conv_transpose - C^T y|, adjoint gap)."""
    tinypix.manual_seed(cfg.seed)
    w = tinypix.randn(1, 1, 3, 3, dtype=tinypix.float64)
    C = F.conv_matrix(w, (1, 4, 4), stride=2, padding=1).numpy()          # (2*2, 4*4)
    x = tinypix.randn(1, 1, 4, 4, dtype=tinypix.float64)
    y = tinypix.randn(1, 1, 2, 2, dtype=tinypix.float64)
    conv = F.conv2d(x, w, stride=2, padding=1)
    # (4 + 2 - 3) % 2 = 1: conv2d at stride 2 skipped a row and a column; output_padding restores them.
    convT = F.conv_transpose2d(y, w, stride=2, padding=1, output_padding=1)
    gaps = (float(np.abs(conv.numpy().ravel() - C @ x.numpy().ravel()).max()),
            float(np.abs(convT.numpy().ravel() - C.T @ y.numpy().ravel()).max()),
            float(abs((conv.numpy() * y.numpy()).sum() - (x.numpy() * convT.numpy()).sum())))
    rows = [[name, gap] for name, gap in zip(["conv2d(x) vs C @ x", "conv_transpose2d(y) vs C^T @ y",
                                              "<conv(x), y> - <x, conv_transpose(y)>"], gaps)]
    common.print_table(["check (4x4 input, 3x3 kernel, stride 2, padding 1, float64)", "max abs difference"], rows,
                       title=f"2-D: C is {C.shape[0]} x {C.shape[1]} (4 outputs x 16 inputs), "
                             f"C^T is {C.shape[1]} x {C.shape[0]}")

    plt = common.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [4, 1.3]})
    lim = np.abs(C).max()
    a.imshow(C, cmap="coolwarm", vmin=-lim, vmax=lim)
    a.set_title("C: conv2d as a matrix (rows: 2x2 outputs, cols: 4x4 inputs)", fontsize=9)
    b.imshow(C.T, cmap="coolwarm", vmin=-lim, vmax=lim)
    b.set_title("C^T: conv_transpose2d", fontsize=9)
    for ax in (a, b):
        ax.set_xticks([])
        ax.set_yticks([])
    common.save_figure(fig, cfg.out, "conv_matrix.png")
    return gaps


def tile_panels(seed):
    """(title, (H, W) array) panels: tiles laid by stride-2 transpose convolutions, and bilinear."""
    one = np.zeros((1, 1, 4, 4), dtype=np.float32)
    one[0, 0, 1, 1] = 2.0
    two = one.copy()
    two[0, 0, 1, 2] = 1.0
    ones = np.ones((1, 1, 4, 4), dtype=np.float32)
    k123 = tinypix.arange(1.0, 10.0).reshape(1, 1, 3, 3)      # distinct taps show where each lands
    k3 = tinypix.ones(1, 1, 3, 3)
    k4 = tinypix.ones(1, 1, 4, 4)
    panels = [
        ("one pixel of value 2\n-> 2 x kernel [1..9]", F.conv_transpose2d(tinypix.tensor(one), k123, stride=2)),
        ("its right neighbour, value 1:\ntiles 2 px apart, overlaps add",
         F.conv_transpose2d(tinypix.tensor(two), k123, stride=2)),
        ("constant input, 3x3 ones,\nstride 2: checkerboard", F.conv_transpose2d(tinypix.tensor(ones), k3, stride=2)),
        ("constant input, 4x4 ones,\nstride 2: even overlap", F.conv_transpose2d(tinypix.tensor(ones), k4, stride=2)),
        ("constant input,\nbilinear x2: flat", F.interpolate(tinypix.tensor(ones), scale_factor=2, mode="bilinear",
                                                               align_corners=False)),
    ]
    # A smooth image upsampled by a random 3x3 transpose conv still shows the grid; bilinear does not.
    ramp = np.linspace(0, 1, 8, dtype=np.float32)
    smooth = tinypix.tensor((ramp[:, None] * ramp[None, :])[None, None])
    tinypix.manual_seed(seed)
    w = tinypix.rand(1, 1, 3, 3) + 0.5
    panels += [("smooth 8x8 image, random\n3x3 transpose conv", F.conv_transpose2d(smooth, w, stride=2, padding=1,
                                                                                      output_padding=1)),
               ("smooth 8x8 image,\nbilinear x2", F.interpolate(smooth, scale_factor=2, mode="bilinear",
                                                                 align_corners=False))]
    return [(title, picture.numpy()[0, 0]) for title, picture in panels]


def tiles(cfg):
    """Draw the tiles and the checkerboard; print the overlap counts; return (3x3 counts, 4x4 interior counts)."""
    panels = tile_panels(cfg.seed)
    counts = panels[2][1].astype(int)
    print("how many tiles cover each output pixel (constant input 4x4, 3x3 kernel of ones, stride 2):")
    for row in counts:
        print("   " + " ".join(str(v) for v in row))
    interior = panels[3][1][2:-2, 2:-2].astype(int)
    print(f"with a 4x4 kernel the interior is covered evenly: {np.unique(interior).tolist()} tiles everywhere\n")

    plt = common.pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0))
    for i, (ax, (title, values)) in enumerate(zip(axes, panels)):
        ax.imshow(values, cmap="magma", vmin=0, vmax=values.max(), interpolation="nearest")  # 0 is black
        if i < 4:  # the small integer panels: write each pixel's sum of tiles in it
            for (r, c), v in np.ndenumerate(values):
                if v:
                    ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=5.5,
                            color="k" if v > 0.6 * values.max() else "w")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    common.save_figure(fig, cfg.out, "tiles_and_checkerboard.png")
    return counts, interior


def lessons(worst_1d, gaps_2d, counts, interior):
    """The lesson lines of this script (exact claims, nothing random: no seeds to spread over)."""
    worst = max(worst_1d, gaps_2d[1])
    shown = worst < 1e-12
    print(f"lesson: conv_transpose2d is the transpose of conv2d's matrix — {'shown' if shown else 'NOT shown'} "
          f"(max |difference| {worst_1d:.1g} on the 1-D symbolic cases, {gaps_2d[1]:.1g} on 4x4, stride 2, "
          f"float64)")
    uneven = sorted(np.unique(counts).tolist()) == [1, 2, 4] and np.unique(interior).tolist() == [4]
    print(f"lesson: stride-2 tiles of a 3x3 kernel overlap unevenly (a checkerboard), a 4x4 kernel's evenly — "
          f"{'shown' if uneven else 'NOT shown'} (3x3: each pixel covered {sorted(np.unique(counts).tolist())} times; "
          f"4x4 interior: {np.unique(interior).tolist()})")


def main():
    cfg = common.setup("transpose_conv", __doc__, {}, {})
    worst_1d = one_d(cfg)
    gaps_2d = two_d(cfg)
    counts, interior = tiles(cfg)
    lessons(worst_1d, gaps_2d, counts, interior)


if __name__ == "__main__":
    main()
