// Building an lhnsw index.
//
// The heap is read once (twice with sq8, whose value range is measured
// first) into an in-memory graph of the core (core/hnsw/graph.h), which
// links every node on 1 + max_parallel_maintenance_workers threads. The
// leader polls for interrupts and reports progress while the core threads
// work. The graph is then written slot after slot: node i in slot i, then
// the nodes of NULL (and, under cosine, zero) vectors, then the upper-level
// slots; and the whole index is WAL-logged in bulk with log_newpage_range.
//
// Memory: the graph holds the vectors as the index stores them (float32,
// fp16 or sq8). When that would not fit in maintenance_work_mem, the graph
// is built on sq8 codes instead (a quarter of float32) and the heap is read
// a second time to write the stored vectors; a NOTICE says so. For an sq8
// index whose vectors fit with sq8 codes beside them, links are chosen on
// those codes (integer distances over a quarter of the bytes: the build's
// time goes to reading vectors at random), unless the codes would be coarse.
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/hnsw/graph.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "guard.h"
#include "lhnsw.h"
#include "lvector.h"


extern "C" {
#include "catalog/index.h"
#include "portability/instr_time.h"
#include "pgstat.h"
#include "utils/backend_progress.h"
#include "utils/memutils.h"
}

namespace lrv::pg::lhnsw {

using hn::MetaPage;
using hn::NodeHeader;

namespace {

// Seconds since `start`, for the DEBUG1 line that breaks a build down.
double seconds_since(const instr_time& start) {
    instr_time now;
    INSTR_TIME_SET_CURRENT(now);
    INSTR_TIME_SUBTRACT(now, start);
    return INSTR_TIME_GET_DOUBLE(now);
}

constexpr int kPhaseRange = 2;
constexpr int kPhaseLoad = 3;
constexpr int kPhaseLink = 4;
constexpr int kPhaseWrite = 5;

struct BuildState {
    Relation index;
    MetaPage meta;
    core::distance::Metric metric;
    MemoryContext tmp;
    core::hnsw::BuildGraph* graph;  // owned by the build() frame's unique_ptr
    std::vector<uint64>* null_tids;
    std::vector<uint64>* isolated_tids;  // zero vectors under cosine
    double tuples;
    // Second pass (graph built on sq8 codes): stored vectors by heap tid.
    std::vector<std::pair<uint64, uint32>>* by_tid;
    std::vector<uint8>* stored_codes;
    std::vector<float>* stored_residuals;
};

void load_callback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool alive, void* arg) {
    auto* st = static_cast<BuildState*>(arg);
    MemoryContext old = MemoryContextSwitchTo(st->tmp);
    LVector* v = isnull[0] ? nullptr : build_vector(values[0], st->meta.dims);
    uint64 key = tid_to_key(tid);
    if (v != nullptr && graphable(st->metric, v->x, v->dim)) {
        LRV_GUARDED(st->graph->add(v->x, key));
    } else if (v != nullptr) {
        LRV_GUARDED(st->isolated_tids->push_back(key));
    } else {
        LRV_GUARDED(st->null_tids->push_back(key));
    }
    MemoryContextSwitchTo(old);
    MemoryContextReset(st->tmp);
    st->tuples += 1;
    if ((static_cast<int64>(st->tuples) & 1023) == 0)
        pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, static_cast<int64>(st->tuples));
}

// Second pass when the graph was built on sq8 codes: encode each vector as
// the index stores it, found by heap tid.
void store_callback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool alive, void* arg) {
    auto* st = static_cast<BuildState*>(arg);
    if (isnull[0]) return;
    uint64 key = tid_to_key(tid);
    auto it = std::lower_bound(st->by_tid->begin(), st->by_tid->end(), std::make_pair(key, uint32{0}));
    if (it == st->by_tid->end() || it->first != key) return;  // not in the graph (zero vector under cosine)
    MemoryContext old = MemoryContextSwitchTo(st->tmp);
    LVector* v = build_vector(values[0], st->meta.dims);
    const std::size_t cb = core::code_bytes(static_cast<core::QuantizerKind>(st->meta.quantizer), st->meta.dims);
    (*st->stored_residuals)[it->second] =
        core::encode(quantizer_params(st->meta), st->metric, v->x, st->meta.dims,
                     st->stored_codes->data() + static_cast<std::size_t>(it->second) * cb);
    MemoryContextSwitchTo(old);
    MemoryContextReset(st->tmp);
}

MetaPage initial_meta(Relation index) {
    MetaPage m{};
    m.magic = kMagic;
    m.version = hn::kVersion;
    m.metric = static_cast<uint8>(index_metric(index));
    auto* opts = reinterpret_cast<Options*>(index->rd_options);
    m.quantizer = static_cast<uint8>(opts ? opts->quantizer : 0);
    m.m = static_cast<uint16>(opts ? opts->m : 16);
    m.ef_construction = static_cast<uint16>(opts ? opts->ef_construction : 64);
    m.dims = static_cast<uint32>(index_dims(index));
    m.slot_size = hn::layout(m).slot_size;
    m.data_per_page = kPageDataSize;
    m.entry_point = hn::kNone;
    m.sq_lo = 0;
    m.sq_step = 1;
    return m;
}

int build_threads() { return 1 + std::max(0, max_parallel_maintenance_workers); }

// Writes the graph into the slot stream. Slots: graph nodes 0..n-1, NULL
// nodes, then upper slots in node order.
void write_graph(Relation index, MetaPage* meta, const core::hnsw::BuildGraph& g, const std::vector<uint64>& nulls,
                 const std::vector<uint64>& isolated,
                 const std::vector<uint8>* stored_codes, const std::vector<float>* stored_residuals,
                 bool encode_floats) {
    const hn::Layout l = hn::layout(*meta);
    const uint32 n = static_cast<uint32>(g.size());
    // Plain Postgres style (CHECK_FOR_INTERRUPTS below): no C++ object with a
    // destructor lives in this frame.
    uint8* slot = static_cast<uint8*>(palloc(l.slot_size));
    auto clear = [&] { std::memset(slot, 0, l.slot_size); };
    auto* out = static_cast<StreamBuilder*>(palloc(sizeof(StreamBuilder)));
    stream_build_init(out, slot_stream(index, *meta));
    const uint32 first_upper = n + static_cast<uint32>(nulls.size() + isolated.size());
    uint32 next_upper = first_upper;
    const std::size_t cb = l.code_bytes;
    auto links_at = [&](uint32 id, int level, uint32* dst, uint32 cap) {
        uint32 cnt;
        const uint32* src = g.links(id, level, &cnt);
        for (uint32 i = 0; i < cap; i++) dst[i] = i < cnt ? src[i] : hn::kNone;
    };
    for (uint32 id = 0; id < n; id++) {
        if ((id & 1023) == 0) {
            CHECK_FOR_INTERRUPTS();
            pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, id);
        }
        clear();
        NodeHeader h{};
        hn::set_tid_key(&h, g.tid(id));
        h.flags = hn::kNodeLive;
        h.residual = stored_residuals ? (*stored_residuals)[id] : g.residual(id);
        h.norm = g.norm(id);
        if (encode_floats)
            h.residual = core::encode(quantizer_params(*meta), static_cast<core::distance::Metric>(meta->metric),
                                      reinterpret_cast<const float*>(g.code(id)), meta->dims, slot + l.code_offset);
        h.level = static_cast<uint8>(g.level(id));
        h.owner = hn::kNone;
        h.upper = g.level(id) > 0 ? next_upper : hn::kNone;
        next_upper += hn::upper_slots_needed(l, g.level(id));
        std::memcpy(slot, &h, sizeof h);
        if (!encode_floats)
            std::memcpy(slot + l.code_offset, stored_codes ? stored_codes->data() + id * cb : g.code(id), cb);
        links_at(id, 0, reinterpret_cast<uint32*>(slot + l.links_offset), 2 * l.m);
        stream_build_append(out, slot, l.slot_size);
    }
    // Zero vectors under cosine: their code is all zeros, like the vector.
    for (uint64 key : isolated) {
        clear();
        NodeHeader h{};
        hn::set_tid_key(&h, key);
        h.flags = hn::kNodeIsolated;
        h.upper = hn::kNone;
        h.owner = hn::kNone;
        std::memcpy(slot, &h, sizeof h);
        stream_build_append(out, slot, l.slot_size);
    }
    for (uint64 key : nulls) {
        clear();
        NodeHeader h{};
        hn::set_tid_key(&h, key);
        h.flags = hn::kNodeNull;
        h.upper = hn::kNone;
        h.owner = hn::kNone;
        std::memcpy(slot, &h, sizeof h);
        stream_build_append(out, slot, l.slot_size);
    }
    // Upper slots, in the order the node headers above promised.
    uint32 upper_id = first_upper;
    for (uint32 id = 0; id < n; id++) {
        const int level = g.level(id);
        for (int first = 1; first <= level; first += static_cast<int>(l.levels_per_upper)) {
            clear();
            NodeHeader h{};
            h.flags = hn::kSlotUpper;
            h.level = static_cast<uint8>(first);
            h.n_levels = static_cast<uint8>(std::min<int>(static_cast<int>(l.levels_per_upper), level - first + 1));
            h.owner = id;
            h.upper = first + h.n_levels <= level ? upper_id + 1 : hn::kNone;
            std::memcpy(slot, &h, sizeof h);
            for (int k = 0; k < h.n_levels; k++)
                links_at(id, first + k,
                         reinterpret_cast<uint32*>(slot + sizeof(NodeHeader) + k * l.m * sizeof(uint32)),
                         l.m);
            stream_build_append(out, slot, l.slot_size);
            upper_id++;
        }
    }
    stream_build_finish(out);
    pfree(slot);
    pfree(out);
    meta->n_slots = upper_id;
    meta->n_nodes = n + nulls.size() + isolated.size();
    meta->entry_point = g.entry_point();
    meta->max_level = static_cast<uint8>(std::max(0, g.max_level()));
    meta->free_hint = meta->n_slots;
}

// C++ members of a build, owned by a memory context (context_owned) so an
// ERROR (or a cancel) anywhere frees the graph; build() itself holds no
// object with a destructor (DESIGN.md section 3, rule 5).
struct BuildCore {
    std::unique_ptr<core::hnsw::BuildGraph> graph;
    std::vector<uint64> nulls, isolated;
    std::vector<std::pair<uint64, uint32>> by_tid;
    std::vector<uint8> stored_codes;
    std::vector<float> stored_residuals;
};

}  // namespace

IndexBuildResult* build(Relation heap, Relation index, IndexInfo* info) {
    if (RelationGetNumberOfBlocks(index) != 0)
        elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

    auto* st = static_cast<BuildState*>(palloc0(sizeof(BuildState)));
    st->index = index;
    st->meta = initial_meta(index);
    st->metric = static_cast<core::distance::Metric>(st->meta.metric);
    st->tmp = AllocSetContextCreate(CurrentMemoryContext, "lhnsw build tuple", ALLOCSET_DEFAULT_SIZES);
    write_meta_page(index, MAIN_FORKNUM, kMagic, &st->meta, sizeof st->meta, false);

    const auto stored = static_cast<core::QuantizerKind>(st->meta.quantizer);
    const double est_rows = std::max<double>(heap->rd_rel->reltuples, 0);
    const std::size_t budget = static_cast<std::size_t>(maintenance_work_mem) * 1024;
    const int threads = build_threads();
    const std::size_t rows = static_cast<std::size_t>(est_rows);
    const std::size_t need_stored = core::hnsw::BuildGraph::estimate_bytes(rows, st->meta.dims, stored, st->meta.m);
    const std::size_t need_sq8 =
        core::hnsw::BuildGraph::estimate_bytes(rows, st->meta.dims, core::QuantizerKind::Sq8, st->meta.m);
    // The graph is built on exact float32 vectors when they fit in
    // maintenance_work_mem (even for an fp16 or sq8 index: a better graph,
    // and distances between two nodes need no decoding), else on the stored
    // codes, else on sq8 codes with a second heap pass for what the index
    // stores.
    const std::size_t need_float =
        core::hnsw::BuildGraph::estimate_bytes(rows, st->meta.dims, core::QuantizerKind::None, st->meta.m);
    core::QuantizerKind in_memory = core::QuantizerKind::None;
    if (need_float > budget) in_memory = need_stored <= budget ? stored : core::QuantizerKind::Sq8;
    if (in_memory == core::QuantizerKind::Sq8 && stored != core::QuantizerKind::Sq8) {
        ereport(NOTICE,
                (errmsg("lhnsw graph of about %zu MB does not fit in maintenance_work_mem (%d MB); building it on "
                        "sq8 codes (about %zu MB) and reading the table twice",
                        need_stored >> 20, maintenance_work_mem / 1024, need_sq8 >> 20),
                 errhint("Increase maintenance_work_mem for a faster build on exact vectors.")));
    }
    if (in_memory == core::QuantizerKind::Sq8 && need_sq8 > budget)
        ereport(NOTICE, (errmsg("lhnsw graph of about %zu MB exceeds maintenance_work_mem (%d MB); building anyway",
                                need_sq8 >> 20, maintenance_work_mem / 1024)));

    core::QuantizerParams graph_qp;
    graph_qp.kind = in_memory;
    if (in_memory == core::QuantizerKind::Sq8 || stored == core::QuantizerKind::Sq8) {
        core::QuantizerParams range = measure_sq8_range(heap, index, info, st->meta.dims, kPhaseRange);
        if (in_memory == core::QuantizerKind::Sq8) graph_qp = range;
        st->meta.sq_lo = range.lo;  // used by the index only when it stores sq8
        st->meta.sq_step = range.step;
    }

    // The graph's own context: deleting it frees the graph as soon as the
    // pages are written (and on ERROR it goes with the statement's memory).
    MemoryContext graph_cxt = AllocSetContextCreate(CurrentMemoryContext, "lhnsw build graph", ALLOCSET_SMALL_SIZES);
    BuildCore* bc = context_owned<BuildCore>(graph_cxt);

    core::hnsw::BuildOptions bo;
    bo.m = st->meta.m;
    bo.ef_construction = st->meta.ef_construction;
    LRV_GUARDED(bc->graph.reset(new core::hnsw::BuildGraph(bo, graph_qp, st->metric, st->meta.dims)));
    // reltuples may be stale; add() grows past it if need be.
    LRV_GUARDED(bc->graph->reserve(static_cast<std::size_t>(est_rows * 1.05) + 16));
    st->graph = bc->graph.get();
    st->null_tids = &bc->nulls;
    st->isolated_tids = &bc->isolated;

    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseLoad);
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, static_cast<int64>(est_rows));
    instr_time t_load;
    INSTR_TIME_SET_CURRENT(t_load);
    double heap_tuples = table_index_build_scan(heap, index, info, true, true, load_callback, st, nullptr);
    const double load_s = seconds_since(t_load);
    instr_time t_link;
    INSTR_TIME_SET_CURRENT(t_link);

    // When sq8 codes of the vectors fit beside them and are fine enough
    // (BuildGraph::link_on_sq8), the searches that find each node's
    // candidates compare those: a quarter of the bytes, which is what a
    // build's random reads wait on. An sq8 index also chooses its links on
    // them (its scans search sq8 codes too). Indexes of float32 or fp16
    // vectors choose theirs on the stored vectors (search_on_sq8): graphs
    // linked on codes took inserts worse. Ten 1,500-row builds of t/021's
    // vectors (they lie on 101 circles), each followed by 1,800 inserts: the
    // inserted rows missed their own vector at ef_search 40 20 times and the
    // built ones 53 times on code-linked graphs, 7 and 26 times on
    // float-linked ones, 9 and 25 with search_on_sq8. Fresh builds show no
    // such difference.
    if (in_memory != core::QuantizerKind::Sq8 &&
        core::hnsw::BuildGraph::estimate_bytes(bc->graph->size(), st->meta.dims, in_memory, st->meta.m, true) <=
            budget) {
        if (stored == core::QuantizerKind::Sq8)
            LRV_GUARDED(bc->graph->link_on_sq8());
        else
            LRV_GUARDED(bc->graph->search_on_sq8());
    }

    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseLink);
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, static_cast<int64>(bc->graph->size()));
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
    LRV_GUARDED(bc->graph->link_all(threads, [](std::size_t done) {
        guard_pg([&] {
            CHECK_FOR_INTERRUPTS();
            pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, static_cast<int64>(done));
        });
    }));

    const double link_s = seconds_since(t_link);
    instr_time t_write;
    INSTR_TIME_SET_CURRENT(t_write);

    // Stored codes differ from the graph's: encoded from its float32 vectors
    // while writing, or (graph on sq8) read from the heap again.
    const bool restore = in_memory != stored && in_memory != core::QuantizerKind::None;
    if (restore) {
        // Graph on sq8 codes: read the heap again for the vectors the index stores.
        LRV_GUARDED({
            const auto& g = *bc->graph;
            bc->by_tid.reserve(g.size());
            for (uint32 i = 0; i < g.size(); i++) bc->by_tid.emplace_back(g.tid(i), i);
            std::sort(bc->by_tid.begin(), bc->by_tid.end());
            bc->stored_codes.assign(g.size() * core::code_bytes(stored, st->meta.dims), 0);
            bc->stored_residuals.assign(g.size(), 0);
        });
        st->by_tid = &bc->by_tid;
        st->stored_codes = &bc->stored_codes;
        st->stored_residuals = &bc->stored_residuals;
        table_index_build_scan(heap, index, info, true, true, store_callback, st, nullptr);
    }

    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseWrite);
    write_graph(index, &st->meta, *bc->graph, bc->nulls, bc->isolated, restore ? &bc->stored_codes : nullptr,
                restore ? &bc->stored_residuals : nullptr,
                in_memory == core::QuantizerKind::None && stored != core::QuantizerKind::None);
    const bool on_float = in_memory == core::QuantizerKind::None;
    const char* linked_on = bc->graph->searches_on_sq8()
                                ? (on_float ? "float32 vectors (searched on sq8 codes)" : "fp16 codes (searched on sq8 codes)")
                            : bc->graph->links_on_sq8() ? "sq8 codes"
                            : on_float                  ? "float32 vectors"
                                                        : "fp16 codes";
    const std::size_t repaired = bc->graph->repaired();
    MemoryContextDelete(graph_cxt);
    ereport(DEBUG1, (errmsg("lhnsw build of \"%s\": loaded %.0f rows in %.2f s, linked on %s on %d threads in "
                            "%.2f s (%zu unreachable nodes linked in), wrote %llu slots in %.2f s",
                            RelationGetRelationName(index), st->tuples, load_s,
                            linked_on,
                            threads, link_s, repaired,
                            static_cast<unsigned long long>(st->meta.n_slots), seconds_since(t_write))));

    MemoryContextDelete(st->tmp);
    return finish_build(index, &st->meta, sizeof st->meta, heap_tuples, st->tuples);
}

void build_empty(Relation index) {
    MetaPage meta = initial_meta(index);
    write_meta_page(index, INIT_FORKNUM, kMagic, &meta, sizeof meta, true);
}

}  // namespace lrv::pg::lhnsw
