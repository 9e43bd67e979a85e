// AVX-512F kernels between a float32 query and sq8 (uint8) or fp16 (IEEE
// half) codes, 16 elements a vector.
//
// This file alone is compiled with -mavx512f -mavx2 -mfma -mf16c; the rules of
// avx512.cc apply: helpers are internal and always inlined, no function from
// a shared header is instantiated here, so no AVX-512 instruction can leak
// into code the linker shares with the baseline objects (a SIGILL in the
// backend on any CPU without it). Only AVX-512F intrinsics are used: the
// widening conversions (vpmovzxbd, vcvtph2ps) and the float masks are all in F.
//
// Widening is exact, so these kernels add the same terms the float ones would
// on the decoded vector. vpmovzxbd and vcvtph2ps read their codes straight from memory (16
// bytes of sq8 or 32 of fp16 a vector), leaving the wide loads to the query.
//
// The main loop consumes 128 codes (128 bytes of sq8, 256 of fp16) in eight
// vectors over eight accumulators. What bounds it is vector ALU throughput,
// not loads or FMA latency: widening costs two operations a vector, so l2
// (subtract, FMA) runs at about 3/4 the speed of dot (bench/micro/README.md).
// Eight sums measured a few per cent faster than four at 1536 dimensions and
// never slower; they also cover cores with two FMA pipes of latency 4. The
// summation order depends on n only, never on addresses.
//
// The tail (fewer than 16 elements) is one masked step. The query is read
// with a masked load, which does not touch masked-out lanes; the codes are
// widened one at a time into a stack buffer, because masked byte and word
// loads need AVX-512BW. Masked-out lanes are zero in both operands and add
// nothing to any metric.
#include "libravdb/core/quant_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__AVX512F__) || !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error \
    "quant_avx512.cc must be compiled with -mavx512f -mavx2 -mfma -mf16c (see Makefile / test/unit/CMakeLists.txt)"
#endif

#include <immintrin.h>

namespace lrv::core::distance {
namespace {

#define LRV_INLINE inline __attribute__((always_inline))

// Sixteen codes as floats. The zero-masking forms with an all-ones mask are
// the plain instructions; GCC 12's unmasked intrinsics pass an "undefined"
// operand and then warn (-Wmaybe-uninitialized) at every use (see hsum).
constexpr __mmask16 kAll = 0xffff;
LRV_INLINE __m512 widen16(const std::uint8_t* c) noexcept {
    __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
    return _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepu8_epi32(kAll, bytes));
}
LRV_INLINE __m512 widen16(const std::uint16_t* h) noexcept {
    return _mm512_maskz_cvtph_ps(kAll, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
}
LRV_INLINE float widen1(std::uint8_t c) noexcept { return static_cast<float>(c); }
LRV_INLINE float widen1(std::uint16_t h) noexcept { return _cvtsh_ss(h); }

struct L2 {
    static LRV_INLINE __m512 step(__m512 acc, __m512 q, __m512 x) noexcept {
        __m512 d = _mm512_sub_ps(q, x);
        return _mm512_fmadd_ps(d, d, acc);
    }
};

struct Dot {
    static LRV_INLINE __m512 step(__m512 acc, __m512 q, __m512 x) noexcept {
        return _mm512_fmadd_ps(q, x, acc);
    }
};

struct L1 {
    // _mm512_abs_ps is an integer AND in AVX-512F (andnot_ps would need DQ).
    static LRV_INLINE __m512 step(__m512 acc, __m512 q, __m512 x) noexcept {
        return _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(q, x)));
    }
};

// One vector step: 16 query floats against 16 codes.
template <class Op, class Code>
LRV_INLINE __m512 step16(__m512 acc, const float* q, const Code* c) noexcept {
    return Op::step(acc, _mm512_loadu_ps(q), widen16(c));
}

// Horizontal sum, with the explicit pass-through forms for the reason given
// in avx512.cc (GCC 12 warns on _mm512_reduce_add_ps).
LRV_INLINE float hsum(__m512 v) noexcept {
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    __m128 s = _mm512_mask_extractf32x4_ps(_mm_setzero_ps(), 0xf, v, 0);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// A template with internal linkage: each instantiation is a local symbol of
// this object, never a COMDAT another object could share.
template <class Op, class Code>
float kernel(const float* q, const Code* c, std::size_t n) noexcept {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    std::size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        s0 = step16<Op>(s0, q + i, c + i);
        s1 = step16<Op>(s1, q + i + 16, c + i + 16);
        s2 = step16<Op>(s2, q + i + 32, c + i + 32);
        s3 = step16<Op>(s3, q + i + 48, c + i + 48);
        s4 = step16<Op>(s4, q + i + 64, c + i + 64);
        s5 = step16<Op>(s5, q + i + 80, c + i + 80);
        s6 = step16<Op>(s6, q + i + 96, c + i + 96);
        s7 = step16<Op>(s7, q + i + 112, c + i + 112);
    }
    // Up to 127 more: steps of 64, 32 and 16 into distinct sums, then a
    // masked step for the last 15 at most.
    if (i + 64 <= n) {
        s0 = step16<Op>(s0, q + i, c + i);
        s1 = step16<Op>(s1, q + i + 16, c + i + 16);
        s2 = step16<Op>(s2, q + i + 32, c + i + 32);
        s3 = step16<Op>(s3, q + i + 48, c + i + 48);
        i += 64;
    }
    if (i + 32 <= n) {
        s4 = step16<Op>(s4, q + i, c + i);
        s5 = step16<Op>(s5, q + i + 16, c + i + 16);
        i += 32;
    }
    if (i + 16 <= n) {
        s6 = step16<Op>(s6, q + i, c + i);
        i += 16;
    }
    if (i < n) {
        std::size_t rest = n - i;  // below 16, so the shift stays in range
        __mmask16 m = static_cast<__mmask16>((1u << rest) - 1u);
        float buf[16];
        for (std::size_t j = 0; j < rest; j++) buf[j] = widen1(c[i + j]);
        s7 = Op::step(s7, _mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, buf));
    }
    return hsum(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
                              _mm512_add_ps(_mm512_add_ps(s4, s5), _mm512_add_ps(s6, s7))));
}

#undef LRV_INLINE

}  // namespace

// Code x code kernels: quant_avx2.cc's (dispatch grants AVX-512 only with
// AVX2). They are bound by memory where builds call them, not by width.
std::uint32_t avx2_l2_squared_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept;
std::uint32_t avx2_dot_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept;
std::uint32_t avx2_l1_u8u8(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept;

const QuantKernels kAvx512QuantKernels = {
    Isa::Avx512,          kernel<L2, std::uint8_t>,  kernel<Dot, std::uint8_t>,
    kernel<L1, std::uint8_t>, kernel<L2, std::uint16_t>, kernel<Dot, std::uint16_t>,
    kernel<L1, std::uint16_t>, avx2_l2_squared_u8u8,   avx2_dot_u8u8,
    avx2_l1_u8u8,
};

}  // namespace lrv::core::distance

#else  // not x86: dispatch never selects this table (quant_for_isa returns nullptr).

namespace lrv::core::distance {
const QuantKernels kAvx512QuantKernels = {Isa::Avx512, nullptr, nullptr, nullptr, nullptr,
                                          nullptr,     nullptr, nullptr, nullptr, nullptr};
}

#endif
