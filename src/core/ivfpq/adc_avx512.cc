// AVX-512F ADC kernel for 4-bit codes: no gathers, the table rows live in
// registers.
//
// A 4-bit sub-space's row of the table is 16 floats, one ZMM register, and
// vpermps picks 16 of its entries by 16 4-bit indices in one instruction. So
// the kernel works across codes: 16 codes at once, one lane each. Their bytes
// are loaded 16 at a time per code and transposed (16 x 16 bytes, SSE2
// unpacks), giving for each byte position one vector of that byte from all 16
// codes; zero-extended, its low nibble indexes the even sub-space's row
// directly (vpermps reads only the low 4 bits) and, shifted, its high nibble
// the odd one's. A code's sum then accumulates in its own lane, with no
// horizontal reduction. This is about four times the scalar loop; gathering
// the rows' entries instead (across sub-spaces) measured slower than scalar
// on Zen 4, whose gathers are microcoded.
//
// 8-bit codes use the scalar loop (adc_scalar.cc explains why), as do codes
// shorter than 16 bytes and runs of fewer than 16 codes. The last byte group
// of a code reuses its final 16 bytes, skipping the ones already summed, so
// no byte past a code is read; with m odd the padding nibble is never looked
// up.
//
// This file alone is compiled with -mavx512f -mavx2 -mfma -mf16c. The rules
// of src/core/distance/avx512.cc apply: helpers are internal and always
// inlined, nothing from a shared header that could be emitted as a COMDAT
// function is used, and intrinsics whose unmasked forms start from an
// "undefined" register (which GCC 12 warns about) are used in masked form.
#include "libravdb/core/ivfpq/pq.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__AVX512F__) || !defined(__AVX2__)
#error "adc_avx512.cc must be compiled with -mavx512f -mavx2 (see Makefile / test/unit/CMakeLists.txt)"
#endif

#include <immintrin.h>

namespace lrv::core::ivfpq {
namespace {

#define LRV_INLINE inline __attribute__((always_inline))

constexpr __mmask16 kAll = 0xFFFF;

// r[c] holds bytes 0..15 of code c; afterwards r[b] holds byte b of codes
// 0..15. Four rounds of interleaving, each doubling the run of one row.
LRV_INLINE void transpose16(__m128i r[16]) noexcept {
    __m128i a[16], b[16];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {  // a[2k], a[2k+1]: bytes 0-7, 8-15 of rows 2k, 2k+1
        a[2 * k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {  // b[4g+q]: bytes 4q..4q+3 of rows 4g..4g+3
        b[4 * g] = _mm_unpacklo_epi16(a[4 * g], a[4 * g + 2]);
        b[4 * g + 1] = _mm_unpackhi_epi16(a[4 * g], a[4 * g + 2]);
        b[4 * g + 2] = _mm_unpacklo_epi16(a[4 * g + 1], a[4 * g + 3]);
        b[4 * g + 3] = _mm_unpackhi_epi16(a[4 * g + 1], a[4 * g + 3]);
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)  // a[8h+e]: bytes 2e, 2e+1 of rows 8h..8h+7
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            a[8 * h + 2 * q] = _mm_unpacklo_epi32(b[8 * h + q], b[8 * h + 4 + q]);
            a[8 * h + 2 * q + 1] = _mm_unpackhi_epi32(b[8 * h + q], b[8 * h + 4 + q]);
        }
#pragma GCC unroll 8
    for (int e = 0; e < 8; e++) {
        r[2 * e] = _mm_unpacklo_epi64(a[e], a[8 + e]);
        r[2 * e + 1] = _mm_unpackhi_epi64(a[e], a[8 + e]);
    }
}

LRV_INLINE __m512 lookup(const float* row, __m512i idx) noexcept {
    return _mm512_mask_permutexvar_ps(_mm512_setzero_ps(), kAll, idx, _mm512_loadu_ps(row));
}

// Scores the 16 codes from `base` into out[0..15].
LRV_INLINE void adc4_block(const float* table, std::size_t m, std::size_t bytes, const std::uint8_t* base,
                           std::size_t stride, float* out) noexcept {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (std::size_t b0 = 0; b0 < bytes; b0 += 16) {
        const std::size_t start = b0 + 16 <= bytes ? b0 : bytes - 16;
        const std::size_t skip = b0 - start;  // bytes of this group summed already
        __m128i r[16];
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++)
            r[c] =
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + static_cast<std::size_t>(c) * stride + start));
        transpose16(r);
#pragma GCC unroll 16
        for (int b = 0; b < 16; b++) {
            if (static_cast<std::size_t>(b) < skip) continue;
            const std::size_t j = 2 * (start + static_cast<std::size_t>(b));  // the even sub-space
            const __m512i v = _mm512_maskz_cvtepu8_epi32(kAll, r[b]);
            s0 = _mm512_add_ps(s0, lookup(table + j * 16, v));
            if (j + 1 < m) s1 = _mm512_add_ps(s1, lookup(table + (j + 1) * 16, _mm512_maskz_srli_epi32(kAll, v, 4)));
        }
    }
    _mm512_storeu_ps(out, _mm512_add_ps(s0, s1));
}

void adc4(const float* table, std::size_t m, const std::uint8_t* codes, std::size_t stride, std::size_t n,
          float* out) noexcept {
    const std::size_t bytes = (m + 1) / 2;
    if (bytes < 16 || n < 16) {
        adc4_scalar(table, m, codes, stride, n, out);
        return;
    }
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) adc4_block(table, m, bytes, codes + i * stride, stride, out + i);
    // The last few codes as the final 16: a lane's score depends on its code
    // alone, so the codes scored twice get the same value again, and one more
    // block costs less than up to 15 codes on the scalar loop.
    if (i < n) adc4_block(table, m, bytes, codes + (n - 16) * stride, stride, out + (n - 16));
}

#undef LRV_INLINE

}  // namespace

const AdcKernels kAvx512AdcKernels = {adc8_scalar, adc4};

}  // namespace lrv::core::ivfpq

#else  // not x86: adc_for_isa never hands this table out.

namespace lrv::core::ivfpq {
const AdcKernels kAvx512AdcKernels = {nullptr, nullptr};
}

#endif
