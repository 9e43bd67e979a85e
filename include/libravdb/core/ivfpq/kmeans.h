// k-means for the coarse quantizer of livfpq and for the sub-space codebooks
// of its product quantizer. Dense algebra is Eigen's (single-threaded, as
// DESIGN.md 3.8 requires) or the per-ISA kernels of nearest.h; the split over
// rows is core::parallel_for.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace lrv::core::ivfpq {

// How assign_nearest gets its dot products: Eigen's GEMM over blocks of
// rows, or the per-ISA panel kernels of nearest.h. Auto picks the faster for
// the dimensions and the CPU; the others exist so tests and benchmarks can
// reach both on any machine.
enum class AssignMethod { Auto, Gemm, Panel };

struct KMeansOptions {
    int iterations = 20;
    std::uint64_t seed = 0x5eed;
    int threads = 1;
    // Runs on the calling thread now and then (interrupts, progress).
    std::function<void()> poll = [] {};
    AssignMethod assign = AssignMethod::Auto;
};

// Trains k centroids (k * d floats, row-major) on n row-major points with
// k-means++ seeding and Lloyd iterations, in squared L2. Deterministic for a
// given seed and data, whatever the thread count. When n < k the points are
// used as centroids and the rest repeat them; an empty cluster is re-seeded
// by splitting the largest one. n == 0 gives k zero centroids.
std::vector<float> kmeans(const float* x, std::size_t n, std::size_t d, std::size_t k, const KMeansOptions& opts);

// For each of n points the nearest of k centroids in squared L2 (ties: the
// lower index), and optionally that squared distance. Uses |x|^2 - 2 x.c +
// |c|^2 over blocks of points (see AssignMethod), so it suits batches of many
// points.
void assign_nearest(const float* centroids, std::size_t k, std::size_t d, const float* x, std::size_t n,
                    std::uint32_t* label, float* dist2, int threads, const std::function<void()>& poll,
                    AssignMethod method = AssignMethod::Auto);

}  // namespace lrv::core::ivfpq
