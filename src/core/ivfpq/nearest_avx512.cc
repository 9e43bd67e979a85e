// AVX-512F nearest-centroid kernel: 16 centroids a register, four points at
// a time sharing each panel load, the best score and its index tracked per
// lane with opmask blends, and one cross-lane reduction per point at the end.
//
// This file alone is compiled with -mavx512f -mavx2 -mfma -mf16c; the rules
// of src/core/distance/avx512.cc apply (internal, always-inlined helpers,
// nothing from a shared header that could become a COMDAT function, and the
// masked forms of intrinsics that GCC 12 would otherwise warn about).
#include "libravdb/core/ivfpq/nearest.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__AVX512F__) || !defined(__FMA__)
#error "nearest_avx512.cc must be compiled with -mavx512f -mavx2 -mfma (see Makefile / test/unit/CMakeLists.txt)"
#endif

#include <immintrin.h>

namespace lrv::core::ivfpq {
namespace {

#define LRV_INLINE inline __attribute__((always_inline))

constexpr __mmask16 kAll = 0xFFFF;

// Lowest score over the lanes, then the lowest index among the lanes that
// hold it: lanes are not in index order (each keeps its own best), so the
// index needs a reduction of its own.
LRV_INLINE void reduce(__m512 v, __m512i idx, std::uint32_t* label, float* score) noexcept {
    __m512 m = v;
    m = _mm512_mask_min_ps(m, kAll, m, _mm512_mask_shuffle_f32x4(m, kAll, m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm512_mask_min_ps(m, kAll, m, _mm512_mask_shuffle_f32x4(m, kAll, m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    m = _mm512_mask_min_ps(m, kAll, m, _mm512_mask_permute_ps(m, kAll, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm512_mask_min_ps(m, kAll, m, _mm512_mask_permute_ps(m, kAll, m, _MM_SHUFFLE(2, 3, 0, 1)));
    const __mmask16 at = _mm512_cmp_ps_mask(v, m, _CMP_EQ_OQ);
    __m512i i = _mm512_mask_blend_epi32(at, _mm512_set1_epi32(-1), idx);
    i = _mm512_mask_min_epu32(i, kAll, i, _mm512_mask_shuffle_i32x4(i, kAll, i, i, _MM_SHUFFLE(1, 0, 3, 2)));
    i = _mm512_mask_min_epu32(i, kAll, i, _mm512_mask_shuffle_i32x4(i, kAll, i, i, _MM_SHUFFLE(2, 3, 0, 1)));
    i = _mm512_mask_min_epu32(i, kAll, i, _mm512_mask_shuffle_epi32(i, kAll, i, _MM_PERM_BADC));
    i = _mm512_mask_min_epu32(i, kAll, i, _mm512_mask_shuffle_epi32(i, kAll, i, _MM_PERM_CDAB));
    // No lane matched only when every score is NaN: report centroid 0.
    const std::uint32_t k =
        static_cast<std::uint32_t>(_mm_cvtsi128_si32(_mm512_mask_extracti32x4_epi32(_mm_setzero_si128(), 0xF, i, 0)));
    *label = at == 0 ? 0 : k;
    if (score) *score = _mm512_cvtss_f32(m);
}

template <int P>
LRV_INLINE void nearest_points(const float* x, std::size_t stride, std::size_t d, const float* ct, std::size_t ld,
                               const float* norms, std::size_t count, std::uint32_t* label, float* score) noexcept {
    __m512 best[P];
    __m512i best_i[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; p++) {
        best[p] = _mm512_set1_ps(__builtin_inff());
        best_i[p] = _mm512_setzero_si512();
    }
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    const __m512 two = _mm512_set1_ps(2.0f);
    for (std::size_t kb = 0; kb < count; kb += 16) {
        __m512 a[P];
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) a[p] = _mm512_setzero_ps();
        const float* col = ct + kb;
        for (std::size_t t = 0; t < d; t++, col += ld) {
            const __m512 c = _mm512_loadu_ps(col);
#pragma GCC unroll 4
            for (int p = 0; p < P; p++) a[p] = _mm512_fmadd_ps(_mm512_set1_ps(x[p * stride + t]), c, a[p]);
        }
        const __m512 nv = _mm512_loadu_ps(norms + kb);
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            const __m512 s = _mm512_fnmadd_ps(two, a[p], nv);  // |c|^2 - 2 x.c
            // Strictly less: a lane keeps its first (lowest) index of equal scores.
            const __mmask16 lt = _mm512_cmp_ps_mask(s, best[p], _CMP_LT_OQ);
            best[p] = _mm512_mask_blend_ps(lt, best[p], s);
            best_i[p] = _mm512_mask_blend_epi32(lt, best_i[p], idx);
        }
        idx = _mm512_add_epi32(idx, step);
    }
#pragma GCC unroll 4
    for (int p = 0; p < P; p++) reduce(best[p], best_i[p], label + p, score ? score + p : nullptr);
}

void nearest(const float* x, std::size_t n, std::size_t stride, std::size_t d, const float* ct, std::size_t ld,
             const float* norms, std::size_t count, std::uint32_t* label, float* score) noexcept {
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        nearest_points<4>(x + i * stride, stride, d, ct, ld, norms, count, label + i, score ? score + i : nullptr);
    for (; i < n; i++)
        nearest_points<1>(x + i * stride, stride, d, ct, ld, norms, count, label + i, score ? score + i : nullptr);
}

#undef LRV_INLINE

}  // namespace

const NearestKernels kAvx512NearestKernels = {nearest};

}  // namespace lrv::core::ivfpq

#else  // not x86: nearest_for_isa never hands this table out.

namespace lrv::core::ivfpq {
const NearestKernels kAvx512NearestKernels = {nullptr};
}

#endif
