// The livfpq core: parallel_for (common/parallel.h), k-means and
// nearest-centroid assignment (ivfpq/kmeans.h, ivfpq/nearest.h), the product
// quantizer and its ADC kernels at every instruction set this CPU has
// (ivfpq/pq.h), and the page checks (ivfpq/format.h). Fixed seeds
// throughout; references in double precision.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "guarded_buffer.h"
#include "libravdb/core/common/parallel.h"
#include "libravdb/core/distance.h"
#include "libravdb/core/error.h"
#include "libravdb/core/ivfpq/format.h"
#include "libravdb/core/ivfpq/kmeans.h"
#include "libravdb/core/ivfpq/nearest.h"
#include "libravdb/core/ivfpq/pq.h"
#include "libravdb/core/limits.h"

namespace lrv::core::ivfpq {
namespace {

using distance::Isa;
using distance::Metric;
using lrv::test::Guard;
using lrv::test::GuardedBuffer;

constexpr Isa kIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512};
constexpr AssignMethod kMethods[] = {AssignMethod::Gemm, AssignMethod::Panel};
const char* method_name(AssignMethod m) { return m == AssignMethod::Gemm ? "gemm" : "panel"; }

// std::mt19937's output is fixed by the standard, its distributions are not.
class Rng {
  public:
    explicit Rng(std::uint32_t seed) : gen_(seed) {}
    std::uint32_t bits() { return gen_(); }
    float in(float lo, float hi) { return lo + (hi - lo) * static_cast<float>(gen_() >> 8) * 0x1p-24f; }
    // Approximately normal (Irwin-Hall of 4), enough for test clusters.
    float gauss(float sigma) {
        float s = 0;
        for (int i = 0; i < 4; i++) s += in(-1.0f, 1.0f);
        return s * sigma * 0.8660254f;
    }
    std::vector<float> floats(std::size_t n, float lo, float hi) {
        std::vector<float> v(n);
        for (float& x : v) x = in(lo, hi);
        return v;
    }

  private:
    std::mt19937 gen_;
};

double l2_double(const float* a, const float* b, std::size_t d) {
    double s = 0;
    for (std::size_t t = 0; t < d; t++) {
        double diff = static_cast<double>(a[t]) - b[t];
        s += diff * diff;
    }
    return s;
}

double norm2_double(const float* a, std::size_t d) {
    double s = 0;
    for (std::size_t t = 0; t < d; t++) s += static_cast<double>(a[t]) * a[t];
    return s;
}

// n points around `clusters` centres drawn in [-1, 1]^d, Gaussian spread.
struct Clustered {
    std::size_t n, d, k;
    std::vector<float> x, centres;
    std::vector<std::uint32_t> truth;
};

Clustered clustered(std::size_t n, std::size_t d, std::size_t k, float sigma, std::uint32_t seed) {
    Rng rng(seed);
    Clustered c{n, d, k, std::vector<float>(n * d), rng.floats(k * d, -1.0f, 1.0f), std::vector<std::uint32_t>(n)};
    for (std::size_t i = 0; i < n; i++) {
        std::uint32_t j = static_cast<std::uint32_t>(i % k);
        c.truth[i] = j;
        for (std::size_t t = 0; t < d; t++) c.x[i * d + t] = c.centres[j * d + t] + rng.gauss(sigma);
    }
    return c;
}

// Sum over points of the squared distance to the nearest of the centroids.
double objective(const std::vector<float>& x, std::size_t d, const std::vector<float>& centroids) {
    const std::size_t n = x.size() / d, k = centroids.size() / d;
    double total = 0;
    for (std::size_t i = 0; i < n; i++) {
        double best = std::numeric_limits<double>::infinity();
        for (std::size_t j = 0; j < k; j++) best = std::min(best, l2_double(&x[i * d], &centroids[j * d], d));
        total += best;
    }
    return total;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

const std::function<void()> kQuiet = [] {};

// --- parallel_for ----------------------------------------------------------------

TEST(ParallelFor, CoversEveryIndexOnce) {
    for (int threads : {1, 2, 3, 8})
        for (std::size_t n : {0, 1, 7, 1000})
            for (std::size_t chunk : {0, 1, 3, 64}) {
                SCOPED_TRACE(testing::Message() << "threads " << threads << " n " << n << " chunk " << chunk);
                std::vector<std::atomic<int>> hits(n);
                for (auto& h : hits) h = 0;
                std::atomic<int> bad_worker{0}, bad_range{0};
                parallel_for(
                    n, chunk, threads,
                    [&](std::size_t b, std::size_t e, int w) {
                        if (w < 0 || w >= threads) bad_worker++;
                        if (b >= e || e > n || (chunk > 1 && e - b > chunk)) bad_range++;
                        for (std::size_t i = b; i < e; i++) hits[i]++;
                    },
                    kQuiet);
                EXPECT_EQ(bad_worker.load(), 0);
                EXPECT_EQ(bad_range.load(), 0);
                for (std::size_t i = 0; i < n; i++) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
            }
}

TEST(ParallelFor, ChunksStartAtMultiplesOfTheChunkSize) {
    std::mutex m;
    std::set<std::pair<std::size_t, std::size_t>> seen;
    parallel_for(
        103, 10, 3,
        [&](std::size_t b, std::size_t e, int) {
            std::lock_guard<std::mutex> hold(m);
            seen.insert({b, e});
        },
        kQuiet);
    std::set<std::pair<std::size_t, std::size_t>> want;
    for (std::size_t b = 0; b < 103; b += 10) want.insert({b, std::min<std::size_t>(103, b + 10)});
    EXPECT_EQ(seen, want);
}

TEST(ParallelFor, PropagatesAnExceptionFromTheBody) {
    for (int threads : {1, 2, 3}) {
        SCOPED_TRACE(threads);
        std::atomic<int> after{0};
        try {
            parallel_for(
                1000, 1, threads,
                [&](std::size_t b, std::size_t, int) {
                    if (b == 17) throw std::runtime_error("chunk 17 failed");
                    if (b > 500) after++;
                    std::this_thread::sleep_for(std::chrono::microseconds(50));
                },
                kQuiet);
            ADD_FAILURE() << "no exception";
        } catch (const std::runtime_error& e) {
            EXPECT_STREQ(e.what(), "chunk 17 failed");
        }
        // The others stop at their next chunk rather than finishing the range.
        EXPECT_LT(after.load(), 400);
    }
}

TEST(ParallelFor, PropagatesAnExceptionFromPoll) {
    for (int threads : {1, 2, 3}) {
        SCOPED_TRACE(threads);
        std::atomic<std::size_t> done{0};
        int polls = 0;
        try {
            parallel_for(
                2000, 1, threads,
                [&](std::size_t, std::size_t, int) {
                    std::this_thread::sleep_for(std::chrono::microseconds(100));
                    done++;
                },
                [&] {
                    if (++polls == 5) throw Error(ErrorKind::Interrupted, "canceled");
                });
            ADD_FAILURE() << "no exception";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Interrupted);
        }
        EXPECT_LT(done.load(), 2000u);
    }
}

TEST(ParallelFor, PollRunsOnTheCallerAndHelpersBlockSignals) {
    const std::thread::id caller = std::this_thread::get_id();
    sigset_t before, after;
    pthread_sigmask(SIG_SETMASK, nullptr, &before);
    std::atomic<int> polls_elsewhere{0}, polls{0}, unblocked_helpers{0};
    parallel_for(
        64, 1, 3,
        [&](std::size_t, std::size_t, int w) {
            if (w != 0) {
                sigset_t mask;
                pthread_sigmask(SIG_SETMASK, nullptr, &mask);
                if (!sigismember(&mask, SIGINT) || !sigismember(&mask, SIGTERM) || !sigismember(&mask, SIGUSR1))
                    unblocked_helpers++;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        },
        [&] {
            polls++;
            if (std::this_thread::get_id() != caller) polls_elsewhere++;
        });
    pthread_sigmask(SIG_SETMASK, nullptr, &after);
    EXPECT_GT(polls.load(), 0);
    EXPECT_EQ(polls_elsewhere.load(), 0);
    EXPECT_EQ(unblocked_helpers.load(), 0);
    EXPECT_EQ(sigismember(&before, SIGINT), sigismember(&after, SIGINT)) << "the caller's mask must be restored";
}

TEST(ParallelFor, PollKeepsRunningWhileTheCallerWaits) {
    // Two chunks; whichever a helper takes runs long, the caller's returns at
    // once, so the caller runs out of work and must poll while it waits
    // (about every 20 ms).
    std::atomic<bool> helper_started{false};
    std::atomic<int> polls{0};
    parallel_for(
        2, 1, 2,
        [&](std::size_t, std::size_t, int w) {
            if (w != 0) {
                helper_started = true;
                std::this_thread::sleep_for(std::chrono::milliseconds(150));
                return;
            }
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            while (!helper_started && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        },
        [&] { polls++; });
    EXPECT_GE(polls.load(), 3);
}

// --- assign_nearest ---------------------------------------------------------------

// Every label is (one of) the nearest centroids by a double-precision brute
// force, up to the rounding of |x|^2 - 2 x.c + |c|^2, and dist2 matches.
TEST(AssignNearest, MatchesBruteForce) {
    for (std::size_t d : {1, 3, 8, 16, 31, 33, 100, 784})
        for (std::size_t k : {1, 2, 15, 16, 17, 37, 300}) {
            Rng rng(static_cast<std::uint32_t>(d * 1000 + k));
            const std::size_t n = 203;
            std::vector<float> c = rng.floats(k * d, -1, 1), x = rng.floats(n * d, -1.2f, 1.2f);
            for (AssignMethod method : kMethods)
                for (int threads : {1, 3}) {
                    SCOPED_TRACE(testing::Message()
                                 << "d " << d << " k " << k << " " << method_name(method) << " threads " << threads);
                    std::vector<std::uint32_t> label(n);
                    std::vector<float> dist2(n);
                    assign_nearest(c.data(), k, d, x.data(), n, label.data(), dist2.data(), threads, kQuiet, method);
                    for (std::size_t i = 0; i < n; i++) {
                        ASSERT_LT(label[i], k);
                        double best = std::numeric_limits<double>::infinity();
                        for (std::size_t j = 0; j < k; j++) best = std::min(best, l2_double(&x[i * d], &c[j * d], d));
                        const double got = l2_double(&x[i * d], &c[label[i] * d], d);
                        const double tol = 1e-5 * (norm2_double(&x[i * d], d) + 4.0 * static_cast<double>(d));
                        ASSERT_LE(got, best + tol) << "point " << i;
                        ASSERT_NEAR(dist2[i], got, tol) << "point " << i;
                    }
                    // Without dist2, the same labels.
                    std::vector<std::uint32_t> again(n);
                    assign_nearest(c.data(), k, d, x.data(), n, again.data(), nullptr, threads, kQuiet, method);
                    EXPECT_EQ(again, label);
                }
        }
}

TEST(AssignNearest, TiesGoToTheLowerIndex) {
    for (std::size_t d : {4, 40})
        for (AssignMethod method : kMethods) {
            SCOPED_TRACE(testing::Message() << "d " << d << " " << method_name(method));
            Rng rng(7);
            const std::size_t k = 40;
            std::vector<float> c = rng.floats(k * d, -1, 1);
            // Centroids 3, 19 and 38 coincide (3 and 19 in the same lane of
            // a 16-wide kernel, 38 in another); so do 5 and 13 (the two
            // halves of an AVX2 block) and 6 and 7.
            for (std::size_t j : {19, 38}) std::copy(&c[3 * d], &c[4 * d], &c[j * d]);
            std::copy(&c[5 * d], &c[6 * d], &c[13 * d]);
            std::copy(&c[6 * d], &c[7 * d], &c[7 * d]);
            std::vector<float> x;
            for (std::size_t j : {38, 19, 3, 13, 5, 7, 6}) x.insert(x.end(), &c[j * d], &c[(j + 1) * d]);
            std::vector<std::uint32_t> label(7);
            assign_nearest(c.data(), k, d, x.data(), 7, label.data(), nullptr, 2, kQuiet, method);
            EXPECT_EQ(label, (std::vector<std::uint32_t>{3, 3, 3, 5, 5, 6, 6}));
        }
}

TEST(AssignNearest, EveryKernelLevelAgreesWithBruteForce) {
    for (Isa isa : kIsas) {
        const NearestKernels* kern = nearest_for_isa(static_cast<int>(isa));
        if (kern == nullptr) continue;
        for (std::size_t d : {1, 2, 5, 8, 16, 33})
            for (std::size_t k : {1, 16, 17, 256, 300}) {
                SCOPED_TRACE(testing::Message() << distance::isa_name(isa) << " d " << d << " k " << k);
                Rng rng(static_cast<std::uint32_t>(d * 7 + k));
                const std::size_t n = 37, kpad = padded_k(k);
                std::vector<float> c = rng.floats(k * d, -1, 1), x = rng.floats(n * (d + 3), -1, 1);
                std::vector<float> ct(d * kpad), norms(kpad);
                make_panel(c.data(), k, d, ct.data(), norms.data());
                std::vector<std::uint32_t> label(n);
                std::vector<float> score(n);
                // Points d + 3 floats apart: the stride is honoured.
                kern->nearest(x.data(), n, d + 3, d, ct.data(), kpad, norms.data(), kpad, label.data(), score.data());
                for (std::size_t i = 0; i < n; i++) {
                    const float* xi = &x[i * (d + 3)];
                    ASSERT_LT(label[i], k);
                    double best = std::numeric_limits<double>::infinity();
                    for (std::size_t j = 0; j < k; j++) best = std::min(best, l2_double(xi, &c[j * d], d));
                    const double got = l2_double(xi, &c[label[i] * d], d);
                    ASSERT_LE(got, best + 1e-5 * (1 + static_cast<double>(d))) << "point " << i;
                    ASSERT_NEAR(score[i] + norm2_double(xi, d), got, 1e-5 * (1 + static_cast<double>(d)));
                }
            }
    }
}

TEST(AssignNearest, EveryKernelLevelBreaksTiesLow) {
    for (Isa isa : kIsas) {
        const NearestKernels* kern = nearest_for_isa(static_cast<int>(isa));
        if (kern == nullptr) continue;
        SCOPED_TRACE(distance::isa_name(isa));
        const std::size_t d = 5, k = 300, kpad = padded_k(k);
        Rng rng(8);
        std::vector<float> c = rng.floats(k * d, -1, 1);
        // Same lane of a 16-wide block (3, 19), another block and lane (38),
        // the two halves of an AVX2 block (5, 13), neighbours (6, 7), and
        // either side of the baseline kernel's 256-centroid segments (250, 290).
        for (std::size_t j : {19, 38}) std::copy(&c[3 * d], &c[4 * d], &c[j * d]);
        std::copy(&c[5 * d], &c[6 * d], &c[13 * d]);
        std::copy(&c[6 * d], &c[7 * d], &c[7 * d]);
        std::copy(&c[250 * d], &c[251 * d], &c[290 * d]);
        std::vector<float> x;
        for (std::size_t j : {38, 19, 3, 13, 5, 7, 6, 290, 250}) x.insert(x.end(), &c[j * d], &c[(j + 1) * d]);
        std::vector<float> ct(d * kpad), norms(kpad);
        make_panel(c.data(), k, d, ct.data(), norms.data());
        std::vector<std::uint32_t> label(9);
        kern->nearest(x.data(), 9, d, d, ct.data(), kpad, norms.data(), kpad, label.data(), nullptr);
        EXPECT_EQ(label, (std::vector<std::uint32_t>{3, 3, 3, 5, 5, 6, 6, 250, 250}));
    }
}

// --- kmeans -----------------------------------------------------------------------

TEST(KMeans, RecoversWellSeparatedClusters) {
    for (std::size_t d : {8, 64})
        for (AssignMethod method : {AssignMethod::Auto, AssignMethod::Gemm, AssignMethod::Panel}) {
            SCOPED_TRACE(testing::Message() << "d " << d << " method " << static_cast<int>(method));
            const std::size_t k = 10;
            Clustered data = clustered(3000, d, k, 0.02f, 11);
            KMeansOptions o;
            o.threads = 2;
            o.assign = method;
            std::vector<float> c = kmeans(data.x.data(), data.n, d, k, o);
            ASSERT_EQ(c.size(), k * d);
            // Every true centre has a centroid close to it...
            for (std::size_t j = 0; j < k; j++) {
                double best = std::numeric_limits<double>::infinity();
                for (std::size_t i = 0; i < k; i++)
                    best = std::min(best, l2_double(&data.centres[j * d], &c[i * d], d));
                EXPECT_LT(std::sqrt(best), 0.05) << "centre " << j;
            }
            // ...and the objective is within a hair of the one at the true centres.
            const double truth = objective(data.x, d, data.centres), got = objective(data.x, d, c);
            EXPECT_LT(got, truth * 1.01);
        }
}

TEST(KMeans, ObjectiveNeverWorseThanItsSeedingAndDecreasesWithK) {
    Clustered data = clustered(2000, 16, 25, 0.2f, 5);
    double previous = std::numeric_limits<double>::infinity();
    for (std::size_t k : {5, 10, 20, 40}) {
        KMeansOptions o;
        o.iterations = 0;
        const double seeded = objective(data.x, 16, kmeans(data.x.data(), data.n, 16, k, o));
        o.iterations = 20;
        const double trained = objective(data.x, 16, kmeans(data.x.data(), data.n, 16, k, o));
        EXPECT_LE(trained, seeded) << "k " << k;
        EXPECT_LT(trained, previous) << "k " << k;
        previous = trained;
    }
}

TEST(KMeans, DeterministicWhateverTheThreadCount) {
    for (std::size_t d : {6, 100})
        for (AssignMethod method : kMethods) {
            SCOPED_TRACE(testing::Message() << "d " << d << " " << method_name(method));
            Clustered data = clustered(5000, d, 30, 0.3f, 3);
            std::vector<float> first;
            for (int threads : {1, 2, 3}) {
                KMeansOptions o;
                o.threads = threads;
                o.seed = 99;
                o.assign = method;
                std::vector<float> c = kmeans(data.x.data(), data.n, d, 40, o);
                if (first.empty())
                    first = c;
                else
                    EXPECT_TRUE(same_bits(first, c)) << "threads " << threads;
            }
            // Another seed, another result (the seed is used at all).
            KMeansOptions o;
            o.seed = 100;
            o.assign = method;
            EXPECT_FALSE(same_bits(first, kmeans(data.x.data(), data.n, d, 40, o)));
        }
}

TEST(KMeans, FewerPointsThanCentroids) {
    const std::size_t d = 5;
    Rng rng(1);
    std::vector<float> x = rng.floats(3 * d, -1, 1);
    for (std::size_t n : {1, 3}) {
        std::vector<float> c = kmeans(x.data(), n, d, 8, KMeansOptions{});
        ASSERT_EQ(c.size(), 8 * d);
        for (std::size_t j = 0; j < 8; j++)
            EXPECT_EQ(std::memcmp(&c[j * d], &x[(j % n) * d], d * sizeof(float)), 0) << "n " << n << " centroid " << j;
    }
}

TEST(KMeans, NoPointsGiveZeroCentroids) {
    std::vector<float> c = kmeans(nullptr, 0, 7, 4, KMeansOptions{});
    EXPECT_EQ(c, std::vector<float>(28, 0.0f));
    EXPECT_TRUE(kmeans(nullptr, 0, 7, 0, KMeansOptions{}).empty());
}

// Many copies of few points: most seeds duplicate one, Lloyd leaves clusters
// empty, and re-seeding must neither fail nor move a centroid off the data.
TEST(KMeans, EmptyClustersFromDuplicatePoints) {
    for (std::size_t d : {3, 50}) {
        Rng rng(2);
        std::vector<float> distinct = rng.floats(4 * d, -1, 1), x;
        for (int r = 0; r < 60; r++)
            for (std::size_t p = 0; p < 4; p++) x.insert(x.end(), &distinct[p * d], &distinct[(p + 1) * d]);
        KMeansOptions o;
        o.threads = 2;
        std::vector<float> c = kmeans(x.data(), x.size() / d, d, 12, o);
        for (float v : c) ASSERT_TRUE(std::isfinite(v));
        EXPECT_LT(objective(x, d, c), 1e-9) << "d " << d;
    }
}

// One point copied many times, another a few times: most clusters start
// empty, and re-seeding them must keep splitting only clusters that have
// members (the split ones' shares must not make an empty one look big).
TEST(KMeans, ManyEmptyClustersBesideOneBigOne) {
    for (std::size_t d : {3, 50}) {
        Rng rng(6);
        std::vector<float> a = rng.floats(d, -1, 1), b = rng.floats(d, -1, 1), x;
        for (int r = 0; r < 100; r++) x.insert(x.end(), a.begin(), a.end());
        for (int r = 0; r < 10; r++) x.insert(x.end(), b.begin(), b.end());
        x.shrink_to_fit();  // so that ASan sees a read past the points
        KMeansOptions o;
        o.threads = 2;
        std::vector<float> c = kmeans(x.data(), x.size() / d, d, 12, o);
        for (float v : c) ASSERT_TRUE(std::isfinite(v));
        EXPECT_LT(objective(x, d, c), 1e-9) << "d " << d;
    }
}

// Two broad clusters and many more centroids: every centroid ends with
// points of its own.
TEST(KMeans, NoClusterEndsEmpty) {
    const std::size_t d = 12, k = 16;
    Clustered data = clustered(4000, d, 2, 0.5f, 8);
    KMeansOptions o;
    o.iterations = 30;
    std::vector<float> c = kmeans(data.x.data(), data.n, d, k, o);
    std::vector<std::uint32_t> label(data.n);
    assign_nearest(c.data(), k, d, data.x.data(), data.n, label.data(), nullptr, 1, kQuiet);
    std::vector<std::size_t> count(k, 0);
    for (std::uint32_t l : label) count[l]++;
    for (std::size_t j = 0; j < k; j++) EXPECT_GT(count[j], 0u) << "centroid " << j;
}

TEST(KMeans, PollRunsAndCanStopIt) {
    Clustered data = clustered(20000, 40, 50, 0.3f, 4);
    int polls = 0;
    KMeansOptions o;
    o.threads = 2;
    o.poll = [&] {
        if (++polls == 40) throw Error(ErrorKind::Interrupted, "canceled");
    };
    EXPECT_THROW(kmeans(data.x.data(), data.n, 40, 64, o), Error);
    EXPECT_EQ(polls, 40);
}

// --- ProductQuantizer ---------------------------------------------------------

TEST(ProductQuantizer, RejectsBadShapes) {
    EXPECT_THROW(ProductQuantizer(96, 7, 8), Error);
    EXPECT_THROW(ProductQuantizer(96, 0, 8), Error);
    EXPECT_THROW(ProductQuantizer(96, 192, 8), Error);
    EXPECT_THROW(ProductQuantizer(96, 12, 5), Error);
    EXPECT_THROW(ProductQuantizer(0, 1, 8), Error);
    try {
        ProductQuantizer(96, 7, 8);
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
    }
    ProductQuantizer pq(96, 12, 4);
    EXPECT_EQ(pq.dsub(), 8u);
    EXPECT_EQ(pq.ksub(), 16u);
    EXPECT_EQ(pq.code_bytes(), 6u);
    EXPECT_EQ(ProductQuantizer(96, 3, 4).code_bytes(), 2u);
    EXPECT_EQ(ProductQuantizer(96, 96, 8).code_bytes(), 96u);
    EXPECT_EQ(ProductQuantizer(96, 96, 8).codebook_floats(), 96u * 256u);
}

double pq_mse(const ProductQuantizer& pq, const std::vector<float>& x) {
    const std::size_t d = pq.dims(), n = x.size() / d;
    std::vector<std::uint8_t> codes(n * pq.code_bytes());
    pq.encode(x.data(), n, codes.data());
    std::vector<float> dec(d);
    double err = 0;
    for (std::size_t i = 0; i < n; i++) {
        pq.decode(&codes[i * pq.code_bytes()], dec.data());
        err += l2_double(&x[i * d], dec.data(), d);
    }
    return err / static_cast<double>(n);
}

TEST(ProductQuantizer, ErrorIsSmallAndShrinksWithMoreSubspaces) {
    const std::size_t d = 32;
    Clustered data = clustered(4000, d, 40, 0.1f, 21);
    double variance = 0;
    {
        std::vector<double> mean(d, 0);
        for (std::size_t i = 0; i < data.n; i++)
            for (std::size_t t = 0; t < d; t++) mean[t] += data.x[i * d + t];
        for (double& m : mean) m /= static_cast<double>(data.n);
        for (std::size_t i = 0; i < data.n; i++)
            for (std::size_t t = 0; t < d; t++) variance += std::pow(data.x[i * d + t] - mean[t], 2);
        variance /= static_cast<double>(data.n);
    }
    for (int bits : {4, 8}) {
        double previous = std::numeric_limits<double>::infinity();
        for (std::size_t m : {2, 4, 8, 16}) {
            ProductQuantizer pq(d, m, bits);
            KMeansOptions o;
            o.threads = 2;
            pq.train(data.x.data(), data.n, o);
            const double mse = pq_mse(pq, data.x);
            SCOPED_TRACE(testing::Message() << "bits " << bits << " m " << m << " mse " << mse);
            EXPECT_LT(mse, previous);
            EXPECT_LT(mse, variance * (bits == 8 ? 0.25 : 1.0));
            previous = mse;
        }
        // 40 clusters, 8 bits, 2 sub-spaces: 65536 cells, the clusters all
        // resolved; what is left is about the spread.
        if (bits == 8) {
            ProductQuantizer pq(d, 2, 8);
            pq.train(data.x.data(), data.n, KMeansOptions{});
            EXPECT_LT(pq_mse(pq, data.x), 1.5 * 0.1 * 0.1 * static_cast<double>(d));
        }
    }
}

// A vector made of sub-centroids encodes to their indices and decodes to
// itself exactly, at both widths and for odd m.
TEST(ProductQuantizer, CodebookPointsRoundTripExactly) {
    for (int bits : {4, 8})
        for (std::size_t m : {1, 3, 7, 8}) {
            const std::size_t dsub = 3, d = m * dsub;
            ProductQuantizer pq(d, m, bits);
            Rng rng(static_cast<std::uint32_t>(bits * 100 + m));
            std::vector<float> book = rng.floats(pq.codebook_floats(), -2, 2);
            pq.set_codebook(book.data());
            ASSERT_EQ(std::memcmp(pq.codebook(), book.data(), book.size() * sizeof(float)), 0);
            const std::size_t n = 50;
            std::vector<float> x(n * d);
            std::vector<std::uint32_t> chosen(n * m);
            for (std::size_t i = 0; i < n; i++)
                for (std::size_t j = 0; j < m; j++) {
                    std::uint32_t k = rng.bits() % pq.ksub();
                    chosen[i * m + j] = k;
                    std::memcpy(&x[i * d + j * dsub], &book[(j * pq.ksub() + k) * dsub], dsub * sizeof(float));
                }
            std::vector<std::uint8_t> codes(n * pq.code_bytes(), 0xAB);
            pq.encode(x.data(), n, codes.data());
            std::vector<float> dec(d);
            for (std::size_t i = 0; i < n; i++) {
                SCOPED_TRACE(testing::Message() << "bits " << bits << " m " << m << " vector " << i);
                const std::uint8_t* code = &codes[i * pq.code_bytes()];
                for (std::size_t j = 0; j < m; j++) {
                    const std::uint32_t k = bits == 8 ? code[j] : (code[j / 2] >> (4 * (j & 1))) & 0xF;
                    EXPECT_EQ(k, chosen[i * m + j]) << "sub-space " << j;
                }
                if (bits == 4 && m % 2 == 1) {
                    EXPECT_EQ(code[m / 2] >> 4, 0) << "padding nibble";
                }
                pq.decode(code, dec.data());
                EXPECT_EQ(std::memcmp(dec.data(), &x[i * d], d * sizeof(float)), 0);
            }
        }
}

TEST(ProductQuantizer, TrainingIsDeterministicWhateverTheThreadCount) {
    Clustered data = clustered(3000, 24, 20, 0.2f, 9);
    for (int bits : {4, 8}) {
        std::vector<float> first;
        for (int threads : {1, 2, 3}) {
            ProductQuantizer pq(24, 6, bits);
            KMeansOptions o;
            o.threads = threads;
            pq.train(data.x.data(), data.n, o);
            std::vector<float> book(pq.codebook(), pq.codebook() + pq.codebook_floats());
            if (first.empty())
                first = book;
            else
                EXPECT_TRUE(same_bits(first, book)) << "bits " << bits << " threads " << threads;
        }
    }
}

TEST(ProductQuantizer, TrainsOnFewOrNoVectors) {
    Rng rng(4);
    std::vector<float> x = rng.floats(10 * 8, -1, 1);
    ProductQuantizer pq(8, 2, 8);
    pq.train(x.data(), 10, KMeansOptions{});
    // Fewer vectors than sub-centroids: the vectors themselves are in the
    // codebook, so they encode without error.
    EXPECT_LT(pq_mse(pq, x), 1e-12);
    ProductQuantizer empty(8, 2, 4);
    empty.train(nullptr, 0, KMeansOptions{});
    for (std::size_t i = 0; i < empty.codebook_floats(); i++) ASSERT_EQ(empty.codebook()[i], 0.0f);
    empty.encode(nullptr, 0, nullptr);
}

TEST(ProductQuantizer, PollRunsOnTheCaller) {
    Clustered data = clustered(3000, 32, 10, 0.2f, 9);
    const std::thread::id caller = std::this_thread::get_id();
    int polls = 0, elsewhere = 0;
    KMeansOptions o;
    o.threads = 3;
    o.poll = [&] {
        polls++;
        if (std::this_thread::get_id() != caller) elsewhere++;
    };
    ProductQuantizer pq(32, 8, 8);
    pq.train(data.x.data(), data.n, o);
    EXPECT_GT(polls, 0);
    EXPECT_EQ(elsewhere, 0);
}

// The L2 table scores a code as |r - decode(code)|^2 and the inner-product
// table as q . decode(code).
TEST(ProductQuantizer, TablesScoreDecodedVectors) {
    for (int bits : {4, 8})
        for (std::size_t m : {1, 5, 16}) {
            const std::size_t d = m * 4;
            Clustered data = clustered(1500, d, 12, 0.3f, static_cast<std::uint32_t>(m));
            ProductQuantizer pq(d, m, bits);
            pq.train(data.x.data(), data.n, KMeansOptions{});
            std::vector<std::uint8_t> codes(data.n * pq.code_bytes());
            pq.encode(data.x.data(), data.n, codes.data());
            Rng rng(3);
            std::vector<float> q = rng.floats(d, -1.5f, 1.5f), l2(m * pq.ksub()), ip(m * pq.ksub()), dec(d);
            pq.l2_table(q.data(), l2.data());
            pq.ip_table(q.data(), ip.data());
            for (std::size_t i = 0; i < 200; i++) {
                SCOPED_TRACE(testing::Message() << "bits " << bits << " m " << m << " vector " << i);
                const std::uint8_t* code = &codes[i * pq.code_bytes()];
                pq.decode(code, dec.data());
                const double want_l2 = l2_double(q.data(), dec.data(), d);
                double want_ip = 0;
                for (std::size_t t = 0; t < d; t++) want_ip += static_cast<double>(q[t]) * dec[t];
                const double scale = norm2_double(q.data(), d) + norm2_double(dec.data(), d);
                EXPECT_NEAR(adc_reference(l2.data(), code, m, bits), want_l2, 1e-5 * scale);
                EXPECT_NEAR(adc_reference(ip.data(), code, m, bits), want_ip, 1e-5 * scale);
            }
        }
}

// --- ADC kernels ----------------------------------------------------------------

// Every level against adc_reference, over widths around each unrolled and
// vector step, strides from packed to list-entry-like, runs of codes that do
// and do not fill a 16-code block, and buffers that end at a guard page: the
// last code and the table both end where an unreadable page begins.
TEST(Adc, EveryKernelMatchesTheReference) {
    constexpr std::size_t kMs[] = {1,  2,  3,  4,  5,  7,  8,  9,  15, 16,  17, 24,
                                   31, 32, 33, 34, 47, 63, 64, 65, 98, 100, 129};
    for (Isa isa : kIsas) {
        const AdcKernels* k = adc_for_isa(static_cast<int>(isa));
        if (k == nullptr) continue;
        for (int bits : {4, 8})
            for (std::size_t m : kMs) {
                const std::size_t ksub = bits == 8 ? 256 : 16, cb = bits == 8 ? m : (m + 1) / 2;
                Rng rng(static_cast<std::uint32_t>(m * 31 + bits));
                GuardedBuffer<float> table(m * ksub, Guard::After);
                ASSERT_TRUE(table.ok());
                for (std::size_t i = 0; i < m * ksub; i++) table.data()[i] = rng.in(0.0f, 1.0f);
                for (std::size_t stride :
                     {cb, cb + 1, std::size_t{entry_size(static_cast<std::uint32_t>(cb))}, cb + 61}) {
                    for (std::size_t n : {0, 1, 7, 8, 15, 16, 17, 40}) {
                        SCOPED_TRACE(testing::Message() << distance::isa_name(isa) << " bits " << bits << " m " << m
                                                        << " stride " << stride << " n " << n);
                        const std::size_t bytes = n == 0 ? 1 : (n - 1) * stride + cb;
                        GuardedBuffer<std::uint8_t> codes(bytes, Guard::After);
                        ASSERT_TRUE(codes.ok());
                        // Random bytes everywhere, the padding nibble of odd
                        // 4-bit codes included: kernels must ignore it.
                        for (std::size_t i = 0; i < bytes; i++) codes.data()[i] = static_cast<std::uint8_t>(rng.bits());
                        std::vector<float> out(n + 1, -1.0f);
                        AdcFn fn = bits == 8 ? k->adc8 : k->adc4;
                        fn(table.data(), m, codes.data(), stride, n, out.data());
                        for (std::size_t i = 0; i < n; i++) {
                            const float want = adc_reference(table.data(), codes.data() + i * stride, m, bits);
                            ASSERT_NEAR(out[i], want, 1e-5f * want + 1e-6f) << "code " << i;
                        }
                        EXPECT_EQ(out[n], -1.0f) << "wrote past the last score";
                    }
                }
            }
    }
}

TEST(Adc, BestIsTheFloatKernelsLevel) {
    const AdcKernels& best = best_adc();
    const AdcKernels* same = adc_for_isa(static_cast<int>(distance::best().isa));
    ASSERT_NE(same, nullptr);
    EXPECT_EQ(&best, same);
    EXPECT_EQ(adc_for_isa(-1), nullptr);
    EXPECT_EQ(adc_for_isa(3), nullptr);
    EXPECT_NE(adc_for_isa(static_cast<int>(Isa::Scalar)), nullptr);
    for (Isa isa : kIsas) EXPECT_EQ(adc_for_isa(static_cast<int>(isa)) != nullptr, distance::for_isa(isa) != nullptr);
}

// The whole query path: the L2 table of a residual, the best kernel, and the
// exact distance to the decoded vector.
TEST(Adc, L2AndIpTablesThroughEveryKernel) {
    const std::size_t d = 98 * 2;
    Clustered data = clustered(2000, d, 8, 0.3f, 17);
    for (int bits : {4, 8}) {
        ProductQuantizer pq(d, 98, bits);
        pq.train(data.x.data(), data.n, KMeansOptions{});
        std::vector<std::uint8_t> codes(data.n * pq.code_bytes());
        pq.encode(data.x.data(), data.n, codes.data());
        Rng rng(1);
        std::vector<float> q = rng.floats(d, -1, 1), l2(98 * pq.ksub()), ip(98 * pq.ksub()), dec(d);
        pq.l2_table(q.data(), l2.data());
        pq.ip_table(q.data(), ip.data());
        for (Isa isa : kIsas) {
            const AdcKernels* k = adc_for_isa(static_cast<int>(isa));
            if (k == nullptr) continue;
            AdcFn fn = bits == 8 ? k->adc8 : k->adc4;
            std::vector<float> s_l2(data.n), s_ip(data.n);
            fn(l2.data(), 98, codes.data(), pq.code_bytes(), data.n, s_l2.data());
            fn(ip.data(), 98, codes.data(), pq.code_bytes(), data.n, s_ip.data());
            for (std::size_t i = 0; i < data.n; i += 7) {
                SCOPED_TRACE(testing::Message() << distance::isa_name(isa) << " bits " << bits << " code " << i);
                pq.decode(&codes[i * pq.code_bytes()], dec.data());
                double dot = 0;
                for (std::size_t t = 0; t < d; t++) dot += static_cast<double>(q[t]) * dec[t];
                const double scale = norm2_double(q.data(), d) + norm2_double(dec.data(), d);
                EXPECT_NEAR(s_l2[i], l2_double(q.data(), dec.data(), d), 1e-5 * scale);
                EXPECT_NEAR(s_ip[i], dot, 1e-5 * scale);
            }
        }
    }
}

// --- format -----------------------------------------------------------------------

constexpr std::uint32_t kPageData = 8160;

MetaPage meta_for(std::uint32_t dims, std::uint32_t lists, std::uint32_t pq_m, std::uint8_t bits, Metric metric) {
    MetaPage m{};
    m.magic = kMagic;
    m.version = kVersion;
    m.metric = static_cast<std::uint8_t>(metric);
    m.pq_bits = bits;
    m.dims = dims;
    m.lists = lists;
    m.pq_m = pq_m;
    m.code_bytes = bits == 8 ? pq_m : (pq_m + 1) / 2;
    m.entry_size = entry_size(m.code_bytes);
    m.data_per_page = kPageData;
    m.dir_start = 1;
    m.dir_blocks = (lists + 1 + dir_per_page(kPageData) - 1) / dir_per_page(kPageData);
    m.centroid_start = m.dir_start + m.dir_blocks;
    m.codebook_start = m.centroid_start + stream_blocks(std::uint64_t{lists} * dims * 4, kPageData);
    m.list_start = m.codebook_start + stream_blocks((std::uint64_t{1} << bits) * dims * 4, kPageData);
    m.build_id = 0x1234567890ull;
    m.trained_rows = 5000;
    return m;
}

MetaPage good_meta() { return meta_for(784, 245, 98, 8, Metric::L2); }

// The kind of error validate_meta throws, or -1 when it accepts the page.
int meta_error(const MetaPage& m, std::string* why = nullptr) {
    try {
        validate_meta(m, kPageData);
    } catch (const Error& e) {
        if (why) *why = e.what();
        return static_cast<int>(e.kind());
    }
    return -1;
}

TEST(IvfpqFormat, ValidateMetaAcceptsGoodPages) {
    EXPECT_EQ(meta_error(good_meta()), -1);
    EXPECT_EQ(meta_error(meta_for(96, 1, 3, 4, Metric::Cosine)), -1);  // 4 bits, odd m
    EXPECT_EQ(meta_error(meta_for(1, kMaxLists, 1, 8, Metric::InnerProduct)), -1);
    EXPECT_EQ(meta_error(meta_for(static_cast<std::uint32_t>(kMaxDims), 16, 2000, 8, Metric::L2)), -1);
    MetaPage untrained = good_meta();
    untrained.trained_rows = 0;
    untrained.build_id = 0;
    EXPECT_EQ(meta_error(untrained), -1);
    // The largest code that fits one entry on a page.
    const std::uint32_t biggest = kPageData - 16 - static_cast<std::uint32_t>(sizeof(EntryHeader));
    EXPECT_EQ(meta_error(meta_for(biggest, 4, biggest, 8, Metric::L2)), -1);
}

TEST(IvfpqFormat, ValidateMetaRejectsCorruptPages) {
    struct Corruption {
        const char* what;
        void (*apply)(MetaPage*);
    };
    const Corruption cases[] = {
        {"bad magic", [](MetaPage* m) { m->magic = 0x4C484E57; }},
        {"zero magic", [](MetaPage* m) { m->magic = 0; }},
        {"version 0", [](MetaPage* m) { m->version = 0; }},
        {"version 2", [](MetaPage* m) { m->version = kVersion + 1; }},
        {"metric L1", [](MetaPage* m) { m->metric = static_cast<std::uint8_t>(Metric::L1); }},
        {"metric 255", [](MetaPage* m) { m->metric = 255; }},
        {"pq bits 0", [](MetaPage* m) { m->pq_bits = 0; }},
        {"pq bits 5", [](MetaPage* m) { m->pq_bits = 5; }},
        {"pq bits 16", [](MetaPage* m) { m->pq_bits = 16; }},
        {"dims 0", [](MetaPage* m) { m->dims = 0; }},
        {"dims too many", [](MetaPage* m) { m->dims = static_cast<std::uint32_t>(kMaxDims) + 1; }},
        {"lists 0", [](MetaPage* m) { m->lists = 0; }},
        {"lists too many", [](MetaPage* m) { m->lists = kMaxLists + 1; }},
        {"pq_m 0", [](MetaPage* m) { m->pq_m = 0; }},
        {"pq_m not a divisor", [](MetaPage* m) { m->pq_m = 97; }},
        {"pq_m above dims", [](MetaPage* m) { m->pq_m = 1568; }},
        {"code bytes +1", [](MetaPage* m) { m->code_bytes += 1; }},
        {"code bytes -1", [](MetaPage* m) { m->code_bytes -= 1; }},
        {"code bytes of 4 bits", [](MetaPage* m) { m->code_bytes = 49; }},
        {"entry size +4", [](MetaPage* m) { m->entry_size += 4; }},
        {"entry size -4", [](MetaPage* m) { m->entry_size -= 4; }},
        {"data per page", [](MetaPage* m) { m->data_per_page = kPageData - 32; }},
        {"dir start 0", [](MetaPage* m) { m->dir_start = 0; }},
        {"dir start 2", [](MetaPage* m) { m->dir_start = 2; }},
        {"dir blocks +1", [](MetaPage* m) { m->dir_blocks += 1; }},
        {"dir blocks 0", [](MetaPage* m) { m->dir_blocks = 0; }},
        {"centroid start +1", [](MetaPage* m) { m->centroid_start += 1; }},
        {"codebook start +1", [](MetaPage* m) { m->codebook_start += 1; }},
        {"codebook start -1", [](MetaPage* m) { m->codebook_start -= 1; }},
        {"list start +1", [](MetaPage* m) { m->list_start += 1; }},
        {"list start -1", [](MetaPage* m) { m->list_start -= 1; }},
        {"layout of other lists", [](MetaPage* m) { m->lists = 1000; }},
        {"layout of other dims", [](MetaPage* m) { m->dims = 392; }},
        {"layout of other bits",
         [](MetaPage* m) {
             m->pq_bits = 4;
             m->code_bytes = 49;
             m->entry_size = entry_size(49);
         }},
        {"entry does not fit",
         [](MetaPage* m) {
             *m =
                 meta_for(static_cast<std::uint32_t>(kMaxDims), 4, static_cast<std::uint32_t>(kMaxDims), 8, Metric::L2);
         }},
        {"reserved0", [](MetaPage* m) { m->reserved0 = 1; }},
        {"reserved[0]", [](MetaPage* m) { m->reserved[0] = 1; }},
        {"reserved[7]", [](MetaPage* m) { m->reserved[7] = 0x80000000u; }},
    };
    for (const Corruption& c : cases) {
        MetaPage m = good_meta();
        c.apply(&m);
        std::string why;
        EXPECT_EQ(meta_error(m, &why), static_cast<int>(ErrorKind::IndexCorrupted)) << c.what;
        EXPECT_NE(why.find("byte offset"), std::string::npos) << c.what << ": " << why;
    }
    // Every reserved word on its own.
    for (std::size_t i = 0; i < sizeof(MetaPage::reserved) / sizeof(std::uint32_t); i++) {
        MetaPage m = good_meta();
        m.reserved[i] = 1;
        std::string why;
        EXPECT_EQ(meta_error(m, &why), static_cast<int>(ErrorKind::IndexCorrupted)) << "reserved " << i;
        EXPECT_NE(why.find("byte offset " + std::to_string(offsetof(MetaPage, reserved) + 4 * i)), std::string::npos)
            << why;
    }
    std::string why;
    MetaPage m = good_meta();
    m.magic = 1;
    meta_error(m, &why);
    EXPECT_NE(why.find("magic"), std::string::npos) << why;
    EXPECT_NE(why.find("byte offset 0)"), std::string::npos) << why;
    m = good_meta();
    m.version = 9;
    meta_error(m, &why);
    EXPECT_NE(why.find("version 9"), std::string::npos) << why;
    m = good_meta();
    m.lists = 0;
    meta_error(m, &why);
    EXPECT_NE(why.find("byte offset " + std::to_string(offsetof(MetaPage, lists))), std::string::npos) << why;
    m = good_meta();
    m.list_start += 3;
    meta_error(m, &why);
    EXPECT_NE(why.find("list pages start"), std::string::npos) << why;
}

// A list page's data area, built entry by entry.
struct ListPage {
    MetaPage meta;
    std::vector<std::uint8_t> data;

    ListPage(const MetaPage& m, std::uint32_t list) : meta(m), data(m.data_per_page, 0) {
        ListPageHeader h{};
        h.next = kNoBlock;
        h.list = list;
        std::memcpy(data.data(), &h, sizeof h);
    }
    ListPageHeader header() const {
        ListPageHeader h;
        std::memcpy(&h, data.data(), sizeof h);
        return h;
    }
    void set_header(const ListPageHeader& h) { std::memcpy(data.data(), &h, sizeof h); }
    std::size_t entry_offset(std::uint32_t i) const {
        return sizeof(ListPageHeader) + std::size_t{i} * meta.entry_size;
    }
    void add(std::uint16_t flags, float error, std::uint8_t code_byte) {
        ListPageHeader h = header();
        EntryHeader e{};
        set_entry_tid(&e, 0x123456789ull + h.n_entries);
        e.flags = flags;
        e.error = error;
        const std::size_t off = entry_offset(h.n_entries);
        std::memcpy(&data[off], &e, sizeof e);
        std::memset(&data[off + sizeof e], code_byte, meta.code_bytes);
        h.n_entries++;
        set_header(h);
    }
    void set_entry(std::uint32_t i, std::uint16_t flags, float error) {
        EntryHeader e;
        std::memcpy(&e, &data[entry_offset(i)], sizeof e);
        e.flags = flags;
        e.error = error;
        std::memcpy(&data[entry_offset(i)], &e, sizeof e);
    }
};

int page_error(const ListPage& p, std::uint32_t list, std::string* why = nullptr) {
    try {
        validate_list_page(p.meta, p.data.data(), list);
    } catch (const Error& e) {
        if (why) *why = e.what();
        return static_cast<int>(e.kind());
    }
    return -1;
}

constexpr int kCorrupted = static_cast<int>(ErrorKind::IndexCorrupted);

TEST(IvfpqFormat, ValidateListPageAcceptsGoodPages) {
    const MetaPage m = meta_for(96, 10, 12, 8, Metric::Cosine);
    ListPage live(m, 4);
    for (int i = 0; i < 5; i++) live.add(kEntryLive, 0.5f * static_cast<float>(i), 0xEE);
    EXPECT_EQ(validate_list_page(m, live.data.data(), 4), 5u);
    ListPage nulls(m, 10);
    nulls.add(kEntryNull, 0.0f, 0);
    nulls.add(kEntryZero, 0.0f, 0);
    EXPECT_EQ(validate_list_page(m, nulls.data.data(), 10), 2u);
    ListPage empty(m, 0);
    EXPECT_EQ(validate_list_page(m, empty.data.data(), 0), 0u);
    // Full, with a next page.
    ListPage full(m, 9);
    const std::uint32_t capacity = entries_per_page(m.data_per_page, m.entry_size);
    for (std::uint32_t i = 0; i < capacity; i++) full.add(kEntryLive, 1.0f, 7);
    ListPageHeader h = full.header();
    h.next = m.list_start + 40;
    full.set_header(h);
    EXPECT_EQ(validate_list_page(m, full.data.data(), 9), capacity);
}

TEST(IvfpqFormat, ValidateListPageRejectsCorruptPages) {
    const MetaPage cosine = meta_for(96, 10, 12, 8, Metric::Cosine);
    const MetaPage l2 = meta_for(96, 10, 12, 8, Metric::L2);
    auto live_page = [&](const MetaPage& m) {
        ListPage p(m, 3);
        for (int i = 0; i < 4; i++) p.add(kEntryLive, 0.25f, 0x11);
        return p;
    };
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    struct Case {
        const char* what;
        std::size_t offset;  // the offset the message must name
        ListPage page;
        std::uint32_t list;
    };
    std::vector<Case> cases;
    auto header_case = [&](const char* what, std::size_t offset, void (*edit)(ListPageHeader*)) {
        ListPage p = live_page(cosine);
        ListPageHeader h = p.header();
        edit(&h);
        p.set_header(h);
        cases.push_back({what, offset, p, 3});
    };
    header_case("wrong list", offsetof(ListPageHeader, list), [](ListPageHeader* h) { h->list = 4; });
    header_case("too many entries", offsetof(ListPageHeader, n_entries),
                [](ListPageHeader* h) { h->n_entries = 1000; });
    header_case("reserved0", offsetof(ListPageHeader, reserved0), [](ListPageHeader* h) { h->reserved0 = 1; });
    header_case("reserved1", offsetof(ListPageHeader, reserved1), [](ListPageHeader* h) { h->reserved1 = 9; });
    header_case("next into the metapage", offsetof(ListPageHeader, next), [](ListPageHeader* h) { h->next = 0; });
    header_case("next into the codebooks", offsetof(ListPageHeader, next), [](ListPageHeader* h) { h->next = 3; });

    const std::size_t e2 = sizeof(ListPageHeader) + 2 * cosine.entry_size;
    const std::size_t flags2 = e2 + offsetof(EntryHeader, flags), error2 = e2 + offsetof(EntryHeader, error);
    auto entry_case = [&](const char* what, std::size_t offset, const MetaPage& m, std::uint32_t list,
                          std::uint16_t flags, float error) {
        ListPage p(m, list);
        for (int i = 0; i < 4; i++) p.add(list == m.lists ? kEntryNull : kEntryLive, 0.0f, 0);
        p.set_entry(2, flags, error);
        cases.push_back({what, offset, p, list});
    };
    entry_case("flags 0", flags2, cosine, 3, 0, 0.0f);
    entry_case("flags 4", flags2, cosine, 3, 4, 0.0f);
    entry_case("flags 0xFFFF", flags2, cosine, 3, 0xFFFF, 0.0f);
    entry_case("NULL in a list", flags2, cosine, 3, kEntryNull, 0.0f);
    entry_case("zero vector in a list", flags2, cosine, 3, kEntryZero, 0.0f);
    entry_case("live in the NULL list", flags2, cosine, 10, kEntryLive, 0.0f);
    entry_case("zero vector under L2", flags2, l2, 10, kEntryZero, 0.0f);
    entry_case("error NaN", error2, cosine, 3, kEntryLive, nan);
    entry_case("error negative", error2, cosine, 3, kEntryLive, -1.0f);
    entry_case("error infinite", error2, cosine, 3, kEntryLive, inf);
    entry_case("error in the NULL list", error2, cosine, 10, kEntryNull, 0.5f);

    {
        ListPage p = live_page(cosine);
        const std::size_t tail = sizeof(ListPageHeader) + 4 * cosine.entry_size;
        p.data[tail] = 1;
        cases.push_back({"byte right after the last entry", tail, p, 3});
        ListPage q = live_page(cosine);
        q.data.back() = 0x80;
        cases.push_back({"last byte of the page", cosine.data_per_page - 1, q, 3});
        // An entry beyond n_entries left behind (VACUUM must zero it).
        ListPage r = live_page(cosine);
        ListPageHeader h = r.header();
        h.n_entries = 3;
        r.set_header(h);
        cases.push_back({"stale entry after the count", sizeof(ListPageHeader) + 3 * cosine.entry_size, r, 3});
    }
    {
        ListPage p = live_page(cosine);
        cases.push_back({"list beyond the NULL list", 0, p, 11});
    }

    for (const Case& c : cases) {
        std::string why;
        EXPECT_EQ(page_error(c.page, c.list, &why), kCorrupted) << c.what;
        EXPECT_NE(why.find("(byte offset " + std::to_string(c.offset) + ")"), std::string::npos)
            << c.what << ": " << why;
    }
}

}  // namespace
}  // namespace lrv::core::ivfpq
