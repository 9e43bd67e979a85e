// lhnsw pages as the core decodes them: the metapage through
// hnsw::validate_meta and hnsw::layout, then a search over the slot stream
// with the core's search templates (greedy_closest, search_layer,
// ResumableSearch from include/libravdb/core/hnsw/search.h), the way
// src/pg/lhnsw_scan.cc drives them.
//
// The store that reads slots is glue in the server (PageGraph in
// src/pg/lhnsw_page.cc reads them through shared buffers); here a small
// store reads them from the fuzz input with the same rules, documented in
// src/core/hnsw/FORMAT.md: live and deleted nodes are evaluated with the
// core's QueryCoder (in place, or summed in pieces when the code crosses a
// page boundary), other slots are skipped; level-0 links follow the code,
// upper levels come from the node's chain of upper slots (owner checked,
// chain length bounded). A link at or past n_slots is reported as
// Error(IndexCorrupted), standing in for the server's error on reading past
// the relation.
//
// Contract: validate_meta returns or throws Error(IndexCorrupted); after it,
// the layout is self-consistent, and the search terminates, yields every
// node at most once, in order within a round, and only live or deleted
// nodes below n_slots.
//
// Input: MetaPage (120 bytes) | cfg (1: ef, expansion limit) | the slot
// stream: data page areas of 8160 bytes laid end to end, zeros past the end.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <unordered_set>
#include <vector>

#include "fuzz_common.h"
#include "libravdb/core/hnsw/format.h"
#include "libravdb/core/hnsw/graph.h"
#include "libravdb/core/hnsw/search.h"
#include "libravdb/core/quantizer.h"

using namespace lrv;
namespace hn = lrv::core::hnsw;
using core::QuantizerKind;
using core::distance::Metric;

namespace {

core::QuantizerParams params_of(const hn::MetaPage& m) {
    core::QuantizerParams p;
    p.kind = static_cast<QuantizerKind>(m.quantizer);
    p.lo = m.sq_lo;
    p.step = m.sq_step;
    return p;
}

std::vector<float> query_for(std::size_t dims) {
    std::vector<float> q(dims);
    for (std::size_t i = 0; i < dims; i++) q[i] = static_cast<float>(static_cast<int>((i * 5) % 13) - 6) * 0.3f;
    return q;
}

class FuzzGraph {
  public:
    FuzzGraph(const hn::MetaPage& meta, const std::uint8_t* stream, std::size_t size, const core::QueryCoder* coder)
        : meta_(meta), l_(hn::layout(meta)), stream_(stream), size_(size), coder_(coder) {}

    bool evaluate(std::uint32_t id, hn::Candidate* c) {
        check_id(id);
        evaluations_++;
        hn::NodeHeader h = header(id);
        if (h.flags != hn::kNodeLive && h.flags != hn::kNodeDeleted) return false;
        c->flags = h.flags;
        c->tid = hn::tid_key(h);
        const std::uint64_t start = std::uint64_t{id} * meta_.slot_size;
        const std::uint32_t off = static_cast<std::uint32_t>(start % meta_.data_per_page);
        if (off + l_.links_offset <= meta_.data_per_page) {
            std::vector<std::uint8_t> code = bytes(start + l_.code_offset, l_.code_bytes);
            c->d = coder_->value(code.data(), h.norm);
            c->key = coder_->exact() ? c->d : coder_->lower_bound(code.data(), h.residual, h.norm);
            c->exact = coder_->exact();
            return true;
        }
        // The code crosses a page boundary: sum it page piece by page piece.
        // Codes start 8 bytes past a multiple of 32 and pages hold a multiple
        // of 32 bytes, so a boundary falls between elements (FORMAT.md).
        const std::size_t elem = l_.code_bytes / meta_.dims;
        core::QueryCoder::Sums sums;
        std::size_t done = 0;
        std::uint64_t at = start + l_.code_offset;
        while (done < meta_.dims) {
            const std::uint32_t pos = static_cast<std::uint32_t>(at % meta_.data_per_page);
            const std::size_t n = std::min<std::size_t>((meta_.data_per_page - pos) / elem, meta_.dims - done);
            LRV_CHECKF(n > 0, "a page piece of a code holds no whole element (pos %u, elem %zu)", pos, elem);
            std::vector<std::uint8_t> piece = bytes(at, n * elem);
            sums = core::QueryCoder::add(sums, coder_->sums(piece.data(), done, n));
            done += n;
            at += n * elem;  // now at a page boundary, or past the code's end
        }
        c->d = coder_->value_split(sums, h.norm);
        c->key = coder_->lower_bound_split(sums, h.residual, h.norm);
        c->exact = false;
        return true;
    }

    void links(std::uint32_t id, int level, std::vector<std::uint32_t>* out) {
        check_id(id);
        out->clear();
        const std::uint32_t mbytes = l_.m * 4;
        std::uint64_t from;
        std::uint32_t count;
        if (level == 0) {
            from = std::uint64_t{id} * meta_.slot_size + l_.links_offset;
            count = 2 * l_.m;
        } else {
            hn::NodeHeader h = header(id);
            if (level > h.level) return;
            std::uint32_t u = h.upper;
            bool found = false;
            for (int hops = 0; u != hn::kNone && hops <= hn::kMaxLevel && !found; hops++) {
                check_id(u);
                hn::NodeHeader uh = header(u);
                if (uh.flags != hn::kSlotUpper || uh.owner != id) return;
                if (level >= uh.level && level < uh.level + uh.n_levels) {
                    const std::uint32_t rel = static_cast<std::uint32_t>(level - uh.level);
                    // A corrupted n_levels can claim more levels than fit.
                    if (sizeof(hn::NodeHeader) + (rel + 1) * mbytes > meta_.slot_size) return;
                    from = std::uint64_t{u} * meta_.slot_size + sizeof(hn::NodeHeader) + rel * mbytes;
                    found = true;
                } else {
                    u = uh.upper;
                }
            }
            if (!found) return;
            count = l_.m;
        }
        std::vector<std::uint8_t> b = bytes(from, count * 4);
        for (std::uint32_t i = 0; i < count; i++) {
            std::uint32_t x;
            std::memcpy(&x, b.data() + 4 * i, 4);
            if (x == hn::kNone) break;
            out->push_back(x);
        }
    }

    bool visit(std::uint32_t id) { return visited_.insert(id).second; }
    void prefetch(std::uint32_t) const noexcept {}
    void reset_visited() { visited_.clear(); }
    std::size_t evaluations() const { return evaluations_; }

  private:
    void check_id(std::uint32_t id) const {
        if (id >= meta_.n_slots) core::fail(core::ErrorKind::IndexCorrupted, "link to a slot past n_slots");
    }
    std::vector<std::uint8_t> bytes(std::uint64_t at, std::size_t len) const {
        std::vector<std::uint8_t> b(len, 0);
        if (at < size_) std::memcpy(b.data(), stream_ + at, std::min<std::uint64_t>(len, size_ - at));
        return b;
    }
    hn::NodeHeader header(std::uint32_t id) const {
        hn::NodeHeader h;
        std::vector<std::uint8_t> b = bytes(std::uint64_t{id} * meta_.slot_size, sizeof h);
        std::memcpy(&h, b.data(), sizeof h);
        return h;
    }

    hn::MetaPage meta_;
    hn::Layout l_;
    const std::uint8_t* stream_;
    std::size_t size_;
    const core::QueryCoder* coder_;
    std::unordered_set<std::uint32_t> visited_;
    std::size_t evaluations_ = 0;
};

void check_layout(const hn::MetaPage& m) {
    const hn::Layout l = hn::layout(m);
    LRV_CHECK(l.slot_size == m.slot_size && l.slot_size % 32 == 0);
    LRV_CHECK(l.code_offset >= sizeof(hn::NodeHeader) && l.code_offset % 8 == 0);
    LRV_CHECK(l.code_bytes == core::code_bytes(static_cast<QuantizerKind>(m.quantizer), m.dims));
    LRV_CHECK(l.links_offset >= l.code_offset + l.code_bytes && l.links_offset % 4 == 0);
    LRV_CHECK(l.links_offset + 8 * l.m <= l.slot_size);
    LRV_CHECK(l.levels_per_upper >= 1);
    LRV_CHECK(sizeof(hn::NodeHeader) + l.levels_per_upper * l.m * 4 <= l.slot_size);
    LRV_CHECK(hn::upper_slots_needed(l, hn::kMaxLevel) * l.levels_per_upper >= hn::kMaxLevel);
    LRV_CHECK(m.data_per_page % 32 == 0);
}

bool ascending(const std::vector<hn::Candidate>& v, std::size_t from) {
    for (std::size_t i = from + 1; i < v.size(); i++)
        if (hn::Closer()(v[i], v[i - 1])) return false;
    return true;
}

// ---------------------------------------------------------------------------
// Seeds: graphs built by the core's BuildGraph, written slot by slot as
// FORMAT.md describes (nodes first, then their upper slots).

std::vector<std::uint8_t> seed_index(Metric metric, QuantizerKind q, std::uint32_t dims, std::uint32_t n, int m,
                                     std::uint8_t cfg) {
    std::vector<float> xs(std::size_t{n} * dims);
    for (std::size_t i = 0; i < xs.size(); i++) xs[i] = std::cos(static_cast<float>(i) * 0.7f) * 1.5f;
    core::QuantizerParams p;
    p.kind = q;
    if (q == QuantizerKind::Sq8) p = core::train_sq8(xs.data(), n, dims);
    hn::BuildOptions opts;
    opts.m = m;
    opts.ef_construction = 16;
    hn::BuildGraph g(opts, p, metric, dims);
    for (std::uint32_t i = 0; i < n; i++) g.add(xs.data() + std::size_t{i} * dims, (std::uint64_t{i / 5} << 16) | (i % 5 + 1));
    g.link_all(1, [](std::size_t) {});

    hn::MetaPage meta{};
    meta.magic = hn::kMagic;
    meta.version = hn::kVersion;
    meta.metric = static_cast<std::uint8_t>(metric);
    meta.quantizer = static_cast<std::uint8_t>(q);
    meta.dims = dims;
    meta.m = static_cast<std::uint16_t>(m);
    meta.ef_construction = 16;
    const hn::Layout l = hn::layout(meta);
    meta.slot_size = l.slot_size;
    meta.data_per_page = fuzz::kPageDataSize;
    meta.entry_point = g.entry_point();
    meta.max_level = static_cast<std::uint8_t>(std::max(g.max_level(), 0));
    meta.sq_lo = q == QuantizerKind::Sq8 ? p.lo : 0;
    meta.sq_step = q == QuantizerKind::Sq8 ? p.step : 1;

    std::uint32_t uppers = 0;
    for (std::uint32_t i = 0; i < n; i++) uppers += hn::upper_slots_needed(l, g.level(i));
    meta.n_slots = n + uppers;
    meta.n_nodes = n;
    std::vector<std::uint8_t> stream(meta.n_slots * l.slot_size, 0);
    auto put_links = [&](std::uint8_t* at, std::uint32_t id, int level, std::uint32_t room) {
        std::uint32_t cnt;
        const std::uint32_t* ls = g.links(id, level, &cnt);
        for (std::uint32_t k = 0; k < room; k++) {
            std::uint32_t v = k < cnt ? ls[k] : hn::kNone;
            std::memcpy(at + 4 * k, &v, 4);
        }
    };
    std::uint32_t next_upper = n;
    for (std::uint32_t i = 0; i < n; i++) {
        std::uint8_t* s = stream.data() + std::size_t{i} * l.slot_size;
        hn::NodeHeader h{};
        hn::set_tid_key(&h, g.tid(i));
        h.flags = hn::kNodeLive;
        h.residual = g.residual(i);
        h.norm = g.norm(i);
        h.level = static_cast<std::uint8_t>(g.level(i));
        h.owner = hn::kNone;
        h.upper = hn::kNone;
        std::memcpy(s + l.code_offset, g.code(i), l.code_bytes);
        put_links(s + l.links_offset, i, 0, 2 * l.m);
        const std::uint32_t need = hn::upper_slots_needed(l, g.level(i));
        std::uint32_t* prev_next = &h.upper;
        std::vector<std::pair<std::uint32_t, hn::NodeHeader>> ups;
        for (std::uint32_t k = 0; k < need; k++) {
            const std::uint32_t u = next_upper++;
            hn::NodeHeader uh{};
            uh.flags = hn::kSlotUpper;
            uh.level = static_cast<std::uint8_t>(1 + k * l.levels_per_upper);
            uh.n_levels = static_cast<std::uint8_t>(
                std::min<int>(l.levels_per_upper, g.level(i) - static_cast<int>(k * l.levels_per_upper)));
            uh.owner = i;
            uh.upper = hn::kNone;
            std::uint8_t* us = stream.data() + std::size_t{u} * l.slot_size;
            for (int lv = 0; lv < uh.n_levels; lv++)
                put_links(us + sizeof(hn::NodeHeader) + lv * l.m * 4, i, uh.level + lv, l.m);
            *prev_next = u;
            ups.push_back({u, uh});
            prev_next = &ups.back().second.upper;
        }
        std::memcpy(s, &h, sizeof h);
        for (auto& [u, uh] : ups) std::memcpy(stream.data() + std::size_t{u} * l.slot_size, &uh, sizeof uh);
    }
    hn::validate_meta(meta, fuzz::kPageDataSize);

    std::vector<std::uint8_t> out;
    fuzz::append(&out, meta);
    out.push_back(cfg);
    out.insert(out.end(), stream.begin(), stream.end());
    return out;
}

void write_seeds(fuzz::SeedWriter& w) {
    w.add("l2_none_4d", seed_index(Metric::L2, QuantizerKind::None, 4, 30, 2, 0x13));
    w.add("cosine_fp16_8d", seed_index(Metric::Cosine, QuantizerKind::Fp16, 8, 24, 3, 0x40));
    w.add("ip_sq8_6d", seed_index(Metric::InnerProduct, QuantizerKind::Sq8, 6, 20, 2, 0x22));
    w.add("l1_none_700d_crossing", seed_index(Metric::L1, QuantizerKind::None, 700, 3, 2, 0x01));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::maybe_write_seeds(write_seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Bytes in(data, size);
    const auto meta = in.take<hn::MetaPage>();
    const std::uint8_t cfg = in.u8();
    if (!fuzz::accepts("hnsw::validate_meta", {fuzz::ErrorKind::IndexCorrupted},
                       [&] { hn::validate_meta(meta, fuzz::kPageDataSize); }))
        return 0;
    check_layout(meta);
    if (meta.entry_point == hn::kNone) return 0;

    const std::vector<float> q = query_for(meta.dims);
    core::QueryCoder coder(params_of(meta), static_cast<Metric>(meta.metric), q.data(), q.size());
    FuzzGraph g(meta, in.data(), in.size(), &coder);
    const std::size_t ef = 1 + (cfg & 0x0F) * 4;
    const std::size_t max_expansions = (cfg >> 4) * 16;  // 0: no limit

    fuzz::accepts("lhnsw search", {fuzz::ErrorKind::IndexCorrupted}, [&] {
        hn::Candidate cur;
        if (!g.evaluate(meta.entry_point, &cur)) return;
        cur.id = meta.entry_point;
        std::vector<std::uint32_t> scratch;
        for (int l = meta.max_level; l > 0; l--) cur = hn::greedy_closest(g, cur, l, &scratch);

        // search_layer, as a build or an insert uses it.
        g.reset_visited();
        g.visit(cur.id);
        std::vector<hn::Candidate> found;
        hn::search_layer(g, {cur}, 0, ef, &found, &scratch);
        LRV_CHECKF(found.size() <= ef && !found.empty(), "search_layer returned %zu of ef %zu", found.size(), ef);
        LRV_CHECK(ascending(found, 0));

        // ResumableSearch, as a scan uses it: rounds until nothing is left.
        g.reset_visited();
        g.visit(cur.id);
        hn::ResumableSearch<FuzzGraph> rs;
        rs.start(cur, ef, (ef + 1) / 2);
        std::vector<hn::Candidate> out;
        std::unordered_set<std::uint32_t> yielded;
        for (int round = 0; round < 64; round++) {
            const std::size_t first = out.size();
            if (!rs.next_round(g, &out, &scratch, max_expansions)) break;
            LRV_CHECKF(out.size() > first, "round %d yielded nothing but returned true", round);
            LRV_CHECKF(ascending(out, first), "round %d out of order", round);
            for (std::size_t i = first; i < out.size(); i++) {
                LRV_CHECKF(yielded.insert(out[i].id).second, "node %u yielded twice", out[i].id);
                LRV_CHECK(out[i].id < meta.n_slots);
                LRV_CHECK(out[i].flags == hn::kNodeLive || out[i].flags == hn::kNodeDeleted);
            }
        }
    });
    return 0;
}
