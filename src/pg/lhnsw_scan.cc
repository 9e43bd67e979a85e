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
// A graph search pays a random page access per node, so a scan whose filter
// keeps throwing rows away (say, a category far from the query) would end up
// reading most of the graph in the most expensive way. Once a scan has
// evaluated libravdb.hnsw_max_scan_tuples nodes or a tenth of the index,
// whichever is fewer (at least a thousand), or the graph has nothing
// more to offer (nodes VACUUM left unreachable, say), it switches to exact
// passes over all slots: each pass keeps the best nodes not yet returned
// whose value is not below the last one returned (first a thousand, eight
// times more each later pass, bounded by work_mem), so the rest of the rows
// still come out in exact order and a LIMIT is never cut short.
//
// After that, a pass over the slots returns the rows the graph does not
// hold: zero vectors under cosine (distance NaN), then NULL vectors, the
// order ORDER BY gives them. A NULL query (or a zero one under cosine)
// returns every row in slot order.
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

enum class Phase { Start, Graph, Exact, Isolated, Nulls, Done };
constexpr std::size_t kTailBatch = 4096;
constexpr std::size_t kFirstCapacity = 1000;
constexpr std::size_t kGrowth = 8;

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
    core::VisitedSet emitted;  // graph rows returned (the exact passes skip them)
    std::size_t capacity = kFirstCapacity;
    uint64 evaluated_at_start = 0;
};

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
    if (sc->meta.entry_point != hn::kNone) {
        // The entry point is a node of the top level: VACUUM moves it off a
        // node before freeing the slot, so anything else is corruption.
        const hn::NodeHeader h = g.header(sc->meta.entry_point);
        if ((h.flags != hn::kNodeLive && h.flags != hn::kNodeDeleted) || h.level != sc->meta.max_level)
            g.corrupt(sc->meta.entry_point, "the metapage's entry point is not a node of the top level");
    }
    if (sc->meta.entry_point == hn::kNone || !g.evaluate(sc->meta.entry_point, &cur)) {
        sc->phase = Phase::Isolated;
        return;
    }
    cur.id = sc->meta.entry_point;
    for (int l = sc->meta.max_level; l > 0; l--) cur = hn::greedy_closest(g, cur, l, &sc->scratch);
    g.visit(cur.id);
    // Half of each round is yielded: enough for LIMIT k <= ef / 2 from the
    // first round, and later rounds (a filter consuming rows) stay close to
    // exact order.
    sc->search.start(cur, static_cast<std::size_t>(sc->ef), static_cast<std::size_t>((sc->ef + 1) / 2));
    sc->phase = Phase::Graph;
}

std::size_t capacity_limit() {
    return std::max<std::size_t>(kFirstCapacity, static_cast<std::size_t>(work_mem) * 1024 / sizeof(Candidate));
}

// One exact pass: the best `capacity` live nodes not yet returned whose
// value is not below the last one returned, reading the slot pages in order
// (each page once; a node that crosses a page boundary is read by the graph
// store). Ends the phase when nothing more remains.
void exact_pass(IndexScanDesc scan, ScanCore* sc) {
    Relation index = scan->indexRelation;
    const hn::MetaPage meta = guard_pg([&] { return read_meta(index); });
    const hn::Layout l = hn::layout(meta);
    PageGraph& g = *sc->graph;
    const core::QueryCoder& coder = *sc->coder;
    hn::MaxHeap best;
    std::size_t more = 0;
    auto offer = [&](Candidate& c) {
        if (sc->emitted.contains(c.id) || c.flags != hn::kNodeLive) return;
        if (c.key < sc->last_key || std::isnan(c.key)) return;
        c.d = c.key;  // ordered by the reported value
        if (best.size() < sc->capacity) {
            best.push(c);
            return;
        }
        more++;
        if (hn::Closer()(c, best.top())) {
            best.pop();
            best.push(c);
        }
    };
    const uint64 npages = hn::data_pages(meta);
    for (uint64 p = 0; p < npages; p++) {
        const BlockNumber blk = Stream::block_of(p);
        Buffer buf;
        guard_pg([&] {
            CHECK_FOR_INTERRUPTS();
            buf = ReadBuffer(index, blk);
            LockBuffer(buf, BUFFER_LOCK_SHARE);
            check_page(index, blk, BufferGetPage(buf), kMagic, kPageHnswData);
        });
        const uint8* data = reinterpret_cast<const uint8*>(page_data(BufferGetPage(buf)));
        const uint64 page_start = p * meta.data_per_page;
        uint64 slot = (page_start + meta.slot_size - 1) / meta.slot_size;
        uint64 split = UINT64_MAX;  // a node whose code runs onto the next page
        for (; slot < meta.n_slots && slot * meta.slot_size < page_start + meta.data_per_page; slot++) {
            const uint32 off = static_cast<uint32>(slot * meta.slot_size - page_start);
            if (off + l.links_offset > meta.data_per_page) {
                split = slot;
                continue;
            }
            hn::NodeHeader h;
            std::memcpy(&h, data + off, sizeof h);
            if (h.flags != hn::kNodeLive) continue;
            Candidate c;
            c.id = static_cast<uint32>(slot);
            c.flags = h.flags;
            c.tid = hn::tid_key(h);
            const uint8* code = data + off + l.code_offset;
            c.key = coder.exact() ? coder.value(code, h.norm) : coder.lower_bound(code, h.residual, h.norm);
            c.exact = coder.exact();
            offer(c);
        }
        UnlockReleaseBuffer(buf);
        if (split != UINT64_MAX) {
            Candidate c;
            if (g.evaluate(static_cast<uint32>(split), &c)) {
                c.id = static_cast<uint32>(split);
                offer(c);
            }
        }
    }
    sc->batch.clear();
    sc->next = 0;
    sc->batch.resize(best.size());
    for (std::size_t i = best.size(); i-- > 0;) {
        sc->batch[i] = best.top();
        best.pop();
    }
    if (more == 0) sc->phase = Phase::Isolated;
    sc->capacity = std::min(sc->capacity * kGrowth, capacity_limit());
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
                // By the time a search has evaluated a tenth of the index, a
                // pass over every node costs about as much as going on.
                uint64 budget = static_cast<uint64>(std::max(0, max_scan_tuples_guc));
                if (budget == 0 || budget > sc->meta.n_nodes / 10) budget = std::max<uint64>(sc->meta.n_nodes / 10, 1000);
                if (max_scan_tuples_guc == 0) budget = UINT64_MAX;
                if (sc->graph->evaluations() - sc->evaluated_at_start >= budget ||
                    !sc->search.next_round(*sc->graph, &sc->batch, &sc->scratch, 0)) {
                    sc->phase = Phase::Exact;
                    continue;
                }
                std::sort(sc->batch.begin(), sc->batch.end(), by_key);
                return true;
            }
            case Phase::Exact:
                exact_pass(scan, sc);
                if (!sc->batch.empty()) return true;
                continue;
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
    scan->opaque = context_owned<ScanCore>(CurrentMemoryContext);
    return scan;
}

void rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
    auto* sc = static_cast<ScanCore*>(scan->opaque);
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
    sc->emitted.clear();
    sc->capacity = kFirstCapacity;
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
        sc->evaluated_at_start = sc->graph->evaluations();
        sc->search = hn::ResumableSearch<PageGraph>();
        sc->coder.reset();
        if (!sc->degenerate) {
            sc->coder.reset(new core::QueryCoder(quantizer_params(sc->meta), metric, q->x, sc->meta.dims));
            sc->graph->set_query(sc->coder.get());
        }
    });
}

bool get_tuple(IndexScanDesc scan, ScanDirection dir) {
    auto* sc = static_cast<ScanCore*>(scan->opaque);
    for (;;) {
        while (sc->next < sc->batch.size()) {
            const Candidate c = sc->batch[sc->next++];
            if (c.flags == hn::kNodeDeleted) continue;  // navigation only
            const bool graph_row = c.flags == hn::kNodeLive && !sc->degenerate;
            if (graph_row) {
                if (c.key < sc->last_key) continue;  // found late: below what was returned
                sc->last_key = c.key;
                sc->emitted.insert(c.id);
            }
            key_to_tid(c.tid, &scan->xs_heaptid);
            scan->xs_recheck = false;
            scan->xs_recheckorderby = graph_row && !c.exact;
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
    auto* sc = static_cast<ScanCore*>(scan->opaque);
    sc->batch.clear();
    sc->batch.shrink_to_fit();
}

}  // namespace lrv::pg::lhnsw
