"""Winograd convolution F(4x4, 3x3) on the CPU: 3x3 stride-1 convolution with 4x fewer multiplications.

im2col multiplies every 3x3 window by every filter: 9 multiply-adds per output pixel, input
channel and filter. Winograd's minimal filtering algorithm gets a 4x4 tile of outputs from the
6x6 tile of input under it (neighbouring tiles overlap by 2) as

    Y = A^T [ (G g G^T) * (B^T d B) ] A          g: 3x3 filter, d: 6x6 input tile, Y: 4x4,
                                                 * elementwise, B^T, G, A^T the constants below.

Summed over input channels, the elementwise product at each of the 36 positions xi of a 6x6
tile is a matrix product over channels, so a whole layer is

    V[xi] = (B^T d B)[xi], every tile of every channel    (36, C, tiles)   input transform
    U[xi] = (G g G^T)[xi], every filter and channel       (36, F, C)       weight transform
    M[xi] = U[xi] @ V[xi]                                 (36, F, tiles)   36 matrix products
    y     = A^T M A, tile by tile                         (N, F, OH, OW)   output transform

36 products' worth per 16 output pixels instead of 9 * 16 = 144. The transforms are passes
over memory with a few additions per value; where each product is big enough (``layer_applies``)
they cost less than the products save (benchmarks/RESULTS.md).

What it costs in accuracy, and why it is chosen by shape alone: the transforms scale values by
up to 8 and cancel them again, so in float32 the error is about ten times im2col's (1e-6 to 3e-6
of the output's root mean square, against 2e-7 to 3e-7). For the same reason a NaN or an
infinity in the input turns every 4x4 output tile it reaches into NaN (im2col: the 9 outputs
whose windows hold it, an infinity staying infinite), and float32 inputs above about 1e36 can
overflow in the transforms. ``layer_applies`` looks at the layer's shapes and dtype only, so a
given layer runs by Winograd on every machine or on none; ``TINYPIX_KERNELS=reference`` runs the
readable im2col path instead.

Backward needs no new kernels. As in cpu_conv at stride 1, the input gradient is a forward
convolution of dy with the flipped, transposed filter (padding 2 - p); and the weight gradient
is the transpose of the products: dU[xi] = dM[xi] @ V[xi]^T with dM = A dy A^T per tile (the
adjoint of the output transform) and dw = G^T dU G. So ``unfold_and_multiply`` mirrors
cpu_conv.gather, the input transform taking im2col's place: one pass over a chunk of images
serves both products that read it.

Work is shared over cpu_team's threads by chunks of images (``images_per_chunk``, set by the
shapes alone): each thread runs ``transformed_products`` on whole chunks, the weights
transformed once for all of them, their dU added up in chunk order in float64 and transformed
back once. With fewer chunks than threads, each pass is shared out instead: the transforms by
planes, the 36 products by position xi. Either way every chunk computes the same numbers and
the sum adds them in the same order, so the weight gradient does not depend on the team's size.
"""
import numpy as np
from numba import njit

from . import cpu_team
from .cpu_conv import flip_geometry, flipped_transposed, out_hw
from .reference import conv_output_size
from .registry import FLOATS, register

BT = np.array([[4, 0, -5, 0, 1, 0],
               [0, -4, -4, 1, 1, 0],
               [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0],
               [0, 4, 0, -5, 0, 1]], dtype=float)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]])
AT = np.array([[1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 0],
               [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], dtype=float)
# The weight transform as one matrix: U[6u+v] = sum_ij G[u,i] G[v,j] g[i,j], i.e. kron(G, G) @ g.ravel().
GG = np.kron(G, G)  # (36, 9)

# Where Winograd beats im2col (measured on the layers of both U-Nets in benchmarks/unet.py, see
# RESULTS.md): 16 or more channels on each side and 32 or more on one, and 36 products big
# enough for OpenBLAS -- MIN_TILES or more tiles in the batch, or at least MIN_MULTIPLY_ADDS =
# input channels x output channels x tiles. Padding at most 2, so that backward's flipped
# layer (padding 2 - p) exists too.
MIN_CHANNELS, MIN_WIDER, MIN_MULTIPLY_ADDS, MIN_TILES = 16, 32, 1 << 22, 64
# A chunk of images: at most CHUNK_BYTES of input-transform values, at least MIN_CHUNK_TILES
# tiles (images_per_chunk).
CHUNK_BYTES, MIN_CHUNK_TILES = 32 << 20, 256
HOW = "Winograd F(4x4, 3x3): 4x fewer multiplications, a NaN spreads to its whole 4x4 tile"


def tiles(hw, padding):
    """(OH, OW) and the (rows, columns) of 4x4 output tiles of a 3x3 stride-1 convolution."""
    OH, OW = (conv_output_size(n, 3, 1, p) for n, p in zip(hw, padding))
    return (OH, OW), (-(-OH // 4), -(-OW // 4))


def layer_applies(geo, N, C, F, out_hw, dtype):
    """Whether the conv2d layer from C to F channels with geometry ``geo`` (functional/conv.py's
    Geometry), N images and an (OH, OW) output runs by Winograd: every op of the layer -- its
    forward, both gradients, and the transpose convolution that shares its weight -- asks this.
    Shapes and dtype decide, never the machine. Where it says yes, a NaN or infinity in the
    input makes NaN of every 4x4 output tile it reaches, and float32 rounding is about ten
    times im2col's (see the module docstring)."""
    if (geo.kernel_size, geo.stride, geo.dilation, geo.groups) != ((3, 3), (1, 1), (1, 1), 1):
        return False
    batch_tiles = N * -(-out_hw[0] // 4) * -(-out_hw[1] // 4)
    return (max(geo.padding) <= 2 and dtype in FLOATS
            and min(C, F) >= MIN_CHANNELS and max(C, F) >= MIN_WIDER
            and (batch_tiles >= MIN_TILES or C * F * batch_tiles >= MIN_MULTIPLY_ADDS))


# -- the ops: x (N, C, H, W), w (F, C, 3, 3), dy (N, F, OH, OW) ---------------------------------
@register("conv2d", "cpu", HOW, applies=lambda x, w, geo: layer_applies(
    geo, x.shape[0], x.shape[1], w.shape[0], out_hw(x.shape[2:], geo), x.dtype))
def conv2d(x, w, geo):
    return unfold_and_multiply(x, geo.padding, w=w)[0]


def _gradients_layer(geo, dy, C):
    """layer_applies for the gradient ops of a conv2d from C channels, given its dy."""
    return layer_applies(geo, dy.shape[0], C, dy.shape[1], dy.shape[2:], dy.dtype)


@register("conv2d_backward_data", "cpu", HOW,
          applies=lambda dy, w, geo, x_shape: _gradients_layer(geo, dy, x_shape[1]))
def conv2d_backward_data(dy, w, geo, x_shape):
    """dx: a forward convolution of dy with the flipped, transposed filter."""
    return unfold_and_multiply(dy, flip_geometry(geo).padding, w=flipped_transposed(w, 1))[0]


@register("conv2d_backward_weight", "cpu", HOW,
          applies=lambda dy, x, w_shape, geo: _gradients_layer(geo, dy, x.shape[1]))
def conv2d_backward_weight(dy, x, w_shape, geo):
    """dw from the transform of whichever of x and dy has fewer channels."""
    if w_shape[0] < x.shape[1]:
        flipped_shape = (x.shape[1], w_shape[0], 3, 3)
        dw_flip = unfold_and_multiply(dy, flip_geometry(geo).padding, d=x, w_shape=flipped_shape)[1]
        return flipped_transposed(dw_flip, 1)
    return unfold_and_multiply(x, geo.padding, d=dy, w_shape=w_shape)[1]


@register("conv2d_backward", "cpu", HOW,
          applies=lambda dy, x, w, geo: _gradients_layer(geo, dy, x.shape[1]))
def conv2d_backward(dy, x, w, geo):
    """(dx, dw), both from one transform of dy."""
    w_flip = flipped_transposed(w, 1)
    dx, dw_flip = unfold_and_multiply(dy, flip_geometry(geo).padding, w=w_flip, d=x,
                                      w_shape=w_flip.shape)
    return dx, flipped_transposed(dw_flip, 1)


@register("conv_transpose2d_backward", "cpu", HOW, applies=lambda dy, x, w, geo: layer_applies(
    geo, dy.shape[0], dy.shape[1], x.shape[1], x.shape[2:], dy.dtype))
def conv_transpose2d_backward(dy, x, w, geo):
    """(dx, dw) of conv_transpose2d, whose layer is a conv2d from dy's channels to x's: both
    from one transform of dy."""
    return unfold_and_multiply(dy, geo.padding, w=w, d=x, w_shape=w.shape)


# -- the three 1-D transforms, written out -------------------------------------------------
# Each applies one of the matrices above to a vector of 6 (or 4) values; a tile's 2-D transform
# is the 1-D one down the columns, then along the rows. Multiplications by 2 and 4 are written
# as additions: in Numba an integer constant times a float32 gives a float64.
@njit(inline="always")
def _x2(v):
    return v + v


@njit(inline="always")
def _x4(v):
    return _x2(_x2(v))


@njit(inline="always")
def _bt(d0, d1, d2, d3, d4, d5):
    """B^T d: 6 values -> 6."""
    return (_x4(d0 - d2) - d2 + d4,
            d3 + d4 - _x4(d1 + d2),
            _x4(d1 - d2) - d3 + d4,
            _x2(d3 - d1) - d2 + d4,
            _x2(d1 - d3) - d2 + d4,
            _x4(d1 - d3) - d3 + d5)


@njit(inline="always")
def _at(m0, m1, m2, m3, m4, m5):
    """A^T m: 6 values -> 4."""
    p, q, r, s = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + p + r, q + _x2(s), p + _x4(r), q + _x4(_x2(s)) + m5


@njit(inline="always")
def _a(y0, y1, y2, y3):
    """A y: 4 values -> 6, the transpose of _at (for the adjoint of the output transform)."""
    p, q = y0 + y2, y1 + y3
    e, o = y0 + _x4(y2), _x2(y1 + _x4(y3))
    return y0, p + q, p - q, e + o, e - o, y3


# -- the three passes, one (n, c) plane at a time ---------------------------------------------
# The helpers are inlined into the passes: called, they cost more than their loops on small
# images. Inner loops index with their own loop counter only (views are cut first): an index
# computed from other values might be negative as far as the compiler knows, and the check for
# that keeps a loop from being vectorized; so does a Numba slice assignment, hence the copy
# loops. The passes may reorder sums and fuse multiply-adds (_FAST), so that the loops
# vectorize; they assume nothing about NaN or infinity, which pass through as NaN.
_FAST = {"reassoc", "contract", "nsz", "arcp", "afn"}


@njit(inline="always")
def _copy(source, target):
    """target[q] = source[q] for every q of source."""
    for q in range(source.shape[0]):
        target[q] = source[q]


@njit(nogil=True, cache=True, fastmath=_FAST)
def _input_transform(x, V, ph, pw, th, tw, first, last):
    """x (n, C, H, W) -> V (36*C, n*th*tw): row 36-position xi, channel c is V[xi*C + c], its
    tiles in (image, tile row, tile column) order. Tile (i, j) covers padded rows 4i..4i+5 and
    columns 4j..4j+5. Planes (n, c) first to last - 1, numbered n*C + c."""
    N, C, H, W = x.shape
    tiles, width = th * tw, 4 * tw + 2
    band = np.zeros((6, W), x.dtype)  # the six rows of a band that reaches into the padding
    s = np.zeros((6, width), x.dtype)  # B^T down the band's columns; padding columns stay 0
    inside = s[:, pw:]
    out = np.empty((36, th, tw), x.dtype)
    w_in = min(W, width - pw)
    for p in range(first, last):
        n, c = p // C, p % C
        plane = x[n, c]
        for i in range(th):
            h = 4 * i - ph
            if h >= 0 and h + 6 <= H:
                rows = plane[h:h + 6]
            else:
                for k in range(6):
                    if 0 <= h + k < H:
                        band[k, :] = plane[h + k]
                    else:
                        band[k, :] = 0
                rows = band
            for q in range(w_in):
                inside[0, q], inside[1, q], inside[2, q], inside[3, q], inside[4, q], inside[5, q] = _bt(
                    rows[0, q], rows[1, q], rows[2, q], rows[3, q], rows[4, q], rows[5, q])
            for u in range(6):  # then B^T along the rows of each tile
                e = 6 * u
                for j in range(tw):
                    q = 4 * j
                    (out[e, i, j], out[e + 1, i, j], out[e + 2, i, j], out[e + 3, i, j],
                     out[e + 4, i, j], out[e + 5, i, j]) = _bt(s[u, q], s[u, q + 1], s[u, q + 2],
                                                               s[u, q + 3], s[u, q + 4], s[u, q + 5])
        by_position = out.reshape(36, tiles)
        for xi in range(36):  # contiguous copies; writing V in the loops above is slower
            _copy(by_position[xi], V[xi * C + c, n * tiles:(n + 1) * tiles])


@njit(inline="always")
def _at_down(m0, m1, m2, m3, m4, m5, z0, z1, z2, z3):
    """z_i[t] = (A^T (m0[t], ..., m5[t]))[i] for every tile t."""
    for t in range(m0.shape[0]):
        z0[t], z1[t], z2[t], z3[t] = _at(m0[t], m1[t], m2[t], m3[t], m4[t], m5[t])


@njit(inline="always")
def _at_along(z0, z1, z2, z3, z4, z5, row):
    """row[4j : 4j+4] = A^T (z0[j], ..., z5[j]) for each whole tile j of one output row."""
    for j in range(row.shape[0] // 4):
        q = 4 * j
        row[q], row[q + 1], row[q + 2], row[q + 3] = _at(z0[j], z1[j], z2[j], z3[j], z4[j], z5[j])


@njit(nogil=True, cache=True, fastmath=_FAST)
def _output_transform(M, y, th, tw, first, last):
    """M (36*F, n*th*tw), laid out as V -> y (n, F, OH, OW), tiles cut at the edges; planes
    (n, f) first to last - 1."""
    N, F, OH, OW = y.shape
    tiles = th * tw
    z = np.empty((4, 6, tiles), y.dtype)  # z[i, v]: row i of A^T m, position v, every tile
    row = np.empty(4 * tw, y.dtype)
    for p in range(first, last):
        n, f = p // F, p % F
        ts = slice(n * tiles, (n + 1) * tiles)
        for v in range(6):
            _at_down(M[v * F + f, ts], M[(6 + v) * F + f, ts], M[(12 + v) * F + f, ts],
                     M[(18 + v) * F + f, ts], M[(24 + v) * F + f, ts], M[(30 + v) * F + f, ts],
                     z[0, v], z[1, v], z[2, v], z[3, v])
        for i in range(th):
            band = slice(i * tw, (i + 1) * tw)
            for r in range(min(4, OH - 4 * i)):
                zr = z[r]
                _at_along(zr[0, band], zr[1, band], zr[2, band], zr[3, band], zr[4, band],
                          zr[5, band], row)
                _copy(row[:OW], y[n, f, 4 * i + r])


@njit(inline="always")
def _a_along(row, z0, z1, z2, z3, z4, z5):
    """z_u[j] = (A row[4j : 4j+4])[u] for each tile j of one row of dy."""
    for j in range(z0.shape[0]):
        q = 4 * j
        z0[j], z1[j], z2[j], z3[j], z4[j], z5[j] = _a(row[q], row[q + 1], row[q + 2], row[q + 3])


@njit(inline="always")
def _a_down(z0, z1, z2, z3, o0, o1, o2, o3, o4, o5):
    """o_u[t] = (A (z0[t], ..., z3[t]))[u] for every tile t."""
    for t in range(z0.shape[0]):
        o0[t], o1[t], o2[t], o3[t], o4[t], o5[t] = _a(z0[t], z1[t], z2[t], z3[t])


@njit(nogil=True, cache=True, fastmath=_FAST)
def _output_adjoint(dy, dM, th, tw, first, last):
    """dy (n, F, OH, OW) -> dM (36*F, n*th*tw), laid out as V: A g A^T for each 4x4 tile g of dy,
    which is zero beyond the edges; planes (n, f) first to last - 1."""
    N, F, OH, OW = dy.shape
    tiles = th * tw
    row = np.zeros(4 * tw, dy.dtype)  # columns right of the image stay 0
    out = np.empty((36, tiles), dy.dtype)
    for p in range(first, last):
        n, f = p // F, p % F
        z = np.zeros((4, 6, tiles), dy.dtype)  # rows below the image stay 0
        for h in range(OH):
            _copy(dy[n, f, h], row)
            zh, band = z[h % 4], slice((h // 4) * tw, (h // 4 + 1) * tw)
            _a_along(row, zh[0, band], zh[1, band], zh[2, band], zh[3, band], zh[4, band], zh[5, band])
        for v in range(6):
            _a_down(z[0, v], z[1, v], z[2, v], z[3, v],
                    out[v], out[6 + v], out[12 + v], out[18 + v], out[24 + v], out[30 + v])
        for xi in range(36):
            _copy(out[xi], dM[xi * F + f, n * tiles:(n + 1) * tiles])


# -- weights: U = G g G^T and its adjoint, one product with kron(G, G) per share of filters ---
def weight_transform(w):
    """w (F, C, 3, 3) -> U (36, F, C): U[:, f, c] = kron(G, G) @ w[f, c].ravel(), by filters."""
    w = np.ascontiguousarray(w)
    F, C = w.shape[:2]
    U, gg = np.empty((36, F, C), w.dtype), GG.astype(w.dtype)

    def share(p, q):
        np.matmul(gg, w[p:q].reshape((q - p) * C, 9).T, out=U[:, p:q].reshape(36, (q - p) * C))
    cpu_team.run(share, F, U.size)
    return U


def weight_adjoint(dU, w_shape, dtype):
    """dU (36, F, C) -> dw of shape w_shape (F, C, 3, 3) in ``dtype``: G^T dU G for every (f, c),
    computed in dU's precision (float64 where it is a sum over chunks), by filters."""
    F, C = dU.shape[1:]
    dw, gg = np.empty(w_shape, dtype), GG.astype(dU.dtype)

    def share(p, q):
        dw[p:q] = (dU[:, p:q].reshape(36, (q - p) * C).T @ gg).reshape((q - p, C, 3, 3))
    cpu_team.run(share, F, dU.size)
    return dw


# -- the layer -----------------------------------------------------------------------------
def images_per_chunk(N, C, F, per_image, dtype):
    """How many images one chunk of the layer takes: enough for MIN_CHUNK_TILES tiles, so that its
    weight-gradient products outweigh adding them up, and no more (more chunks can go to more
    threads), nor more than fit in CHUNK_BYTES (a chunk makes V, 36*C values per tile, and M
    or dM, 36*F). Chunks are of equal size, so that no short last chunk runs narrow products.
    Shapes alone decide: the weight gradient is a sum over these chunks, added in their order,
    so it is the same on any machine."""
    fit = max(1, CHUNK_BYTES // (36 * max(C, F) * per_image * np.dtype(dtype).itemsize))
    size = min(fit, -(-MIN_CHUNK_TILES // per_image))
    return -(-N // -(-N // size)) if N else 1


def unfold_and_multiply(a, padding, w=None, d=None, w_shape=None):
    """cpu_conv.gather for a 3x3 stride-1 convolution of a (N, C, H, W) with zero padding
    (ph, pw): y = conv2d(a, w) if w (F, C, 3, 3) is given, and the weight gradient
    dw = sum over images of d_n correlated with a_n, of shape w_shape = (F, C, 3, 3), if d
    (N, F, OH, OW) is given. Returns (y, dw), None for a product not asked for.

    The team's threads take whole chunks each, every pass of a chunk on one thread; with fewer
    chunks than threads, each pass is shared out instead. The chunks, and so the numbers, are
    the same either way."""
    N, C = a.shape[:2]
    U = None if w is None else weight_transform(w)
    F = w_shape[0] if w is None else w.shape[0]
    (OH, OW), (th, tw) = tiles(a.shape[2:], padding)
    y = None if w is None else np.empty((N, F, OH, OW), a.dtype)
    size = images_per_chunk(N, C, F, th * tw, a.dtype)
    if -(-N // size) < cpu_team.get_num_threads():
        dU = transformed_products(a, padding, U, d, F, y, size)[1]
    else:
        def chunk(start, stop):
            return transformed_products(a[start:stop], padding, U, None if d is None else d[start:stop],
                                        F, None if y is None else y[start:stop], size)[1]
        parts = cpu_team.run_chunks(chunk, N, size, work=36 * N * th * tw * (C + F))  # V, M or dM
        dU = None if d is None else _sum(parts)
    return y, None if d is None else weight_adjoint(dU, w_shape, a.dtype)


def _sum(parts):
    """The sum of the arrays in ``parts``, added in order in float64 (the one part, if one)."""
    if len(parts) == 1:
        return parts[0]
    total = parts[0].astype(np.float64)
    for part in parts[1:]:
        total += part
    return total


def transformed_products(a, padding, U=None, d=None, F=None, out=None, size=None):
    """unfold_and_multiply's passes, ``size`` images at a time, each pass shared out over the
    team, with the weights already transformed (U, from weight_transform) and the weight
    gradient left transformed: returns (y, dU), dU (36, F, C) the sum over the chunks of a's
    images (_sum), for d (N, F, OH, OW). So chunks of one batch can transform the weights once,
    add their dU, and transform the sum back once. y is written into ``out`` (N, F, OH, OW,
    C-contiguous) where that is given."""
    N, C = a.shape[:2]
    (ph, pw), dtype = padding, a.dtype
    (OH, OW), (th, tw) = tiles(a.shape[2:], padding)
    per_image = th * tw
    if U is not None:
        F = U.shape[1]
    y = None if U is None else np.empty((N, F, OH, OW), dtype) if out is None else out
    size = size or images_per_chunk(N, C, F, per_image, dtype)
    buffer = np.empty(36 * C * size * per_image, dtype)  # reused; each chunk takes a prefix
    parts = []
    for start in range(0, N, size):
        n = min(size, N - start)
        V = buffer[:36 * C * n * per_image].reshape(36 * C, n * per_image)
        chunk = np.ascontiguousarray(a[start:start + n])
        cpu_team.run(lambda p, q: _input_transform(chunk, V, ph, pw, th, tw, p, q), n * C, V.size)
        V3 = V.reshape(36, C, -1)
        if U is not None:
            M = np.empty((36, F, n * per_image), dtype)
            cpu_team.run(lambda p, q: np.matmul(U[p:q], V3[p:q], out=M[p:q]), 36, M.size + V.size)
            M2, out_chunk = M.reshape(36 * F, -1), y[start:start + n]
            cpu_team.run(lambda p, q: _output_transform(M2, out_chunk, th, tw, p, q), n * F, M.size)
        if d is not None:
            dM = np.empty((36 * F, n * per_image), dtype)
            d_chunk = np.ascontiguousarray(d[start:start + n])
            cpu_team.run(lambda p, q: _output_adjoint(d_chunk, dM, th, tw, p, q), n * F, dM.size)
            dM3, dU = dM.reshape(36, F, -1), np.empty((36, F, C), dtype)
            cpu_team.run(lambda p, q: np.matmul(dM3[p:q], V3[p:q].swapaxes(1, 2), out=dU[p:q]),
                         36, dM.size + V.size)
            parts.append(dU)
    if d is None:
        return y, None
    return y, _sum(parts) if parts else np.zeros((36, F, C), dtype)
