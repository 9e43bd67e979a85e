// AVX-512F kernels (16 floats a vector).
//
// This file alone is compiled with -mavx512f -mavx2 -mfma; the same rules as
// avx2.cc apply, more strictly, because an AVX-512 instruction that leaks into
// a function the linker shares with the rest of the library kills the backend
// with SIGILL on any CPU without it: helpers are internal and always inlined,
// and no function from a shared header is instantiated here.
//
// Only AVX-512F intrinsics are used (no DQ/BW/VL), so every AVX-512 CPU
// qualifies: _mm512_abs_ps is an integer AND in F, whereas _mm512_andnot_ps
// would need DQ.
//
// Four accumulators, 64 floats a step, for the same latency reason as in
// avx2.cc. The tail uses masked loads: masked-out lanes are not read (no fault
// past the end of a page) and load as zero, which adds nothing to any sum.
//
// There is no peeling to align the loads, although a 64-byte load that splits
// a cache line costs about twice as much (bench/micro/README.md): peeling
// would make the summation order, and so the last bits of a distance, depend
// on where a vector happens to sit in memory. Storage that wants the speed
// should place vectors on 64-byte boundaries instead.
#include "libravdb/core/distance.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__AVX512F__) || !defined(__AVX2__) || !defined(__FMA__)
#error \
    "avx512.cc must be compiled with -mavx512f -mavx2 -mfma (see Makefile / test/unit/CMakeLists.txt)"
#endif

#include <immintrin.h>

namespace lrv::core::distance {
namespace {

#define LRV_INLINE inline __attribute__((always_inline))

// n % 16 is below 16, so the shift never reaches the width of unsigned.
LRV_INLINE __mmask16 tail_mask(std::size_t rest) noexcept {
    return static_cast<__mmask16>((1u << rest) - 1u);
}

// Horizontal sum. Not _mm512_reduce_add_ps: GCC 12 builds it on intrinsics
// that take an "undefined" operand and then warns (-Wuninitialized) at every
// use. The masked forms with an explicit pass-through say the same thing with
// no undefined value. Folding 512 -> 256 -> 128 bits leaves each 128-bit block
// holding four partial sums, finished with SSE.
LRV_INLINE float hsum(__m512 v) noexcept {
    constexpr __mmask16 kAll = 0xffff;
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    __m128 s = _mm512_mask_extractf32x4_ps(_mm_setzero_ps(), 0xf, v, 0);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

LRV_INLINE float sum4(__m512 s0, __m512 s1, __m512 s2, __m512 s3) noexcept {
    return hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// The three pairwise metrics differ only in what one element adds to a sum;
// pairwise<Op> is the one loop they share. Masked-out tail lanes are zero in
// both operands, and every step adds exactly zero for them.
struct L2 {
    static LRV_INLINE __m512 step(__m512 acc, __m512 x, __m512 y) noexcept {
        __m512 d = _mm512_sub_ps(x, y);
        return _mm512_fmadd_ps(d, d, acc);
    }
};

struct Dot {
    static LRV_INLINE __m512 step(__m512 acc, __m512 x, __m512 y) noexcept {
        return _mm512_fmadd_ps(x, y, acc);
    }
};

struct L1 {
    static LRV_INLINE __m512 step(__m512 acc, __m512 x, __m512 y) noexcept {
        return _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(x, y)));
    }
};

// A template with internal linkage: each instantiation is a local symbol of
// this object, never a COMDAT another object could share.
template <class Op>
float pairwise(const float* a, const float* b, std::size_t n) noexcept {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = Op::step(s0, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s1 = Op::step(s1, _mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s2 = Op::step(s2, _mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        s3 = Op::step(s3, _mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
    }
    for (; i + 16 <= n; i += 16) s1 = Op::step(s1, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s2 = Op::step(s2, _mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    }
    return sum4(s0, s1, s2, s3);
}

// Three sums share each load; two accumulators per sum (six registers) keep
// the FMA units busy without lengthening the step past 32 floats.
void cosine_parts_avx512(const float* a, const float* b, std::size_t n, float* dot, float* norm_a,
                         float* norm_b) noexcept {
    __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps();
    __m512 p0 = _mm512_setzero_ps(), p1 = _mm512_setzero_ps();
    __m512 q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 x0 = _mm512_loadu_ps(a + i), y0 = _mm512_loadu_ps(b + i);
        __m512 x1 = _mm512_loadu_ps(a + i + 16), y1 = _mm512_loadu_ps(b + i + 16);
        d0 = _mm512_fmadd_ps(x0, y0, d0);
        d1 = _mm512_fmadd_ps(x1, y1, d1);
        p0 = _mm512_fmadd_ps(x0, x0, p0);
        p1 = _mm512_fmadd_ps(x1, x1, p1);
        q0 = _mm512_fmadd_ps(y0, y0, q0);
        q1 = _mm512_fmadd_ps(y1, y1, q1);
    }
    if (i + 16 <= n) {
        __m512 x = _mm512_loadu_ps(a + i), y = _mm512_loadu_ps(b + i);
        d0 = _mm512_fmadd_ps(x, y, d0);
        p0 = _mm512_fmadd_ps(x, x, p0);
        q0 = _mm512_fmadd_ps(y, y, q0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, a + i), y = _mm512_maskz_loadu_ps(m, b + i);
        d1 = _mm512_fmadd_ps(x, y, d1);
        p1 = _mm512_fmadd_ps(x, x, p1);
        q1 = _mm512_fmadd_ps(y, y, q1);
    }
    *dot = hsum(_mm512_add_ps(d0, d1));
    *norm_a = hsum(_mm512_add_ps(p0, p1));
    *norm_b = hsum(_mm512_add_ps(q0, q1));
}

#undef LRV_INLINE

}  // namespace

const Kernels kAvx512Kernels = {
    Isa::Avx512, "avx512", pairwise<L2>, pairwise<Dot>, pairwise<L1>, cosine_parts_avx512,
};

}  // namespace lrv::core::distance

#else  // not x86: dispatch never selects this table (for_isa returns nullptr).

namespace lrv::core::distance {
const Kernels kAvx512Kernels = {Isa::Avx512, "avx512", nullptr, nullptr, nullptr, nullptr};
}

#endif
