// AVX2 + FMA nearest-centroid kernel: blocks of 16 centroids as two
// registers, two points at a time sharing each panel load. Each block's two
// halves are merged first (the lower half wins ties, having the lower
// indices), so one best score and index per lane and point suffice, which
// keeps everything in the 16 YMM registers.
//
// This file alone is compiled with -mavx2 -mfma -mf16c; the rules of
// src/core/distance/avx2.cc apply (internal, always-inlined helpers, nothing
// from a shared header that could become a COMDAT function).
#include "libravdb/core/ivfpq/nearest.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__AVX2__) || !defined(__FMA__)
#error "nearest_avx2.cc must be compiled with -mavx2 -mfma -mf16c (see Makefile / test/unit/CMakeLists.txt)"
#endif

#include <immintrin.h>

namespace lrv::core::ivfpq {
namespace {

#define LRV_INLINE inline __attribute__((always_inline))

LRV_INLINE __m256i select(__m256i a, __m256i b, __m256 mask) noexcept {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), mask));
}

// Lowest score over the lanes, then the lowest index among lanes holding it.
LRV_INLINE void reduce(__m256 v, __m256i idx, std::uint32_t* label, float* score) noexcept {
    __m256 m = _mm256_min_ps(v, _mm256_permute2f128_ps(v, v, 1));
    m = _mm256_min_ps(m, _mm256_permute_ps(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm256_min_ps(m, _mm256_permute_ps(m, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m256 at = _mm256_cmp_ps(v, m, _CMP_EQ_OQ);
    __m256i i = select(_mm256_set1_epi32(-1), idx, at);
    i = _mm256_min_epu32(i, _mm256_permute2x128_si256(i, i, 1));
    i = _mm256_min_epu32(i, _mm256_shuffle_epi32(i, _MM_SHUFFLE(1, 0, 3, 2)));
    i = _mm256_min_epu32(i, _mm256_shuffle_epi32(i, _MM_SHUFFLE(2, 3, 0, 1)));
    // No lane matched only when every score is NaN: report centroid 0.
    const std::uint32_t k = static_cast<std::uint32_t>(_mm_cvtsi128_si32(_mm256_castsi256_si128(i)));
    *label = _mm256_movemask_ps(at) == 0 ? 0 : k;
    if (score) *score = _mm256_cvtss_f32(m);
}

template <int P>
LRV_INLINE void nearest_points(const float* x, std::size_t stride, std::size_t d, const float* ct, std::size_t ld,
                               const float* norms, std::size_t count, std::uint32_t* label, float* score) noexcept {
    __m256 best[P];
    __m256i best_i[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; p++) {
        best[p] = _mm256_set1_ps(__builtin_inff());
        best_i[p] = _mm256_setzero_si256();
    }
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i eight = _mm256_set1_epi32(8);
    const __m256i step = _mm256_set1_epi32(16);
    const __m256 two = _mm256_set1_ps(2.0f);
    for (std::size_t kb = 0; kb < count; kb += 16) {
        __m256 lo[P], hi[P];
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) lo[p] = hi[p] = _mm256_setzero_ps();
        const float* col = ct + kb;
        for (std::size_t t = 0; t < d; t++, col += ld) {
            const __m256 c0 = _mm256_loadu_ps(col), c1 = _mm256_loadu_ps(col + 8);
#pragma GCC unroll 4
            for (int p = 0; p < P; p++) {
                const __m256 xv = _mm256_broadcast_ss(x + p * stride + t);
                lo[p] = _mm256_fmadd_ps(xv, c0, lo[p]);
                hi[p] = _mm256_fmadd_ps(xv, c1, hi[p]);
            }
        }
        const __m256 n0 = _mm256_loadu_ps(norms + kb), n1 = _mm256_loadu_ps(norms + kb + 8);
        const __m256i idx_hi = _mm256_add_epi32(idx, eight);
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            const __m256 s0 = _mm256_fnmadd_ps(two, lo[p], n0), s1 = _mm256_fnmadd_ps(two, hi[p], n1);
            const __m256 upper = _mm256_cmp_ps(s1, s0, _CMP_LT_OQ);
            const __m256 s = _mm256_blendv_ps(s0, s1, upper);
            const __m256i si = select(idx, idx_hi, upper);
            const __m256 lt = _mm256_cmp_ps(s, best[p], _CMP_LT_OQ);
            best[p] = _mm256_blendv_ps(best[p], s, lt);
            best_i[p] = select(best_i[p], si, lt);
        }
        idx = _mm256_add_epi32(idx, step);
    }
#pragma GCC unroll 4
    for (int p = 0; p < P; p++) reduce(best[p], best_i[p], label + p, score ? score + p : nullptr);
}

void nearest(const float* x, std::size_t n, std::size_t stride, std::size_t d, const float* ct, std::size_t ld,
             const float* norms, std::size_t count, std::uint32_t* label, float* score) noexcept {
    std::size_t i = 0;
    for (; i + 2 <= n; i += 2)
        nearest_points<2>(x + i * stride, stride, d, ct, ld, norms, count, label + i, score ? score + i : nullptr);
    if (i < n)
        nearest_points<1>(x + i * stride, stride, d, ct, ld, norms, count, label + i, score ? score + i : nullptr);
}

#undef LRV_INLINE

}  // namespace

const NearestKernels kAvx2NearestKernels = {nearest};

}  // namespace lrv::core::ivfpq

#else  // not x86: nearest_for_isa never hands this table out.

namespace lrv::core::ivfpq {
const NearestKernels kAvx2NearestKernels = {nullptr};
}

#endif
