// libravdb_index_check and libravdb_index_info for lhnsw.
//
// The check reads every slot: known flags, upper-slot chains that belong to
// their node and cover its levels, links that land on nodes (not on free,
// upper or NULL slots) with no self links or repeats and no more than the
// level allows, an entry point on a node of the top level, counts that agree
// with the metapage. The first problem is an ERROR (XX002) naming block and
// offset. Then a breadth-first walk from the entry point counts live nodes
// the graph cannot reach; after a crash in the middle of an insert that is
// normal (the insert's transaction never committed), so it is reported, not
// raised.
#include <cstring>
#include <memory>
#include <vector>

#include "guard.h"
#include "lhnsw.h"

extern "C" {
#include "miscadmin.h"
#include "utils/memutils.h"
}

namespace lrv::pg::lhnsw {

using hn::MetaPage;
using hn::NodeHeader;

namespace {

struct Survey {
    uint64 live = 0, deleted = 0, nulls = 0, isolated = 0, uppers = 0, orphan_uppers = 0, free = 0;
    uint64 level0_links = 0, unreachable = 0, stale_links = 0;
    int top = -1;
};

struct SurveyCore {
    std::unique_ptr<PageGraph> graph;
    std::vector<uint16> flags;
    std::vector<uint8> level;
    std::vector<uint32> links;
    std::vector<uint8> seen;
};

[[noreturn]] void corrupt(Relation index, const MetaPage& meta, uint64 slot, const char* what) {
    uint64 byte = slot * meta.slot_size;
    ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                    errmsg("index \"%s\" is corrupted at block %u, offset %u (slot %llu): %s",
                           RelationGetRelationName(index), Stream::block_of(byte / meta.data_per_page),
                           static_cast<uint32>(kPageHeaderSize + byte % meta.data_per_page),
                           static_cast<unsigned long long>(slot), what)));
    pg_unreachable();
}

// Reads every slot; with `strict`, raises at the first inconsistency.
Survey survey(Relation index, bool strict) {
    MetaPage meta = read_meta(index);
    const uint64 end = meta.n_slots * meta.slot_size;
    const BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    if (meta.n_slots > 0 && Stream::block_of((end - 1) / meta.data_per_page) >= nblocks)
        corrupt(index, meta, meta.n_slots - 1, "the metapage counts more slots than the index has pages");

    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "lhnsw check", ALLOCSET_DEFAULT_SIZES);
    SurveyCore* sc = context_owned<SurveyCore>(tmp);
    LRV_GUARDED({
        sc->graph.reset(new PageGraph(index, meta));
        sc->flags.assign(meta.n_slots, 0);
        sc->level.assign(meta.n_slots, 0);
        sc->seen.assign(meta.n_slots, 0);
    });
    const hn::Layout l = hn::layout(meta);
    Survey s;

    // Headers first: flags and levels of every slot.
    for (uint64 slot = 0; slot < meta.n_slots; slot++) {
        if ((slot & 1023) == 0) CHECK_FOR_INTERRUPTS();
        NodeHeader h{};
        LRV_GUARDED(h = sc->graph->header(static_cast<uint32>(slot)));
        if (h.flags > hn::kNodeIsolated) corrupt(index, meta, slot, "unknown slot flags");
        sc->flags[slot] = h.flags;
        sc->level[slot] = h.level;
        switch (h.flags) {
            case hn::kNodeLive: s.live++; break;
            case hn::kNodeDeleted: s.deleted++; break;
            case hn::kNodeNull: s.nulls++; break;
            case hn::kNodeIsolated: s.isolated++; break;
            case hn::kSlotUpper: s.uppers++; break;
            default: s.free++; break;
        }
        if (is_graph_node(h.flags) && h.level > hn::kMaxLevel) corrupt(index, meta, slot, "node level out of range");
        if (is_graph_node(h.flags) && h.level > s.top) s.top = h.level;
    }
    const uint64 nodes = s.live + s.deleted + s.nulls + s.isolated;
    if (strict && nodes != meta.n_nodes)
        corrupt(index, meta, 0, psprintf("the metapage counts %llu nodes, the slots hold %llu",
                                         static_cast<unsigned long long>(meta.n_nodes),
                                         static_cast<unsigned long long>(nodes)));
    if (meta.entry_point != hn::kNone) {
        if (!is_graph_node(sc->flags[meta.entry_point])) corrupt(index, meta, meta.entry_point, "entry point is not a node");
        if (strict && sc->level[meta.entry_point] != meta.max_level)
            corrupt(index, meta, meta.entry_point, "entry point is not on the top level");
    } else if (strict && s.live + s.deleted > 0) {
        corrupt(index, meta, 0, "graph nodes exist but there is no entry point");
    }

    // Links and upper chains.
    std::vector<uint32>& links = sc->links;
    uint64 owned_uppers = 0;
    for (uint64 slot = 0; slot < meta.n_slots; slot++) {
        if ((slot & 255) == 0) CHECK_FOR_INTERRUPTS();
        if (!is_graph_node(sc->flags[slot])) continue;
        const uint32 id = static_cast<uint32>(slot);
        for (int lev = 0; lev <= sc->level[slot]; lev++) {
            uint32 where, from, to;
            bool found;
            LRV_GUARDED(found = sc->graph->links_location(id, lev, &where, &from, &to));
            if (!found) corrupt(index, meta, slot, psprintf("no upper slot holds the links of level %d", lev));
            if (lev > 0 && (lev - 1) % l.levels_per_upper == 0) owned_uppers++;
            LRV_GUARDED(sc->graph->links(id, lev, &links));
            if (lev == 0 && sc->flags[slot] == hn::kNodeLive) s.level0_links += links.size();
            for (std::size_t i = 0; i < links.size(); i++) {
                uint32 x = links[i];
                if (x >= meta.n_slots) corrupt(index, meta, slot, "link beyond the last slot");
                if (x == id) corrupt(index, meta, slot, "node links to itself");
                // A link to a slot that holds no node, or a node of a lower
                // level, is what a known race leaves: an insert chose a
                // neighbour that VACUUM then freed (and another insert may
                // have reused). Scans skip such links; they are counted,
                // not raised.
                if (!is_graph_node(sc->flags[x]) || sc->level[x] < lev) s.stale_links++;
                for (std::size_t j = 0; j < i; j++)
                    if (links[j] == x) corrupt(index, meta, slot, "repeated link");
            }
        }
    }
    s.orphan_uppers = s.uppers >= owned_uppers ? s.uppers - owned_uppers : 0;

    // Reachability at level 0.
    if (meta.entry_point != hn::kNone) {
        LRV_GUARDED(walk_level0(*sc->graph, sc->flags, meta.entry_point, &sc->seen, &links));
        for (uint64 slot = 0; slot < meta.n_slots; slot++)
            if (sc->flags[slot] == hn::kNodeLive && !sc->seen[slot]) s.unreachable++;
    }
    MemoryContextDelete(tmp);
    return s;
}

}  // namespace

char* check(Relation index) {
    Survey s = survey(index, true);
    return psprintf(
        "{\"am\": \"lhnsw\", \"ok\": true, \"tuples\": %llu, \"live\": %llu, \"deleted\": %llu, \"nulls\": %llu, "
        "\"unreachable\": %llu, \"orphan_upper_slots\": %llu, \"stale_links\": %llu}",
        static_cast<unsigned long long>(s.live + s.nulls + s.isolated), static_cast<unsigned long long>(s.live),
        static_cast<unsigned long long>(s.deleted), static_cast<unsigned long long>(s.nulls + s.isolated),
        static_cast<unsigned long long>(s.unreachable), static_cast<unsigned long long>(s.orphan_uppers),
        static_cast<unsigned long long>(s.stale_links));
}

char* info(Relation index) {
    MetaPage meta = read_meta(index);
    Survey s = survey(index, false);
    BlockNumber pages = RelationGetNumberOfBlocks(index);
    double degree = s.live > 0 ? static_cast<double>(s.level0_links) / static_cast<double>(s.live) : 0;
    return psprintf(
        "{\"am\": \"lhnsw\", \"dims\": %u, \"metric\": \"%s\", \"quantizer\": \"%s\", \"m\": %u, "
        "\"ef_construction\": %u, \"levels\": %d, \"elements\": %llu, \"deleted\": %llu, \"nulls\": %llu, "
        "\"average_degree\": %.2f, \"slots\": %llu, \"free_slots\": %llu, \"slot_bytes\": %u, \"pages\": %u, "
        "\"bytes\": %llu}",
        meta.dims, core::distance::metric_name(static_cast<core::distance::Metric>(meta.metric)),
        core::quantizer_name(static_cast<core::QuantizerKind>(meta.quantizer)), meta.m, meta.ef_construction,
        meta.entry_point == hn::kNone ? 0 : meta.max_level + 1, static_cast<unsigned long long>(s.live),
        static_cast<unsigned long long>(s.deleted), static_cast<unsigned long long>(s.nulls + s.isolated), degree,
        static_cast<unsigned long long>(meta.n_slots), static_cast<unsigned long long>(s.free), meta.slot_size, pages,
        static_cast<unsigned long long>(pages) * BLCKSZ);
}

}  // namespace lrv::pg::lhnsw
