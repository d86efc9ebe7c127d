// im2col and col2im: the unfold that turns convolution into a matmul, and its adjoint.
//
// Read with kernels/reference.py beside you: each kernel computes, for one element, what a
// reference loop computes for all of them. Conventions shared by every .cu file here:
//   - one GPU thread per element of the array the kernel fills; a thread finds its element from
//     its flat position `index`, unflattened innermost axis first into named indices;
//   - arrays are C-contiguous, so an element's flat position is built back from those indices;
//   - sizes and indices are `long long`: a GPU-sized batch can hold more than 2^31 elements;
//   - kernels are templates over the element type T (float or double); kernels/cuda.py asks CuPy
//     for each instance by name, e.g. "im2col<float>";
//   - no #include: CuPy compiles these files with NVRTC, which has no host headers.

// cols: (N, C, kh, kw, OH, OW) from x: (N, C, H, W); one thread per entry of cols.
//
// reference.im2col fills, for every tap (i, j) of the kernel,
//     cols[n, c, i, j, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]
// where xpad is x with ph zero rows and pw zero columns on each side. In x's own coordinates
// that position is (h, w) = (oh*sh - ph + i*dh, ow*sw - pw + j*dw), and zero outside the image.
template <typename T>
__global__ void im2col(const T *x, T *cols,
                       long long N, long long C, long long H, long long W,
                       long long kh, long long kw, long long OH, long long OW,
                       long long sh, long long sw, long long ph, long long pw,
                       long long dh, long long dw) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * kh * kw * OH * OW) return;  // the last block may run past the end

    // index = ((((n*C + c)*kh + i)*kw + j)*OH + oh)*OW + ow
    long long rest = index;
    long long ow = rest % OW;  rest /= OW;
    long long oh = rest % OH;  rest /= OH;
    long long j = rest % kw;   rest /= kw;
    long long i = rest % kh;   rest /= kh;
    long long c = rest % C;
    long long n = rest / C;

    long long h = oh * sh - ph + i * dh;
    long long w = ow * sw - pw + j * dw;
    bool inside = 0 <= h && h < H && 0 <= w && w < W;
    cols[index] = inside ? x[((n * C + c) * H + h) * W + w] : T(0);
}

// x: (N, C, H, W) from cols: (N, C, kh, kw, OH, OW); one thread per pixel of x.
//
// reference.col2im adds every cols entry back into the pixel im2col read it from. Here each pixel
// instead gathers the entries that read it, so no two threads write to the same place and the
// result is the same from run to run. Pixel (h, w) was read by tap (i, j) of output (oh, ow) when
//     oh*sh - ph + i*dh == h   and   ow*sw - pw + j*dw == w,
// that is, when h + ph - i*dh is a multiple of sh whose quotient oh lies in [0, OH), and
// likewise for w. Each tap reads a pixel at most once, and the taps are visited in reference's
// order (i, then j), so the sums are added in the same order as there.
template <typename T>
__global__ void col2im(const T *cols, T *x,
                       long long N, long long C, long long H, long long W,
                       long long kh, long long kw, long long OH, long long OW,
                       long long sh, long long sw, long long ph, long long pw,
                       long long dh, long long dw) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * H * W) return;

    // index = ((n*C + c)*H + h)*W + w
    long long rest = index;
    long long w = rest % W;  rest /= W;
    long long h = rest % H;  rest /= H;
    long long c = rest % C;
    long long n = rest / C;

    T sum = 0;
    for (long long i = 0; i < kh; ++i) {
        long long oh_stride = h + ph - i * dh;  // oh * sh, if tap row i reads row h
        if (oh_stride < 0 || oh_stride % sh != 0) continue;
        long long oh = oh_stride / sh;
        if (oh >= OH) continue;
        for (long long j = 0; j < kw; ++j) {
            long long ow_stride = w + pw - j * dw;  // ow * sw, if tap column j reads column w
            if (ow_stride < 0 || ow_stride % sw != 0) continue;
            long long ow = ow_stride / sw;
            if (ow >= OW) continue;
            sum += cols[((((n * C + c) * kh + i) * kw + j) * OH + oh) * OW + ow];
        }
    }
    x[index] = sum;
}
