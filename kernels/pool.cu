// Max pooling with indices, its backward, and max unpooling with its backward.
//
// Conventions as in im2col.cu: one thread per element, flat `index` unflattened into named
// indices, `long long` sizes, templates over T (float or double), no #include (NVRTC).
// An "index" stored in `indices` is a flat position h*W + w inside one (n, c) plane, as in
// PyTorch; a plane's first element sits at plane*(plane size), with plane = n*C + c.

// y, indices: (N, C, OH, OW) from x: (N, C, H, W); one thread per output (n, c, oh, ow).
//
// reference.max_pool2d visits the window's taps (i, j) row-major, reading input position
//     (h, w) = (oh*sh - ph + i*dh, ow*sw - pw + j*dw),
// with padding counting as -inf, and takes a value v when v > best (so the first maximum wins)
// or when v is NaN (so NaN propagates, and the last NaN's index is kept). It starts from -inf
// at the window's first tap inside the image. Here the padding taps are skipped (-inf never
// wins) and the first tap inside the image is always taken, which leaves the same value and
// index. cuda.py refuses, as reference does, a window with no tap inside the image.
template <typename T>
__global__ void max_pool2d(const T *x, T *y, long long *indices,
                           long long N, long long C, long long H, long long W,
                           long long kh, long long kw, long long OH, long long OW,
                           long long sh, long long sw, long long ph, long long pw,
                           long long dh, long long dw) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * OH * OW) return;  // the last block may run past the end

    // index = (plane*OH + oh)*OW + ow with plane = n*C + c
    long long rest = index;
    long long ow = rest % OW;  rest /= OW;
    long long oh = rest % OH;
    long long plane = rest / OH;

    T best = 0;          // replaced by the first tap inside the image
    long long arg = -1;  // -1 until that tap is found
    for (long long i = 0; i < kh; ++i) {
        long long h = oh * sh - ph + i * dh;
        if (h < 0 || h >= H) continue;
        for (long long j = 0; j < kw; ++j) {
            long long w = ow * sw - pw + j * dw;
            if (w < 0 || w >= W) continue;
            T v = x[(plane * H + h) * W + w];
            bool is_nan = v != v;  // true only for NaN; needs no math header
            if (arg < 0 || v > best || is_nan) {
                best = v;
                arg = h * W + w;
            }
        }
    }
    y[index] = best;
    indices[index] = arg;
}

// dx: (N, C, H, W), zeroed by the caller, from dy, indices: (N, C, OH, OW); one thread per dy entry.
//
// reference.max_pool2d_backward: dx[n, c].flat[indices[n, c, oh, ow]] += dy[n, c, oh, ow].
// Overlapping windows (stride < kernel) can share a winner, so several threads may add to one
// pixel: atomicAdd makes each addition whole. Only the order of those few additions varies
// between runs, which can change a float result in its last bits. A deterministic gather (one
// thread per pixel, as in col2im) would need the pooling geometry, which this backward is not
// given: it sees only the indices.
template <typename T>
__global__ void max_pool2d_backward(const T *dy, const long long *indices, T *dx,
                                    long long N, long long C, long long OH, long long OW,
                                    long long H, long long W) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * OH * OW) return;

    long long plane = index / (OH * OW);  // index = plane*OH*OW + (position in the plane)
    long long position = indices[index];
    if (position < 0 || position >= H * W) return;  // not from max_pool2d: never write outside the plane
    atomicAdd(&dx[plane * H * W + position], dy[index]);
}

// y: (N, C, OH, OW), zeroed by the caller, from x, indices: (N, C, H, W); one thread per x entry.
//
// reference.max_unpool2d: y[n, c].flat[indices[n, c, h, w]] = x[n, c, h, w]. When an index
// repeats, the threads writing it race and one value is kept, as in PyTorch (indices from
// max_pool2d repeat only where they carry the same value).
template <typename T>
__global__ void max_unpool2d(const T *x, const long long *indices, T *y,
                             long long N, long long C, long long H, long long W,
                             long long OH, long long OW) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * H * W) return;

    long long plane = index / (H * W);
    long long position = indices[index];
    if (position < 0 || position >= OH * OW) return;  // never write outside the plane
    y[plane * OH * OW + position] = x[index];
}

// dx: (N, C, H, W) from dy: (N, C, OH, OW) and indices: (N, C, H, W); one thread per dx entry.
//
// reference.max_unpool2d_backward: dx[n, c, h, w] = dy[n, c].flat[indices[n, c, h, w]],
// a gather, so every thread writes only its own entry.
template <typename T>
__global__ void max_unpool2d_backward(const T *dy, const long long *indices, T *dx,
                                      long long N, long long C, long long H, long long W,
                                      long long OH, long long OW) {
    long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= N * C * H * W) return;

    long long plane = index / (H * W);
    long long position = indices[index];
    bool inside = 0 <= position && position < OH * OW;  // never read outside the plane
    dx[index] = inside ? dy[plane * OH * OW + position] : T(0);
}
