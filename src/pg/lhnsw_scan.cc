// Scanning an lhnsw index: ORDER BY <op> through the graph, for as long as
// the executor asks.
//
// The scan descends the upper levels greedily, then runs a resumable level-0
// search (core/hnsw/search.h): each round yields the next ef_search best
// nodes it has not yielded yet, continuing from the frontier the previous
// round left, so a WHERE clause that throws rows away makes the scan go on
// searching instead of ending or restarting. Rows come out in non-decreasing
// order of the value the scan reports; a node found late whose value is below
// one already returned is skipped (that is recall lost, never disorder).
//
// Without a quantizer the reported value is the exact distance, computed by
// the operators' own kernels on the stored float32 vector. With fp16 or sq8
// it is a lower bound (core/quantizer.h), and xs_recheckorderby makes the
// executor compute the exact distance on the heap row and re-rank: exact
// distances in exact order.
//
// After the graph, a pass over the slots returns the rows the graph does not
// hold: zero vectors under cosine (distance NaN), then NULL vectors, the
// order ORDER BY gives them. A NULL query (or a zero one under cosine)
// returns every row in slot order. libravdb.hnsw_max_scan_tuples bounds the
// nodes a scan expands; at the bound it returns what it has found, in order,
// then those rows, and ends.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "guard.h"
#include "lhnsw.h"
#include "lvector.h"

extern "C" {
#include "miscadmin.h"
#include "utils/memutils.h"
}

namespace lrv::pg::lhnsw {

using hn::Candidate;

namespace {

enum class Phase { Start, Graph, Isolated, Nulls, Done };
constexpr std::size_t kTailBatch = 4096;

struct ScanCore {
    hn::MetaPage meta{};
    std::unique_ptr<core::QueryCoder> coder;
    std::unique_ptr<PageGraph> graph;
    hn::ResumableSearch<PageGraph> search;
    std::vector<Candidate> batch;
    std::vector<uint32> scratch;
    std::size_t next = 0;
    double last_key = -std::numeric_limits<double>::infinity();
    Phase phase = Phase::Start;
    bool degenerate = false;  // NULL query, or zero query under cosine
    bool query_null = false;
    uint64 tail_slot = 0;
    int ef = 40;
};

struct ScanState {
    ScanCore* core;
    MemoryContextCallback cleanup;
};

void destroy_core(void* arg) { delete static_cast<ScanCore*>(arg); }

bool by_key(const Candidate& a, const Candidate& b) {
    // NaN last (as ORDER BY sorts it), then by id for a stable order.
    bool an = std::isnan(a.key), bn = std::isnan(b.key);
    if (an != bn) return bn;
    if (!an && a.key != b.key) return a.key < b.key;
    return a.id < b.id;
}

// Descends to level 0 and starts the resumable search.
void start_graph(ScanCore* sc) {
    PageGraph& g = *sc->graph;
    g.reset_visited();
    Candidate cur;
    if (sc->meta.entry_point == hn::kNone || !g.evaluate(sc->meta.entry_point, &cur)) {
        sc->phase = Phase::Isolated;
        return;
    }
    cur.id = sc->meta.entry_point;
    for (int l = sc->meta.max_level; l > 0; l--) cur = hn::greedy_closest(g, cur, l, &sc->scratch);
    g.visit(cur.id);
    sc->search.start(cur, static_cast<std::size_t>(sc->ef));
    sc->phase = Phase::Graph;
}

// Collects the next batch of slots with flags `want` (or, for a degenerate
// query, every node) from the slot pass; advances the phase at the end.
void tail_batch(IndexScanDesc scan, ScanCore* sc, bool all_nodes, uint16 want, Phase after) {
    Relation index = scan->indexRelation;
    const hn::MetaPage meta = guard_pg([&] { return read_meta(index); });
    const uint32 ss = meta.slot_size, dpp = meta.data_per_page;
    sc->batch.clear();
    sc->next = 0;
    while (sc->tail_slot < meta.n_slots && sc->batch.size() < kTailBatch) {
        const uint64 start = sc->tail_slot * ss;
        const uint64 page = start / dpp;
        const BlockNumber blk = Stream::block_of(page);
        Buffer buf;
        guard_pg([&] {
            CHECK_FOR_INTERRUPTS();
            buf = ReadBuffer(index, blk);
            LockBuffer(buf, BUFFER_LOCK_SHARE);
            check_page(index, blk, BufferGetPage(buf), kMagic, kPageHnswData);
        });
        const uint8* data = reinterpret_cast<const uint8*>(page_data(BufferGetPage(buf)));
        // Every slot whose header starts on this page.
        for (; sc->tail_slot < meta.n_slots && sc->tail_slot * ss < (page + 1) * dpp; sc->tail_slot++) {
            hn::NodeHeader h;
            std::memcpy(&h, data + (sc->tail_slot * ss - page * dpp), sizeof h);
            bool take = all_nodes ? (h.flags == hn::kNodeLive || h.flags == hn::kNodeIsolated) : h.flags == want;
            if (!take) continue;
            Candidate c;
            c.id = static_cast<uint32>(sc->tail_slot);
            c.flags = h.flags;
            c.key = std::numeric_limits<double>::quiet_NaN();
            c.tid = hn::tid_key(h);
            sc->batch.push_back(c);
        }
        UnlockReleaseBuffer(buf);
    }
    if (sc->tail_slot >= meta.n_slots) {
        sc->phase = after;
        sc->tail_slot = 0;
    }
}

// Refills sc->batch; false once the scan has nothing more.
bool refill(IndexScanDesc scan, ScanCore* sc) {
    for (;;) {
        switch (sc->phase) {
            case Phase::Start:
                if (sc->degenerate) {
                    sc->phase = Phase::Isolated;
                    continue;
                }
                start_graph(sc);
                continue;
            case Phase::Graph: {
                sc->batch.clear();
                sc->next = 0;
                std::size_t limit = static_cast<std::size_t>(std::max(0, max_scan_tuples_guc));
                if (!sc->search.next_round(*sc->graph, &sc->batch, &sc->scratch, limit)) {
                    sc->phase = Phase::Isolated;
                    continue;
                }
                std::sort(sc->batch.begin(), sc->batch.end(), by_key);
                return true;
            }
            case Phase::Isolated:
                tail_batch(scan, sc, sc->degenerate, hn::kNodeIsolated, Phase::Nulls);
                if (!sc->batch.empty()) return true;
                continue;
            case Phase::Nulls:
                tail_batch(scan, sc, false, hn::kNodeNull, Phase::Done);
                if (!sc->batch.empty()) return true;
                continue;
            case Phase::Done:
                return false;
        }
    }
}

}  // namespace

IndexScanDesc begin_scan(Relation index, int nkeys, int norderbys) {
    IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
    scan->xs_orderbyvals = static_cast<Datum*>(palloc0(sizeof(Datum) * Max(norderbys, 1)));
    scan->xs_orderbynulls = static_cast<bool*>(palloc(sizeof(bool) * Max(norderbys, 1)));
    auto* st = static_cast<ScanState*>(palloc0(sizeof(ScanState)));
    LRV_GUARDED(st->core = new ScanCore());
    st->cleanup.func = destroy_core;
    st->cleanup.arg = st->core;
    MemoryContextRegisterResetCallback(CurrentMemoryContext, &st->cleanup);
    scan->opaque = st;
    return scan;
}

void rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
    auto* st = static_cast<ScanState*>(scan->opaque);
    ScanCore* sc = st->core;
    if (orderbys && scan->numberOfOrderBys > 0)
        memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
    if (scan->numberOfOrderBys == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("lhnsw index scans need ORDER BY <op>")));
    sc->meta = read_meta(scan->indexRelation);
    sc->batch.clear();
    sc->next = 0;
    sc->last_key = -std::numeric_limits<double>::infinity();
    sc->phase = Phase::Start;
    sc->tail_slot = 0;
    sc->ef = effective_ef_search(scan->indexRelation);
    LVector* q = orderby_vector(&scan->orderByData[0], static_cast<int>(sc->meta.dims));
    const auto metric = static_cast<core::distance::Metric>(sc->meta.metric);
    sc->query_null = q == nullptr;
    sc->degenerate = q == nullptr || !graphable(metric, q->x, q->dim);
    LRV_GUARDED({
        if (sc->graph)
            sc->graph->reset(sc->meta);
        else
            sc->graph.reset(new PageGraph(scan->indexRelation, sc->meta));
        sc->search = hn::ResumableSearch<PageGraph>();
        sc->coder.reset();
        if (!sc->degenerate) {
            sc->coder.reset(new core::QueryCoder(quantizer_params(sc->meta), metric, q->x, sc->meta.dims));
            sc->graph->set_query(sc->coder.get());
        }
    });
}

bool get_tuple(IndexScanDesc scan, ScanDirection dir) {
    auto* st = static_cast<ScanState*>(scan->opaque);
    ScanCore* sc = st->core;
    for (;;) {
        while (sc->next < sc->batch.size()) {
            const Candidate c = sc->batch[sc->next++];
            if (c.flags == hn::kNodeDeleted) continue;  // navigation only
            const bool graph_row = c.flags == hn::kNodeLive && !sc->degenerate;
            if (graph_row) {
                if (c.key < sc->last_key) continue;  // found late: below what was returned
                sc->last_key = c.key;
            }
            key_to_tid(c.tid, &scan->xs_heaptid);
            scan->xs_recheck = false;
            scan->xs_recheckorderby = graph_row && !sc->coder->exact();
            scan->xs_orderbyvals[0] = Float8GetDatum(c.key);
            scan->xs_orderbynulls[0] = sc->query_null || c.flags == hn::kNodeNull;
            return true;
        }
        bool more = false;
        LRV_GUARDED(more = refill(scan, sc));
        if (!more) return false;
    }
}

void end_scan(IndexScanDesc scan) {
    auto* st = static_cast<ScanState*>(scan->opaque);
    st->core->batch.clear();
    st->core->batch.shrink_to_fit();
    if (st->core->graph) st->core->graph->release();
}

}  // namespace lrv::pg::lhnsw
