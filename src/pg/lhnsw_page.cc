// lhnsw settings, metapage access and the page-backed graph store shared by
// scans, inserts, VACUUM and the checker.
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/hnsw/graph.h"
#include <cmath>
#include <cstdio>
#include <cstring>

#include "guard.h"
#include "lhnsw.h"


extern "C" {
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

// The check hook sees where a value comes from; it hands "set by the user"
// to the assign hook through `extra`, so that RESET (which reinstalls the
// boot value's extra) clears it again.
bool check_ef_search(int* newval, void** extra, GucSource source) {
    bool* explicit_set = static_cast<bool*>(malloc(sizeof(bool)));
    if (explicit_set == nullptr) return false;
    *explicit_set = source > PGC_S_DEFAULT;
    *extra = explicit_set;
    return true;
}

void assign_ef_search(int newval, void* extra) {
    ef_search_guc_explicit = extra != nullptr && *static_cast<bool*>(extra);
}

}  // namespace

void register_gucs() {
    DefineCustomIntVariable("libravdb.hnsw_ef_search", "Size of the candidate list of an lhnsw scan.",
                            "Larger values find more of the true nearest neighbours and take longer. When not set "
                            "in the session, an index's own ef_search option (if any) is used.",
                            &ef_search_guc, 40, 1, 1000, PGC_USERSET, 0, check_ef_search, assign_ef_search,
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

PageGraph::PageGraph(Relation index, const MetaPage& meta)
    : index_(index), cache_blk_(kCacheSlots, InvalidBlockNumber), cache_buf_(kCacheSlots, InvalidBuffer),
      meta_(meta), layout_(hn::layout(meta)), stream_(slot_stream(index, meta)) {
    buf_.resize(layout_.slot_size);
    ids_.resize(2 * static_cast<std::size_t>(meta.m));
}

void PageGraph::reset(const MetaPage& meta) {
    meta_ = meta;
    stream_ = slot_stream(index_, meta);
    reset_visited();
}

void PageGraph::release() {
    for (uint32 i = 0; i < kCacheSlots; i++) {
        if (cache_blk_[i] == InvalidBlockNumber) continue;
        ReleaseBuffer(cache_buf_[i]);
        cache_blk_[i] = InvalidBlockNumber;
    }
    pins_ = 0;
}

void PageGraph::reset_visited() { visited_.clear(); }

bool PageGraph::visit(uint32 id) { return visited_.insert(id); }

Buffer PageGraph::pin_slow(uint64 page, uint32 h) {
    const BlockNumber blk = Stream::block_of(page);
    guard_pg([&] {
        if (pins_ >= kMaxPins) release();
        Buffer buf = ReadBuffer(index_, blk);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page pg = BufferGetPage(buf);
        if (unlikely(PageIsNew(pg) || PageGetSpecialSize(pg) != kSpecialSize || page_opaque(pg)->magic != kMagic ||
                     page_opaque(pg)->kind != kPageHnswData)) {
            UnlockReleaseBuffer(buf);
            // Read again to report it with the page in hand.
            buf = ReadBuffer(index_, blk);
            LockBuffer(buf, BUFFER_LOCK_SHARE);
            check_page(index_, blk, BufferGetPage(buf), kMagic, kPageHnswData);
        }
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
        // The slot may have moved if release() emptied the table.
        uint32 i = h;
        while (cache_blk_[i] != InvalidBlockNumber) i = (i + 1) & (kCacheSlots - 1);
        cache_blk_[i] = blk;
        cache_buf_[i] = buf;
        pins_++;
    });
    return pinned(page);
}

inline Buffer PageGraph::pinned(uint64 page) {
    const BlockNumber blk = Stream::block_of(page);
    uint32 h = (blk * 2654435761u) & (kCacheSlots - 1);
    for (uint32 i = h;; i = (i + 1) & (kCacheSlots - 1)) {
        if (cache_blk_[i] == blk) return cache_buf_[i];
        if (cache_blk_[i] == InvalidBlockNumber) return pin_slow(page, h);
    }
}

template <typename Fn>
void PageGraph::with_bytes(uint32 slot, uint32 from, uint32 to, Fn&& fn) {
    if (unlikely((++reads_ & 255) == 0)) guard_pg([] { CHECK_FOR_INTERRUPTS(); });
    const uint64 start = static_cast<uint64>(slot) * meta_.slot_size + from;
    const uint64 page = start / meta_.data_per_page;
    const uint32 off = static_cast<uint32>(start % meta_.data_per_page);
    if (off + (to - from) <= meta_.data_per_page) {
        Buffer buf = pinned(page);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        fn(reinterpret_cast<const uint8*>(page_data(BufferGetPage(buf))) + off);
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
        return;
    }
    // Crosses pages: copy piece by piece.
    uint8* out = buf_.data();
    for (uint64 b = start; b < start + (to - from);) {
        const uint64 p = b / meta_.data_per_page;
        const uint32 o = static_cast<uint32>(b % meta_.data_per_page);
        const uint32 take = static_cast<uint32>(std::min<uint64>(start + (to - from) - b, meta_.data_per_page - o));
        Buffer buf = pinned(p);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        std::memcpy(out + (b - start), page_data(BufferGetPage(buf)) + o, take);
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
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
    bool ok = false;
    evaluations_++;
    with_bytes(id, 0, layout_.links_offset, [&](const uint8* node) {
        NodeHeader h;
        std::memcpy(&h, node, sizeof h);
        if (h.flags != hn::kNodeLive && h.flags != hn::kNodeDeleted) return;
        const uint8* code = node + layout_.code_offset;
        c->d = coder_->value(code, h.norm);
        c->key = coder_->exact() ? c->d : coder_->lower_bound(code, h.residual, h.norm);
        c->flags = h.flags;
        c->tid = hn::tid_key(h);
        ok = true;
    });
    return ok;
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
}

void PageGraph::vector(uint32 id, float* out) {
    const core::QuantizerParams qp = quantizer_params(meta_);
    with_bytes(id, layout_.code_offset, layout_.code_offset + layout_.code_bytes,
               [&](const uint8* code) { hn::decode(qp, code, meta_.dims, out); });
}

}  // namespace lrv::pg::lhnsw
