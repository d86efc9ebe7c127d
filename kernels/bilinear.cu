// Bilinear resize (PyTorch's interpolate(mode='bilinear')) and its backward.
//
// Conventions as in im2col.cu: one thread per element, flat `index` unflattened into named
// indices, `long long` sizes, templates over T (float or double), no #include (NVRTC).
//
// Where each output reads from is worked out once per axis on the host by
// reference.bilinear_source_index and handed in as small tables: output row oh blends input
// rows h0[oh] and h1[oh] with weights lh0[oh] = 1 - lam and lh1[oh] = lam; output column ow
// blends columns w0[ow] and w1[ow] with weights lw0[ow] and lw1[ow].

// y: (N, C, OH, OW) from x: (N, C, H, W); one thread per output (n, c, oh, ow).
//
// reference.bilinear_interpolate computes y = Ah @ x @ Aw.T, where row oh of Ah holds lh0[oh]
// at column h0[oh] and lh1[oh] at column h1[oh] (and row ow of Aw likewise). For one output:
//     y[n, c, oh, ow] = lh0 * (lw0 * x[h0, w0] + lw1 * x[h0, w1])
//                     + lh1 * (lw0 * x[h1, w0] + lw1 * x[h1, w1])
template <typename T>
__global__ void bilinear_interpolate(const T *x, T *y,
                                     long long N, long long C, long long H, long long W,
                                     long long OH, long long OW,
                                     const long long *h0, const long long *h1,
                                     const T *lh0, const T *lh1,
                                     const long long *w0, const long long *w1,
                                     const T *lw0, const T *lw1) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * OH * OW) return;  // the last block may run past the end

    // index = (plane*OH + oh)*OW + ow with plane = n*C + c
    long long rest = index;
    long long ow = rest % OW;  rest /= OW;
    long long oh = rest % OH;
    long long plane = rest / OH;

    const T *image = x + plane * H * W;  // x[n, c]
    T top = lw0[ow] * image[h0[oh] * W + w0[ow]] + lw1[ow] * image[h0[oh] * W + w1[ow]];
    T bottom = lw0[ow] * image[h1[oh] * W + w0[ow]] + lw1[ow] * image[h1[oh] * W + w1[ow]];
    y[index] = lh0[oh] * top + lh1[oh] * bottom;
}

// dx: (N, C, H, W), zeroed by the caller, from dy: (N, C, OH, OW); one thread per dy entry.
//
// reference.bilinear_interpolate_backward computes dx = Ah.T @ dy @ Aw: each output sends its
// gradient back to the four inputs it read, with the weights it read them with. When
// upsampling, many outputs read the same input, so several threads add to one pixel: atomicAdd
// makes each addition whole (for double it needs compute capability 6.0 or newer). Only the
// order of the additions varies between runs, changing a float result in its last bits.
template <typename T>
__global__ void bilinear_interpolate_backward(const T *dy, T *dx,
                                              long long N, long long C, long long H, long long W,
                                              long long OH, long long OW,
                                              const long long *h0, const long long *h1,
                                              const T *lh0, const T *lh1,
                                              const long long *w0, const long long *w1,
                                              const T *lw0, const T *lw1) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * OH * OW) return;

    long long rest = index;
    long long ow = rest % OW;  rest /= OW;
    long long oh = rest % OH;
    long long plane = rest / OH;

    T *image = dx + plane * H * W;  // dx[n, c]
    T g = dy[index];
    atomicAdd(&image[h0[oh] * W + w0[ow]], lh0[oh] * lw0[ow] * g);
    atomicAdd(&image[h0[oh] * W + w1[ow]], lh0[oh] * lw1[ow] * g);
    atomicAdd(&image[h1[oh] * W + w0[ow]], lh1[oh] * lw0[ow] * g);
    atomicAdd(&image[h1[oh] * W + w1[ow]], lh1[oh] * lw1[ow] * g);
}
