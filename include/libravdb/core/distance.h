// Distance kernels over float32 vectors.
//
// One source file per instruction set (scalar.cc, avx2.cc, avx512.cc) fills a
// Kernels table; dispatch.cc picks the best table the running CPU supports, once,
// from CPUID. Nothing here is chosen at compile time with -march, so a library
// built on one x86-64 runs on any other.
//
// Kernels accumulate in float32 (as a search engine must, for speed); callers
// that need a reference use double precision themselves (see the unit tests).
// Within one ISA a result depends only on n and the values, bit for bit: not
// on addresses or operand order, so a heap tuple, an index page and a query
// give the same distance for the same pair. Different ISAs may differ in the
// last bits (they add in different orders).
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>

namespace lrv::core::distance {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

using PairFn = float (*)(const float* a, const float* b, std::size_t n) noexcept;
// Cosine needs three sums from one pass: a.b, a.a and b.b.
using CosineFn = void (*)(const float* a, const float* b, std::size_t n, float* dot,
                          float* norm_a, float* norm_b) noexcept;

struct Kernels {
    Isa isa;
    const char* name;
    PairFn l2_squared;     // sum (a_i - b_i)^2
    PairFn inner_product;  // sum a_i * b_i
    PairFn l1;             // sum |a_i - b_i|
    CosineFn cosine_parts;
};

// The table for the best instruction set this CPU supports (chosen once).
const Kernels& best() noexcept;
// The table for one instruction set, or nullptr when the CPU (or the build)
// lacks it. Tests and microbenchmarks use this to hold every level to scalar.
const Kernels* for_isa(Isa isa) noexcept;
const char* isa_name(Isa isa) noexcept;

// Per-ISA tables, defined in the per-ISA sources. The AVX tables are only
// safe to call after for_isa() says the CPU has them.
extern const Kernels kScalarKernels;
extern const Kernels kAvx2Kernels;
extern const Kernels kAvx512Kernels;

inline float l2_squared(const float* a, const float* b, std::size_t n) noexcept {
    return best().l2_squared(a, b, n);
}
inline float inner_product(const float* a, const float* b, std::size_t n) noexcept {
    return best().inner_product(a, b, n);
}
inline float l1(const float* a, const float* b, std::size_t n) noexcept {
    return best().l1(a, b, n);
}
// 1 - cos(a, b), clamped to [0, 2]. NaN when either vector has norm zero,
// because the angle is undefined (pgvector behaves the same way).
float cosine_distance(const float* a, const float* b, std::size_t n) noexcept;
// The same from sums already at hand (one ISA's cosine_parts, or norms stored
// beside the vectors): 1 - dot / sqrt(norm_a * norm_b), clamped, NaN when a
// norm is zero.
float cosine_distance_from_parts(float dot, float norm_a, float norm_b) noexcept;

// Metrics as the access methods name them; each maps to one kernel and to the
// value ORDER BY sorts on.
enum class Metric { L2 = 0, InnerProduct = 1, Cosine = 2, L1 = 3 };
const char* metric_name(Metric m) noexcept;

}  // namespace lrv::core::distance
