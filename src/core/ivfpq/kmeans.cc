// k-means++ seeding and Lloyd iterations.
//
// Determinism across thread counts comes from one rule: every parallel step
// writes per-point (or per-cluster) results whose values depend only on the
// item's own inputs and on chunk boundaries fixed by n, d and k, never on
// which thread ran a chunk; a sum across points is always taken in point
// order. Random draws come from one generator on the caller.
//
// Assignment is the expensive step (n * k * d multiply-adds an iteration) and
// uses |x - c|^2 = |x|^2 - 2 x.c + |c|^2 (|x|^2 does not change the argmin).
// The x.c come either from a GEMM over blocks of rows (Eigen, built
// single-threaded and, like every core file outside the per-ISA kernels, for
// baseline x86-64: SSE2 without FMA) or from the per-ISA panel kernels of
// nearest.h, whichever is faster for the dimensions and the CPU (see
// panel_pays).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include "libravdb/core/ivfpq/kmeans.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "libravdb/core/common/parallel.h"
#include "libravdb/core/distance.h"
#include "libravdb/core/error.h"
#include "libravdb/core/ivfpq/nearest.h"

namespace lrv::core::ivfpq {

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// splitmix64 as a sequence: tiny, good enough for seeding, and the same on
// every platform (std::uniform_*_distribution are not).
class Rng {
  public:
    explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}
    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
    std::size_t below(std::size_t n) noexcept {
        return std::min(n - 1, static_cast<std::size_t>(uniform() * static_cast<double>(n)));
    }

  private:
    std::uint64_t state_;
};

// Up to this many dimensions (PQ sub-spaces) a GEMM has too little depth to
// pay for packing its operands: assignment uses the panel kernels of
// nearest.h, and k-means++ a transposed copy of the points with a loop over
// points, since a kernel call per distance would cost more than the distance.
constexpr std::size_t kSmallDims = 32;

using V4 = float __attribute__((vector_size(16)));

inline V4 load4(const float* p) noexcept {
    V4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

float sq_norm(const float* v, std::size_t d) noexcept {
    return d == 0 ? 0.0f : distance::best().inner_product(v, v, d);
}

// Threads worth using for `work` multiply-adds: starting a thread costs tens
// of microseconds, so small steps stay on one.
int useful_threads(int threads, double work) noexcept {
    if (work < 2e6) return 1;
    return std::max(1, threads);
}

// k-means++ (Arthur and Vassilvitskii): each next seed is a point drawn with
// probability proportional to its squared distance to the nearest seed so far.
//
// A draw needs the total of those distances and a walk to where the running
// sum passes the random threshold. Both go by blocks of kSumBlock points whose
// sums the parallel step leaves behind, so a draw costs O(n / kSumBlock +
// kSumBlock) instead of two passes over n: with k draws, those passes would
// otherwise cost as much as the distances themselves for small d.
constexpr std::size_t kSumBlock = 256;

void seed_plus_plus(const float* x, std::size_t n, std::size_t d, std::size_t k, Rng& rng, int threads,
                    const std::function<void()>& poll, float* centroids) {
    std::vector<float> nearest(n);
    const std::size_t blocks = (n + kSumBlock - 1) / kSumBlock;
    std::vector<double> block_sum(blocks);
    std::vector<float> xt;  // d x n, for small d
    if (d <= kSmallDims) {
        xt.resize(n * d);
        for (std::size_t i = 0; i < n; i++)
            for (std::size_t t = 0; t < d; t++) xt[t * n + i] = x[i * d + t];
    }
    const std::size_t chunk = 16 * kSumBlock;  // chunks hold whole blocks
    threads = useful_threads(threads, static_cast<double>(n) * static_cast<double>(d));
    const distance::PairFn l2 = distance::best().l2_squared;

    // Distances of points [begin, end) to c, in dist.
    auto distances = [&](const float* c, std::size_t begin, std::size_t end, float* dist) {
        if (xt.empty()) {
            for (std::size_t i = begin; i < end; i++) dist[i - begin] = l2(x + i * d, c, d);
            return;
        }
        const std::size_t len = end - begin, vec = len / 4 * 4;
        for (std::size_t i = 0; i < vec; i += 4) {
            V4 acc = {0, 0, 0, 0};
            for (std::size_t t = 0; t < d; t++) {
                const V4 diff = load4(xt.data() + t * n + begin + i) - c[t];
                acc += diff * diff;
            }
            std::memcpy(dist + i, &acc, sizeof acc);
        }
        for (std::size_t i = vec; i < len; i++) {
            float acc = 0;
            for (std::size_t t = 0; t < d; t++) {
                const float diff = xt[t * n + begin + i] - c[t];
                acc += diff * diff;
            }
            dist[i] = acc;
        }
    };
    // Folds seed c into nearest[] and refreshes the block sums.
    auto fold = [&](const float* c, bool first) {
        parallel_for(
            n, chunk, threads,
            [&](std::size_t begin, std::size_t end, int) {
                float dist[kSumBlock];
                for (std::size_t b0 = begin; b0 < end; b0 += kSumBlock) {
                    const std::size_t b1 = std::min(end, b0 + kSumBlock);
                    distances(c, b0, b1, dist);
                    // Four sums: one chain of dependent double adds would
                    // cost more than the distances at small d.
                    double sum[4] = {0, 0, 0, 0};
                    for (std::size_t i = b0; i < b1; i++) {
                        float v = first ? dist[i - b0] : std::min(nearest[i], dist[i - b0]);
                        nearest[i] = v;
                        sum[i & 3] += v;
                    }
                    block_sum[b0 / kSumBlock] = (sum[0] + sum[1]) + (sum[2] + sum[3]);
                }
            },
            poll);
    };
    // The point where the running sum of nearest[] first exceeds u, or the
    // last point with a positive distance when rounding leaves u beyond the
    // end; n when every distance is zero.
    auto walk = [&](double u) {
        double acc = 0;
        std::size_t last = n;
        for (std::size_t b = 0; b < blocks; b++) {
            if (block_sum[b] <= 0) continue;
            const std::size_t b0 = b * kSumBlock, b1 = std::min(n, b0 + kSumBlock);
            if (acc + block_sum[b] <= u) {
                acc += block_sum[b];
                for (std::size_t i = b1; i-- > b0;)
                    if (nearest[i] > 0) {
                        last = i;
                        break;
                    }
                continue;
            }
            for (std::size_t i = b0; i < b1; i++) {
                if (nearest[i] <= 0) continue;
                last = i;
                acc += nearest[i];
                if (acc > u) return i;
            }
        }
        return last;
    };

    std::size_t pick = rng.below(n);
    std::memcpy(centroids, x + pick * d, d * sizeof(float));
    fold(centroids, true);
    for (std::size_t c = 1; c < k; c++) {
        double total = 0;
        for (double s : block_sum) total += s;
        pick = total > 0 ? walk(rng.uniform() * total) : n;
        // Every point coincides with a seed: any choice is as good.
        if (pick == n) pick = rng.below(n);
        float* seed = centroids + c * d;
        std::memcpy(seed, x + pick * d, d * sizeof(float));
        fold(seed, false);
    }
}

// Re-seeds empty clusters by splitting the most populous one along the line
// from its centroid to its farthest member: the centroid steps back, the new
// one forward, and the next assignment divides the cluster by the plane
// between them, through the old centroid. A cluster of identical points has
// no such line; the new centroid then duplicates it, which costs nothing
// (ties go to the lower index) and is all there is to do.
//
// `share` starts as the clusters' sizes and then follows the splits (each
// half keeps half), so that several empty clusters spread over several big
// ones; a cluster is only split when it really has two members to divide.
void split_for_empty(const float* x, std::size_t n, std::size_t d, std::size_t k, const std::uint32_t* label,
                     const float* dist2, const std::vector<std::size_t>& count, float* centroids) {
    std::vector<std::size_t> share(count);
    for (std::size_t e = 0; e < k; e++) {
        if (count[e] != 0) continue;
        std::size_t big = k;
        for (std::size_t j = 0; j < k; j++)
            if (count[j] >= 2 && (big == k || share[j] > share[big])) big = j;
        if (big == k) return;  // nothing left to split
        std::size_t far = n;
        for (std::size_t i = 0; i < n; i++)
            if (label[i] == big && (far == n || dist2[i] > dist2[far])) far = i;
        const float* p = x + far * d;
        float* cb = centroids + big * d;
        float* ce = centroids + e * d;
        for (std::size_t t = 0; t < d; t++) {
            const float step = (p[t] - cb[t]) * 0.125f;
            ce[t] = cb[t] + step;
            cb[t] -= step;
        }
        share[e] = share[big] / 2;
        share[big] -= share[e];
    }
}

// The panel kernels beat Eigen's GEMM whenever they have AVX-512 (about 2.5
// times on the Zen 4 of our benchmarks, where Eigen, built for baseline
// x86-64, has only SSE2 and no FMA); with AVX2 they merely match it, and
// without AVX2 they lose. For few dimensions they win at every level.
bool panel_pays(std::size_t d) noexcept {
    if (d <= kSmallDims) return true;
    const NearestKernels* avx512 = nearest_for_isa(static_cast<int>(distance::Isa::Avx512));
    return avx512 != nullptr && &best_nearest() == avx512;
}

// Points per panel chunk, and the panel bytes one kernel call scans: a slice
// of 256 kB stays in L2 while the chunk's points go through it.
constexpr std::size_t kPanelRows = 64;
constexpr std::size_t kSliceBytes = 256 * 1024;

void panel_assign(const float* centroids, std::size_t k, std::size_t d, const float* x, std::size_t n,
                  std::uint32_t* label, float* dist2, int threads, const std::function<void()>& poll) {
    const std::size_t kpad = padded_k(k);
    std::vector<float> ct(d * kpad), norms(kpad);
    make_panel(centroids, k, d, ct.data(), norms.data());
    const NearestFn nearest = best_nearest().nearest;
    const std::size_t slice = std::max<std::size_t>(16, kSliceBytes / (d * sizeof(float)) & ~std::size_t{15});
    threads = useful_threads(threads, static_cast<double>(n) * static_cast<double>(kpad) * static_cast<double>(d));
    parallel_for(
        n, kPanelRows, threads,
        [&](std::size_t begin, std::size_t end, int) {
            const std::size_t len = end - begin;
            std::uint32_t lab[kPanelRows], slab[kPanelRows];
            float best[kPanelRows], sbest[kPanelRows];
            // Slices in ascending order, replaced only by a strictly lower
            // score: ties still go to the lower index.
            for (std::size_t j0 = 0; j0 < kpad; j0 += slice) {
                const std::size_t count = std::min(slice, kpad - j0);
                const bool first = j0 == 0;
                nearest(x + begin * d, len, d, d, ct.data() + j0, kpad, norms.data() + j0, count, first ? lab : slab,
                        first ? best : sbest);
                if (first) continue;
                for (std::size_t i = 0; i < len; i++)
                    if (sbest[i] < best[i]) {
                        best[i] = sbest[i];
                        lab[i] = static_cast<std::uint32_t>(j0 + slab[i]);
                    }
            }
            for (std::size_t i = 0; i < len; i++) {
                label[begin + i] = lab[i];
                if (dist2) dist2[begin + i] = std::max(0.0f, sq_norm(x + (begin + i) * d, d) + best[i]);
            }
        },
        poll);
}

// Rows per GEMM chunk: the B x k block of dot products stays near 256 kB and
// B is a multiple of 8 for the GEMM kernel's row panels. It depends on k
// only, which keeps chunks, and so results, independent of the thread count.
std::size_t gemm_rows(std::size_t k) noexcept {
    std::size_t b = (std::size_t{1} << 16) / std::max<std::size_t>(k, 1);
    b = std::max<std::size_t>(16, std::min<std::size_t>(512, b));
    return b & ~std::size_t{7};
}

void gemm_assign(const float* centroids, std::size_t k, std::size_t d, const float* x, std::size_t n,
                 std::uint32_t* label, float* dist2, int threads, const std::function<void()>& poll) {
    std::vector<float> cnorm(k);
    for (std::size_t j = 0; j < k; j++) cnorm[j] = sq_norm(centroids + j * d, d);
    const std::size_t rows = gemm_rows(k);
    threads = useful_threads(threads, static_cast<double>(n) * static_cast<double>(k) * static_cast<double>(d));
    threads = std::max(1, std::min<int>(threads, static_cast<int>((n + rows - 1) / rows)));
    std::vector<std::vector<float>> scratch(static_cast<std::size_t>(threads));
    const Eigen::Map<const RowMatrix> c(centroids, static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(d));

    parallel_for(
        n, rows, threads,
        [&](std::size_t begin, std::size_t end, int worker) {
            const std::size_t b = end - begin;
            std::vector<float>& dots = scratch[static_cast<std::size_t>(worker)];
            dots.resize(rows * k);
            Eigen::Map<RowMatrix> prod(dots.data(), static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(k));
            prod.noalias() =
                Eigen::Map<const RowMatrix>(x + begin * d, static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(d)) *
                c.transpose();
            for (std::size_t i = 0; i < b; i++) {
                const float* dot = dots.data() + i * k;
                std::uint32_t best = 0;
                float best_v = cnorm[0] - 2.0f * dot[0];
                for (std::size_t j = 1; j < k; j++) {
                    const float v = cnorm[j] - 2.0f * dot[j];
                    if (v < best_v) {
                        best_v = v;
                        best = static_cast<std::uint32_t>(j);
                    }
                }
                label[begin + i] = best;
                // The expansion cancels badly for near points; it is never
                // negative in exact arithmetic.
                if (dist2) dist2[begin + i] = std::max(0.0f, sq_norm(x + (begin + i) * d, d) + best_v);
            }
        },
        poll);
}

}  // namespace

void assign_nearest(const float* centroids, std::size_t k, std::size_t d, const float* x, std::size_t n,
                    std::uint32_t* label, float* dist2, int threads, const std::function<void()>& poll,
                    AssignMethod method) {
    if (n == 0) return;
    if (k == 0) fail(ErrorKind::InvalidParameter, "assign_nearest: no centroids");
    if (k > std::numeric_limits<std::uint32_t>::max() - 16)
        fail(ErrorKind::InvalidParameter, "assign_nearest: too many centroids");
    if (d == 0) {
        for (std::size_t i = 0; i < n; i++) {
            label[i] = 0;
            if (dist2) dist2[i] = 0;
        }
        return;
    }
    if (method == AssignMethod::Panel || (method == AssignMethod::Auto && panel_pays(d)))
        panel_assign(centroids, k, d, x, n, label, dist2, threads, poll);
    else
        gemm_assign(centroids, k, d, x, n, label, dist2, threads, poll);
}

std::vector<float> kmeans(const float* x, std::size_t n, std::size_t d, std::size_t k, const KMeansOptions& opts) {
    std::vector<float> centroids(k * d, 0.0f);
    if (k == 0 || d == 0 || n == 0) return centroids;
    if (n <= k) {
        for (std::size_t j = 0; j < k; j++) std::memcpy(&centroids[j * d], x + (j % n) * d, d * sizeof(float));
        return centroids;
    }
    const std::function<void()> quiet = [] {};
    const std::function<void()>& poll = opts.poll ? opts.poll : quiet;
    const int threads = std::max(1, opts.threads);
    Rng rng(opts.seed);
    seed_plus_plus(x, n, d, k, rng, threads, poll, centroids.data());

    std::vector<std::uint32_t> label(n), prev(n), order(n);
    std::vector<std::size_t> start(k + 1);
    std::vector<float> dist(n);
    std::vector<std::size_t> count(k);
    std::vector<std::vector<double>> sum(static_cast<std::size_t>(threads));
    for (int it = 0; it < opts.iterations; it++) {
        assign_nearest(centroids.data(), k, d, x, n, label.data(), dist.data(), threads, poll, opts.assign);
        if (it > 0 && label == prev) break;  // converged: the update would change nothing
        std::swap(label, prev);

        // Members of each cluster in point order (a counting sort), so that
        // clusters can be summed on any thread, each in the same order, with
        // every row read whole.
        std::fill(start.begin(), start.end(), 0);
        for (std::size_t i = 0; i < n; i++) start[prev[i] + 1]++;
        for (std::size_t j = 0; j < k; j++) start[j + 1] += start[j];
        for (std::size_t j = 0; j < k; j++) count[j] = start[j + 1] - start[j];
        {
            std::vector<std::size_t> fill(start.begin(), start.end() - 1);
            for (std::size_t i = 0; i < n; i++) order[fill[prev[i]]++] = static_cast<std::uint32_t>(i);
        }
        parallel_for(
            k, std::max<std::size_t>(1, 4096 / d),
            useful_threads(threads, static_cast<double>(n) * static_cast<double>(d)),
            [&](std::size_t begin, std::size_t end, int worker) {
                std::vector<double>& acc = sum[static_cast<std::size_t>(worker)];
                acc.resize(d);
                for (std::size_t j = begin; j < end; j++) {
                    if (count[j] == 0) continue;
                    std::fill(acc.begin(), acc.end(), 0.0);
                    for (std::size_t r = start[j]; r < start[j + 1]; r++) {
                        const float* xi = x + static_cast<std::size_t>(order[r]) * d;
                        for (std::size_t t = 0; t < d; t++) acc[t] += xi[t];
                    }
                    const double inv = 1.0 / static_cast<double>(count[j]);
                    for (std::size_t t = 0; t < d; t++) centroids[j * d + t] = static_cast<float>(acc[t] * inv);
                }
            },
            poll);
        split_for_empty(x, n, d, k, prev.data(), dist.data(), count, centroids.data());
    }
    return centroids;
}

}  // namespace lrv::core::ivfpq
