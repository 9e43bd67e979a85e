// CREATE INDEX ... USING lhnsw on hostile but valid vectors: the core's
// BuildGraph (include/libravdb/core/hnsw/graph.h) fed whatever finite floats
// an lvector can hold -- huge values whose distances overflow to infinity,
// mixed signs whose inner products come out NaN, subnormals, duplicates,
// zero vectors -- and then searched.
//
// Contract: the build and the search return normally (no Error: every input
// is a valid table). After the build every link names an existing node
// other than the node itself, present at the link's level, with no
// duplicates and at most 2m (level 0) or m links per list; the entry point
// has the top level; search results are distinct, at most k, in order.
//
// Input: metric/quantizer/link mode (1) | m (1) | ef_construction (1) | dims (1) | the
// vectors, dims little-endian float32 each (non-finite values become 0:
// lvector input rejects them). One thread, so a run is deterministic.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "fuzz_common.h"
#include "libravdb/core/hnsw/graph.h"
#include "libravdb/core/quantizer.h"

using namespace lrv;
namespace hn = lrv::core::hnsw;
using core::QuantizerKind;
using core::distance::Metric;

namespace {

constexpr std::size_t kMaxNodes = 96;

std::vector<std::uint8_t> seed(std::uint8_t kind, std::uint8_t m, std::uint8_t ef, std::uint8_t dims,
                               const std::vector<float>& xs) {
    std::vector<std::uint8_t> out{kind, m, ef, dims};
    for (float f : xs) fuzz::append(&out, f);
    return out;
}

void write_seeds(fuzz::SeedWriter& w) {
    std::vector<float> grid;
    for (int i = 0; i < 40; i++) {
        grid.push_back(static_cast<float>(i % 7));
        grid.push_back(static_cast<float>(i / 7));
    }
    w.add("l2_grid", seed(0x00, 0, 12, 1, grid));  // m 2, ef 16, 2 dims
    w.add("l2_grid_searched_sq8", seed(0x20, 0, 12, 1, grid));
    w.add("l1_grid_linked_sq8", seed(0x13, 2, 12, 1, grid));
    // Inner products that overflow: +inf and -inf terms make NaN distances.
    std::vector<float> huge;
    for (int i = 0; i < 48; i++) {
        huge.push_back((i % 3 ? 3e38f : -3e38f) * (i % 2 ? 1 : -1));
        huge.push_back(i % 5 ? 2e38f : -2.5e38f);
    }
    w.add("ip_overflow", seed(0x01, 6, 28, 1, huge));  // m 8: full lists of 16 sort with std::sort
    std::vector<float> dup(30 * 3, 1.0f);
    for (int i = 0; i < 10; i++) dup[i * 3] = 0;
    w.add("cosine_fp16_duplicates", seed(0x02 | (1 << 2), 1, 4, 2, dup));
    std::vector<float> tiny;
    for (int i = 0; i < 60; i++) tiny.push_back(static_cast<float>(i % 9) * 1e-44f);
    w.add("l1_sq8_subnormal", seed(0x03 | (2 << 2), 2, 8, 0, tiny));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::maybe_write_seeds(write_seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Bytes in(data, size);
    const std::uint8_t kind = in.u8();
    const Metric metric = static_cast<Metric>(kind & 3);
    const QuantizerKind quant = static_cast<QuantizerKind>(((kind >> 2) & 3) % 3);
    hn::BuildOptions opts;
    opts.m = 2 + in.u8() % 15;                 // 2..16
    opts.ef_construction = 4 + in.u8() % 61;   // 4..64
    const std::size_t dims = 1 + in.u8() % 8;  // 1..8
    std::size_t n = std::min(kMaxNodes, in.size() / (4 * dims));
    if (n == 0) return 0;
    std::vector<float> xs(n * dims);
    in.read(xs.data(), xs.size() * sizeof(float));
    for (float& f : xs)
        if (!std::isfinite(f)) f = 0;

    core::QuantizerParams qp;
    qp.kind = quant;
    if (quant == QuantizerKind::Sq8) qp = core::train_sq8(xs.data(), n, dims);
    hn::BuildGraph g(opts, qp, metric, dims);
    // As src/pg/lhnsw_build.cc does (graphable): under cosine a zero vector
    // has no direction and stays out of the graph.
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < n; i++) {
        const float* x = xs.data() + i * dims;
        if (metric == Metric::Cosine && std::all_of(x, x + dims, [](float f) { return f == 0; })) continue;
        g.add(x, i + 1);
        rows.push_back(i);
    }
    if (rows.empty()) return 0;
    // Bits 4-5 of the first byte: links chosen on the stored codes, on sq8
    // codes, or searched on sq8 codes and chosen on the stored ones (both
    // decline codes too coarse for the data).
    const int link_mode = (kind >> 4) & 3;
    if (link_mode == 1) g.link_on_sq8();
    if (link_mode == 2) g.search_on_sq8();
    g.link_all(1, [](std::size_t) {});
    n = rows.size();

    LRV_CHECK(g.size() == n);
    LRV_CHECK(g.entry_point() < n);
    LRV_CHECKF(g.level(g.entry_point()) == g.max_level(), "entry point at level %d, top level %d",
               g.level(g.entry_point()), g.max_level());
    for (std::uint32_t id = 0; id < n; id++) {
        LRV_CHECK(g.level(id) <= g.max_level());
        for (int level = 0; level <= g.level(id); level++) {
            std::uint32_t cnt;
            const std::uint32_t* ls = g.links(id, level, &cnt);
            const std::uint32_t cap = level == 0 ? 2 * opts.m : opts.m;
            LRV_CHECKF(cnt <= cap, "node %u level %d: %u links, at most %u", id, level, cnt, cap);
            std::unordered_set<std::uint32_t> seen;
            for (std::uint32_t k = 0; k < cnt; k++) {
                LRV_CHECKF(ls[k] < n, "node %u level %d links to %u of %zu", id, level, ls[k], n);
                LRV_CHECKF(ls[k] != id, "node %u links to itself at level %d", id, level);
                LRV_CHECKF(g.level(ls[k]) >= level, "node %u level %d links to %u, whose top level is %d", id,
                           level, ls[k], g.level(ls[k]));
                LRV_CHECKF(seen.insert(ls[k]).second, "node %u level %d links to %u twice", id, level, ls[k]);
            }
        }
    }

    const std::size_t k = 1 + n % 10;
    for (std::size_t qi : {rows[0], rows[n / 2]}) {
        std::vector<hn::Candidate> r = g.search(xs.data() + qi * dims, k, std::max<std::size_t>(k, 16));
        LRV_CHECKF(r.size() <= k, "%zu results for k %zu", r.size(), k);
        std::unordered_set<std::uint32_t> ids;
        for (std::size_t i = 0; i < r.size(); i++) {
            LRV_CHECK(r[i].id < n);
            LRV_CHECKF(ids.insert(r[i].id).second, "node %u returned twice", r[i].id);
#ifndef LRV_NO_ORDER_CHECK
            if (i > 0) LRV_CHECKF(!hn::Closer()(r[i], r[i - 1]), "result %zu out of order", i);
#endif
        }
    }
    return 0;
}
