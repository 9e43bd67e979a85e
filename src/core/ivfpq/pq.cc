// Product quantizer: training, encoding and the ADC tables.
//
// Encoding and the tables all ask one question of a sub-space: some function
// of a sub-vector against each of its ksub centroids. With the codebook kept
// a second time transposed (the panels of nearest.h: dsub rows of ksub floats
// per sub-space), every such loop runs over centroids, contiguous and a
// multiple of 16 long. Encoding, run on every row of a build, uses the
// per-ISA kernels of nearest.h; the tables, built once per query and probed
// list, use GCC's vector types, which give SSE2 at baseline x86-64 (and NEON
// elsewhere) without any -m flag.
#include "libravdb/core/ivfpq/pq.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "libravdb/core/common/parallel.h"
#include "libravdb/core/error.h"
#include "libravdb/core/ivfpq/nearest.h"

namespace lrv::core::ivfpq {

namespace {

using V4 = float __attribute__((vector_size(16)));

// Centroids handled per step: four vectors of four, independent sums enough
// to hide add latency, with the loads well within SSE2's 16 registers.
constexpr std::size_t kLanes = 16;

inline V4 load4(const float* p) noexcept {
    V4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store4(float* p, V4 v) noexcept { std::memcpy(p, &v, sizeof v); }
inline V4 splat(float f) noexcept { return V4{f, f, f, f}; }

// Vectors encoded per pass over the sub-spaces: a sub-space's panel (8 kB at
// dsub 8, 8 bits) then serves the whole block from L1.
constexpr std::size_t kEncodeBlock = 64;

}  // namespace

ProductQuantizer::ProductQuantizer(std::size_t dims, std::size_t m, int bits)
    : dims_(dims), m_(m), dsub_(0), ksub_(0), bits_(bits) {
    if (bits != 4 && bits != 8) fail(ErrorKind::InvalidParameter, "pq bits must be 4 or 8");
    if (dims == 0) fail(ErrorKind::InvalidParameter, "pq needs at least one dimension");
    if (m == 0 || m > dims || dims % m != 0)
        fail(ErrorKind::InvalidParameter,
             "pq sub-spaces (" + std::to_string(m) + ") must divide dimensions (" + std::to_string(dims) + ")");
    dsub_ = dims / m;
    ksub_ = std::size_t{1} << bits;
    codebook_.assign(m_ * ksub_ * dsub_, 0.0f);
    codebook_t_.assign(codebook_.size(), 0.0f);
    sq_norms_.assign(m_ * ksub_, 0.0f);
}

// ksub is 16 or 256, a multiple of 16: the panels need no padding.
void ProductQuantizer::prepare() noexcept {
    for (std::size_t j = 0; j < m_; j++)
        make_panel(codebook_.data() + j * ksub_ * dsub_, ksub_, dsub_, codebook_t_.data() + j * ksub_ * dsub_,
                   sq_norms_.data() + j * ksub_);
}

void ProductQuantizer::train(const float* x, std::size_t n, const KMeansOptions& opts) {
    const int threads = std::max(1, std::min<int>(opts.threads, static_cast<int>(m_)));
    std::vector<std::vector<float>> sub(static_cast<std::size_t>(threads));
    const std::function<void()> quiet = [] {};
    const std::function<void()>& poll = opts.poll ? opts.poll : quiet;
    // One sub-space per chunk, each k-means on one thread: m is in the tens
    // to hundreds, so this keeps every thread busy without splitting small
    // k-means runs, whose steps are too short to share.
    parallel_for(
        m_, 1, threads,
        [&](std::size_t begin, std::size_t end, int worker) {
            std::vector<float>& buf = sub[static_cast<std::size_t>(worker)];
            buf.resize(n * dsub_);
            for (std::size_t j = begin; j < end; j++) {
                for (std::size_t i = 0; i < n; i++)
                    std::memcpy(buf.data() + i * dsub_, x + i * dims_ + j * dsub_, dsub_ * sizeof(float));
                KMeansOptions o;
                o.iterations = opts.iterations;
                // Distinct, fixed seeds per sub-space: identical sub-spaces
                // (repeated columns) should still not share random draws.
                o.seed = opts.seed ^ (0x9E3779B97F4A7C15ull * (j + 1));
                o.threads = 1;
                // Only the calling thread may poll; helpers run silent.
                o.poll = worker == 0 ? poll : quiet;
                std::vector<float> c = kmeans(buf.data(), n, dsub_, ksub_, o);
                std::memcpy(codebook_.data() + j * ksub_ * dsub_, c.data(), c.size() * sizeof(float));
            }
        },
        poll);
    prepare();
}

void ProductQuantizer::set_codebook(const float* c) {
    std::memcpy(codebook_.data(), c, codebook_.size() * sizeof(float));
    prepare();
}

void ProductQuantizer::encode(const float* x, std::size_t n, std::uint8_t* codes) const {
    if (n == 0) return;
    const std::size_t cb = code_bytes();
    std::memset(codes, 0, n * cb);
    const NearestFn nearest = best_nearest().nearest;
    std::uint32_t label[kEncodeBlock];
    for (std::size_t i0 = 0; i0 < n; i0 += kEncodeBlock) {
        const std::size_t len = std::min(kEncodeBlock, n - i0);
        for (std::size_t j = 0; j < m_; j++) {
            nearest(x + i0 * dims_ + j * dsub_, len, dims_, dsub_, codebook_t_.data() + j * ksub_ * dsub_, ksub_,
                    sq_norms_.data() + j * ksub_, ksub_, label, nullptr);
            std::uint8_t* out = codes + i0 * cb;
            if (bits_ == 8) {
                for (std::size_t i = 0; i < len; i++) out[i * cb + j] = static_cast<std::uint8_t>(label[i]);
            } else {
                for (std::size_t i = 0; i < len; i++)
                    out[i * cb + j / 2] |= static_cast<std::uint8_t>(label[i] << (4 * (j & 1)));
            }
        }
    }
}

void ProductQuantizer::decode(const std::uint8_t* code, float* out) const noexcept {
    for (std::size_t j = 0; j < m_; j++) {
        const std::size_t k = bits_ == 8 ? code[j] : (code[j / 2] >> (4 * (j & 1))) & 0xF;
        std::memcpy(out + j * dsub_, codebook_.data() + (j * ksub_ + k) * dsub_, dsub_ * sizeof(float));
    }
}

// Direct differences rather than |r|^2 - 2 r.c + |c|^2: the same work over
// the transposed codebook, without the cancellation when r is near a
// centroid, which is exactly the case that decides a ranking.
void ProductQuantizer::l2_table(const float* r, float* table) const noexcept {
    for (std::size_t j = 0; j < m_; j++) {
        const float* ct = codebook_t_.data() + j * ksub_ * dsub_;
        const float* rs = r + j * dsub_;
        float* out = table + j * ksub_;
        for (std::size_t kb = 0; kb < ksub_; kb += kLanes) {
            V4 a0 = splat(0), a1 = splat(0), a2 = splat(0), a3 = splat(0);
            const float* row = ct + kb;
            for (std::size_t t = 0; t < dsub_; t++, row += ksub_) {
                const V4 x = splat(rs[t]);
                V4 d0 = x - load4(row), d1 = x - load4(row + 4), d2 = x - load4(row + 8), d3 = x - load4(row + 12);
                a0 += d0 * d0;
                a1 += d1 * d1;
                a2 += d2 * d2;
                a3 += d3 * d3;
            }
            store4(out + kb, a0);
            store4(out + kb + 4, a1);
            store4(out + kb + 8, a2);
            store4(out + kb + 12, a3);
        }
    }
}

void ProductQuantizer::ip_table(const float* q, float* table) const noexcept {
    for (std::size_t j = 0; j < m_; j++) {
        const float* ct = codebook_t_.data() + j * ksub_ * dsub_;
        const float* qs = q + j * dsub_;
        float* out = table + j * ksub_;
        for (std::size_t kb = 0; kb < ksub_; kb += kLanes) {
            V4 a0 = splat(0), a1 = splat(0), a2 = splat(0), a3 = splat(0);
            const float* row = ct + kb;
            for (std::size_t t = 0; t < dsub_; t++, row += ksub_) {
                const V4 x = splat(qs[t]);
                a0 += x * load4(row);
                a1 += x * load4(row + 4);
                a2 += x * load4(row + 8);
                a3 += x * load4(row + 12);
            }
            store4(out + kb, a0);
            store4(out + kb + 4, a1);
            store4(out + kb + 8, a2);
            store4(out + kb + 12, a3);
        }
    }
}

float adc_reference(const float* table, const std::uint8_t* code, std::size_t m, int bits) noexcept {
    float s = 0;
    if (bits == 8) {
        for (std::size_t j = 0; j < m; j++) s += table[j * 256 + code[j]];
    } else {
        for (std::size_t j = 0; j < m; j++) s += table[j * 16 + ((code[j / 2] >> (4 * (j & 1))) & 0xF)];
    }
    return s;
}

}  // namespace lrv::core::ivfpq
