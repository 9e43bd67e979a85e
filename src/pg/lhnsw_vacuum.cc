// VACUUM for lhnsw, in three WAL-logged passes, each safe to stop after:
//   1. Nodes whose heap tuples are dead are marked deleted. Deleted nodes
//      stay navigable: scans pass through them without returning them.
//      Then VACUUM waits for the inserts in flight (kInsertLock).
//   2. The entry point moves off a deleted node; every live node that links
//      to a deleted one gets its list rebuilt from its live links and the
//      deleted neighbours' live links, chosen with the heuristic.
//   3. Deleted nodes, their upper slots and dead NULL or isolated nodes
//      (which nothing links to) are freed, one slot a WAL record that also
//      carries the metapage's counts, so they always match the slots; inserts
//      reuse the slots.
// A VACUUM that stops after pass 1 or 2 leaves deleted nodes behind; the
// next one finds them in pass 1 and finishes the job.
// Cleanup, at the end of every VACUUM (with dead rows or without), links in
// again the live nodes no search reaches and frees the upper-level slots no
// node owns (reconnect below).
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/hnsw/graph.h"
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "guard.h"
#include "lhnsw.h"


extern "C" {
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
}

namespace lrv::pg::lhnsw {

using hn::Candidate;
using hn::MetaPage;
using hn::NodeHeader;

namespace {

struct VacuumCore {
    MetaPage meta;
    hn::Layout layout;
    core::distance::Metric metric;
    std::unique_ptr<PageGraph> graph;
    std::vector<uint8> deleted;      // per slot: 1 when the node is marked deleted
    std::vector<uint32> to_free;     // deleted nodes and their upper slots, then null_frees
    std::vector<uint32> null_frees;  // dead NULL and isolated nodes (in no graph)
    std::vector<uint32> links, dlinks, cur, next, uppers;
    std::vector<float> a;
    std::vector<Candidate> merged, pruned;
    NodeVectors vecs;
    uint32 best_entry = hn::kNone;  // a live node of the highest level
    int best_level = -1;

    VacuumCore(Relation index, const MetaPage& m)
        : meta(m), layout(hn::layout(m)), metric(static_cast<core::distance::Metric>(m.metric)),
          graph(new PageGraph(index, m)), deleted(m.n_slots, 0), a(m.dims), vecs(graph.get(), metric, m.dims) {}
    bool is_deleted(uint32 id) const { return id < deleted.size() && deleted[id]; }

    // Pass 2 for one node and level: true if its list was rewritten.
    bool repair(uint32 id, int level) {
        const uint32 cap = level == 0 ? 2 * layout.m : layout.m;
        for (int attempt = 0; attempt < 3; attempt++) {
            uint32 slot, from, to;
            if (!graph->links_location(id, level, &slot, &from, &to)) return false;
            cur.assign(cap, hn::kNone);
            graph->read(slot, from, to, reinterpret_cast<uint8*>(cur.data()));
            bool any = false;
            for (uint32 x : cur)
                if (x != hn::kNone && is_deleted(x)) any = true;
            if (!any) return false;
            // Candidates: live links, and the live links of deleted links.
            std::vector<uint32> ids;
            for (uint32 x : cur) {
                if (x == hn::kNone) break;
                if (!is_deleted(x)) {
                    ids.push_back(x);
                    continue;
                }
                graph->links(x, level, &dlinks);
                for (uint32 y : dlinks)
                    if (y != id && !is_deleted(y)) ids.push_back(y);
            }
            std::sort(ids.begin(), ids.end());
            ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
            merged.clear();
            for (uint32 x : ids) {
                NodeHeader h = graph->header(x);
                if (h.flags != hn::kNodeLive || h.level < level) continue;
                Candidate c;
                c.id = x;
                merged.push_back(c);
            }
            vecs.load(merged);
            graph->vector(id, a.data());
            for (Candidate& c : merged) c.d = vecs.from(a.data(), c.id);
            std::sort(merged.begin(), merged.end(), hn::Closer());
            hn::select_neighbours(merged, cap, [&](uint32 p, uint32 q) { return vecs.pair(p, q); }, &pruned, true);
            next.assign(cap, hn::kNone);
            for (std::size_t i = 0; i < pruned.size(); i++) next[i] = pruned[i].id;
            bool written = false;
            const Stream& s = graph->stream();
            guard_pg([&] {
                written = stream_write_if(s, slot, from, to, reinterpret_cast<const uint8*>(cur.data()),
                                          reinterpret_cast<const uint8*>(next.data()));
            });
            if (written) return true;
        }
        return false;
    }
};

// Calls fn(slot, offset in page data) for each slot whose header starts on
// data page p.
template <typename Fn>
void slots_on_page(const MetaPage& meta, uint64 p, Fn&& fn) {
    const uint64 page_start = p * meta.data_per_page;
    uint64 slot = (page_start + meta.slot_size - 1) / meta.slot_size;
    for (; slot < meta.n_slots && slot * meta.slot_size < page_start + meta.data_per_page; slot++)
        fn(static_cast<uint32>(slot), static_cast<uint32>(slot * meta.slot_size - page_start));
}

// Data page p, read through VACUUM's buffer strategy, locked in `mode` and
// checked (raises on a page that is not an lhnsw data page).
Buffer lock_data_page(IndexVacuumInfo* info, uint64 p, int mode) {
    const BlockNumber blk = Stream::block_of(p);
    Buffer buf = ReadBufferExtended(info->index, MAIN_FORKNUM, blk, RBM_NORMAL, info->strategy);
    LockBuffer(buf, mode);
    check_page(info->index, blk, BufferGetPage(buf), kMagic, kPageHnswData);
    return buf;
}

// Clears `slot`'s header in one WAL record with the metapage (which the
// caller holds exclusively, as inserts do), counting the slot free.
void clear_slot(Relation index, Buffer metabuf, MetaPage* cur, uint32 slot, bool was_node) {
    if (was_node && cur->n_nodes > 0) cur->n_nodes--;
    cur->n_free++;
    cur->free_hint = std::min<uint64>(cur->free_hint, slot);
    const NodeHeader freeh{};
    stream_write(slot_stream(index, *cur), slot, 0, sizeof freeh, reinterpret_cast<const uint8*>(&freeh), metabuf,
                 apply_meta, cur);
}

}  // namespace

IndexBulkDeleteResult* bulk_delete(IndexVacuumInfo* info, IndexBulkDeleteResult* stats,
                                   IndexBulkDeleteCallback callback, void* callback_state) {
    Relation index = info->index;
    if (stats == nullptr) stats = static_cast<IndexBulkDeleteResult*>(palloc0(sizeof(IndexBulkDeleteResult)));
    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "lhnsw vacuum", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(tmp);

    MetaPage meta = read_meta(index);
    VacuumCore* vc = context_owned<VacuumCore>(tmp, index, meta);
    // Reserved now, so pass 1 (plain Postgres style) never allocates.
    LRV_GUARDED(vc->null_frees.reserve(meta.n_slots));

    const uint64 npages = hn::data_pages(meta);
    uint64 live = 0, n_deleted = 0;

    // Pass 1: mark.
    for (uint64 p = 0; p < npages; p++) {
        vacuum_delay_point();
        Buffer buf = lock_data_page(info, p, BUFFER_LOCK_EXCLUSIVE);
        Page page = BufferGetPage(buf);
        uint32 offs[kPageDataSize / sizeof(NodeHeader)];
        uint16 flags[kPageDataSize / sizeof(NodeHeader)];
        int nchange = 0;
        uint32 bad_slot = hn::kNone, bad_off = 0;
        uint16 bad_flags = 0;
        slots_on_page(meta, p, [&](uint32 slot, uint32 off) {
            NodeHeader h{};
            std::memcpy(&h, page_data(page) + off, sizeof h);
            if (h.flags != hn::kSlotFree && h.flags != hn::kNodeLive && h.flags != hn::kNodeNull &&
                h.flags != hn::kNodeDeleted && h.flags != hn::kSlotUpper && h.flags != hn::kNodeIsolated) {
                if (bad_slot == hn::kNone) {
                    bad_slot = slot;
                    bad_off = off;
                    bad_flags = h.flags;
                }
                return;
            }
            if (bad_slot != hn::kNone) return;
            if (h.flags == hn::kNodeDeleted) {
                vc->deleted[slot] = 1;
                n_deleted++;
                return;
            }
            if (h.flags != hn::kNodeLive && h.flags != hn::kNodeNull && h.flags != hn::kNodeIsolated) return;
            ItemPointerData tid;
            key_to_tid(hn::tid_key(h), &tid);
            if (!callback(&tid, callback_state)) {
                live++;
                if (h.flags == hn::kNodeLive && h.level > vc->best_level) {
                    vc->best_level = h.level;
                    vc->best_entry = slot;
                }
                return;
            }
            stats->tuples_removed += 1;
            if (h.flags != hn::kNodeLive) {
                // NULL and isolated nodes are in no graph: freed in pass 3,
                // each together with the metapage's counts.
                vc->null_frees.push_back(slot);
                return;
            }
            offs[nchange] = off;
            flags[nchange] = hn::kNodeDeleted;
            vc->deleted[slot] = 1;
            n_deleted++;
            nchange++;
        });
        if (bad_slot != hn::kNone) {
            // Nothing of this page was changed: release it, then raise.
            UnlockReleaseBuffer(buf);
            ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                            errmsg("index \"%s\" is corrupted at block %u, offset %u (slot %u): unknown slot flags 0x%04x",
                                   RelationGetRelationName(index), Stream::block_of(p),
                                   static_cast<uint32>(kPageHeaderSize + bad_off), bad_slot, bad_flags)));
        }
        if (nchange > 0) {
            GenericXLogState* state = GenericXLogStart(index);
            Page wpage = GenericXLogRegisterBuffer(state, buf, 0);
            for (int i = 0; i < nchange; i++) {
                auto* h = reinterpret_cast<NodeHeader*>(page_data(wpage) + offs[i]);
                h->flags = flags[i];
            }
            GenericXLogFinish(state);
        }
        UnlockReleaseBuffer(buf);
    }

    if (n_deleted > 0) {
        // Wait for the inserts in flight (each holds this lock in share mode
        // from its search to its last link back): one may have chosen a node
        // pass 1 has just marked, as a neighbour or as a list to link back
        // into. Once they are done, pass 2 sees their links; later inserts
        // see the marks and choose no deleted node.
        LockPage(index, kInsertLock, ExclusiveLock);
        UnlockPage(index, kInsertLock, ExclusiveLock);

        // The entry point moves off a deleted node before any slot is freed,
        // so no scan ever starts from a freed slot.
        Buffer metabuf = ReadBuffer(index, kMetaBlock);
        LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
        MetaPage cur = meta_from_buffer(index, metabuf);
        if (cur.entry_point != hn::kNone && vc->is_deleted(cur.entry_point)) {
            cur.entry_point = vc->best_entry;
            cur.max_level = static_cast<uint8>(std::max(0, vc->best_level));
            GenericXLogState* state = GenericXLogStart(index);
            put_meta(GenericXLogRegisterBuffer(state, metabuf, 0), cur);
            GenericXLogFinish(state);
        }
        const uint64 n_slots = cur.n_slots;  // with the nodes inserted since pass 1
        UnlockReleaseBuffer(metabuf);
        LRV_GUARDED(vc->graph->reset(cur));

        // Pass 2: repair links into deleted nodes.
        for (uint32 slot = 0; slot < n_slots; slot++) {
            if ((slot & 255) == 0) vacuum_delay_point();
            NodeHeader h{};
            LRV_GUARDED(h = vc->graph->header(slot));
            if (h.flags != hn::kNodeLive) continue;
            for (int lev = 0; lev <= h.level; lev++) LRV_GUARDED(vc->repair(slot, lev));
        }
        // Pass 3's list: deleted nodes and their upper slots.
        LRV_GUARDED({
            for (uint32 slot = 0; slot < meta.n_slots; slot++) {
                if (!vc->deleted[slot]) continue;
                vc->to_free.push_back(slot);
                vc->graph->upper_slots(slot, &vc->uppers);
                vc->to_free.insert(vc->to_free.end(), vc->uppers.begin(), vc->uppers.end());
            }
        });
    }
    LRV_GUARDED(vc->to_free.insert(vc->to_free.end(), vc->null_frees.begin(), vc->null_frees.end()));

    // Pass 3: free. Each slot's header is cleared in the same WAL record as
    // the metapage's counts change (metapage locked first, as inserts do), so
    // an interrupted or crashed VACUUM leaves counts that match the slots.
    if (!vc->to_free.empty()) {
        for (uint32 slot : vc->to_free) {
            vacuum_delay_point();
            Buffer metabuf = ReadBuffer(index, kMetaBlock);
            LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
            MetaPage cur = meta_from_buffer(index, metabuf);
            NodeHeader h{};
            LRV_GUARDED(h = vc->graph->header(slot));
            clear_slot(index, metabuf, &cur, slot, h.flags != hn::kSlotUpper);
            UnlockReleaseBuffer(metabuf);
        }
        if (n_deleted > 0) {
            Buffer metabuf = ReadBuffer(index, kMetaBlock);
            LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
            MetaPage cur = meta_from_buffer(index, metabuf);
            cur.n_deleted = 0;
            GenericXLogState* state = GenericXLogStart(index);
            put_meta(GenericXLogRegisterBuffer(state, metabuf, 0), cur);
            GenericXLogFinish(state);
            UnlockReleaseBuffer(metabuf);
        }
    }

    stats->num_index_tuples = static_cast<double>(live);
    stats->num_pages = RelationGetNumberOfBlocks(index);
    MemoryContextSwitchTo(old);
    MemoryContextDelete(tmp);
    return stats;
}

namespace {

// Cleanup: live nodes that no search reaches are linked in again. An
// insert's link back prunes its neighbour's list and may take the last link
// to some other node; pass 2 may choose none of the links to a node whose
// in-links all came from deleted ones. A walk from the entry point over
// level-0 links (as a scan goes: through live and deleted nodes, never
// through a slot that holds no node) finds them; each is linked in as an
// insert links a new node, and what it reaches is then reachable too.
// Upper-level slots no node owns (an insert cut short between writing them
// and its node) are freed.
struct CleanupCore {
    MetaPage meta;
    std::unique_ptr<PageGraph> graph;
    std::vector<uint16> flags;
    std::vector<uint8> seen, owned;
    std::vector<uint32> upper, owner, links, uppers, unreachable, orphans;

    CleanupCore(Relation index, const MetaPage& m)
        : meta(m), graph(new PageGraph(index, m)), flags(m.n_slots, 0), seen(m.n_slots, 0), owned(m.n_slots, 0),
          upper(m.n_slots, hn::kNone), owner(m.n_slots, hn::kNone) {}

    // Live nodes the walk from the entry point does not reach.
    void find_unreachable() {
        walk_level0(*graph, flags, meta.entry_point, &seen, &links);
        for (uint32 s = 0; s < meta.n_slots; s++)
            if (flags[s] == hn::kNodeLive && !seen[s]) unreachable.push_back(s);
    }

    // Upper slots no node's chain leads to (an insert cut after writing its
    // upper slots and before its node; or one in flight right now, which
    // free_orphans rules out under the metapage lock).
    void find_orphans() {
        for (uint32 s = 0; s < meta.n_slots; s++) {
            if (!is_graph_node(flags[s])) continue;
            uint32 u = upper[s];
            for (int hops = 0; u < meta.n_slots && hops <= hn::kMaxLevel; hops++) {
                if (flags[u] != hn::kSlotUpper || owner[u] != s) break;
                owned[u] = 1;
                u = upper[u];
            }
        }
        for (uint32 s = 0; s < meta.n_slots; s++)
            if (flags[s] == hn::kSlotUpper && !owned[s]) orphans.push_back(s);
    }
};

// Links in the unreachable nodes; returns how many. Linking one in makes
// what it links to reachable as well.
uint64 reconnect(Relation index, CleanupCore* cc) {
    uint64 done = 0;
    for (uint32 id : cc->unreachable) {
        if (cc->seen[id]) continue;
        vacuum_delay_point();
        if (!link_in(index, id)) continue;
        done++;
        LRV_GUARDED(walk_level0(*cc->graph, cc->flags, id, &cc->seen, &cc->links));
    }
    return done;
}

// Frees the orphan upper slots, each in one WAL record with the metapage;
// returns how many. An insert writes its upper slots and then its node
// under the metapage's exclusive lock, so under that lock an upper slot its
// owner's chain does not lead to belongs to no insert, finished or in flight.
uint64 free_orphans(Relation index, CleanupCore* cc) {
    uint64 freed = 0;
    for (uint32 u : cc->orphans) {
        vacuum_delay_point();
        Buffer metabuf = ReadBuffer(index, kMetaBlock);
        LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
        MetaPage cur = meta_from_buffer(index, metabuf);
        bool orphan = false;
        LRV_GUARDED({
            const NodeHeader uh = cc->graph->header(u);
            orphan = uh.flags == hn::kSlotUpper;
            if (orphan && uh.owner < cur.n_slots && is_graph_node(cc->graph->header(uh.owner).flags)) {
                cc->graph->upper_slots(uh.owner, &cc->uppers);
                orphan = std::find(cc->uppers.begin(), cc->uppers.end(), u) == cc->uppers.end();
            }
        });
        if (orphan) {
            // n_free is a hint that may overcount (an insert cut by a crash
            // never wrote the count down that took this slot).
            clear_slot(index, metabuf, &cur, u, false);
            freed++;
        }
        UnlockReleaseBuffer(metabuf);
    }
    return freed;
}

// Reads every slot header, then links in the unreachable nodes and frees
// the orphan upper slots, reporting each count.
void cleanup_graph(IndexVacuumInfo* info) {
    Relation index = info->index;
    const MetaPage meta = read_meta(index);
    if (meta.n_slots == 0) return;
    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "lhnsw cleanup", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(tmp);
    CleanupCore* cc = context_owned<CleanupCore>(tmp, index, meta);
    // Every header, page by page as pass 1 reads them (a header never
    // crosses a page).
    const uint64 npages = hn::data_pages(meta);
    for (uint64 p = 0; p < npages; p++) {
        vacuum_delay_point();
        Buffer buf = lock_data_page(info, p, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        slots_on_page(meta, p, [&](uint32 slot, uint32 off) {
            NodeHeader h;
            std::memcpy(&h, page_data(page) + off, sizeof h);
            cc->flags[slot] = h.flags;
            cc->upper[slot] = h.upper;
            cc->owner[slot] = h.owner;
        });
        UnlockReleaseBuffer(buf);
    }
    LRV_GUARDED({
        if (meta.entry_point != hn::kNone) cc->find_unreachable();
        cc->find_orphans();
    });
    const uint64 linked = reconnect(index, cc);
    const uint64 freed = free_orphans(index, cc);
    if (linked > 0)
        ereport(info->message_level,
                (errmsg_plural("index \"%s\": %llu node no search reached was linked in again",
                               "index \"%s\": %llu nodes no search reached were linked in again",
                               static_cast<unsigned long>(linked), RelationGetRelationName(index),
                               static_cast<unsigned long long>(linked))));
    if (freed > 0)
        ereport(info->message_level,
                (errmsg_plural("index \"%s\": %llu upper-level slot no node owned was freed",
                               "index \"%s\": %llu upper-level slots no node owned were freed",
                               static_cast<unsigned long>(freed), RelationGetRelationName(index),
                               static_cast<unsigned long long>(freed))));
    MemoryContextSwitchTo(old);
    MemoryContextDelete(tmp);
}

}  // namespace

IndexBulkDeleteResult* vacuum_cleanup(IndexVacuumInfo* info, IndexBulkDeleteResult* stats) {
    if (info->analyze_only) return stats;
    cleanup_graph(info);
    if (stats == nullptr) {
        stats = static_cast<IndexBulkDeleteResult*>(palloc0(sizeof(IndexBulkDeleteResult)));
        MetaPage meta = read_meta(info->index);
        stats->num_index_tuples = static_cast<double>(meta.n_nodes);
    }
    stats->num_pages = RelationGetNumberOfBlocks(info->index);
    return stats;
}

}  // namespace lrv::pg::lhnsw
