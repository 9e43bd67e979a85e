// The in-memory HNSW graph of an index build.
//
// CREATE INDEX reads the heap into a BuildGraph (vectors as the index will
// store them: float32 or fp16/sq8 codes), links every node on as many
// threads as the user allows, and the glue then writes node after node into
// pages (src/pg/lhnsw_build.cc). Threads are core threads: they never call
// Postgres, run with every signal blocked, and are joined before link_all
// returns or throws. Only the calling thread runs the poll callback, which
// is where the glue checks for interrupts and reports progress.
#pragma once
#include "libravdb/core/fence.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "libravdb/core/common/aligned.h"
#include "libravdb/core/distance.h"
#include "libravdb/core/hnsw/format.h"
#include "libravdb/core/hnsw/search.h"
#include "libravdb/core/quant_kernels.h"
#include "libravdb/core/quantizer.h"

namespace lrv::core::hnsw {

struct BuildOptions {
    int m = 16;
    int ef_construction = 64;
    std::uint64_t seed = 0x5eed;
    // Prunes skip the pairs of level-0 links the last prune of the list
    // compared (settled0_); off only to test that this changes no list.
    bool skip_settled_pairs = true;
};

// Deterministic level of node `id`: floor(-ln(U) / ln(m)) from a hash of
// (seed, id), so levels do not depend on thread scheduling.
int random_level(std::uint64_t seed, std::uint64_t id, int m) noexcept;

// The ORDER BY value between two float vectors (L2: the distance, IP: minus
// the product, cosine: 1 - cos, L1), with the operators' kernels.
double metric_value(distance::Metric metric, const float* a, const float* b, std::size_t dims) noexcept;

// Decodes a code back into floats (the inverse of core::encode, up to its
// error).
void decode(const QuantizerParams& p, const std::uint8_t* code, std::size_t dims, float* out) noexcept;

class BuildGraph {
  public:
    BuildGraph(const BuildOptions& opts, const QuantizerParams& qp, distance::Metric metric, std::size_t dims);
    ~BuildGraph();
    BuildGraph(const BuildGraph&) = delete;
    BuildGraph& operator=(const BuildGraph&) = delete;

    // Bytes a graph of n nodes needs (vectors, links, bookkeeping; with
    // link_sq8, the sq8 link codes too, as link_on_sq8 and search_on_sq8
    // add them).
    static std::size_t estimate_bytes(std::size_t n, std::size_t dims, QuantizerKind q, int m,
                                      bool link_sq8 = false) noexcept;

    // Chooses links on sq8 codes of the vectors instead of the stored codes:
    // a quarter of float32's bytes, compared in integers (quant_kernels.h),
    // which is what a build's random reads wait on. The scale is the range of
    // the nodes added so far (nodes added later are clamped to it), so call
    // it after the adds and before link_all. The stored codes, and what
    // search() and the index compare, stay as they are. Graphs that store
    // sq8 codes link on them in integers anyway.
    // Declines (returns false, nothing changes) when the codes would be
    // coarse: when the rounding noise's standard deviation exceeds
    // max_noise times the elements' (per dimension, averaged), as when a
    // few outlying values stretch the one range all dimensions share.
    static constexpr double kDefaultMaxNoise = 0.05;
    bool link_on_sq8(double max_noise = kDefaultMaxNoise);
    bool links_on_sq8() const noexcept { return link_sq8_; }

    // Searches for each node's candidates on sq8 codes, as link_on_sq8 does
    // (the searches are most of a build's reads), but chooses its links on
    // the stored vectors: the candidates' distances are computed again
    // exactly before the heuristic compares them. The graph links as one
    // built on the stored vectors does (it takes later inserts as well) at
    // most of link_on_sq8's speed. Same conditions and return value as
    // link_on_sq8; false for a graph that stores sq8 codes (its links come
    // from those).
    bool search_on_sq8(double max_noise = kDefaultMaxNoise);
    bool searches_on_sq8() const noexcept { return exact_links_; }

    // Adds a node for vector x (encoded now); links come with link_all.
    // Returns its id (0, 1, ...).
    std::uint32_t add(const float* x, std::uint64_t tid_key);
    // Room for n nodes, so add() need not copy the vectors as they grow.
    void reserve(std::size_t n);
    std::size_t size() const noexcept { return tids_.size(); }

    // Links nodes [linked(), size()) into the graph using `threads` threads
    // (the caller counts as one). poll(done) runs on the caller's thread
    // every few hundred nodes; if it throws, the other threads stop, are
    // joined, and the exception propagates.
    void link_all(int threads, const std::function<void(std::size_t done)>& poll);

    // Results, valid after link_all.
    std::uint32_t entry_point() const noexcept { return entry_; }
    int max_level() const noexcept { return max_level_; }
    int level(std::uint32_t id) const noexcept { return levels_[id]; }
    // Links of a node at a level; n receives their count.
    const std::uint32_t* links(std::uint32_t id, int level, std::uint32_t* n) const noexcept;
    // The distances of a node's level-0 links, in the order of links(), as
    // links were chosen on (exact for float-linked and search_on_sq8
    // graphs); nullptr for graphs that store sq8 codes, which keep none.
    const float* level0_distances(std::uint32_t id) const noexcept {
        return keep_dist0_ ? dist0_.data() + std::size_t{id} * max_links(0) : nullptr;
    }
    const std::uint8_t* code(std::uint32_t id) const noexcept { return codes_.get() + std::size_t{id} * code_stride_; }
    float norm(std::uint32_t id) const noexcept { return norms_[id]; }
    float residual(std::uint32_t id) const noexcept { return residuals_[id]; }
    std::uint64_t tid(std::uint32_t id) const noexcept { return tids_[id]; }
    int m() const noexcept { return opts_.m; }
    // Nodes link_all found unreachable at level 0 after linking and gave a
    // link from the closest reachable node with room for one.
    std::size_t repaired() const noexcept { return repaired_; }
    // Comparisons level-0 prunes skipped as settled (see settled0_).
    std::size_t settled_pairs_skipped() const noexcept { return settled_skipped_; }
    std::size_t memory_bytes() const noexcept;

    // Searches the finished graph (single-threaded; tests and tools).
    std::vector<Candidate> search(const float* q, std::size_t k, std::size_t ef) const;

  private:
    struct Worker;
    friend struct Worker;
    void insert(Worker& w, std::uint32_t id);
    void set_node_query(Worker& w, std::uint32_t id) const;
    void connect_unreachable(Worker& w);
    void search_base(Worker& w, std::size_t ef, std::vector<Candidate>* out) const;
    double pair_distance(Worker& w, std::uint32_t a, std::uint32_t b) const;
    double pair_value(Worker& w, std::uint32_t a, std::uint32_t b) const;  // the metric's own value
    // Whether nodes a and b are closer than d to each other, on the distances
    // links are chosen on (the heuristic's one question).
    bool pair_closer(Worker& w, std::uint32_t a, std::uint32_t b, double d) const;
    double mips_distance(double neg_dot, double a_norm2, double a_extra, std::uint32_t b) const noexcept;
    const std::uint8_t* link_code(std::uint32_t id) const noexcept {
        return link_codes_ ? link_codes_.get() + std::size_t{id} * link_stride_ : code(id);
    }
    void encode_link_code(std::uint32_t id, const float* x) noexcept;
    void connect(Worker& w, std::uint32_t id, int level, const std::vector<Candidate>& found,
                 std::vector<Candidate>* chosen);
    std::uint32_t* links_mut(std::uint32_t id, int level, std::uint32_t** count) noexcept;
    std::size_t max_links(int level) const noexcept {
        return level == 0 ? 2 * static_cast<std::size_t>(opts_.m) : static_cast<std::size_t>(opts_.m);
    }

    BuildOptions opts_;
    QuantizerParams qp_;
    distance::Metric metric_;
    std::size_t dims_;
    std::size_t code_bytes_;
    // Codes at a 64-byte stride from a 64-byte aligned block, so the kernels'
    // vector loads never split a cache line.
    struct FreeDeleter {
        void operator()(std::uint8_t* p) const noexcept;
    };
    std::unique_ptr<std::uint8_t[], FreeDeleter> codes_;
    std::size_t code_stride_ = 0;
    std::size_t code_capacity_ = 0;  // nodes the block has room for
    std::vector<float> norms_, residuals_;
    // Links chosen on sq8 codes (link_on_sq8, or an sq8 graph): their scale,
    // their own block unless the stored codes are those, and each code's sum
    // of elements (inner product and cosine need it).
    bool link_sq8_ = false;
    bool exact_links_ = false;  // search_on_sq8: links chosen on the stored vectors
    // search_on_sq8 with L2 or L1: a distance between two link codes lies
    // within their residuals (link_res_) of the exact one, so most of the
    // heuristic's comparisons are settled on the codes.
    bool bounded_ = false;
    std::vector<float> link_res_;
    QuantizerParams link_qp_;
    std::unique_ptr<std::uint8_t[], FreeDeleter> link_codes_;
    std::size_t link_stride_ = 0;
    std::vector<std::uint32_t> link_sums_;
    const distance::QuantKernels* quant_kernels_;
    // Inner product is not a distance, and a graph pruned on it lets a few
    // long vectors shadow everything (recall 0.54 on Fashion-MNIST at
    // ef_search 40). Builds for it link on the classic MIPS-to-L2 reduction
    // instead: x -> (x, e_x) with e_x = sqrt(M^2 - |x|^2), M the largest
    // norm; a query q -> (q, 0) then has |q' - x'|^2 = |q|^2 + M^2 - 2 q.x,
    // ordered exactly as -q.x, so scans search the graph with plain inner
    // products.
    bool mips_ = false;
    std::vector<float> extra_;  // e_x per node (inner product builds)
    std::vector<std::uint64_t> tids_;
    std::vector<std::uint8_t> levels_;
    // Level 0: 2m links per node and a count; levels >= 1: one block of
    // level * (m links + count) per node that has them.
    AlignedVector<std::uint32_t> links0_;
    std::vector<std::uint32_t> count0_;
    // How many of a node's first level-0 links the heuristic compared and
    // kept when it last wrote the list (links appended since come after
    // them): each was compared with those kept before it, so pruning the
    // list again need not compare two of them. Guarded like links0_.
    std::vector<std::uint8_t> settled0_;
    // Graphs that do not store sq8 codes keep each level-0 link's distance
    // (as links are chosen: exact, or on link codes), so pruning a full list
    // computes no distance again. Guarded like links0_.
    bool keep_dist0_ = false;
    AlignedVector<float> dist0_;
    float* dist0_mut(std::uint32_t id) noexcept { return dist0_.data() + std::size_t{id} * max_links(0); }
    std::vector<std::unique_ptr<std::uint32_t[]>> upper_;
    std::size_t linked_ = 0;
    std::size_t repaired_ = 0;
    std::size_t settled_skipped_ = 0;
    std::uint32_t entry_ = kNone;
    int max_level_ = -1;
    struct Locks;
    std::unique_ptr<Locks> locks_;
};

}  // namespace lrv::core::hnsw
