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
over memory with a few additions per value; where each product is big enough (``applies``) they
cost less than the products save (benchmarks/RESULTS.md). The price is rounding: the transforms
scale values by up to 8 and cancel them again. In float32 the error is about ten times
im2col's: 1e-6 to 3e-6 of the output's root mean square (im2col: 2e-7 to 3e-7), measured on
layers of 16 to 256 channels. For the same reason a NaN or an infinity in the input turns the
whole 4x4 output tiles it reaches into NaN (im2col: the 9 outputs whose windows hold it, an
infinity staying infinite), and float32 inputs above about 1e36 can overflow in the transforms.

Backward needs no new kernels. As in cpu_conv at stride 1, the input gradient is a forward
convolution of dy with the flipped, transposed filter (padding 2 - p); and the weight gradient
is the transpose of the products: dU[xi] = dM[xi] @ V[xi]^T with dM = A dy A^T per tile (the
adjoint of the output transform) and dw = G^T dU G. So ``unfold_and_multiply`` mirrors
cpu_conv._unfold_and_multiply, the input transform taking im2col's place: one pass over a chunk
of images serves both products that read it.

Each pass is shared out over cpu_team's threads by planes, and the 36 products by position xi.
cpu_conv calls this on the whole batch when there are few images per thread (4x256x16x16 ran
in 17-19 ms that way against 22-24 by images). Otherwise each thread runs
``transformed_products`` on its own share of the images, every pass and product whole on that
thread, with the weights transformed once for all threads and their dU summed and
transformed back once.

Arrays in, arrays out. Tests hold this equal to the readable im2col path (kernels/reference.py
via functional/conv.py) and the 1-D formulas below equal to the matrices.
"""
import numpy as np
from numba import njit, prange

from . import cpu  # noqa: F401 -- sets the number of threads the parallel loops use
from . import cpu_team

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

# Where Winograd beats im2col (measured on the layers of both U-Nets in benchmarks/unet.py,
# RESULTS.md): with 16 or more channels on each side and 32 or more on one, its 36 products must
# be big enough for OpenBLAS -- either MIN_TILES or more tiles in the batch, or at least
# MIN_MULTIPLY_ADDS = input channels x output channels x tiles each. With 64 tiles (8x8 images,
# batch 16) it ran 6-30% faster once cpu_team shared out the images (64 -> 128 channels:
# 3.3 ms against 4.1 forward+backward; 128 -> 128: 6.2 against 7.7), but it tied or lost
# without a team, each product threaded by OpenBLAS; with 16 tiles it lost (128 -> 128 at 4x4:
# 4.4 against 3.3), and it did for 16 -> 16 channels; on bigger layers it ran up to 40% faster
# (e.g. 32 -> 64 channels at 64x64, batch 8: 30-36 ms against 51-55).
MIN_CHANNELS, MIN_WIDER, MIN_MULTIPLY_ADDS = 16, 32, 1 << 22
MIN_TILES, MIN_TILES_ALONE = 64, 256  # with a team of threads (cpu_team.py), without one
# Input-transform values per chunk of images: a few images at a time, for products wide enough
# to run near OpenBLAS's full rate (2 MB chunks were slower, whole batches no faster).
CHUNK_BYTES = 32 << 20


def tiles(hw, padding):
    """(OH, OW) and the (rows, columns) of 4x4 output tiles of a 3x3 stride-1 convolution."""
    (H, W), (ph, pw) = hw, padding
    OH, OW = H + 2 * ph - 2, W + 2 * pw - 2
    return (OH, OW), (-(-OH // 4), -(-OW // 4))


def applies(geo, a, out_channels):
    """Whether the products of cpu_conv that read a (N, C, H, W) and make out_channels channels
    with geometry ``geo`` (functional/conv.py's Geometry) run here."""
    if (geo.kernel_size, geo.stride, geo.dilation, geo.groups) != ((3, 3), (1, 1), (1, 1), 1):
        return False
    N, C = a.shape[:2]
    _, (th, tw) = tiles(a.shape[2:], geo.padding)
    batch_tiles = N * th * tw
    return (min(C, out_channels) >= MIN_CHANNELS and max(C, out_channels) >= MIN_WIDER
            and (batch_tiles >= (MIN_TILES if cpu_team.size() > 1 else MIN_TILES_ALONE)
                 or C * out_channels * batch_tiles >= MIN_MULTIPLY_ADDS)
            and a.dtype in (np.float32, np.float64))


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


# -- input transform: x -> V ---------------------------------------------------------------
# The helpers of the three passes are inlined into them: called, they cost more than their loops
# on small images (the output transform of 4x256x16x16 took 1.7 ms, inlined 0.4-0.7 ms). The
# passes allow reordered sums (fastmath), so that those loops vectorize.
@njit(inline="always")
def _row(x, n, c, h, zero):
    return x[n, c, h] if 0 <= h < x.shape[2] else zero


@njit(inline="always")
def _bt_down(r0, r1, r2, r3, r4, r5, s, offset):
    """s[:, offset + q] = B^T (r0[q], ..., r5[q]): the column transform of one band of rows."""
    for q in range(r0.shape[0]):
        o = offset + q
        s[0, o], s[1, o], s[2, o], s[3, o], s[4, o], s[5, o] = _bt(r0[q], r1[q], r2[q], r3[q], r4[q], r5[q])


@njit(inline="always")
def _bt_along(s, out, t0):
    """out[6u + v, t0 + j] = (B^T s[u, 4j : 4j+6])[v]: the row transform of each tile of the band."""
    for u in range(6):
        e, su = 6 * u, s[u]
        for j in range((s.shape[1] - 2) // 4):
            q, t = 4 * j, t0 + j
            (out[e, t], out[e + 1, t], out[e + 2, t], out[e + 3, t], out[e + 4, t],
             out[e + 5, t]) = _bt(su[q], su[q + 1], su[q + 2], su[q + 3], su[q + 4], su[q + 5])


@njit(parallel=True, nogil=True, cache=True, fastmath=True)
def _input_transform(x, V, ph, pw, th, tw, first, last):
    """x (n, C, H, W) -> V (36*C, n*th*tw): row 36-position xi, channel c is V[xi*C + c], its
    tiles in (image, tile row, tile column) order. Tile (i, j) covers padded rows 4i..4i+5.
    Planes (n, c) first to last - 1, numbered n*C + c."""
    N, C, H, W = x.shape
    tiles, width = th * tw, 4 * tw + 2
    for p in prange(first, last):  # each (n, c) plane writes its own stretch of 36 rows: no conflicts
        n, c = p // C, p % C
        zero = np.zeros(W, x.dtype)
        s = np.zeros((6, width), x.dtype)  # padding columns stay 0
        out = np.empty((36, tiles), x.dtype)
        w_in = min(W, width - pw)
        for i in range(th):
            h = 4 * i - ph
            _bt_down(_row(x, n, c, h, zero)[:w_in], _row(x, n, c, h + 1, zero)[:w_in],
                     _row(x, n, c, h + 2, zero)[:w_in], _row(x, n, c, h + 3, zero)[:w_in],
                     _row(x, n, c, h + 4, zero)[:w_in], _row(x, n, c, h + 5, zero)[:w_in], s, pw)
            _bt_along(s, out, i * tw)
        for xi in range(36):  # contiguous copies; writing V in the loops above is slower
            V[xi * C + c, n * tiles:(n + 1) * tiles] = out[xi]


# -- output transform: M -> y --------------------------------------------------------------
@njit(inline="always")
def _at_down(m0, m1, m2, m3, m4, m5, z0, z1, z2, z3):
    """z_i[t] = (A^T (m0[t], ..., m5[t]))[i] for every tile t."""
    for t in range(m0.shape[0]):
        z0[t], z1[t], z2[t], z3[t] = _at(m0[t], m1[t], m2[t], m3[t], m4[t], m5[t])


@njit(inline="always")
def _at_along(z, t0, row):
    """row[4j : 4j+4] = A^T z[:, t0 + j]: one output row of a band of tiles."""
    for j in range(row.shape[0] // 4):
        t, q = t0 + j, 4 * j
        row[q], row[q + 1], row[q + 2], row[q + 3] = _at(z[0, t], z[1, t], z[2, t], z[3, t], z[4, t], z[5, t])


@njit(parallel=True, nogil=True, cache=True, fastmath=True)
def _output_transform(M, y, th, tw, first, last):
    """M (36*F, n*th*tw), laid out as V -> y (n, F, OH, OW), tiles cut at the edges; planes
    (n, f) first to last - 1."""
    N, F, OH, OW = y.shape
    tiles = th * tw
    for p in prange(first, last):
        n, f = p // F, p % F
        z = np.empty((4, 6, tiles), y.dtype)  # z[i, v]: row i of A^T m, position v, every tile
        ts = slice(n * tiles, (n + 1) * tiles)
        for v in range(6):
            _at_down(M[v * F + f, ts], M[(6 + v) * F + f, ts], M[(12 + v) * F + f, ts],
                     M[(18 + v) * F + f, ts], M[(24 + v) * F + f, ts], M[(30 + v) * F + f, ts],
                     z[0, v], z[1, v], z[2, v], z[3, v])
        row = np.empty(4 * tw, y.dtype)
        for i in range(th):
            for r in range(min(4, OH - 4 * i)):
                if 4 * tw == OW:
                    _at_along(z[r], i * tw, y[n, f, 4 * i + r])
                else:
                    _at_along(z[r], i * tw, row)
                    y[n, f, 4 * i + r] = row[:OW]


# -- the adjoint of the output transform: dy -> dM -----------------------------------------
@njit(inline="always")
def _a_along(row, z, t0):
    """z[:, t0 + j] = A row[4j : 4j+4]."""
    for j in range(row.shape[0] // 4):
        t, q = t0 + j, 4 * j
        z[0, t], z[1, t], z[2, t], z[3, t], z[4, t], z[5, t] = _a(row[q], row[q + 1], row[q + 2], row[q + 3])


@njit(inline="always")
def _a_down(z0, z1, z2, z3, o0, o1, o2, o3, o4, o5):
    """o_u[t] = (A (z0[t], ..., z3[t]))[u] for every tile t."""
    for t in range(z0.shape[0]):
        o0[t], o1[t], o2[t], o3[t], o4[t], o5[t] = _a(z0[t], z1[t], z2[t], z3[t])


@njit(parallel=True, nogil=True, cache=True, fastmath=True)
def _output_adjoint(dy, dM, th, tw, first, last):
    """dy (n, F, OH, OW) -> dM (36*F, n*th*tw), laid out as V: A g A^T for each 4x4 tile g of dy,
    which is zero beyond the edges; planes (n, f) first to last - 1."""
    N, F, OH, OW = dy.shape
    tiles = th * tw
    for p in prange(first, last):
        n, f = p // F, p % F
        z = np.zeros((4, 6, tiles), dy.dtype)  # rows below the image stay 0
        row = np.zeros(4 * tw, dy.dtype)       # and so do columns right of it
        for h in range(OH):
            row[:OW] = dy[n, f, h]
            _a_along(row, z[h % 4], (h // 4) * tw)
        out = np.empty((36, tiles), dy.dtype)
        for v in range(6):
            _a_down(z[0, v], z[1, v], z[2, v], z[3, v],
                    out[v], out[6 + v], out[12 + v], out[18 + v], out[24 + v], out[30 + v])
        for xi in range(36):
            dM[xi * F + f, n * tiles:(n + 1) * tiles] = out[xi]


# -- weights: U = G g G^T and its adjoint, one product with kron(G, G) per share of filters ---
def weight_transform(w):
    """w (F, C, 3, 3) -> U (36, F, C): U[:, f, c] = kron(G, G) @ w[f, c].ravel(). Shared out
    over the team by filters (on 2 cores, F = C = 256: 0.85-1.4 ms against 1.1-1.5 as one
    threaded product)."""
    w = np.ascontiguousarray(w)
    F, C = w.shape[:2]
    U, gg = np.empty((36, F, C), w.dtype), GG.astype(w.dtype)

    def share(p, q):
        np.matmul(gg, w[p:q].reshape((q - p) * C, 9).T, out=U[:, p:q].reshape(36, (q - p) * C))
    cpu_team.run(share, F, U.size)
    return U


def weight_adjoint(dU, w_shape):
    """dU (36, F, C) -> dw of shape w_shape (F, C, 3, 3): G^T dU G for every (f, c), by filters."""
    F, C = dU.shape[1:]
    dw, gg = np.empty(w_shape, dU.dtype), GG.astype(dU.dtype)

    def share(p, q):
        np.matmul(dU[:, p:q].reshape(36, (q - p) * C).T, gg, out=dw[p:q].reshape((q - p) * C, 9))
    cpu_team.run(share, F, dU.size)
    return dw


# -- the layer -----------------------------------------------------------------------------
def unfold_and_multiply(a, padding, w=None, d=None, w_shape=None, out=None):
    """cpu_conv._unfold_and_multiply for a 3x3 stride-1 convolution of a (N, C, H, W) with zero
    padding (ph, pw): y = conv2d(a, w) if w (F, C, 3, 3) is given, and the weight gradient
    dw = sum over images of d_n correlated with a_n, of shape w_shape = (F, C, 3, 3), if d
    (N, F, OH, OW) is given. Returns (y, dw), None for a product not asked for; y is written
    into ``out`` (N, F, OH, OW, C-contiguous) where that is given."""
    U = None if w is None else weight_transform(w)
    y, dU = transformed_products(a, padding, U, d, w_shape[0] if d is not None else None, out)
    return y, None if d is None else weight_adjoint(dU, w_shape)


def transformed_products(a, padding, U=None, d=None, F=None, out=None):
    """unfold_and_multiply's passes, with the weights already transformed (U, from
    weight_transform) and the weight gradient left transformed: returns (y, dU), dU (36, F, C)
    summed over a's images, for d (N, F, OH, OW). So shares of one batch transform the weights
    once, add their dU, and transform the sum back once (cpu_conv does)."""
    N, C = a.shape[:2]
    (ph, pw), dtype = padding, a.dtype
    (OH, OW), (th, tw) = tiles(a.shape[2:], padding)
    per_image = th * tw
    y = dU = None
    if U is not None:
        F = U.shape[1]
        y = np.empty((N, F, OH, OW), dtype) if out is None else out
    if d is not None:
        dU = np.zeros((36, F, C), dtype) if N == 0 else np.empty((36, F, C), dtype)  # (see below)
    # Each chunk makes V (36*C values per tile) and M or dM (36*F): the wider one sets its size.
    # Chunks of equal size, so that no short last chunk runs 36 narrow products.
    fit = max(1, CHUNK_BYTES // (36 * max(C, F) * per_image * np.dtype(dtype).itemsize))
    size = -(-N // -(-N // fit)) if N else 1
    buffer = np.empty(36 * C * size * per_image, dtype)  # reused; each chunk takes a prefix
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
            dM3 = dM.reshape(36, F, -1)

            def add_products(p, q):  # (36, F, C); the first chunk's products written in place
                if start == 0:       # (no zeros to add to: 4x256x16x16 forward+backward 6-9% faster)
                    np.matmul(dM3[p:q], V3[p:q].swapaxes(1, 2), out=dU[p:q])
                else:
                    dU[p:q] += dM3[p:q] @ V3[p:q].swapaxes(1, 2)
            cpu_team.run(add_products, 36, dM.size + V.size)
    return y, dU
