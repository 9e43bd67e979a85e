// Portable kernels: the reference every SIMD level is tested against, and the
// fallback on CPUs without AVX2. Four independent accumulators let the compiler
// pipeline the loop without reassociating floating-point sums on its own.
#include <cmath>

#include "libravdb/core/distance.h"

namespace lrv::core::distance {
namespace {

float l2_squared_scalar(const float* a, const float* b, std::size_t n) noexcept {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

float inner_product_scalar(const float* a, const float* b, std::size_t n) noexcept {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

float l1_scalar(const float* a, const float* b, std::size_t n) noexcept {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += std::fabs(a[i] - b[i]);
        s1 += std::fabs(a[i + 1] - b[i + 1]);
        s2 += std::fabs(a[i + 2] - b[i + 2]);
        s3 += std::fabs(a[i + 3] - b[i + 3]);
    }
    for (; i < n; i++) s0 += std::fabs(a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

void cosine_parts_scalar(const float* a, const float* b, std::size_t n, float* dot,
                         float* norm_a, float* norm_b) noexcept {
    float d = 0, na = 0, nb = 0;
    for (std::size_t i = 0; i < n; i++) {
        d += a[i] * b[i];
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    *dot = d;
    *norm_a = na;
    *norm_b = nb;
}

}  // namespace

const Kernels kScalarKernels = {Isa::Scalar,        "scalar", l2_squared_scalar,
                                inner_product_scalar, l1_scalar, cosine_parts_scalar};

}  // namespace lrv::core::distance
