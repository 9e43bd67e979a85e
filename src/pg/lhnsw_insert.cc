// Inserting into an lhnsw index.
//
// An insert is a sequence of WAL-logged steps, each of which leaves a graph
// that scans can navigate if the server stops right after it:
//   0. Take kInsertLock in share mode (VACUUM waits for it after marking
//      nodes deleted, so no insert links to a node it then frees).
//   1. Search the graph (share locks only) for the new node's neighbours at
//      each of its levels, chosen with the heuristic.
//   2. Under the metapage's exclusive lock, take slots (free ones first) and
//      write the node's upper-level slots, then the node itself together
//      with the metapage (slot count, node count, entry point when the node
//      is the new top). Until this record the new slots are unreachable.
//   3. For each neighbour, add a link back to the new node: one record per
//      link list, applied only if the list is still what the insert read
//      (otherwise it is read and merged again), pruned with the heuristic
//      when full. A crash between these records leaves a node with fewer
//      incoming links, never a dangling one. When no prune at level 0 takes
//      the new node in, its nearest neighbour does, in place of its
//      farthest link.
// A node for a NULL vector (or a zero one under cosine) takes a slot and
// step 2 only: it is never linked.
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/hnsw/graph.h"
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "guard.h"
#include "lhnsw.h"
#include "lvector.h"


extern "C" {
#include "storage/lmgr.h"
#include "utils/memutils.h"
}

namespace lrv::pg::lhnsw {

using hn::Candidate;
using hn::MetaPage;
using hn::NodeHeader;

namespace {

constexpr uint64 kLevelSeed = 0x1a5e7;
constexpr int kLinkAttempts = 3;

// Everything C++ an insert needs, owned by one object so that the
// Postgres-style code around it can ereport freely.
struct InsertCore {
    MetaPage meta;
    hn::Layout layout;
    core::distance::Metric metric;
    std::unique_ptr<PageGraph> graph;
    std::unique_ptr<core::QueryCoder> coder;
    std::vector<float> query, a;
    std::vector<uint32> scratch;
    std::vector<std::vector<Candidate>> chosen;  // per level
    std::vector<uint8> slot;
    std::vector<Candidate> found, merged, pruned;
    std::vector<uint32> cur, next;
    NodeVectors vecs;  // after graph, which it reads through

    InsertCore(Relation index, const MetaPage& m)
        : meta(m), layout(hn::layout(m)), metric(static_cast<core::distance::Metric>(m.metric)),
          graph(new PageGraph(index, m)), query(m.dims), a(m.dims), slot(layout.slot_size),
          vecs(graph.get(), metric, m.dims) {}

    // Step 1: neighbours of the new node at levels min(level, top)..0.
    void find_neighbours(const float* x, int level) {
        // The query is the vector as the index stores it, as in a build.
        std::vector<uint8> code(layout.code_bytes);
        core::encode(quantizer_params(meta), metric, x, meta.dims, code.data());
        hn::decode(quantizer_params(meta), code.data(), meta.dims, query.data());
        coder.reset(new core::QueryCoder(quantizer_params(meta), metric, query.data(), meta.dims));
        graph->set_query(coder.get());
        chosen.assign(static_cast<std::size_t>(level) + 1, {});
        if (meta.entry_point == hn::kNone) return;
        Candidate cur_c;
        if (!graph->evaluate(meta.entry_point, &cur_c)) return;
        cur_c.id = meta.entry_point;
        for (int l = meta.max_level; l > level; l--) cur_c = hn::greedy_closest(*graph, cur_c, l, &scratch);
        std::vector<Candidate> entry{cur_c};
        for (int l = std::min<int>(level, meta.max_level); l >= 0; l--) {
            graph->reset_visited();
            for (const Candidate& e : entry) graph->visit(e.id);
            hn::search_layer(*graph, entry, l, meta.ef_construction, &found, &scratch);
            merged.clear();
            for (const Candidate& c : found)
                if (c.flags == hn::kNodeLive) merged.push_back(c);
            // 2m at level 0, m above, as the build does.
            vecs.load(merged);
            hn::select_neighbours(merged, l == 0 ? 2u * meta.m : meta.m,
                                  [&](uint32 p, uint32 q) { return vecs.pair(p, q); },
                                  &chosen[static_cast<std::size_t>(l)], true);
            if (!found.empty()) entry = found;
        }
    }

    // Step 3 for one neighbour: returns after writing, or when the link is
    // there already (true both), or when the neighbour is gone, the prune
    // dropped the link or the list kept changing under it (false).
    // With `force`, a full list that the prune would not take the new node
    // into takes it in place of its farthest link (an insert's last resort,
    // so that the new node has at least one link leading to it).
    bool link_back(uint32 e, int level, uint32 id, double d, bool force = false) {
        const uint32 cap = level == 0 ? 2 * layout.m : layout.m;
        for (int attempt = 0; attempt < kLinkAttempts; attempt++) {
            NodeHeader h = graph->header(e);
            if (h.flags != hn::kNodeLive && h.flags != hn::kNodeDeleted) return false;
            uint32 slot_id, from, to;
            if (!graph->links_location(e, level, &slot_id, &from, &to)) return false;
            cur.assign(cap, hn::kNone);
            graph->read(slot_id, from, to, reinterpret_cast<uint8*>(cur.data()));
            uint32 n = 0;
            while (n < cap && cur[n] != hn::kNone) n++;
            if (std::find(cur.begin(), cur.begin() + n, id) != cur.begin() + n) return true;
            next = cur;
            if (n < cap) {
                next[n] = id;
            } else {
                merged.clear();
                Candidate nc;
                nc.id = id;
                nc.d = d;
                merged.push_back(nc);
                for (uint32 i = 0; i < n; i++) {
                    Candidate c;
                    c.id = cur[i];
                    merged.push_back(c);
                }
                vecs.load(merged);
                graph->vector(e, a.data());
                for (std::size_t i = 1; i < merged.size(); i++) merged[i].d = vecs.from(a.data(), merged[i].id);
                std::sort(merged.begin(), merged.end(), hn::Closer());
                // Not filled, as in the build (graph.cc, connect).
                hn::select_neighbours(merged, cap, [&](uint32 p, uint32 q) { return vecs.pair(p, q); }, &pruned);
                std::fill(next.begin(), next.end(), hn::kNone);
                bool kept = false;
                for (std::size_t i = 0; i < pruned.size(); i++) {
                    next[i] = pruned[i].id;
                    kept = kept || pruned[i].id == id;
                }
                if (!kept && !force) return false;  // the list stays as it is
                if (!kept) {
                    next = cur;
                    const Candidate& far = merged.back().id == id ? merged[merged.size() - 2] : merged.back();
                    std::replace(next.begin(), next.begin() + n, far.id, id);
                }
            }
            bool written = false;
            const Stream& s = graph->stream();
            guard_pg([&] {
                written = stream_write_if(s, slot_id, from, to, reinterpret_cast<const uint8*>(cur.data()),
                                          reinterpret_cast<const uint8*>(next.data()));
            });
            if (written) return true;
        }
        return false;
    }

    // Step 3: a link back to `id` from each chosen neighbour. When no prune
    // at level 0 takes the node in, its nearest neighbour must, or no search
    // could find it. False when no link at level 0 leads to it.
    bool link_back_all(uint32 id) {
        bool any0 = false;
        for (int lev = 0; lev < static_cast<int>(chosen.size()); lev++)
            for (const Candidate& e : chosen[static_cast<std::size_t>(lev)]) {
                const bool ok = link_back(e.id, lev, id, e.d);
                if (lev == 0) any0 = any0 || ok;
            }
        if (!any0 && !chosen.empty() && !chosen[0].empty())
            any0 = link_back(chosen[0][0].id, 0, id, chosen[0][0].d, true);
        return any0;
    }
};

bool slot_is_free(const Stream& s, uint64 slot) {
    NodeHeader h;
    stream_read(s, slot, 0, sizeof h, reinterpret_cast<uint8*>(&h));
    return h.flags == hn::kSlotFree;
}

// A free slot below n_slots, or a new one at the end. Updates *meta.
uint32 take_slot(const Stream& s, MetaPage* meta) {
    if (meta->n_free > 0) {
        for (uint64 slot = meta->free_hint; slot < meta->n_slots; slot++) {
            if (slot_is_free(s, slot)) {
                meta->free_hint = slot + 1;
                meta->n_free--;
                return static_cast<uint32>(slot);
            }
        }
        meta->n_free = 0;
        meta->free_hint = meta->n_slots;
    }
    if (meta->n_slots >= hn::kNone - 1)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("lhnsw index is full")));
    return static_cast<uint32>(meta->n_slots++);
}

// Writes a whole slot; with metabuf valid, the metapage change goes in the
// same record as the slot's header (so the slot becomes live with it).
void write_slot(const Stream& s, uint32 slot, const uint8* bytes, Buffer metabuf, MetaPage* meta) {
    const uint64 start = static_cast<uint64>(slot) * s.entry_size;
    const uint64 npages = (start + s.entry_size - 1) / s.data_per_page - start / s.data_per_page + 1;
    const bool with_meta = BufferIsValid(metabuf);
    if (npages < MAX_GENERIC_XLOG_PAGES || !with_meta) {
        stream_write(s, slot, 0, s.entry_size, bytes, metabuf, with_meta ? apply_meta : nullptr, meta);
    } else {
        // Payload first, under the free header the slot still has.
        const uint32 hdr = sizeof(NodeHeader);
        stream_write(s, slot, hdr, s.entry_size, bytes, InvalidBuffer, nullptr, nullptr);
        stream_write(s, slot, 0, hdr, bytes, metabuf, apply_meta, meta);
    }
}

}  // namespace

bool insert(Relation index, Datum* values, bool* isnull, ItemPointer tid, Relation heap,
            IndexUniqueCheck check_unique, bool index_unchanged, IndexInfo* info) {
    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "lhnsw insert", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(tmp);

    LVector* v = isnull[0] ? nullptr : datum_to_lvector(values[0]);
    MetaPage meta = read_meta(index);
    if (v != nullptr && v->dim != meta.dims)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("expected %u dimensions, not %d", meta.dims, static_cast<int>(v->dim))));
    const auto metric = static_cast<core::distance::Metric>(meta.metric);
    const bool linked = v != nullptr && graphable(metric, v->x, v->dim);
    const uint64 key = tid_to_key(tid);

    InsertCore* ic = context_owned<InsertCore>(tmp, index, meta);
    const hn::Layout& l = ic->layout;

    // Released below, or at abort. VACUUM's wait (kInsertLock).
    if (linked) LockPage(index, kInsertLock, ShareLock);
    int level = 0;
    if (linked) {
        level = core::hnsw::random_level(kLevelSeed, key * 0x9E3779B97F4A7C15ull + meta.n_slots, meta.m);
        LRV_GUARDED(ic->find_neighbours(v->x, level));
    }

    // Step 2.
    Buffer metabuf = ReadBuffer(index, kMetaBlock);
    LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
    MetaPage cur = meta_from_buffer(index, metabuf);
    Stream s = slot_stream(index, cur);
    const uint32 id = take_slot(s, &cur);
    const uint32 n_upper = linked ? hn::upper_slots_needed(l, level) : 0;
    uint32 upper_ids[hn::kMaxLevel + 1];
    for (uint32 i = 0; i < n_upper; i++) upper_ids[i] = take_slot(s, &cur);

    // Under the metapage lock no VACUUM frees a slot (it frees them one at a
    // time under this lock): drop chosen neighbours that are no longer live
    // nodes, among them any slot this insert has just taken for itself (a
    // node VACUUM freed after the search found it), which would otherwise
    // become a link to itself or to a free slot.
    if (linked) {
        LRV_GUARDED({
            for (auto& ch : ic->chosen) {
                ch.erase(std::remove_if(ch.begin(), ch.end(),
                                        [&](const Candidate& c) {
                                            if (c.id == id) return true;
                                            for (uint32 i = 0; i < n_upper; i++)
                                                if (c.id == upper_ids[i]) return true;
                                            return ic->graph->header(c.id).flags != hn::kNodeLive;
                                        }),
                         ch.end());
            }
        });
    }

    uint8* slot = ic->slot.data();
    for (uint32 i = 0; i < n_upper; i++) {
        std::memset(slot, 0, l.slot_size);
        NodeHeader h{};
        h.flags = hn::kSlotUpper;
        h.level = static_cast<uint8>(1 + i * l.levels_per_upper);
        h.n_levels = static_cast<uint8>(std::min<uint32>(l.levels_per_upper, level - h.level + 1));
        h.owner = id;
        h.upper = i + 1 < n_upper ? upper_ids[i + 1] : hn::kNone;
        std::memcpy(slot, &h, sizeof h);
        for (int k = 0; k < h.n_levels; k++) {
            auto* dst = reinterpret_cast<uint32*>(slot + sizeof(NodeHeader) + k * l.m * sizeof(uint32));
            const auto& ch = ic->chosen[static_cast<std::size_t>(h.level + k)];
            for (uint32 j = 0; j < l.m; j++) dst[j] = j < ch.size() ? ch[j].id : hn::kNone;
        }
        write_slot(s, upper_ids[i], slot, InvalidBuffer, nullptr);
    }

    std::memset(slot, 0, l.slot_size);
    NodeHeader h{};
    hn::set_tid_key(&h, key);
    h.owner = hn::kNone;
    h.upper = n_upper > 0 ? upper_ids[0] : hn::kNone;
    if (v == nullptr) {
        h.flags = hn::kNodeNull;
    } else {
        h.flags = linked ? hn::kNodeLive : hn::kNodeIsolated;
        h.level = static_cast<uint8>(level);
        h.residual = core::encode(quantizer_params(cur), metric, v->x, cur.dims, slot + l.code_offset);
        h.norm = core::vector_norm(v->x, cur.dims);
        auto* links0 = reinterpret_cast<uint32*>(slot + l.links_offset);
        const auto* ch = linked ? &ic->chosen[0] : nullptr;
        for (uint32 j = 0; j < 2 * l.m; j++) links0[j] = ch && j < ch->size() ? (*ch)[j].id : hn::kNone;
    }
    std::memcpy(slot, &h, sizeof h);
    cur.n_nodes++;
    if (linked && (cur.entry_point == hn::kNone || level > cur.max_level)) {
        cur.entry_point = id;
        cur.max_level = static_cast<uint8>(level);
    }
    write_slot(s, id, slot, metabuf, &cur);
    UnlockReleaseBuffer(metabuf);

    // Step 3.
    if (linked) {
        LRV_GUARDED(ic->link_back_all(id));
        UnlockPage(index, kInsertLock, ShareLock);
    }

    MemoryContextSwitchTo(old);
    MemoryContextDelete(tmp);
    return false;
}

bool link_in(Relation index, uint32 id) {
    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "lhnsw link in", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(tmp);
    MetaPage meta = read_meta(index);
    InsertCore* ic = context_owned<InsertCore>(tmp, index, meta);
    bool linked = false;
    LRV_GUARDED({
        std::vector<float> x(meta.dims);
        ic->graph->vector(id, x.data());
        ic->find_neighbours(x.data(), 0);
        std::vector<Candidate>& ch = ic->chosen[0];
        ch.erase(std::remove_if(ch.begin(), ch.end(), [&](const Candidate& c) { return c.id == id; }), ch.end());
        linked = ic->link_back_all(id);
    });
    MemoryContextSwitchTo(old);
    MemoryContextDelete(tmp);
    return linked;
}

}  // namespace lrv::pg::lhnsw
