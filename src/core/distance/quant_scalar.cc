// Portable query-versus-code kernels, the reference for the SIMD levels
// (quant_avx2.cc, quant_avx512.cc), the IEEE half conversions used when
// encoding, and the choice of table.
#include <cmath>
#include <cstring>

#include "libravdb/core/quant_kernels.h"

namespace lrv::core::distance {

std::uint16_t float_to_half(float f) noexcept {
    std::uint32_t x;
    std::memcpy(&x, &f, sizeof x);
    std::uint32_t sign = (x >> 16) & 0x8000u;
    std::uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7bffu);  // >= 65520 or inf/nan: saturate
    if (absx < 0x38800000u) {                                                   // below the smallest normal half
        if (absx < 0x33000000u) return static_cast<std::uint16_t>(sign);      // rounds to zero
        std::uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
        int shift = 126 - static_cast<int>(absx >> 23);  // 14..24
        std::uint32_t half = mant >> shift;
        std::uint32_t rem = mant & ((1u << shift) - 1);
        std::uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return static_cast<std::uint16_t>(sign | half);
    }
    std::uint32_t half = ((absx - 0x38000000u) >> 13);
    std::uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++;
    if (half > 0x7bffu) half = 0x7bffu;
    return static_cast<std::uint16_t>(sign | half);
}

float half_to_float(std::uint16_t h) noexcept {
    std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t mant = h & 0x3ffu;
    std::uint32_t x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else {  // subnormal half: normalise
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while ((mant & 0x400u) == 0);
            x = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &x, sizeof f);
    return f;
}

namespace {

float l2_squared_u8_scalar(const float* q, const std::uint8_t* c, std::size_t n) noexcept {
    float s = 0;
    for (std::size_t i = 0; i < n; i++) {
        float d = q[i] - static_cast<float>(c[i]);
        s += d * d;
    }
    return s;
}

float dot_u8_scalar(const float* q, const std::uint8_t* c, std::size_t n) noexcept {
    float s = 0;
    for (std::size_t i = 0; i < n; i++) s += q[i] * static_cast<float>(c[i]);
    return s;
}

float l1_u8_scalar(const float* q, const std::uint8_t* c, std::size_t n) noexcept {
    float s = 0;
    for (std::size_t i = 0; i < n; i++) s += std::fabs(q[i] - static_cast<float>(c[i]));
    return s;
}

float l2_squared_f16_scalar(const float* q, const std::uint16_t* h, std::size_t n) noexcept {
    float s = 0;
    for (std::size_t i = 0; i < n; i++) {
        float d = q[i] - half_to_float(h[i]);
        s += d * d;
    }
    return s;
}

float dot_f16_scalar(const float* q, const std::uint16_t* h, std::size_t n) noexcept {
    float s = 0;
    for (std::size_t i = 0; i < n; i++) s += q[i] * half_to_float(h[i]);
    return s;
}

float l1_f16_scalar(const float* q, const std::uint16_t* h, std::size_t n) noexcept {
    float s = 0;
    for (std::size_t i = 0; i < n; i++) s += std::fabs(q[i] - half_to_float(h[i]));
    return s;
}

// Code x code: integer sums, exact in any order.
std::uint32_t l2_squared_u8u8_scalar(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    std::uint32_t s = 0;
    for (std::size_t i = 0; i < n; i++) {
        const int d = static_cast<int>(a[i]) - static_cast<int>(b[i]);
        s += static_cast<std::uint32_t>(d * d);
    }
    return s;
}

std::uint32_t dot_u8u8_scalar(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    std::uint32_t s = 0;
    for (std::size_t i = 0; i < n; i++) s += static_cast<std::uint32_t>(a[i]) * b[i];
    return s;
}

std::uint32_t l1_u8u8_scalar(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
    std::uint32_t s = 0;
    for (std::size_t i = 0; i < n; i++) s += static_cast<std::uint32_t>(a[i] > b[i] ? a[i] - b[i] : b[i] - a[i]);
    return s;
}

}  // namespace

const QuantKernels kScalarQuantKernels = {Isa::Scalar,          l2_squared_u8_scalar, dot_u8_scalar,
                                          l1_u8_scalar,         l2_squared_f16_scalar, dot_f16_scalar,
                                          l1_f16_scalar,        l2_squared_u8u8_scalar, dot_u8u8_scalar,
                                          l1_u8u8_scalar};

namespace {

const QuantKernels* quant_table(Isa isa) noexcept {
    switch (isa) {
        case Isa::Scalar:
            return &kScalarQuantKernels;
        case Isa::Avx2:
            return &kAvx2QuantKernels;  // quant_avx2.cc
        case Isa::Avx512:
            return &kAvx512QuantKernels;  // quant_avx512.cc
    }
    return nullptr;
}

// A build for another architecture leaves the AVX tables empty.
bool complete(const QuantKernels& k) noexcept {
    return k.l2_squared_u8 && k.dot_u8 && k.l1_u8 && k.l2_squared_f16 && k.dot_f16 && k.l1_f16;
}

}  // namespace

// for_isa() answers for the CPU: the AVX2 level includes F16C there, which
// the AVX2 table's half conversions need.
const QuantKernels* quant_for_isa(Isa isa) noexcept {
    if (for_isa(isa) == nullptr) return nullptr;
    const QuantKernels* k = quant_table(isa);
    return k && complete(*k) ? k : nullptr;
}

const QuantKernels& best_quant() noexcept {
    static const QuantKernels& chosen = *quant_for_isa(best().isa);
    return chosen;
}

}  // namespace lrv::core::distance
