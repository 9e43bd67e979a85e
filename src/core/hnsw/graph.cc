// Building an HNSW graph in memory, on several threads.
//
// Insertion follows hnswlib's concurrency scheme: a node's links are guarded
// by one of a fixed array of mutexes (striped by id), a thread holds at most
// one of them at a time and copies a link list before following it, and the
// thread inserting a node above the current top level holds the entry-point
// mutex for its whole insertion. Every node's memory (code, links, upper
// levels) is allocated by add() before link_all starts, so nothing is
// reallocated while threads run.
#include "libravdb/core/hnsw/graph.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include "libravdb/core/error.h"

namespace lrv::core::hnsw {

using distance::Metric;

namespace {

std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

constexpr std::size_t kStripes = 4096;
constexpr std::size_t kPollEvery = 256;

std::uint32_t code_sum(const std::uint8_t* c, std::size_t n) noexcept {
    std::uint32_t s = 0;
    for (std::size_t i = 0; i < n; i++) s += c[i];
    return s;
}

}  // namespace

int random_level(std::uint64_t seed, std::uint64_t id, int m) noexcept {
    std::uint64_t r = splitmix64(seed ^ splitmix64(id));
    double u = static_cast<double>(r >> 11) * 0x1.0p-53;  // [0, 1)
    double level = -std::log(1.0 - u) / std::log(static_cast<double>(std::max(m, 2)));
    return std::min(static_cast<int>(level), kMaxLevel);
}

double metric_value(Metric metric, const float* a, const float* b, std::size_t dims) noexcept {
    const distance::Kernels& k = distance::best();
    switch (metric) {
        case Metric::L2:
            return std::sqrt(static_cast<double>(k.l2_squared(a, b, dims)));
        case Metric::InnerProduct:
            return -static_cast<double>(k.inner_product(a, b, dims));
        case Metric::Cosine:
            return static_cast<double>(distance::cosine_distance(a, b, dims));
        case Metric::L1:
            return static_cast<double>(k.l1(a, b, dims));
    }
    return 0;
}

void decode(const QuantizerParams& p, const std::uint8_t* code, std::size_t dims, float* out) noexcept {
    switch (p.kind) {
        case QuantizerKind::None:
            std::memcpy(out, code, dims * sizeof(float));
            return;
        case QuantizerKind::Fp16:
            for (std::size_t i = 0; i < dims; i++) {
                std::uint16_t h;
                std::memcpy(&h, code + 2 * i, sizeof h);
                out[i] = distance::half_to_float(h);
            }
            return;
        case QuantizerKind::Sq8:
            for (std::size_t i = 0; i < dims; i++) out[i] = p.lo + static_cast<float>(code[i]) * p.step;
            return;
    }
}

struct BuildGraph::Locks {
    std::mutex stripe[kStripes];
    std::mutex entry;
    std::mutex& of(std::uint32_t id) noexcept { return stripe[id % kStripes]; }
};

// Per-thread state: the visited set (generation stamps), decode buffers and
// the store the search templates read.
struct BuildGraph::Worker {
    const BuildGraph* g;
    std::vector<std::uint32_t> stamp;
    std::uint32_t generation = 0;
    AlignedVector<float> query, pa, pb;
    std::unique_ptr<QueryCoder> coder;
    // pair_distance on codes: a coder for the last first operand, so a run of
    // distances from one node decodes it once and uses the code kernels.
    std::unique_ptr<QueryCoder> pair_coder;
    std::uint32_t pair_a = kNone;
    std::vector<std::uint32_t> scratch;
    std::vector<Candidate> found, chosen, merged, pruned;
    std::vector<std::vector<Candidate>> found_at;  // insert(): per level
    // connect(): the links a prune need not compare with each other (see
    // settled0_), marked with the current `settled_gen`.
    std::vector<std::uint32_t> settled;
    std::uint32_t settled_gen = 0;
    std::size_t settled_skipped = 0;

    explicit Worker(const BuildGraph* graph)
        : g(graph), stamp(graph->size(), 0), query(graph->dims_), pa(graph->dims_), pb(graph->dims_) {}

    void new_generation() {
        if (++generation == 0) {
            std::fill(stamp.begin(), stamp.end(), 0);
            generation = 1;
        }
    }
    void set_query(const float* q) {
        coder.reset(new QueryCoder(g->qp_, g->metric_, q, g->dims_));
    }

    // The store interface of search.h.
    // The query's squared norm and extra coordinate (inner product builds).
    double q_norm2 = 0, q_extra = 0;

    // insert(): the node being linked, compared with others as pairs when
    // links are chosen on sq8 codes; kNone: a float query (search()).
    std::uint32_t query_id = kNone;
    // Pairs compared on the stored vectors even when the search runs on sq8
    // codes (search_on_sq8); set through ExactPairs.
    bool exact = false;

    bool evaluate(std::uint32_t id, Candidate* c) {
        if (query_id != kNone) {
            c->d = g->pair_distance(*this, query_id, id);
        } else {
            c->d = coder->value(g->code(id), g->norms_[id]);
            if (g->mips_) c->d = g->mips_distance(c->d, q_norm2, q_extra, id);
        }
        c->key = c->d;
        c->flags = kNodeLive;
        return true;
    }
    void links(std::uint32_t id, int level, std::vector<std::uint32_t>* out) {
        std::lock_guard<std::mutex> hold(g->locks_->of(id));
        std::uint32_t n;
        const std::uint32_t* l = g->links(id, level, &n);
        out->assign(l, l + n);
    }
    void prefetch(std::uint32_t id) const noexcept {
        const bool pairs = query_id != kNone && g->link_sq8_ && !exact;
        const std::uint8_t* p = pairs ? g->link_code(id) : g->code(id);
        const std::size_t bytes = pairs ? g->dims_ : g->code_bytes_;
        // The first lines; the hardware prefetcher follows the stream.
        for (std::size_t b = 0; b < std::min<std::size_t>(bytes, 256); b += 64) __builtin_prefetch(p + b);
    }
    bool visit(std::uint32_t id) {
        if (stamp[id] == generation) return false;
        stamp[id] = generation;
        return true;
    }
};

namespace {

// Compares pairs on the stored vectors for as long as it lives (when `on`).
class ExactPairs {
  public:
    ExactPairs(bool& flag, bool on) noexcept : flag_(flag), was_(flag) { flag_ = was_ || on; }
    ~ExactPairs() { flag_ = was_; }
    ExactPairs(const ExactPairs&) = delete;
    ExactPairs& operator=(const ExactPairs&) = delete;

  private:
    bool& flag_;
    bool was_;
};

}  // namespace

BuildGraph::BuildGraph(const BuildOptions& opts, const QuantizerParams& qp, Metric metric, std::size_t dims)
    : opts_(opts), qp_(qp), metric_(metric), dims_(dims), code_bytes_(code_bytes(qp.kind, dims)),
      code_stride_((code_bytes_ + 63) & ~static_cast<std::size_t>(63)),
      quant_kernels_(&distance::best_quant()), locks_(new Locks()) {
    if (qp.kind == QuantizerKind::Sq8) {
        link_sq8_ = true;
        link_qp_ = qp;
    }
    keep_dist0_ = qp.kind != QuantizerKind::Sq8;
    if (opts.m < kMinM || opts.m > kMaxM) fail(ErrorKind::InvalidParameter, "m out of range");
    if (opts.ef_construction < kMinEfConstruction || opts.ef_construction > kMaxEfConstruction)
        fail(ErrorKind::InvalidParameter, "ef_construction out of range");
}

BuildGraph::~BuildGraph() = default;

void BuildGraph::FreeDeleter::operator()(std::uint8_t* p) const noexcept { large_block_free(p); }

std::size_t BuildGraph::estimate_bytes(std::size_t n, std::size_t dims, QuantizerKind q, int m,
                                      bool link_sq8) noexcept {
    const std::size_t mm = static_cast<std::size_t>(m);
    auto padded = [](std::size_t b) { return (b + 63) & ~static_cast<std::size_t>(63); };
    std::size_t per_node = padded(code_bytes(q, dims)) + 2 * sizeof(float) + sizeof(std::uint64_t) + 1 +
                           (2 * mm + 1) * sizeof(std::uint32_t) + sizeof(void*) + 1 +
                           4 * sizeof(std::uint32_t);  // visited and settled marks of two threads
    if (link_sq8 || q == QuantizerKind::Sq8) per_node += sizeof(std::uint32_t);       // code sums
    if (link_sq8 && q != QuantizerKind::Sq8) per_node += padded(dims) + sizeof(float);  // link codes, residuals
    if (q != QuantizerKind::Sq8) per_node += 2 * mm * sizeof(float);               // level-0 link distances
    // About one node in m-1 has upper levels, m + 1 words each.
    std::size_t upper = n / std::max<std::size_t>(mm - 1, 1) * (mm + 1) * sizeof(std::uint32_t);
    return n * per_node + upper;
}

void BuildGraph::reserve(std::size_t n) {
    if (n <= code_capacity_) return;
    auto* block = static_cast<std::uint8_t*>(large_block_alloc(n * code_stride_));
    if (size() > 0) std::memcpy(block, codes_.get(), size() * code_stride_);
    codes_.reset(block);
    if (link_codes_) {
        auto* lblock = static_cast<std::uint8_t*>(large_block_alloc(n * link_stride_));
        if (size() > 0) std::memcpy(lblock, link_codes_.get(), size() * link_stride_);
        link_codes_.reset(lblock);
    }
    if (link_sq8_) link_sums_.reserve(n);
    if (link_codes_) link_res_.reserve(n);
    code_capacity_ = n;
    norms_.reserve(n);
    residuals_.reserve(n);
    tids_.reserve(n);
    levels_.reserve(n);
    links0_.reserve(n * max_links(0));
    if (keep_dist0_) dist0_.reserve(n * max_links(0));
    count0_.reserve(n);
    settled0_.reserve(n);
}

std::uint32_t BuildGraph::add(const float* x, std::uint64_t tid_key) {
    std::size_t id = tids_.size();
    if (id >= kNone) fail(ErrorKind::ProgramLimit, "an lhnsw index holds at most 4294967294 nodes");
    if (id == code_capacity_) reserve(std::max<std::size_t>(1024, code_capacity_ * 2));
    std::uint8_t* dst = codes_.get() + id * code_stride_;
    std::memset(dst, 0, code_stride_);
    float r = encode(qp_, metric_, x, dims_, dst);
    residuals_.push_back(r);
    if (link_codes_) {
        link_sums_.push_back(0);
        link_res_.push_back(0);
        encode_link_code(static_cast<std::uint32_t>(id), x);
    } else if (link_sq8_) {
        link_sums_.push_back(code_sum(dst, dims_));
    }
    norms_.push_back(vector_norm(x, dims_));
    tids_.push_back(tid_key);
    int level = random_level(opts_.seed, id, opts_.m);
    levels_.push_back(static_cast<std::uint8_t>(level));
    links0_.resize(links0_.size() + max_links(0), kNone);
    if (keep_dist0_) dist0_.resize(links0_.size(), 0.0f);
    count0_.push_back(0);
    settled0_.push_back(0);
    if (level > 0) {
        std::size_t words = static_cast<std::size_t>(level) * (static_cast<std::size_t>(opts_.m) + 1);
        upper_.resize(id + 1);
        upper_[id].reset(new std::uint32_t[words]);
        std::fill(upper_[id].get(), upper_[id].get() + words, 0);
    }
    return static_cast<std::uint32_t>(id);
}

std::size_t BuildGraph::memory_bytes() const noexcept {
    std::size_t upper = 0;
    for (std::size_t i = 0; i < upper_.size(); i++)
        if (upper_[i]) upper += levels_[i] * (static_cast<std::size_t>(opts_.m) + 1) * sizeof(std::uint32_t);
    return code_capacity_ * (code_stride_ + (link_codes_ ? link_stride_ : 0)) +
           link_sums_.capacity() * sizeof(std::uint32_t) + link_res_.capacity() * sizeof(float) +
           (norms_.capacity() + residuals_.capacity()) * sizeof(float) +
           tids_.capacity() * sizeof(std::uint64_t) + levels_.capacity() +
           (links0_.capacity() + count0_.capacity()) * sizeof(std::uint32_t) + dist0_.capacity() * sizeof(float) +
           settled0_.capacity() +
           upper_.capacity() * sizeof(void*) +
           upper;
}

void BuildGraph::encode_link_code(std::uint32_t id, const float* x) noexcept {
    // The index's own encoder: an sq8 index's link codes are then its stored
    // codes, byte for byte.
    std::uint8_t* dst = link_codes_.get() + std::size_t{id} * link_stride_;
    std::memset(dst, 0, link_stride_);
    link_res_[id] = encode(link_qp_, metric_, x, dims_, dst);
    link_sums_[id] = code_sum(dst, dims_);
}

bool BuildGraph::link_on_sq8(double max_noise) {
    if (link_sq8_) return true;
    if (linked_ > 0) fail(ErrorKind::InvalidParameter, "link_on_sq8 after link_all");
    if (size() < 2) return false;
    // The range of every stored element (decoded, for fp16), and each
    // dimension's variance.
    std::vector<float> buf(dims_);
    std::vector<double> sum(dims_, 0.0), sum_sq(dims_, 0.0);
    float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
    for (std::uint32_t id = 0; id < size(); id++) {
        decode(qp_, code(id), dims_, buf.data());
        for (std::size_t i = 0; i < dims_; i++) {
            const float x = buf[i];
            lo = std::min(lo, x);
            hi = std::max(hi, x);
            sum[i] += x;
            sum_sq[i] += static_cast<double>(x) * x;
        }
    }
    const double n = static_cast<double>(size());
    double variance = 0;
    for (std::size_t i = 0; i < dims_; i++) variance += std::max(0.0, sum_sq[i] / n - (sum[i] / n) * (sum[i] / n));
    variance /= static_cast<double>(dims_);
    const QuantizerParams qp = sq8_from_range(lo, hi);
    // Rounding to a grid of step s adds noise of variance s^2 / 12 to every
    // element. Beside the elements' own variance that is what distances
    // between codes get wrong, relatively: one outlier value stretching the
    // range makes the step coarse for every other dimension.
    const double noise = static_cast<double>(qp.step) * qp.step / 12.0;
    if (!std::isfinite(variance) || !(noise <= max_noise * max_noise * variance)) return false;
    link_qp_ = qp;
    link_stride_ = (dims_ + 63) & ~static_cast<std::size_t>(63);
    const std::size_t cap = std::max<std::size_t>(code_capacity_, 1);
    auto* block = static_cast<std::uint8_t*>(large_block_alloc(cap * link_stride_));
    link_codes_.reset(block);
    link_sums_.reserve(cap);
    link_sums_.assign(size(), 0);
    link_res_.reserve(cap);
    link_res_.assign(size(), 0);
    for (std::uint32_t id = 0; id < size(); id++) {
        decode(qp_, code(id), dims_, buf.data());
        encode_link_code(id, buf.data());
    }
    link_sq8_ = true;
    return true;
}

bool BuildGraph::search_on_sq8(double max_noise) {
    if (linked_ > 0) fail(ErrorKind::InvalidParameter, "search_on_sq8 after link_all");
    if (qp_.kind == QuantizerKind::Sq8) return false;
    if (!link_on_sq8(max_noise)) return false;
    exact_links_ = true;
    bounded_ = metric_ == Metric::L2 || metric_ == Metric::L1;
    return true;
}

std::uint32_t* BuildGraph::links_mut(std::uint32_t id, int level, std::uint32_t** count) noexcept {
    if (level == 0) {
        *count = &count0_[id];
        return links0_.data() + std::size_t{id} * max_links(0);
    }
    std::uint32_t* block = upper_[id].get() + static_cast<std::size_t>(level - 1) * (opts_.m + 1);
    *count = block;
    return block + 1;
}

const std::uint32_t* BuildGraph::links(std::uint32_t id, int level, std::uint32_t* n) const noexcept {
    if (level > levels_[id]) {
        *n = 0;
        return nullptr;
    }
    std::uint32_t* count;
    const std::uint32_t* l = const_cast<BuildGraph*>(this)->links_mut(id, level, &count);
    *n = *count;
    return l;
}

namespace {

// Between two sq8 codes, in integers (quant_kernels.h): links chosen on sq8
// codes compare a node with others this way, which reads a quarter of the
// bytes float vectors would and decodes neither side. Inner product and
// cosine (L2 and L1 are one kernel call, in pair_value); sa, sb: the codes'
// sums of elements.
double sq8_pair_dot_value(const distance::QuantKernels& k, Metric metric, const QuantizerParams& qp,
                          const std::uint8_t* a, const std::uint8_t* b, std::size_t n, std::uint32_t sa,
                          std::uint32_t sb, float norm_a, float norm_b) noexcept {
    const double lo = qp.lo, step = qp.step;
    const std::uint32_t ab = k.dot_u8u8(a, b, n);
    double dot = static_cast<double>(n) * lo * lo + lo * step * (static_cast<double>(sa) + sb) +
                 step * step * static_cast<double>(ab);
    if (metric == Metric::InnerProduct) return -dot;
    double denom = static_cast<double>(norm_a) * norm_b;
    return denom > 0 ? 1.0 - dot / denom : 2.0;
}

}  // namespace

double BuildGraph::mips_distance(double neg_dot, double a_norm2, double a_extra, std::uint32_t b) const noexcept {
    const double nb = norms_[b], eb = extra_[b];
    return a_norm2 + nb * nb + 2 * neg_dot + (a_extra - eb) * (a_extra - eb);
}

double BuildGraph::pair_distance(Worker& w, std::uint32_t a, std::uint32_t b) const {
    if (mips_) {
        const double na = norms_[a];
        return mips_distance(pair_value(w, a, b), na * na, extra_[a], b);
    }
    return pair_value(w, a, b);
}

double BuildGraph::pair_value(Worker& w, std::uint32_t a, std::uint32_t b) const {
    if (link_sq8_ && !w.exact) {
        // L2 and L1 need neither sums nor norms: no loads of them (random
        // reads, like the codes themselves). L2 stays squared: every
        // distance of such a build comes from here, and linking only
        // compares distances, which squaring keeps in order.
        if (metric_ == Metric::L2)
            return static_cast<double>(link_qp_.step) * link_qp_.step *
                   static_cast<double>(quant_kernels_->l2_squared_u8u8(link_code(a), link_code(b), dims_));
        if (metric_ == Metric::L1)
            return link_qp_.step * static_cast<double>(quant_kernels_->l1_u8u8(link_code(a), link_code(b), dims_));
        return sq8_pair_dot_value(*quant_kernels_, metric_, link_qp_, link_code(a), link_code(b), dims_,
                                  link_sums_[a], link_sums_[b], norms_[a], norms_[b]);
    }
    if (qp_.kind == QuantizerKind::None)
        return metric_value(metric_, reinterpret_cast<const float*>(code(a)), reinterpret_cast<const float*>(code(b)),
                            dims_);
    if (w.pair_a != a) {
        decode(qp_, code(a), dims_, w.pa.data());
        w.pair_coder.reset(new QueryCoder(qp_, metric_, w.pa.data(), dims_));
        w.pair_a = a;
    }
    return w.pair_coder->value(code(b), norms_[b]);
}

bool BuildGraph::pair_closer(Worker& w, std::uint32_t a, std::uint32_t b, double d) const {
    if (w.exact && bounded_) {
        // L2 and L1 are norms of a difference: by the triangle inequality
        // the codes' distance is within the two residuals (the norms of what
        // encoding lost) of the vectors' distance. Only a pair that close to
        // d is compared exactly; the small relative margin covers the float
        // rounding of either side.
        double est;
        if (metric_ == Metric::L2)
            est = link_qp_.step *
                  std::sqrt(static_cast<double>(quant_kernels_->l2_squared_u8u8(link_code(a), link_code(b), dims_)));
        else
            est = link_qp_.step * static_cast<double>(quant_kernels_->l1_u8u8(link_code(a), link_code(b), dims_));
        const double slack = static_cast<double>(link_res_[a]) + link_res_[b] + 1e-5 * (est + std::fabs(d));
        if (est - slack >= d) return false;
        if (est + slack < d) return true;
    }
    return pair_distance(w, a, b) < d;
}

// Links node `id` at `level` to its chosen neighbours among `found`, and each
// of them back to it, pruning a full list with the heuristic.
void BuildGraph::connect(Worker& w, std::uint32_t id, int level, const std::vector<Candidate>& found,
                         std::vector<Candidate>* chosen) {
    w.merged.clear();
    for (const Candidate& c : found)
        if (c.id != id) w.merged.push_back(c);
    auto closer = [&](std::uint32_t a, std::uint32_t b, double d) { return pair_closer(w, a, b, d); };
    // A prune of a level-0 list need not compare two of its settled links:
    // the selection that wrote the list compared each of them with those it
    // had kept before it, on the same distances, and kept it. Only pairs with
    // a link appended since, or with the new node, are compared.
    if (level == 0 && opts_.skip_settled_pairs && w.settled.size() != size()) w.settled.assign(size(), 0);
    auto prune_closer = [&](std::uint32_t a, std::uint32_t b, double d) {
        if (w.settled[a] == w.settled_gen && w.settled[b] == w.settled_gen) {
            w.settled_skipped++;
            return false;
        }
        return pair_closer(w, a, b, d);
    };
    auto mark_settled = [&](std::uint32_t node, const std::uint32_t* l) {
        if (++w.settled_gen == 0) {
            std::fill(w.settled.begin(), w.settled.end(), 0);
            w.settled_gen = 1;
        }
        for (std::uint32_t i = 0; i < settled0_[node]; i++) w.settled[l[i]] = w.settled_gen;
    };
    // Like pgvector (and unlike hnswlib, which gives a new node m), a new node
    // gets as many links as its level allows, 2m at level 0: a denser base
    // layer reaches a given recall with a smaller ef_search.
    // Filled: around a hub (a point closer to everyone than they are to each
    // other) the heuristic alone would keep just the hub, and the node would
    // have no other way in or out.
    const std::size_t compared = select_neighbours_by(w.merged, max_links(level), closer, chosen, true);
    const std::size_t cap = max_links(level);
    // Level 0 keeps each link's distance: a full list is pruned on the
    // distances it has, not computed again.
    const bool with_d = level == 0 && keep_dist0_;
    auto write = [&](std::uint32_t node, std::uint32_t* l, std::uint32_t* count, const std::vector<Candidate>& v) {
        *count = static_cast<std::uint32_t>(v.size());
        for (std::size_t i = 0; i < v.size(); i++) l[i] = v[i].id;
        if (with_d) {
            float* d = dist0_mut(node);
            for (std::size_t i = 0; i < v.size(); i++) d[i] = static_cast<float>(v[i].d);
        }
    };
    // The node's links as candidates around it (their distances kept or
    // computed), appended to w.merged, except those already in `skip`.
    auto existing = [&](std::uint32_t node, const std::uint32_t* l, std::uint32_t count,
                        const std::vector<Candidate>* skip) {
        const float* d = with_d ? dist0_mut(node) : nullptr;
        for (std::uint32_t i = 0; i < count; i++) {
            if (skip && std::any_of(skip->begin(), skip->end(), [&](const Candidate& c) { return c.id == l[i]; }))
                continue;
            Candidate c;
            c.id = l[i];
            c.d = d ? static_cast<double>(d[i]) : pair_distance(w, node, l[i]);
            w.merged.push_back(c);
        }
    };
    {
        std::lock_guard<std::mutex> hold(locks_->of(id));
        std::uint32_t* count;
        std::uint32_t* l = links_mut(id, level, &count);
        if (*count == 0) {
            write(id, l, count, *chosen);
            if (level == 0) settled0_[id] = static_cast<std::uint8_t>(compared);
        } else {
            // Another thread linked its node here before this list was
            // written. insert() links levels bottom up so that this cannot
            // happen; should it, overwriting that link could cut the other
            // node off the graph, so merge, and prune like any full list.
            w.merged.assign(chosen->begin(), chosen->end());
            existing(id, l, *count, chosen);
            std::sort(w.merged.begin(), w.merged.end(), Closer());
            const std::size_t kept = select_neighbours_by(w.merged, cap, closer, &w.pruned);
            write(id, l, count, w.pruned);
            if (level == 0) settled0_[id] = static_cast<std::uint8_t>(kept);
        }
    }
    for (const Candidate& e : *chosen) {
        std::lock_guard<std::mutex> hold(locks_->of(e.id));
        std::uint32_t* count;
        std::uint32_t* l = links_mut(e.id, level, &count);
        if (std::find(l, l + *count, id) != l + *count) continue;
        if (*count < cap) {
            if (with_d) dist0_mut(e.id)[*count] = static_cast<float>(e.d);
            l[(*count)++] = id;
            continue;
        }
        // Full: keep the best `cap` of its links plus the new node.
        w.merged.clear();
        Candidate nc;
        nc.id = id;
        nc.d = e.d;
        w.merged.push_back(nc);
        existing(e.id, l, *count, nullptr);
        std::sort(w.merged.begin(), w.merged.end(), Closer());
        // Not filled: a list the heuristic leaves short takes the next links
        // by a plain append, and filling every list made each back-link a
        // full prune (twice the build time for Fashion-MNIST).
        if (level == 0 && opts_.skip_settled_pairs) {
            mark_settled(e.id, l);
            settled0_[e.id] =
                static_cast<std::uint8_t>(select_neighbours_by(w.merged, cap, prune_closer, &w.pruned));
        } else {
            select_neighbours_by(w.merged, cap, closer, &w.pruned);
        }
        write(e.id, l, count, w.pruned);
    }
}

// The query is the node's own vector as the index stores it (exact floats
// without a quantizer), or its sq8 link code.
void BuildGraph::set_node_query(Worker& w, std::uint32_t id) const {
    if (link_sq8_) {
        w.query_id = id;
        return;
    }
    decode(qp_, code(id), dims_, w.query.data());
    w.set_query(w.query.data());
    if (mips_) {
        w.q_norm2 = static_cast<double>(norms_[id]) * norms_[id];
        w.q_extra = extra_[id];
    }
}

// The ef nodes closest to the worker's query at level 0: greedy descent from
// the entry point, then a search of the base level.
void BuildGraph::search_base(Worker& w, std::size_t ef, std::vector<Candidate>* out) const {
    Candidate cur;
    w.evaluate(entry_, &cur);
    cur.id = entry_;
    for (int l = max_level_; l > 0; l--) cur = greedy_closest(w, cur, l, &w.scratch);
    w.new_generation();
    w.visit(cur.id);
    w.found.assign(1, cur);
    search_layer(w, w.found, 0, ef, out, &w.scratch);
}

// Every in-link of a node can be pruned away by later back-links (about 1
// node in 650 of Fashion-MNIST at m 16): no search reaches it, and a
// filtered scan gets to its row only by the exact passes. After linking,
// each such node gets a link from the closest reachable node that has a
// free level-0 link, found by searching the graph for it; the nodes it links
// to may become reachable through it. Links are only added, never replaced
// (a replaced link could cut off what it led to), so a node stays out when
// every list near it is full, which happens only with a small m.
// Single-threaded, after the workers.
void BuildGraph::connect_unreachable(Worker& w) {
    const std::size_t n = size();
    if (entry_ == kNone || n < 2) return;
    std::vector<char> reached(n, 0);
    std::vector<std::uint32_t> queue;
    auto flood = [&](std::uint32_t from) {
        queue.assign(1, from);
        reached[from] = 1;
        for (std::size_t head = 0; head < queue.size(); head++) {
            std::uint32_t cnt;
            const std::uint32_t* l = links(queue[head], 0, &cnt);
            for (std::uint32_t i = 0; i < cnt; i++)
                if (l[i] < n && !reached[l[i]]) {
                    reached[l[i]] = 1;
                    queue.push_back(l[i]);
                }
        }
    };
    flood(entry_);
    const std::size_t cap = max_links(0);
    for (std::uint32_t id = 0; id < n; id++) {
        if (reached[id]) continue;
        set_node_query(w, id);
        search_base(w, static_cast<std::size_t>(opts_.ef_construction), &w.chosen);
        for (const Candidate& c : w.chosen) {
            std::uint32_t* count;
            std::uint32_t* l = links_mut(c.id, 0, &count);
            if (c.id == id || *count >= cap || std::find(l, l + *count, id) != l + *count) continue;
            if (keep_dist0_) {
                // As connect() keeps it: on the distances links are chosen on.
                ExactPairs exact(w.exact, exact_links_);
                dist0_mut(c.id)[*count] = static_cast<float>(pair_distance(w, c.id, id));
            }
            l[(*count)++] = id;
            repaired_++;
            flood(id);
            break;
        }
    }
    w.query_id = kNone;
}

void BuildGraph::insert(Worker& w, std::uint32_t id) {
    const int level = levels_[id];
    set_node_query(w, id);

    std::unique_lock<std::mutex> top(locks_->entry);
    std::uint32_t ep = entry_;
    int max_level = max_level_;
    if (ep == kNone) {
        entry_ = id;
        max_level_ = level;
        return;
    }
    if (level <= max_level) top.unlock();

    Candidate cur;
    w.evaluate(ep, &cur);
    cur.id = ep;
    for (int l = max_level; l > level; l--) cur = greedy_closest(w, cur, l, &w.scratch);

    // Search every level top down, then link bottom up: another thread can
    // reach this node at a level only once it is linked there, and by then
    // its lists at the levels below (where a search from it goes next) are
    // written. Linked top down, a thread could descend from it into a level
    // it has no links at yet and link its own node to it alone. A level's
    // links neither read nor change another level's, so on one thread the
    // graph is the same either way.
    const int top_l = std::min(level, max_level);
    if (w.found_at.size() < static_cast<std::size_t>(top_l) + 1) w.found_at.resize(top_l + 1);
    const std::vector<Candidate>* entry = nullptr;
    w.found.assign(1, cur);
    for (int l = top_l; l >= 0; l--) {
        entry = l == top_l ? &w.found : &w.found_at[l + 1];
        w.new_generation();
        for (const Candidate& e : *entry) w.visit(e.id);
        search_layer(w, *entry, l, static_cast<std::size_t>(opts_.ef_construction), &w.found_at[l], &w.scratch);
    }
    // search_on_sq8: the searches compared codes; the links are chosen on
    // exact distances, the candidates' first.
    ExactPairs exact(w.exact, exact_links_);
    for (int l = 0; l <= top_l; l++) {
        if (exact_links_) {
            for (Candidate& c : w.found_at[l]) c.d = pair_distance(w, id, c.id);
            std::sort(w.found_at[l].begin(), w.found_at[l].end(), Closer());
        }
        connect(w, id, l, w.found_at[l], &w.chosen);
    }
    if (level > max_level) {
        entry_ = id;
        max_level_ = level;
    }
}

void BuildGraph::link_all(int threads, const std::function<void(std::size_t done)>& poll) {
    const std::size_t n = size();
    if (linked_ >= n) return;
    if (metric_ == Metric::InnerProduct) {
        mips_ = true;
        double top = 0;
        for (float x : norms_) top = std::max<double>(top, x);
        extra_.resize(n);
        for (std::size_t i = 0; i < n; i++)
            extra_[i] = static_cast<float>(std::sqrt(std::max(0.0, top * top - static_cast<double>(norms_[i]) * norms_[i])));
    }
    threads = std::max(1, std::min<int>(threads, static_cast<int>(std::min<std::size_t>(n - linked_, 64))));
    std::atomic<std::size_t> next{linked_};
    std::atomic<std::size_t> done{0};
    std::atomic<bool> stop{false};
    std::mutex err_mutex;
    std::exception_ptr err;

    auto work = [&](Worker& w, bool caller) {
        std::size_t since_poll = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            std::size_t i = next.fetch_add(1);
            if (i >= n) break;
            insert(w, static_cast<std::uint32_t>(i));
            done.fetch_add(1, std::memory_order_relaxed);
            if (caller && ++since_poll >= kPollEvery) {
                since_poll = 0;
                poll(done.load());
            }
        }
    };

    std::vector<std::thread> pool;
    std::vector<std::unique_ptr<Worker>> workers;
    for (int t = 0; t < threads; t++) workers.emplace_back(new Worker(this));
    {
        // Core threads never take a signal: block everything while creating
        // them (they inherit the mask), then restore the caller's mask.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        try {
            for (int t = 1; t < threads; t++) {
                Worker* w = workers[t].get();
                pool.emplace_back([&, w] {
                    try {
                        work(*w, false);
                    } catch (...) {
                        std::lock_guard<std::mutex> hold(err_mutex);
                        if (!err) err = std::current_exception();
                        stop = true;
                    }
                });
            }
        } catch (...) {
            stop = true;
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
            for (auto& t : pool) t.join();
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    try {
        work(*workers[0], true);
        // Keep polling (interrupts, progress) until the others finish.
        while (!stop.load() && done.load() < n - linked_) {
            poll(done.load());
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    } catch (...) {
        std::lock_guard<std::mutex> hold(err_mutex);
        if (!err) err = std::current_exception();
        stop = true;
    }
    for (auto& t : pool) t.join();
    for (const auto& w : workers) settled_skipped_ += w->settled_skipped;
    if (err) std::rethrow_exception(err);
    connect_unreachable(*workers[0]);
    linked_ = n;
    poll(done.load());
}

std::vector<Candidate> BuildGraph::search(const float* q, std::size_t k, std::size_t ef) const {
    std::vector<Candidate> out;
    if (entry_ == kNone) return out;
    Worker w(this);
    w.set_query(q);
    if (mips_) {
        w.q_norm2 = static_cast<double>(vector_norm(q, dims_)) * vector_norm(q, dims_);
        w.q_extra = 0;
    }
    search_base(w, std::max(ef, k), &out);
    if (out.size() > k) out.resize(k);
    return out;
}

}  // namespace lrv::core::hnsw
