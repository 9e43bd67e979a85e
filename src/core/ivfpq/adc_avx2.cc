// AVX2 ADC kernel for 4-bit codes: adc_avx512.cc's scheme at half the width.
// Eight codes at once, one lane each, their bytes transposed (8 x 16 bytes)
// so that one vector holds one byte position of all eight. A 16-float table
// row is two YMM registers: vpermps picks from each by the low 3 bits of the
// index, and bit 3, shifted into the sign, chooses between the two. About
// twice the scalar loop on Zen 4, where gathers lose to scalar loads.
//
// 8-bit codes, codes shorter than 16 bytes and runs of fewer than 8 codes use
// the scalar loops; see adc_avx512.cc for how the last byte group avoids
// reading past a code and how the last codes of a run are scored.
//
// This file alone is compiled with -mavx2 -mfma -mf16c; the rules of
// src/core/distance/avx2.cc apply (internal, always-inlined helpers, nothing
// from a shared header that could become a COMDAT function).
#include "libravdb/core/ivfpq/pq.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__AVX2__)
#error "adc_avx2.cc must be compiled with -mavx2 -mfma -mf16c (see Makefile / test/unit/CMakeLists.txt)"
#endif

#include <immintrin.h>

namespace lrv::core::ivfpq {
namespace {

#define LRV_INLINE inline __attribute__((always_inline))

// r[c] holds bytes 0..15 of code c (c < 8); afterwards r[e] holds bytes 2e
// (low half) and 2e+1 (high half) of codes 0..7.
LRV_INLINE void transpose8x16(__m128i r[8]) noexcept {
    __m128i a[8], b[8];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {  // a[2k], a[2k+1]: bytes 0-7, 8-15 of rows 2k, 2k+1
        a[2 * k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
    }
#pragma GCC unroll 2
    for (int g = 0; g < 2; g++) {  // b[4g+q]: bytes 4q..4q+3 of rows 4g..4g+3
        b[4 * g] = _mm_unpacklo_epi16(a[4 * g], a[4 * g + 2]);
        b[4 * g + 1] = _mm_unpackhi_epi16(a[4 * g], a[4 * g + 2]);
        b[4 * g + 2] = _mm_unpacklo_epi16(a[4 * g + 1], a[4 * g + 3]);
        b[4 * g + 3] = _mm_unpackhi_epi16(a[4 * g + 1], a[4 * g + 3]);
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        r[2 * q] = _mm_unpacklo_epi32(b[q], b[4 + q]);
        r[2 * q + 1] = _mm_unpackhi_epi32(b[q], b[4 + q]);
    }
}

// Entries of a 16-float row: vpermps takes bits [2:0] of each index, and
// `upper` (the index's bit 3, moved to the sign) picks the row's upper half.
LRV_INLINE __m256 lookup(const float* row, __m256i idx, __m256 upper) noexcept {
    const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(row), idx);
    const __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(row + 8), idx);
    return _mm256_blendv_ps(lo, hi, upper);
}

LRV_INLINE void add_byte(const float* table, std::size_t m, std::size_t j, __m128i bytes, __m256& s0,
                         __m256& s1) noexcept {
    const __m256i v = _mm256_cvtepu8_epi32(bytes);
    s0 = _mm256_add_ps(s0, lookup(table + j * 16, v, _mm256_castsi256_ps(_mm256_slli_epi32(v, 28))));
    if (j + 1 < m)
        s1 = _mm256_add_ps(
            s1, lookup(table + (j + 1) * 16, _mm256_srli_epi32(v, 4), _mm256_castsi256_ps(_mm256_slli_epi32(v, 24))));
}

// Scores the 8 codes from `base` into out[0..7].
LRV_INLINE void adc4_block(const float* table, std::size_t m, std::size_t bytes, const std::uint8_t* base,
                           std::size_t stride, float* out) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (std::size_t b0 = 0; b0 < bytes; b0 += 16) {
        const std::size_t start = b0 + 16 <= bytes ? b0 : bytes - 16;
        const std::size_t skip = b0 - start;  // bytes of this group summed already
        __m128i r[8];
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++)
            r[c] =
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + static_cast<std::size_t>(c) * stride + start));
        transpose8x16(r);
#pragma GCC unroll 8
        for (int e = 0; e < 8; e++) {
            const std::size_t b = 2 * static_cast<std::size_t>(e);
            if (b >= skip) add_byte(table, m, 2 * (start + b), r[e], s0, s1);
            if (b + 1 >= skip) add_byte(table, m, 2 * (start + b + 1), _mm_unpackhi_epi64(r[e], r[e]), s0, s1);
        }
    }
    _mm256_storeu_ps(out, _mm256_add_ps(s0, s1));
}

void adc4(const float* table, std::size_t m, const std::uint8_t* codes, std::size_t stride, std::size_t n,
          float* out) noexcept {
    const std::size_t bytes = (m + 1) / 2;
    if (bytes < 16 || n < 8) {
        adc4_scalar(table, m, codes, stride, n, out);
        return;
    }
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) adc4_block(table, m, bytes, codes + i * stride, stride, out + i);
    // The last few codes as the final 8 (see adc_avx512.cc).
    if (i < n) adc4_block(table, m, bytes, codes + (n - 8) * stride, stride, out + (n - 8));
}

#undef LRV_INLINE

}  // namespace

const AdcKernels kAvx2AdcKernels = {adc8_scalar, adc4};

}  // namespace lrv::core::ivfpq

#else  // not x86: adc_for_isa never hands this table out.

namespace lrv::core::ivfpq {
const AdcKernels kAvx2AdcKernels = {nullptr, nullptr};
}

#endif
