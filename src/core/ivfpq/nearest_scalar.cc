// The baseline nearest-centroid kernel, the panel layout, and the choice of
// kernel for this CPU.
//
// "Scalar" names the level, not the code: GCC's vector types give SSE2 here
// (baseline x86-64) or NEON, without any -m flag. SSE2 has no blend, so
// instead of tracking the best index per lane, a segment of up to 256 scores
// is written to a buffer while a running minimum is kept, and only a segment
// that improves on the best so far is scanned for the first index holding
// that minimum.
#include <algorithm>
#include <cstring>
#include <limits>

#include "libravdb/core/distance.h"
#include "libravdb/core/ivfpq/nearest.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lrv::core::ivfpq {

namespace {

using V4 = float __attribute__((vector_size(16)));

inline V4 load4(const float* p) noexcept {
    V4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline V4 splat(float f) noexcept { return V4{f, f, f, f}; }
// minps semantics: b when either is NaN, so with the running minimum as b a
// NaN score never wins.
inline V4 vmin(V4 a, V4 b) noexcept { return a < b ? a : b; }

constexpr std::size_t kSegment = 256;

// The first k in [0, len) with buf[k] == v; v is known to be there.
std::size_t find_first(const float* buf, std::size_t len, float v) noexcept {
#if defined(__SSE2__)
    const __m128 needle = _mm_set1_ps(v);
    for (std::size_t k = 0; k < len; k += 4) {
        int hit = _mm_movemask_ps(_mm_cmpeq_ps(_mm_load_ps(buf + k), needle));
        if (hit != 0) return k + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(hit)));
    }
#else
    for (std::size_t k = 0; k < len; k++)
        if (buf[k] == v) return k;
#endif
    return 0;
}

// P points at a time share every load of the panel.
template <int P>
void nearest_points(const float* x, std::size_t stride, std::size_t d, const float* ct, std::size_t ld,
                    const float* norms, std::size_t count, std::uint32_t* label, float* score) noexcept {
    alignas(16) float buf[P][kSegment];
    float best[P];
    std::uint32_t best_k[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; p++) {
        best[p] = std::numeric_limits<float>::infinity();
        best_k[p] = 0;
    }
    const V4 two = splat(2.0f);
    for (std::size_t seg = 0; seg < count; seg += kSegment) {
        const std::size_t len = std::min(kSegment, count - seg);
        V4 low[P];
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) low[p] = splat(std::numeric_limits<float>::infinity());
        for (std::size_t kb = seg; kb < seg + len; kb += 16) {
            V4 a[P][4];
#pragma GCC unroll 4
            for (int p = 0; p < P; p++)
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) a[p][q] = splat(0.0f);
            const float* col = ct + kb;
            for (std::size_t t = 0; t < d; t++, col += ld) {
                const V4 c0 = load4(col), c1 = load4(col + 4), c2 = load4(col + 8), c3 = load4(col + 12);
#pragma GCC unroll 4
                for (int p = 0; p < P; p++) {
                    const V4 xv = splat(x[p * stride + t]);
                    a[p][0] += xv * c0;
                    a[p][1] += xv * c1;
                    a[p][2] += xv * c2;
                    a[p][3] += xv * c3;
                }
            }
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                const V4 nv = load4(norms + kb + 4 * q);
#pragma GCC unroll 4
                for (int p = 0; p < P; p++) {
                    const V4 s = nv - two * a[p][q];
                    std::memcpy(&buf[p][kb - seg + 4 * q], &s, sizeof s);
                    low[p] = vmin(s, low[p]);
                }
            }
        }
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            float m = std::min(std::min(low[p][0], low[p][1]), std::min(low[p][2], low[p][3]));
            // Strictly lower: an equal score in a later segment has a higher index.
            if (m < best[p]) {
                best[p] = m;
                best_k[p] = static_cast<std::uint32_t>(seg + find_first(buf[p], len, m));
            }
        }
    }
#pragma GCC unroll 4
    for (int p = 0; p < P; p++) {
        label[p] = best_k[p];
        if (score) score[p] = best[p];
    }
}

void nearest(const float* x, std::size_t n, std::size_t stride, std::size_t d, const float* ct, std::size_t ld,
             const float* norms, std::size_t count, std::uint32_t* label, float* score) noexcept {
    std::size_t i = 0;
    for (; i + 2 <= n; i += 2)
        nearest_points<2>(x + i * stride, stride, d, ct, ld, norms, count, label + i, score ? score + i : nullptr);
    if (i < n)
        nearest_points<1>(x + i * stride, stride, d, ct, ld, norms, count, label + i, score ? score + i : nullptr);
}

const NearestKernels* table_for(distance::Isa isa) noexcept {
    switch (isa) {
        case distance::Isa::Scalar:
            return &kScalarNearestKernels;
        case distance::Isa::Avx2:
            return &kAvx2NearestKernels;
        case distance::Isa::Avx512:
            return &kAvx512NearestKernels;
    }
    return nullptr;
}

const NearestKernels& choose() noexcept {
    for (int isa = static_cast<int>(distance::best().isa); isa > 0; isa--)
        if (const NearestKernels* k = nearest_for_isa(isa)) return *k;
    return kScalarNearestKernels;
}

}  // namespace

const NearestKernels kScalarNearestKernels = {nearest};

void make_panel(const float* centroids, std::size_t k, std::size_t d, float* ct, float* norms) noexcept {
    const std::size_t kpad = padded_k(k);
    for (std::size_t j = 0; j < kpad; j++) {
        if (j >= k) {
            for (std::size_t t = 0; t < d; t++) ct[t * kpad + j] = 0.0f;
            norms[j] = std::numeric_limits<float>::infinity();
            continue;
        }
        float s = 0;
        for (std::size_t t = 0; t < d; t++) {
            const float v = centroids[j * d + t];
            ct[t * kpad + j] = v;
            s += v * v;
        }
        norms[j] = s;
    }
}

const NearestKernels* nearest_for_isa(int isa) noexcept {
    if (isa < static_cast<int>(distance::Isa::Scalar) || isa > static_cast<int>(distance::Isa::Avx512)) return nullptr;
    const distance::Isa level = static_cast<distance::Isa>(isa);
    if (distance::for_isa(level) == nullptr) return nullptr;
    const NearestKernels* k = table_for(level);
    return k && k->nearest ? k : nullptr;
}

const NearestKernels& best_nearest() noexcept {
    static const NearestKernels& chosen = choose();
    return chosen;
}

}  // namespace lrv::core::ivfpq
