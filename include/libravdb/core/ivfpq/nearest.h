// Nearest-centroid kernels for few dimensions: the PQ sub-spaces (4 to 16
// floats, 16 or 256 centroids), where k-means training and encoding spend
// their time, and where a GEMM has too little depth to pay for itself.
//
// Centroids are laid out for the kernels once ("panels"): transposed to d
// rows of kpad floats, kpad being k rounded up to 16, so a vector register
// holds one dimension of 16 (or 8, or 4) consecutive centroids. The score of
// centroid c for point x is |c|^2 - 2 x.c, which orders centroids as the
// squared distance does (|x|^2 is common to all). Padding centroids have
// norm +inf and are never chosen.
//
// One table per instruction set (nearest_scalar.cc, nearest_avx2.cc,
// nearest_avx512.cc), chosen with the same CPU check as the distance
// kernels. The scores differ between levels in the last bits (FMA or not,
// summation order), so ties may break differently from one level to
// another; within a level the result depends only on the inputs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "libravdb/core/fence.h"

namespace lrv::core::ivfpq {

inline std::size_t padded_k(std::size_t k) noexcept { return (k + 15) & ~std::size_t{15}; }

// Lays out k row-major centroids of d floats: ct gets d * padded_k(k) floats,
// norms padded_k(k).
void make_panel(const float* centroids, std::size_t k, std::size_t d, float* ct, float* norms) noexcept;

// For each of n points (x + i * stride, d floats), the index of the centroid
// with the lowest score (ties: the lower index) and, when score is not null,
// that score. The centroids are `count` (a multiple of 16) consecutive
// columns of a panel whose rows are `ld` floats apart: a slice of a larger
// panel, so that callers can keep the slice they scan in cache.
using NearestFn = void (*)(const float* x, std::size_t n, std::size_t stride, std::size_t d, const float* ct,
                           std::size_t ld, const float* norms, std::size_t count, std::uint32_t* label,
                           float* score) noexcept;

struct NearestKernels {
    NearestFn nearest;
};

const NearestKernels& best_nearest() noexcept;
const NearestKernels* nearest_for_isa(int isa) noexcept;  // distance::Isa values; nullptr when absent

extern const NearestKernels kScalarNearestKernels;
extern const NearestKernels kAvx2NearestKernels;
extern const NearestKernels kAvx512NearestKernels;

}  // namespace lrv::core::ivfpq
