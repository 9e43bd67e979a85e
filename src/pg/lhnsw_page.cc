// lhnsw settings, metapage access and the page-backed graph store shared by
// scans, inserts, VACUUM and the checker.
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/hnsw/graph.h"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "guard.h"
#include "lhnsw.h"


extern "C" {
#include "storage/buf_internals.h"
#include "utils/guc.h"
}

namespace lrv::pg::lhnsw {

using hn::Candidate;
using hn::MetaPage;
using hn::NodeHeader;

int ef_search_guc = 40;
bool ef_search_guc_explicit = false;
int max_scan_tuples_guc = 20000;

namespace {

void assign_ef_search(int newval, void* extra) { ef_search_guc_explicit = explicit_source(extra); }

}  // namespace

void register_gucs() {
    DefineCustomIntVariable("libravdb.hnsw_ef_search", "Size of the candidate list of an lhnsw scan.",
                            "Larger values find more of the true nearest neighbours and take longer. When not set "
                            "in the session, an index's own ef_search option (if any) is used.",
                            &ef_search_guc, 40, 1, 1000, PGC_USERSET, 0, check_explicit_source, assign_ef_search,
                            nullptr);
    DefineCustomIntVariable("libravdb.hnsw_max_scan_tuples",
                            "Graph nodes an lhnsw scan expands before it stops searching (0: no limit).",
                            "A scan whose rows are thrown away by a WHERE clause keeps searching the graph; at "
                            "this many expanded nodes it returns the rows it has already found, in order, and "
                            "ends.",
                            &max_scan_tuples_guc, 20000, 0, INT_MAX, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

int effective_ef_search(Relation index) {
    if (ef_search_guc_explicit) return ef_search_guc;
    auto* opts = reinterpret_cast<Options*>(index->rd_options);
    if (opts != nullptr && opts->ef_search > 0) return opts->ef_search;
    return ef_search_guc;
}

MetaPage meta_from_buffer(Relation index, Buffer buf) {
    Page page = BufferGetPage(buf);
    check_page(index, kMetaBlock, page, kMagic, kPageMeta);
    MetaPage meta;
    std::memcpy(&meta, page_data(page), sizeof meta);
    char why[256] = "";
    try {
        hn::validate_meta(meta, kPageDataSize);
    } catch (const std::exception& e) {
        snprintf(why, sizeof why, "%s", e.what());
    }
    if (why[0] != '\0')
        ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                        errmsg("index \"%s\" has an invalid metapage at block %u", RelationGetRelationName(index),
                               kMetaBlock),
                        errdetail("%s", why)));
    return meta;
}

MetaPage read_meta(Relation index) {
    Buffer buf = ReadBuffer(index, kMetaBlock);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    MetaPage meta = meta_from_buffer(index, buf);
    UnlockReleaseBuffer(buf);
    return meta;
}

void put_meta(Page page, const MetaPage& meta) {
    std::memcpy(page_data(page), &meta, sizeof meta);
    reinterpret_cast<PageHeader>(page)->pd_lower = static_cast<LocationIndex>(kPageHeaderSize + sizeof meta);
}

void apply_meta(Page page, void* meta) { put_meta(page, *static_cast<const MetaPage*>(meta)); }

bool graphable(core::distance::Metric metric, const float* x, int dims) {
    if (x == nullptr) return false;
    if (metric != core::distance::Metric::Cosine) return true;
    for (int i = 0; i < dims; i++)
        if (x[i] != 0) return true;
    return false;
}

// ---------------------------------------------------------------------------
// PageGraph

namespace {

// Backend-local: per index (by relfilenode, which REINDEX and TRUNCATE
// change), the buffer each block was last found in. Only hints:
// ReadRecentBuffer checks the buffer still holds the block.
struct RecentBuffers {
    Oid relfilenode;
    Oid spc;
    std::vector<Buffer> buffers;
};
constexpr int kRecentIndexes = 8;
RecentBuffers recent_table[kRecentIndexes];
int recent_clock = 0;

std::vector<Buffer>* recent_for(Relation index) {
    const Oid node = index->rd_node.relNode, spc = index->rd_node.spcNode;
    for (auto& r : recent_table)
        if (r.relfilenode == node && r.spc == spc && node != InvalidOid) return &r.buffers;
    RecentBuffers& r = recent_table[recent_clock++ % kRecentIndexes];
    r.relfilenode = node;
    r.spc = spc;
    r.buffers.clear();
    return &r.buffers;
}

}  // namespace

PageGraph::PageGraph(Relation index, const MetaPage& meta)
    : index_(index), recent_(recent_for(index)), meta_(meta), layout_(hn::layout(meta)),
      stream_(slot_stream(index, meta)) {
    buf_.resize(layout_.slot_size);
    ids_.resize(2 * static_cast<std::size_t>(meta.m));
    slot_bound_ = meta.n_slots;
}

void PageGraph::corrupt(uint32 slot, const char* what) const {
    const uint64 byte = static_cast<uint64>(slot) * meta_.slot_size;
    guard_pg([&] {
        ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                        errmsg("index \"%s\" is corrupted at block %u, offset %u (slot %u): %s",
                               RelationGetRelationName(index_), Stream::block_of(byte / meta_.data_per_page),
                               static_cast<uint32>(kPageHeaderSize + byte % meta_.data_per_page), slot, what)));
    });
    throw std::logic_error("unreachable");
}

void PageGraph::check_link(uint32 from, uint32 stored_in, uint32 to) {
    if (likely(to < slot_bound_)) return;
    BlockNumber nblocks = 0;
    guard_pg([&] { nblocks = RelationGetNumberOfBlocks(index_); });
    slot_bound_ = nblocks > 1 ? (static_cast<uint64>(nblocks - 1) * meta_.data_per_page) / meta_.slot_size : 0;
    if (to >= slot_bound_) {
        char what[160];
        const uint64 at = static_cast<uint64>(stored_in) * meta_.slot_size;
        snprintf(what, sizeof what, "link beyond the last slot, to slot %u (stored in slot %u at block %u)", to,
                 stored_in, Stream::block_of(at / meta_.data_per_page));
        corrupt(from, what);
    }
}

void PageGraph::reset(const MetaPage& meta) {
    meta_ = meta;
    slot_bound_ = meta.n_slots;
    stream_ = slot_stream(index_, meta);
    recent_ = recent_for(index_);
    reset_visited();
}

void PageGraph::reset_visited() { visited_.clear(); }

void PageGraph::prefetch(uint32 id) const noexcept {
    const uint64 start = static_cast<uint64>(id) * meta_.slot_size;
    const BlockNumber blk = Stream::block_of(start / meta_.data_per_page);
    if (blk >= recent_->size()) return;
    const Buffer hint = (*recent_)[blk];
    if (hint <= 0) return;
    __builtin_prefetch(GetBufferDescriptor(hint - 1));
    const char* node = static_cast<const char*>(BufferGetBlock(hint)) + kPageHeaderSize + start % meta_.data_per_page;
    for (uint32 b = 0; b < layout_.links_offset; b += 64) __builtin_prefetch(node + b);
}

bool PageGraph::visit(uint32 id) { return visited_.insert(id); }

inline Buffer PageGraph::pin(uint64 page) {
    const BlockNumber blk = Stream::block_of(page);
    Buffer buf = InvalidBuffer;
    guard_pg([&] {
        if (blk < recent_->size()) {
            Buffer hint = (*recent_)[blk];
            if (hint != InvalidBuffer && ReadRecentBuffer(index_->rd_node, MAIN_FORKNUM, blk, hint)) {
                buf = hint;
                return;
            }
        } else {
            recent_->resize(static_cast<std::size_t>(blk) + 64, InvalidBuffer);
        }
        buf = ReadBuffer(index_, blk);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page pg = BufferGetPage(buf);
        if (unlikely(PageIsNew(pg) || PageGetSpecialSize(pg) != kSpecialSize || page_opaque(pg)->magic != kMagic ||
                     page_opaque(pg)->kind != kPageHnswData)) {
            Buffer bad = buf;
            buf = InvalidBuffer;
            // check_page raises; release the page first so the error path
            // owns nothing of ours.
            PGAlignedBlock copy;
            std::memcpy(copy.data, BufferGetPage(bad), BLCKSZ);
            UnlockReleaseBuffer(bad);
            check_page(index_, blk, static_cast<Page>(copy.data), kMagic, kPageHnswData);
        }
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
        (*recent_)[blk] = buf;
    });
    return buf;
}

template <typename Fn>
void PageGraph::with_bytes(uint32 slot, uint32 from, uint32 to, Fn&& fn) {
    if (unlikely((++reads_ & 255) == 0)) guard_pg([] { CHECK_FOR_INTERRUPTS(); });
    const uint64 start = static_cast<uint64>(slot) * meta_.slot_size + from;
    const uint64 page = start / meta_.data_per_page;
    const uint32 off = static_cast<uint32>(start % meta_.data_per_page);
    if (off + (to - from) <= meta_.data_per_page) {
        Buffer buf = pin(page);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        fn(reinterpret_cast<const uint8*>(page_data(BufferGetPage(buf))) + off);
        UnlockReleaseBuffer(buf);
        return;
    }
    // Crosses pages: copy piece by piece.
    uint8* out = buf_.data();
    for (uint64 b = start; b < start + (to - from);) {
        const uint64 p = b / meta_.data_per_page;
        const uint32 o = static_cast<uint32>(b % meta_.data_per_page);
        const uint32 take = static_cast<uint32>(std::min<uint64>(start + (to - from) - b, meta_.data_per_page - o));
        Buffer buf = pin(p);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        std::memcpy(out + (b - start), page_data(BufferGetPage(buf)) + o, take);
        UnlockReleaseBuffer(buf);
        b += take;
    }
    fn(static_cast<const uint8*>(buf_.data()));
}

void PageGraph::read(uint32 slot, uint32 from, uint32 to, uint8* out) {
    with_bytes(slot, from, to, [&](const uint8* bytes) { std::memcpy(out, bytes, to - from); });
}

NodeHeader PageGraph::header(uint32 id) {
    NodeHeader h;
    read(id, 0, sizeof h, reinterpret_cast<uint8*>(&h));
    return h;
}

bool PageGraph::evaluate(uint32 id, Candidate* c) {
    evaluations_++;
    if (unlikely((++reads_ & 255) == 0)) guard_pg([] { CHECK_FOR_INTERRUPTS(); });
    const uint64 start = static_cast<uint64>(id) * meta_.slot_size;
    uint64 page = start / meta_.data_per_page;
    const uint32 off = static_cast<uint32>(start % meta_.data_per_page);
    Buffer buf = pin(page);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    const uint8* node = reinterpret_cast<const uint8*>(page_data(BufferGetPage(buf))) + off;
    NodeHeader h;
    std::memcpy(&h, node, sizeof h);
    if (h.flags != hn::kNodeLive && h.flags != hn::kNodeDeleted) {
        UnlockReleaseBuffer(buf);
        // Links may land on free, NULL or upper slots (VACUUM freed the node
        // and an insert reused the slot); no flag outside the set is ever
        // written.
        if (unlikely(h.flags > hn::kNodeIsolated)) {
            char what[64];
            snprintf(what, sizeof what, "unknown slot flags %u", h.flags);
            corrupt(id, what);
        }
        return false;
    }
    c->flags = h.flags;
    c->tid = hn::tid_key(h);
    if (off + layout_.links_offset <= meta_.data_per_page) {
        // The usual case: header and code on one page, read in place.
        const uint8* code = node + layout_.code_offset;
        c->d = coder_->value(code, h.norm);
        c->key = coder_->exact() ? c->d : coder_->lower_bound(code, h.residual, h.norm);
        c->exact = coder_->exact();
        UnlockReleaseBuffer(buf);
        return true;
    }
    // The code crosses into the next page(s): sum it piece by piece (page
    // boundaries fall between elements, see FORMAT.md) rather than copy it.
    // The sum is then not bit for bit the operator's, so the key is a lower
    // bound and the executor rechecks the row.
    const std::size_t elem = layout_.code_bytes / meta_.dims;
    core::QueryCoder::Sums sums;
    std::size_t done = 0;  // elements summed
    uint32 pos = off + layout_.code_offset;
    for (;;) {
        const std::size_t avail = pos < meta_.data_per_page ? (meta_.data_per_page - pos) / elem : 0;
        const std::size_t n = std::min<std::size_t>(avail, meta_.dims - done);
        if (n > 0)
            sums = core::QueryCoder::add(
                sums, coder_->sums(reinterpret_cast<const uint8*>(page_data(BufferGetPage(buf))) + pos, done, n));
        done += n;
        UnlockReleaseBuffer(buf);
        if (done >= meta_.dims) break;
        pos = pos >= meta_.data_per_page ? pos - meta_.data_per_page : 0;
        page++;
        buf = pin(page);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
    }
    c->d = coder_->value_split(sums, h.norm);
    c->key = coder_->lower_bound_split(sums, h.residual, h.norm);
    c->exact = false;
    return true;
}

bool PageGraph::links_location(uint32 id, int level, uint32* slot, uint32* from, uint32* to) {
    const uint32 mbytes = layout_.m * sizeof(uint32);
    if (level == 0) {
        *slot = id;
        *from = layout_.links_offset;
        *to = layout_.links_offset + 2 * mbytes;
        return true;
    }
    NodeHeader h = header(id);
    if (level > h.level) return false;
    uint32 u = h.upper;
    for (int hops = 0; u != hn::kNone && hops <= hn::kMaxLevel; hops++) {
        // An upper-slot pointer is a link too: one past the end is corruption
        // (and must not make pin() size its block table after it).
        check_link(id, id, u);
        NodeHeader uh = header(u);
        if (uh.flags != hn::kSlotUpper || uh.owner != id) return false;
        if (level >= uh.level && level < uh.level + uh.n_levels) {
            *slot = u;
            *from = sizeof(NodeHeader) + static_cast<uint32>(level - uh.level) * mbytes;
            *to = *from + mbytes;
            return true;
        }
        u = uh.upper;
    }
    return false;
}

void PageGraph::upper_slots(uint32 id, std::vector<uint32>* out) {
    out->clear();
    uint32 u = header(id).upper;
    for (int hops = 0; u != hn::kNone && hops <= hn::kMaxLevel; hops++) {
        const NodeHeader uh = header(u);  // kSlotFree past the end
        if (uh.flags != hn::kSlotUpper || uh.owner != id) break;
        out->push_back(u);
        u = uh.upper;
    }
}

void PageGraph::links(uint32 id, int level, std::vector<uint32>* out) {
    out->clear();
    uint32 slot, from, to;
    if (!links_location(id, level, &slot, &from, &to)) return;
    const uint32 n = (to - from) / sizeof(uint32);
    with_bytes(slot, from, to, [&](const uint8* bytes) {
        for (uint32 i = 0; i < n; i++) {
            uint32 x;
            std::memcpy(&x, bytes + i * sizeof(uint32), sizeof x);
            if (x == hn::kNone) break;
            out->push_back(x);
        }
    });
    // Checked once the page is released: check_link may raise.
    for (uint32 x : *out) check_link(id, slot, x);
}

void PageGraph::vector(uint32 id, float* out) {
    const core::QuantizerParams qp = quantizer_params(meta_);
    with_bytes(id, layout_.code_offset, layout_.code_offset + layout_.code_bytes,
               [&](const uint8* code) { hn::decode(qp, code, meta_.dims, out); });
}

NodeVectors::NodeVectors(PageGraph* graph, core::distance::Metric metric, uint32 dims)
    : graph_(graph), metric_(metric), dims_(dims), a_(dims), b_(dims) {}

void NodeVectors::load(const std::vector<hn::Candidate>& ids) {
    const std::size_t row_bytes = static_cast<std::size_t>(dims_) * sizeof(float);
    const std::size_t n = std::min(ids.size(), std::max<std::size_t>(kMaxBytes / row_bytes, 1));
    std::size_t size = 16;
    while (size < 2 * n) size *= 2;
    keys_.assign(size, kEmpty);
    rows_.assign(size, 0);
    data_.resize(n * dims_);
    const std::size_t mask = size - 1;
    for (std::size_t i = 0; i < n; i++) {
        const uint32 id = ids[i].id;
        std::size_t k = (id * 0x9E3779B1u) & mask;
        while (keys_[k] != kEmpty && keys_[k] != id) k = (k + 1) & mask;
        if (keys_[k] == id) continue;  // listed twice: one copy
        graph_->vector(id, data_.data() + i * dims_);
        keys_[k] = id;
        rows_[k] = static_cast<uint32>(i);
    }
}

const float* NodeVectors::find(uint32 id) const {
    if (keys_.empty() || id == kEmpty) return nullptr;
    const std::size_t mask = keys_.size() - 1;
    for (std::size_t k = (id * 0x9E3779B1u) & mask;; k = (k + 1) & mask) {
        if (keys_[k] == id) return data_.data() + static_cast<std::size_t>(rows_[k]) * dims_;
        if (keys_[k] == kEmpty) return nullptr;
    }
}

double NodeVectors::pair(uint32 x, uint32 y) {
    const float* px = find(x);
    if (px == nullptr) {
        graph_->vector(x, a_.data());
        px = a_.data();
    }
    return from(px, y);
}

double NodeVectors::from(const float* x, uint32 y) {
    const float* py = find(y);
    if (py == nullptr) {
        graph_->vector(y, b_.data());
        py = b_.data();
    }
    return hn::metric_value(metric_, x, py, dims_);
}

void walk_level0(PageGraph& graph, const std::vector<uint16>& flags, uint32 from, std::vector<uint8>* seen,
                 std::vector<uint32>* scratch) {
    if (from >= flags.size() || (*seen)[from] || !is_graph_node(flags[from])) return;
    std::vector<uint32> stack{from};
    (*seen)[from] = 1;
    while (!stack.empty()) {
        const uint32 id = stack.back();
        stack.pop_back();
        graph.links(id, 0, scratch);
        for (uint32 x : *scratch)
            if (x < flags.size() && !(*seen)[x] && is_graph_node(flags[x])) {
                (*seen)[x] = 1;
                stack.push_back(x);
            }
    }
}

}  // namespace lrv::pg::lhnsw
