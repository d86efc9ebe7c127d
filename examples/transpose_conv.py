"""Transpose convolution is convolution, transposed -- and why it can paint checkerboards.

Lecture idea: a convolution is a matrix. Flatten the input image into a vector x and the output
into y; then y = C x for a big, sparse matrix C whose rows hold copies of the filter, shifted.
``tinypix.nn.functional.conv_matrix`` builds C. Multiplying by its transpose C^T goes the other
way, from the output size back to the input size -- from few pixels to many at stride 2. That is
all ``conv_transpose2d`` is (same weight, same layout): each input pixel lays down a copy of the
filter scaled by its value, ``stride`` pixels apart, and overlapping tiles add up.

The script
  1. prints the lecture's 1-D example (pixels a b c d, filter x y z, padding 1) as a matrix, and
     the stride-2 case, where C^T maps 2 values to 5: upsampling;
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


def show_matrix(name, m):
    print(f"{name} ({m.shape[0]} x {m.shape[1]}):")
    for row in m:
        print("   [" + " ".join(f"{v:3g}" for v in row) + "]")


def one_d():
    # The filter x y z = 1 2 3, as a 1 x 3 kernel on a 1-row image (padding only along the width).
    w = tinypix.tensor([[[[1.0, 2.0, 3.0]]]])
    C = F.conv_matrix(w, (1, 1, 4), padding=(0, 1)).numpy()
    print("1-D convolution, pixels a b c d, filter x y z = 1 2 3, stride 1, padding 1:  y = C x")
    show_matrix("C", C)
    print("   row i holds the filter shifted to output i: y = [ay+bz, ax+by+cz, bx+cy+dz, cx+dy]\n")

    C2 = F.conv_matrix(w, (1, 1, 5), stride=(1, 2), padding=(0, 1)).numpy()
    print("the same filter at stride 2 on 5 pixels: 3 outputs (downsampling)")
    show_matrix("C", C2)
    show_matrix("C^T (upsampling: 3 values -> 5)", C2.T)
    y = np.array([1.0, 10.0, 100.0], dtype=np.float32)
    up = F.conv_transpose2d(tinypix.tensor(y.reshape(1, 1, 1, 3)), w, stride=(1, 2), padding=(0, 1)).numpy().ravel()
    print(f"   conv_transpose2d([1, 10, 100]) = {up}  ==  C^T @ [1, 10, 100] = {C2.T @ y}")
    print("   each input value lays down the filter [1 2 3], two pixels further each time; overlaps add\n")


def two_d(cfg):
    tinypix.manual_seed(cfg.seed)
    w = tinypix.randn(1, 1, 3, 3)
    C = F.conv_matrix(w, (1, 4, 4), stride=2, padding=1).numpy()          # (2*2, 4*4)
    x = tinypix.randn(1, 1, 4, 4)
    y = tinypix.randn(1, 1, 2, 2)
    conv = F.conv2d(x, w, stride=2, padding=1)
    # (4 + 2 - 3) % 2 = 1: conv2d at stride 2 skipped a row and a column; output_padding restores them.
    convT = F.conv_transpose2d(y, w, stride=2, padding=1, output_padding=1)
    rows = [["conv2d(x) vs C @ x", float(np.abs(conv.numpy().ravel() - C @ x.numpy().ravel()).max())],
            ["conv_transpose2d(y) vs C^T @ y", float(np.abs(convT.numpy().ravel() - C.T @ y.numpy().ravel()).max())],
            ["<conv(x), y> - <x, conv_transpose(y)>",
             float(abs((conv.numpy() * y.numpy()).sum() - (x.numpy() * convT.numpy()).sum()))]]
    common.print_table(["check (4x4 input, 3x3 kernel, stride 2, padding 1)", "max abs difference"], rows,
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


def tiles(cfg):
    """Pictures of tiles laid by a stride-2 transpose convolution, and the checkerboard of uneven overlap."""
    one = np.zeros((1, 1, 4, 4), dtype=np.float32)
    one[0, 0, 1, 1] = 1.0
    two = one.copy()
    two[0, 0, 1, 2] = 0.5
    ones = np.ones((1, 1, 4, 4), dtype=np.float32)
    k3 = tinypix.ones(1, 1, 3, 3)
    k4 = tinypix.ones(1, 1, 4, 4)
    panels = [
        ("one pixel -> one 3x3 tile\n(stride 2)", F.conv_transpose2d(tinypix.tensor(one), k3, stride=2)),
        ("two neighbours: tiles\noverlap and add", F.conv_transpose2d(tinypix.tensor(two), k3, stride=2)),
        ("constant input, 3x3 kernel,\nstride 2: checkerboard", F.conv_transpose2d(tinypix.tensor(ones), k3, stride=2)),
        ("constant input, 4x4 kernel,\nstride 2: even overlap", F.conv_transpose2d(tinypix.tensor(ones), k4, stride=2)),
        ("constant input,\nbilinear x2: flat", F.interpolate(tinypix.tensor(ones), scale_factor=2, mode="bilinear",
                                                               align_corners=False)),
    ]
    # A smooth image upsampled by a random 3x3 transpose conv still shows the grid; bilinear does not.
    ramp = np.linspace(0, 1, 8, dtype=np.float32)
    smooth = tinypix.tensor((ramp[:, None] * ramp[None, :])[None, None])
    tinypix.manual_seed(cfg.seed)
    w = tinypix.rand(1, 1, 3, 3) + 0.5
    panels += [("smooth 8x8 image, random\n3x3 transpose conv", F.conv_transpose2d(smooth, w, stride=2, padding=1,
                                                                                      output_padding=1)),
               ("smooth 8x8 image,\nbilinear x2", F.interpolate(smooth, scale_factor=2, mode="bilinear",
                                                                 align_corners=False))]
    counts = panels[2][1].numpy()[0, 0]
    print("how many tiles cover each output pixel (constant input 4x4, 3x3 kernel of ones, stride 2):")
    for row in counts.astype(int):
        print("   " + " ".join(str(v) for v in row))
    interior = panels[3][1].numpy()[0, 0][2:-2, 2:-2]
    covered = np.unique(interior).astype(int).tolist()
    print(f"with a 4x4 kernel the interior is covered evenly: {covered} tiles everywhere\n")

    plt = common.pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.3 * len(panels), 2.8))
    for ax, (title, picture) in zip(axes, panels):
        values = picture.numpy()[0, 0]
        ax.imshow(values, cmap="magma", vmin=0, vmax=values.max(), interpolation="nearest")  # 0 is black
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    common.save_figure(fig, cfg.out, "tiles_and_checkerboard.png")


def main():
    cfg = common.setup("transpose_conv", __doc__, {}, {})
    one_d()
    two_d(cfg)
    tiles(cfg)


if __name__ == "__main__":
    main()
