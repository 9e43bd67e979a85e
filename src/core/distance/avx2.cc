// AVX2 + FMA kernels (8 floats a vector).
//
// This file alone is compiled with -mavx2 -mfma, so everything the compiler
// emits here may use those instructions. That is only safe for code reached
// through kAvx2Kernels after dispatch has checked the CPU. Hence: every helper
// is internal (anonymous namespace, always inlined), and nothing from a shared
// header that could be emitted as a COMDAT function (std::fabs, <algorithm>,
// the inline wrappers in distance.h) is used here; the linker could otherwise
// keep this file's AVX2 copy for the whole library. Intrinsics are gnu_inline
// and never emitted out of line, so they are fine.
//
// The main loops keep four independent accumulators, 32 floats a step: an FMA
// has a latency of about four cycles, so a single accumulator would leave the
// loop waiting on its own sum instead of on the two loads a cycle the core can
// issue. Tails shorter than a vector are summed in scalar code; at 784 and
// 1536 dimensions there are none, and for odd dimensions they are a few
// elements.
#include "libravdb/core/distance.h"

#if defined(__x86_64__) || defined(__i386__)

#if !defined(__AVX2__) || !defined(__FMA__)
#error "avx2.cc must be compiled with -mavx2 -mfma (see Makefile / test/unit/CMakeLists.txt)"
#endif

#include <immintrin.h>

namespace lrv::core::distance {
namespace {

#define LRV_INLINE inline __attribute__((always_inline))

LRV_INLINE float hsum(__m256 v) noexcept {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

LRV_INLINE float sum4(__m256 s0, __m256 s1, __m256 s2, __m256 s3) noexcept {
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// The three pairwise metrics differ only in what one element adds to a sum;
// each is a step over 8 lanes and the same step over one float for the tail.
// pairwise<Op> is the one loop they share.
struct L2 {
    static LRV_INLINE __m256 step(__m256 acc, __m256 x, __m256 y) noexcept {
        __m256 d = _mm256_sub_ps(x, y);
        return _mm256_fmadd_ps(d, d, acc);
    }
    static LRV_INLINE float step(float acc, float x, float y) noexcept {
        float d = x - y;
        return acc + d * d;
    }
};

struct Dot {
    static LRV_INLINE __m256 step(__m256 acc, __m256 x, __m256 y) noexcept {
        return _mm256_fmadd_ps(x, y, acc);
    }
    static LRV_INLINE float step(float acc, float x, float y) noexcept { return acc + x * y; }
};

struct L1 {
    // Clearing the sign bit is cheaper than max(d, -d) and exact.
    static LRV_INLINE __m256 step(__m256 acc, __m256 x, __m256 y) noexcept {
        return _mm256_add_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(x, y)));
    }
    static LRV_INLINE float step(float acc, float x, float y) noexcept {
        return acc + __builtin_fabsf(x - y);
    }
};

// A template with internal linkage: each instantiation is a local symbol of
// this object, never a COMDAT another object could share.
template <class Op>
float pairwise(const float* a, const float* b, std::size_t n) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = Op::step(s0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s1 = Op::step(s1, _mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s2 = Op::step(s2, _mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        s3 = Op::step(s3, _mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    }
    for (; i + 8 <= n; i += 8) s0 = Op::step(s0, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    float s = sum4(s0, s1, s2, s3);
    for (; i < n; i++) s = Op::step(s, a[i], b[i]);
    return s;
}

// Three sums share each load, so two accumulators per sum (six registers)
// already keep the FMA units busy; more would only lengthen the 16-float step.
void cosine_parts_avx2(const float* a, const float* b, std::size_t n, float* dot, float* norm_a,
                       float* norm_b) noexcept {
    __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
    __m256 p0 = _mm256_setzero_ps(), p1 = _mm256_setzero_ps();
    __m256 q0 = _mm256_setzero_ps(), q1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 x0 = _mm256_loadu_ps(a + i), y0 = _mm256_loadu_ps(b + i);
        __m256 x1 = _mm256_loadu_ps(a + i + 8), y1 = _mm256_loadu_ps(b + i + 8);
        d0 = _mm256_fmadd_ps(x0, y0, d0);
        d1 = _mm256_fmadd_ps(x1, y1, d1);
        p0 = _mm256_fmadd_ps(x0, x0, p0);
        p1 = _mm256_fmadd_ps(x1, x1, p1);
        q0 = _mm256_fmadd_ps(y0, y0, q0);
        q1 = _mm256_fmadd_ps(y1, y1, q1);
    }
    if (i + 8 <= n) {
        __m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
        d0 = _mm256_fmadd_ps(x, y, d0);
        p0 = _mm256_fmadd_ps(x, x, p0);
        q0 = _mm256_fmadd_ps(y, y, q0);
        i += 8;
    }
    float d = hsum(_mm256_add_ps(d0, d1));
    float p = hsum(_mm256_add_ps(p0, p1));
    float q = hsum(_mm256_add_ps(q0, q1));
    for (; i < n; i++) {
        d += a[i] * b[i];
        p += a[i] * a[i];
        q += b[i] * b[i];
    }
    *dot = d;
    *norm_a = p;
    *norm_b = q;
}

#undef LRV_INLINE

}  // namespace

const Kernels kAvx2Kernels = {
    Isa::Avx2, "avx2", pairwise<L2>, pairwise<Dot>, pairwise<L1>, cosine_parts_avx2,
};

}  // namespace lrv::core::distance

#else  // not x86: dispatch never selects this table (for_isa returns nullptr).

namespace lrv::core::distance {
const Kernels kAvx2Kernels = {Isa::Avx2, "avx2", nullptr, nullptr, nullptr, nullptr};
}

#endif
