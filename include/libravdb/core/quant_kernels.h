// Kernels between a float32 query and compact codes: uint8 (sq8, scaled by the
// caller) and IEEE half precision (fp16), and between two uint8 codes. They
// let scans and builds read a quarter or half of the bytes a float vector
// needs. One table per instruction set, like the
// float kernels in distance.h (quant_scalar.cc, quant_avx2.cc,
// quant_avx512.cc); the AVX2 table converts halves with F16C, which dispatch
// requires of the AVX2 level.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdint>

#include "libravdb/core/distance.h"

namespace lrv::core::distance {

using U8Fn = float (*)(const float* q, const std::uint8_t* c, std::size_t n) noexcept;
using F16Fn = float (*)(const float* q, const std::uint16_t* h, std::size_t n) noexcept;
// Between two sq8 codes, in code units and exact integers (no rounding, so
// every table returns the same value): what an index build links on.
// Sums fit 32 bits up to 16,000 elements (255^2 * 16000 < 2^32).
using U8PairFn = std::uint32_t (*)(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept;

struct QuantKernels {
    Isa isa;
    U8Fn l2_squared_u8;  // sum (q_i - c_i)^2
    U8Fn dot_u8;         // sum q_i * c_i
    U8Fn l1_u8;          // sum |q_i - c_i|
    F16Fn l2_squared_f16;
    F16Fn dot_f16;
    F16Fn l1_f16;
    U8PairFn l2_squared_u8u8;  // sum (a_i - b_i)^2
    U8PairFn dot_u8u8;         // sum a_i * b_i
    U8PairFn l1_u8u8;          // sum |a_i - b_i|
};

extern const QuantKernels kScalarQuantKernels;
extern const QuantKernels kAvx2QuantKernels;
extern const QuantKernels kAvx512QuantKernels;

// The table matching best().isa, and one per level for tests.
const QuantKernels& best_quant() noexcept;
const QuantKernels* quant_for_isa(Isa isa) noexcept;

// IEEE 754 binary16 conversions (round to nearest even; overflow saturates
// to +-65504 rather than infinity so a code always decodes to a finite value).
std::uint16_t float_to_half(float f) noexcept;
float half_to_float(std::uint16_t h) noexcept;

}  // namespace lrv::core::distance
