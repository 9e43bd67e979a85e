// AVX2 + FMA + F16C kernels between a float32 query and sq8 (uint8) or fp16
// (IEEE half) codes, 8 elements a vector.
//
// This file alone is compiled with -mavx2 -mfma -mf16c, and dispatch only
// hands out the AVX2 level on CPUs with all three. The rules of avx2.cc apply:
// helpers are internal and always inlined, nothing from a shared header that
// could be emitted as a COMDAT function is used (no std::fabs; intrinsics are
// gnu_inline and never emitted out of line), so no AVX instruction can reach
// code the linker shares with the baseline objects.
//
// Widening is exact (a byte or a half converts to float without rounding), so
// these kernels add the same terms the float ones would on the decoded
// vector, from a quarter or half of the bytes. vpmovzxbd and vcvtph2ps take their codes
// straight from memory, 8 or 16 bytes at a time, leaving the load ports to the
// query, which is four times the bytes of an sq8 code and twice those of an
// fp16 one.
//
// The main loop consumes 64 codes (64 bytes of sq8, 128 of fp16) in eight
// vectors over eight accumulators, so no FMA waits on the previous one into
// the same sum even on cores with two FMA pipes of latency 4. (On the Zen 5
// of bench/micro/README.md, vector ALU throughput bounds the loop first, and
// four sums measure the same.) The summation order depends on n only, never
// on addresses: no peeling to alignment.
//
// The tail (fewer than 8 elements) is one masked vector step: the query with
// vmaskmovps, which does not touch masked-out lanes, and the codes widened one
// at a time into a stack buffer, since AVX2 has no masked byte or word load.
// Masked-out lanes are zero in both operands and add nothing to any metric.
#include "libravdb/core/quant_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error \
    "quant_avx2.cc must be compiled with -mavx2 -mfma -mf16c (see Makefile / test/unit/CMakeLists.txt)"
#endif

#include <immintrin.h>

namespace lrv::core::distance {
namespace {

#define LRV_INLINE inline __attribute__((always_inline))

// Eight codes as floats. _mm_loadl_epi64 reads exactly 8 bytes and folds into
// vpmovzxbd's memory operand.
LRV_INLINE __m256 widen8(const std::uint8_t* c) noexcept {
    __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c));
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
}
LRV_INLINE __m256 widen8(const std::uint16_t* h) noexcept {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}
LRV_INLINE float widen1(std::uint8_t c) noexcept { return static_cast<float>(c); }
LRV_INLINE float widen1(std::uint16_t h) noexcept { return _cvtsh_ss(h); }

struct L2 {
    static LRV_INLINE __m256 step(__m256 acc, __m256 q, __m256 x) noexcept {
        __m256 d = _mm256_sub_ps(q, x);
        return _mm256_fmadd_ps(d, d, acc);
    }
};

struct Dot {
    static LRV_INLINE __m256 step(__m256 acc, __m256 q, __m256 x) noexcept {
        return _mm256_fmadd_ps(q, x, acc);
    }
};

struct L1 {
    // Clearing the sign bit is exact and cheaper than max(d, -d).
    static LRV_INLINE __m256 step(__m256 acc, __m256 q, __m256 x) noexcept {
        return _mm256_add_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(q, x)));
    }
};

// One vector step: 8 query floats against 8 codes.
template <class Op, class Code>
LRV_INLINE __m256 step8(__m256 acc, const float* q, const Code* c) noexcept {
    return Op::step(acc, _mm256_loadu_ps(q), widen8(c));
}

// A template with internal linkage: each instantiation is a local symbol of
// this object, never a COMDAT another object could share.
template <class Op, class Code>
float kernel(const float* q, const Code* c, std::size_t n) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = step8<Op>(s0, q + i, c + i);
        s1 = step8<Op>(s1, q + i + 8, c + i + 8);
        s2 = step8<Op>(s2, q + i + 16, c + i + 16);
        s3 = step8<Op>(s3, q + i + 24, c + i + 24);
        s4 = step8<Op>(s4, q + i + 32, c + i + 32);
        s5 = step8<Op>(s5, q + i + 40, c + i + 40);
        s6 = step8<Op>(s6, q + i + 48, c + i + 48);
        s7 = step8<Op>(s7, q + i + 56, c + i + 56);
    }
    // Up to 63 more: steps of 32, 16 and 8 into distinct sums, then a
    // masked step for the last 7 at most.
    if (i + 32 <= n) {
        s0 = step8<Op>(s0, q + i, c + i);
        s1 = step8<Op>(s1, q + i + 8, c + i + 8);
        s2 = step8<Op>(s2, q + i + 16, c + i + 16);
        s3 = step8<Op>(s3, q + i + 24, c + i + 24);
        i += 32;
    }
    if (i + 16 <= n) {
        s4 = step8<Op>(s4, q + i, c + i);
        s5 = step8<Op>(s5, q + i + 8, c + i + 8);
        i += 16;
    }
    if (i + 8 <= n) {
        s6 = step8<Op>(s6, q + i, c + i);
        i += 8;
    }
    if (i < n) {
        std::size_t rest = n - i;
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rest)),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        float buf[8];
        for (std::size_t j = 0; j < rest; j++) buf[j] = widen1(c[i + j]);
        s7 = Op::step(s7, _mm256_maskload_ps(q + i, m), _mm256_maskload_ps(buf, m));
    }
    // Pairwise, then across the lanes.
    __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
                             _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// Code x code, 32 bytes a step, in integers. |a - b| is exact in bytes as
// (a -sat b) | (b -sat a); squares and products are taken on 16-bit lanes
// (vpmaddwd: two products added into each 32-bit lane, at most 2 * 255^2),
// and L1 uses vpsadbw, which sums eight absolute differences per 64-bit lane.
// Integer sums are exact, so the order is free and the tail is a plain loop.
LRV_INLINE std::uint32_t hsum_epi32(__m256i v) noexcept {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return static_cast<std::uint32_t>(_mm_cvtsi128_si32(h));
}

LRV_INLINE __m256i load32(const std::uint8_t* p) noexcept {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

std::uint32_t l2_squared_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    const __m256i zero = _mm256_setzero_si256();
    __m256i s0 = zero, s1 = zero;
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = load32(a + i), y = load32(b + i);
        __m256i d = _mm256_or_si256(_mm256_subs_epu8(x, y), _mm256_subs_epu8(y, x));
        __m256i lo = _mm256_unpacklo_epi8(d, zero), hi = _mm256_unpackhi_epi8(d, zero);
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(lo, lo));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(hi, hi));
    }
    // 16 more (784 = 24 * 32 + 16): one 128-bit step, widened to 16 bits.
    if (i + 16 <= n) {
        __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
        __m256i y = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
        __m256i d = _mm256_sub_epi16(x, y);
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(d, d));
        i += 16;
    }
    std::uint32_t s = hsum_epi32(_mm256_add_epi32(s0, s1));
    for (; i < n; i++) {
        const int d = static_cast<int>(a[i]) - static_cast<int>(b[i]);
        s += static_cast<std::uint32_t>(d * d);
    }
    return s;
}

std::uint32_t dot_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    const __m256i zero = _mm256_setzero_si256();
    __m256i s0 = zero, s1 = zero;
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = load32(a + i), y = load32(b + i);
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_unpacklo_epi8(x, zero), _mm256_unpacklo_epi8(y, zero)));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_unpackhi_epi8(x, zero), _mm256_unpackhi_epi8(y, zero)));
    }
    std::uint32_t s = hsum_epi32(_mm256_add_epi32(s0, s1));
    for (; i < n; i++) s += static_cast<std::uint32_t>(a[i]) * b[i];
    return s;
}

std::uint32_t l1_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    __m256i s0 = _mm256_setzero_si256();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) s0 = _mm256_add_epi64(s0, _mm256_sad_epu8(load32(a + i), load32(b + i)));
    // Four 64-bit lanes, each below 2^32.
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s0), _mm256_extracti128_si256(s0, 1));
    h = _mm_add_epi64(h, _mm_unpackhi_epi64(h, h));
    std::uint32_t s = static_cast<std::uint32_t>(_mm_cvtsi128_si32(h));
    for (; i < n; i++) s += static_cast<std::uint32_t>(a[i] > b[i] ? a[i] - b[i] : b[i] - a[i]);
    return s;
}

#undef LRV_INLINE

}  // namespace

// The AVX-512 table shares the code x code kernels (quant_avx512.cc): they
// read a quarter of a float vector's bytes and are bound by memory, not by
// vector width, where a build uses them.
std::uint32_t avx2_l2_squared_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    return l2_squared_u8u8(a, b, n);
}
std::uint32_t avx2_dot_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    return dot_u8u8(a, b, n);
}
std::uint32_t avx2_l1_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    return l1_u8u8(a, b, n);
}

const QuantKernels kAvx2QuantKernels = {
    Isa::Avx2,           kernel<L2, std::uint8_t>,  kernel<Dot, std::uint8_t>,
    kernel<L1, std::uint8_t>,  kernel<L2, std::uint16_t>, kernel<Dot, std::uint16_t>,
    kernel<L1, std::uint16_t>, l2_squared_u8u8,            dot_u8u8,
    l1_u8u8,
};

}  // namespace lrv::core::distance

#else  // not x86: dispatch never selects this table (quant_for_isa returns nullptr).

namespace lrv::core::distance {
const QuantKernels kAvx2QuantKernels = {Isa::Avx2, nullptr, nullptr, nullptr, nullptr,
                                        nullptr,   nullptr, nullptr, nullptr, nullptr};
}

#endif
