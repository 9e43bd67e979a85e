// Scanning a livfpq index: ORDER BY <op> with exact distances, for as long
// as the executor asks.
//
// A scan ranks the lists by their centroid's distance to the query and
// probes the first `probes` of them (libravdb.ivfpq_probes): every code in
// those lists gets a PQ score from per-query tables (per list under L2 and
// cosine, whose codes are residuals from the list's centroid). Scores are
// approximate, so the scan re-ranks: the `rerank` best candidates
// (libravdb.ivfpq_rerank) are read from the heap with the scan's snapshot,
// their exact distances computed by the same kernels as the SQL operators,
// and rows come out in exact order.
//
// The first refill returns the closer half of what it re-ranked (for any
// LIMIT up to rerank / 2, the answer the two settings describe), and of the
// rest whatever is provably no farther than every row not yet re-ranked: a
// list's rows lie within its radius of its centroid, a candidate within its
// code's error of its decoded vector. If the executor asks for more (a WHERE
// threw rows away), later refills re-rank the next candidates in batches
// that double, probing the next lists when the pool runs short or the next
// centroid is nearer than the best candidate left, merge them with the rows
// held back, and again return the closer half (plus what the bounds prove).
// So a WHERE never cuts a LIMIT short while matching rows exist, and the
// work grows with the rows the executor consumes, not with the table. A row
// found closer than one already returned is skipped: order is never broken,
// recall may be.
//
// Rows the snapshot cannot see are dropped while re-ranking (the executor
// would drop them too). Zero vectors under cosine (distance NaN) and then
// NULL vectors come last, from the NULL list.
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/distance.h"
#include "libravdb/core/ivfpq/pq.h"
#include "libravdb/core/quantizer.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "guard.h"
#include "livfpq.h"
#include "lvector.h"

extern "C" {
#include "catalog/index.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

namespace lrv::pg::livfpq {

using core::distance::Metric;
using iv::ListDirEntry;
using iv::MetaPage;

namespace {

constexpr std::size_t kMaxBatch = 1 << 16;

struct Cand {
    float score;
    float error;  // of the code, for a bound on the exact value
    uint64 key;
};

struct Hit {
    double value;  // NaN sorts last
    uint64 key;
    bool null;     // ORDER BY value is NULL (a NULL vector or query)
};

bool hit_less(const Hit& a, const Hit& b) {
    if (a.null != b.null) return b.null;
    const bool an = std::isnan(a.value), bn = std::isnan(b.value);
    if (an != bn) return bn;
    if (!an && a.value != b.value) return a.value < b.value;
    return a.key < b.key;
}

enum class Phase { Lists, NullList, Done };

// C++ members of a scan, owned by the scan's memory context.
struct ScanCore {
    MetaPage meta{};
    Metric metric = Metric::L2;
    std::shared_ptr<const Trained> trained;
    std::unique_ptr<core::QueryCoder> exact;  // exact ORDER BY values on heap vectors
    std::vector<float> q;                     // the query as the codes see it
    double q_norm = 0;
    bool query_null = true;
    // (|q - c|^2 or -q.c, list), nearest first; sorted up to sorted_upto.
    std::vector<std::pair<float, uint32>> lists_by_dist;
    std::size_t sorted_upto = 0;
    std::vector<float> offset;   // inner product: q.c per list
    std::vector<float> radius;     // per list, read when first needed
    std::size_t next_list = 0;   // in order
    std::vector<Cand> pool;      // scored, not yet re-ranked
    std::size_t pool_pos = 0;    // pool[0, pool_pos) went to re-ranking
    std::size_t emitted = 0;     // rows returned from re-ranking
    std::size_t skipped = 0;     // re-ranked rows closer than one returned
    double trust = 0.5;          // share of re-ranked rows later refills return unproven
    std::vector<Hit> ranked;     // re-ranked, not yet returned, sorted
    std::vector<Hit> out;        // being returned
    std::size_t out_pos = 0;
    std::vector<float> table, r, scores;
    std::vector<Cand> page_cands;
    Hit last{};
    bool have_last = false;
    Phase phase = Phase::Lists;
    std::size_t probes = 10, rerank = 100, batch = 100;
    bool untrained = false;
};

// Postgres objects of a scan (plain C), beside the C++ core.
struct ScanState {
    ScanCore* core;
    MemoryContext tmp;  // per candidate
    IndexFetchTableData* fetch;
    TupleTableSlot* slot;
    IndexInfo* iinfo;
    EState* estate;
    AttrNumber attno;  // 0: an expression index
};

// Scores every entry of list `list` into the pool. Plain Postgres style:
// buffers are read and released here, C++ calls are guarded.
void probe_list(Relation index, ScanCore* sc, uint32 list) {
    const MetaPage& meta = sc->meta;
    const ListDirEntry e = read_dir(index, meta, list);
    if (e.head == iv::kNoBlock) return;
    const uint32 per_page = iv::entries_per_page(meta.data_per_page, meta.entry_size);
    const iv::ProductQuantizer& pq = *sc->trained->pq;
    float offset = 0;
    LRV_GUARDED({
        if (sc->metric == Metric::InnerProduct) {
            offset = sc->offset[list];
        } else {
            const float* c = sc->trained->centroids.data() + std::size_t{list} * meta.dims;
            for (std::size_t i = 0; i < meta.dims; i++) sc->r[i] = sc->q[i] - c[i];
            pq.l2_table(sc->r.data(), sc->table.data());
        }
        // The directory's count is a hint (and may be corrupted): reserve
        // for a few pages, the pool grows as pages are read.
        sc->pool.reserve(sc->pool.size() + std::min<std::size_t>(e.count, 64 * std::size_t{per_page}) + per_page);
    });
    const iv::AdcFn adc = meta.pq_bits == 8 ? iv::best_adc().adc8 : iv::best_adc().adc4;
    const float sign = sc->metric == Metric::InnerProduct ? -1.0f : 1.0f;
    BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    uint32 hops = 0;
    for (BlockNumber blk = e.head; blk != iv::kNoBlock; hops++) {
        check_chain_step(index, meta, list, blk, hops, &nblocks);
        Buffer buf = ReadBuffer(index, blk);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        const uint32 n = list_page_entries(index, meta, buf, blk, list);
        Page page = BufferGetPage(buf);
        const iv::ListPageHeader* h = list_header(page);
        adc(sc->table.data(), meta.pq_m, list_entry(page, meta, 0) + sizeof(iv::EntryHeader), meta.entry_size, n,
            sc->scores.data());
        uint32 k = 0;
        for (uint32 i = 0; i < n; i++) {
            const auto* eh = reinterpret_cast<const iv::EntryHeader*>(list_entry(page, meta, i));
            if (unlikely(eh->flags != iv::kEntryLive)) bad_entry(index, buf, blk, list, i, eh->flags);
            sc->page_cands[k++] = Cand{sign * (offset + sc->scores[i]), eh->error, iv::entry_tid_key(*eh)};
        }
        const BlockNumber next = h->next;
        UnlockReleaseBuffer(buf);
        LRV_GUARDED(sc->pool.insert(sc->pool.end(), sc->page_cands.begin(), sc->page_cands.begin() + k));
        blk = next;
        CHECK_FOR_INTERRUPTS();
    }
}

// The indexed vector of a heap tuple the snapshot sees, or nullptr.
LVector* fetch_vector(IndexScanDesc scan, ScanState* ss, uint64 key) {
    ItemPointerData tid;
    key_to_tid(key, &tid);
    bool call_again = false, all_dead = false;
    if (!table_index_fetch_tuple(ss->fetch, &tid, scan->xs_snapshot, ss->slot, &call_again, &all_dead))
        return nullptr;
    Datum d;
    bool isnull;
    if (ss->attno != 0) {
        d = slot_getattr(ss->slot, ss->attno, &isnull);
    } else {
        ExprContext* econtext = GetPerTupleExprContext(ss->estate);
        econtext->ecxt_scantuple = ss->slot;
        Datum values[INDEX_MAX_KEYS];
        bool nulls[INDEX_MAX_KEYS];
        FormIndexDatum(ss->iinfo, ss->slot, ss->estate, values, nulls);
        d = values[0];
        isnull = nulls[0];
    }
    if (isnull) return nullptr;
    LVector* v = datum_to_lvector(d);
    return v->dim == ss->core->meta.dims ? v : nullptr;
}

// Re-ranks pool[pool_pos, pool_pos + n) into sc->ranked.
void rerank(IndexScanDesc scan, ScanState* ss, std::size_t n) {
    ScanCore* sc = ss->core;
    LRV_GUARDED({
        auto first = sc->pool.begin() + static_cast<long>(sc->pool_pos);
        auto mid = first + static_cast<long>(n);
        if (mid != sc->pool.end())
            std::nth_element(first, mid, sc->pool.end(), [](const Cand& a, const Cand& b) {
                return a.score < b.score || (a.score == b.score && a.key < b.key);
            });
        sc->ranked.reserve(sc->ranked.size() + n);
    });
    for (std::size_t i = sc->pool_pos; i < sc->pool_pos + n; i++) {
        if ((i & 63) == 0) CHECK_FOR_INTERRUPTS();
        const uint64 key = sc->pool[i].key;
        MemoryContext old = MemoryContextSwitchTo(ss->tmp);
        LVector* v = fetch_vector(scan, ss, key);
        if (v != nullptr) {
            const double value = sc->exact->value(reinterpret_cast<const uint8*>(v->x), 0);
            Hit h{value, key, false};
            if (!sc->have_last || !hit_less(h, sc->last))
                sc->ranked.push_back(h);  // capacity reserved
            else
                sc->skipped++;
        }
        MemoryContextSwitchTo(old);
        MemoryContextReset(ss->tmp);
        if (ss->estate != nullptr) ResetPerTupleExprContext(ss->estate);
    }
    sc->pool_pos += n;
}

// Lower bounds on the ORDER BY value of rows not yet re-ranked: a
// candidate's from its PQ score and its code's error (triangle inequality),
// a list's from its centroid and radius -- no member lies farther than the
// radius from the centroid.
double bound_from_distance(const ScanCore* sc, double dist) {
    dist = std::max(0.0, dist);
    return sc->metric == Metric::Cosine ? dist * dist / 2 : dist;  // cosine: |q - x|^2 / 2 for unit vectors
}
double candidate_bound(const ScanCore* sc, const Cand& c) {
    if (sc->metric == Metric::InnerProduct) return c.score - sc->q_norm * c.error;
    return bound_from_distance(sc, std::sqrt(std::max(0.0f, c.score)) - c.error);
}
double pool_bound(const ScanCore* sc) {
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t i = sc->pool_pos; i < sc->pool.size(); i++) best = std::min(best, candidate_bound(sc, sc->pool[i]));
    return best;
}
// The list at rank `pos` in centroid order (sorting the rest on first use).
const std::pair<float, uint32>& list_at(ScanCore* sc, std::size_t pos) {
    if (pos >= sc->sorted_upto) {
        std::sort(sc->lists_by_dist.begin() + static_cast<long>(sc->sorted_upto), sc->lists_by_dist.end());
        sc->sorted_upto = sc->lists_by_dist.size();
    }
    return sc->lists_by_dist[pos];
}
double list_bound(ScanCore* sc, std::size_t pos) {
    if (pos >= sc->lists_by_dist.size()) return std::numeric_limits<double>::infinity();
    const auto& [dist, l] = list_at(sc, pos);
    if (sc->metric == Metric::InnerProduct) return -static_cast<double>(sc->offset[l]) - sc->q_norm * sc->radius[l];
    return bound_from_distance(sc, std::sqrt(std::max(0.0f, dist)) - sc->radius[l]);
}
// Every list's radius, one read per directory page.
void read_radii(Relation index, ScanCore* sc) {
    const MetaPage& meta = sc->meta;
    LRV_GUARDED(sc->radius.resize(meta.lists));
    const uint32 per = iv::dir_per_page(meta.data_per_page);
    for (uint32 first = 0; first < meta.lists; first += per) {
        const BlockNumber blk = dir_block(meta, first);
        Buffer buf = ReadBuffer(index, blk);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        check_page(index, blk, page, kMagic, kPageIvfDir);
        for (uint32 l = first; l < std::min(meta.lists, first + per); l++) {
            ListDirEntry e;
            std::memcpy(&e, page_data(page) + dir_offset(meta, l), sizeof e);
            sc->radius[l] = e.radius;
        }
        UnlockReleaseBuffer(buf);
    }
}

// A margin for float rounding in scores and kernels: a bound is trusted
// only this far.
constexpr double kSlack = 1e-4;

// Fills sc->out with the next rows to return; false when there are none.
bool refill(IndexScanDesc scan, ScanState* ss) {
    ScanCore* sc = ss->core;
    Relation index = scan->indexRelation;
    sc->out.clear();
    sc->out_pos = 0;
    while (sc->phase == Phase::Lists) {
        // The first refill probes `probes` lists; later ones serve a WHERE
        // that threw rows away.
        const bool first = sc->next_list == 0;
        if (sc->radius.empty()) read_radii(index, sc);
        if (first) {
            for (std::size_t i = 0; i < sc->probes && sc->next_list < sc->lists_by_dist.size(); i++)
                probe_list(index, sc, list_at(sc, sc->next_list++).second);
        } else {
            // A WHERE threw rows away. Re-rank the next batch, from lists
            // in proportion: `probes` lists for every `rerank` candidates
            // re-ranked, as a first refill with larger settings would --
            // and more while the pool cannot fill the batch.
            const std::size_t target = sc->probes * ((sc->pool_pos + sc->batch + sc->rerank - 1) / std::max<std::size_t>(1, sc->rerank));
            while (sc->next_list < sc->lists_by_dist.size() &&
                   (sc->next_list < target || sc->pool.size() - sc->pool_pos < sc->batch))
                probe_list(index, sc, list_at(sc, sc->next_list++).second);
        }
        const std::size_t avail = sc->pool.size() - sc->pool_pos;
        const std::size_t n = std::min(avail, sc->batch);
        const std::size_t skipped = sc->skipped;
        if (n > 0) rerank(scan, ss, n);
        // Many rows found closer than one returned (over 1 in 20) mean the
        // scores trusted so far were too optimistic: trust less, down to the
        // bounds alone; few, and trust recovers.
        if (!first) {
            if ((sc->skipped - skipped) * 20 > n)
                sc->trust = sc->trust < 1.0 / 64 ? 0 : sc->trust / 2;
            else
                sc->trust = std::min(0.5, std::max(1.0 / 64, sc->trust * 2));
        }
        const bool exhausted = sc->next_list >= sc->lists_by_dist.size() && sc->pool_pos == sc->pool.size();
        std::size_t emit = 0;
        LRV_GUARDED({
            std::sort(sc->ranked.begin(), sc->ranked.end(), hit_less);
            // Each refill returns the closer half of what it holds re-ranked
            // (the first: of its `rerank` rows), and beyond that the rows no
            // farther than anything the candidates not yet re-ranked and the
            // lists not yet probed can hold.
            emit = sc->ranked.size();
            if (!exhausted) {
                double limit = std::min(pool_bound(sc), list_bound(sc, sc->next_list));
                limit -= kSlack * (std::fabs(limit) + 1);
                const auto share = static_cast<std::size_t>(sc->trust * static_cast<double>(sc->pool_pos));
                const std::size_t trusted = first ? (sc->rerank + 1) / 2 : share > sc->emitted ? share - sc->emitted : 0;
                emit = 0;
                while (emit < sc->ranked.size() && !sc->ranked[emit].null &&
                       (emit < trusted || sc->ranked[emit].value <= limit))
                    emit++;
                sc->emitted += emit;
            }
            sc->out.assign(sc->ranked.begin(), sc->ranked.begin() + static_cast<long>(emit));
            sc->ranked.erase(sc->ranked.begin(), sc->ranked.begin() + static_cast<long>(emit));
            if (!first) sc->batch = std::min(kMaxBatch, sc->batch * 2);
        });
        if (exhausted && sc->ranked.empty()) sc->phase = Phase::NullList;
        if (emit > 0) return true;
    }
    if (sc->phase == Phase::NullList) {
        sc->phase = Phase::Done;
        // Zero vectors (cosine, NaN) first, then NULLs.
        const MetaPage& meta = sc->meta;
        const ListDirEntry e = read_dir(index, meta, meta.lists);
        const uint32 per_page = iv::entries_per_page(meta.data_per_page, meta.entry_size);
        LRV_GUARDED(sc->out.reserve(std::min<std::size_t>(e.count, 64 * std::size_t{per_page}) + per_page));
        BlockNumber nblocks = RelationGetNumberOfBlocks(index);
        uint32 hops = 0;
        for (BlockNumber blk = e.head; blk != iv::kNoBlock; hops++) {
            check_chain_step(index, meta, meta.lists, blk, hops, &nblocks);
            Buffer buf = ReadBuffer(index, blk);
            LockBuffer(buf, BUFFER_LOCK_SHARE);
            const uint32 n = list_page_entries(index, meta, buf, blk, meta.lists);
            Page page = BufferGetPage(buf);
            uint32 k = 0;
            for (uint32 i = 0; i < n; i++) {
                const auto* eh = reinterpret_cast<const iv::EntryHeader*>(list_entry(page, meta, i));
                if (unlikely(!entry_fits_list(meta, meta.lists, eh->flags)))
                    bad_entry(index, buf, blk, meta.lists, i, eh->flags);
                sc->page_cands[k++] = Cand{eh->flags == iv::kEntryZero ? 0.0f : 1.0f, 0.0f, iv::entry_tid_key(*eh)};
            }
            const BlockNumber next = list_header(page)->next;
            UnlockReleaseBuffer(buf);
            LRV_GUARDED(for (uint32 i = 0; i < k; i++) sc->out.push_back(
                Hit{std::numeric_limits<double>::quiet_NaN(), sc->page_cands[i].key, sc->page_cands[i].score != 0}));
            blk = next;
        }
        LRV_GUARDED(std::sort(sc->out.begin(), sc->out.end(), hit_less));
        return !sc->out.empty();
    }
    return false;
}

// ORDER BY <op> NULL: every row, each with a NULL value, list after list.
void all_rows(IndexScanDesc scan, ScanCore* sc) {
    Relation index = scan->indexRelation;
    const MetaPage& meta = sc->meta;
    BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    for (uint32 list = 0; list <= meta.lists; list++) {
        const ListDirEntry e = read_dir(index, meta, list);
        uint32 hops = 0;
        for (BlockNumber blk = e.head; blk != iv::kNoBlock; hops++) {
            check_chain_step(index, meta, list, blk, hops, &nblocks);
            Buffer buf = ReadBuffer(index, blk);
            LockBuffer(buf, BUFFER_LOCK_SHARE);
            const uint32 n = list_page_entries(index, meta, buf, blk, list);
            Page page = BufferGetPage(buf);
            for (uint32 i = 0; i < n; i++)
                sc->page_cands[i] =
                    Cand{0, 0, iv::entry_tid_key(*reinterpret_cast<const iv::EntryHeader*>(list_entry(page, meta, i)))};
            const BlockNumber next = list_header(page)->next;
            UnlockReleaseBuffer(buf);
            LRV_GUARDED(for (uint32 i = 0; i < n; i++) sc->out.push_back(Hit{0, sc->page_cands[i].key, true}));
            blk = next;
        }
    }
    sc->phase = Phase::Done;
}

}  // namespace

IndexScanDesc begin_scan(Relation index, int nkeys, int norderbys) {
    IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
    scan->xs_orderbyvals = static_cast<Datum*>(palloc0(sizeof(Datum) * Max(norderbys, 1)));
    scan->xs_orderbynulls = static_cast<bool*>(palloc(sizeof(bool) * Max(norderbys, 1)));
    auto* ss = static_cast<ScanState*>(palloc0(sizeof(ScanState)));
    ss->core = context_owned<ScanCore>(CurrentMemoryContext);
    ss->tmp = AllocSetContextCreate(CurrentMemoryContext, "livfpq rerank", ALLOCSET_DEFAULT_SIZES);
    ss->attno = index->rd_index->indkey.values[0];
    scan->opaque = ss;
    return scan;
}

void rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
    auto* ss = static_cast<ScanState*>(scan->opaque);
    ScanCore* sc = ss->core;
    Relation index = scan->indexRelation;
    if (orderbys && scan->numberOfOrderBys > 0)
        memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
    if (scan->numberOfOrderBys == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("livfpq index scans need ORDER BY <op>")));
    if (scan->heapRelation == nullptr)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("livfpq index scans need the table to re-rank candidates")));
    const MetaPage meta = read_meta(index);
    sc->meta = meta;
    sc->metric = static_cast<Metric>(meta.metric);
    sc->trained = trained(index, meta);
    if (ss->fetch == nullptr) {
        ss->fetch = table_index_fetch_begin(scan->heapRelation);
        ss->slot = table_slot_create(scan->heapRelation, nullptr);
        if (ss->attno == 0) {
            ss->iinfo = BuildIndexInfo(index);
            ss->estate = CreateExecutorState();
        }
    }
    LVector* q = orderby_vector(&scan->orderByData[0], static_cast<int>(meta.dims));
    const uint32 per_page = iv::entries_per_page(meta.data_per_page, meta.entry_size);
    LRV_GUARDED({
        sc->pool.clear();
        sc->pool_pos = 0;
        sc->emitted = 0;
        sc->skipped = 0;
        sc->trust = 0.5;
        sc->ranked.clear();
        sc->out.clear();
        sc->out_pos = 0;
        sc->have_last = false;
        sc->next_list = 0;
        sc->radius.clear();
        sc->phase = Phase::Lists;
        sc->page_cands.resize(per_page);
        sc->scores.resize(per_page);
        sc->untrained = meta.trained_rows == 0;
        sc->query_null = q == nullptr;
        sc->lists_by_dist.clear();
        sc->sorted_upto = 0;
        if (!sc->query_null) {
            const std::size_t d = meta.dims;
            core::QuantizerParams none;
            sc->exact.reset(new core::QueryCoder(none, sc->metric, q->x, d));
            sc->q.assign(q->x, q->x + d);
            double n2 = 0;
            for (float x : sc->q) n2 += static_cast<double>(x) * x;
            sc->q_norm = std::sqrt(n2);
            if (sc->metric == Metric::Cosine && n2 > 0)
                for (float& x : sc->q) x = static_cast<float>(x / std::sqrt(n2));
            const Trained& t = *sc->trained;
            sc->r.resize(d);
            sc->table.resize(t.pq->m() * t.pq->ksub());
            std::vector<float> dist(meta.lists);
            sc->offset.assign(meta.lists, 0);
            for (uint32 l = 0; l < meta.lists; l++) {
                const float* c = t.centroids.data() + std::size_t{l} * d;
                if (sc->metric == Metric::InnerProduct) {
                    sc->offset[l] = core::distance::inner_product(sc->q.data(), c, d);
                    dist[l] = -sc->offset[l];
                } else {
                    dist[l] = core::distance::l2_squared(sc->q.data(), c, d);
                }
            }
            if (sc->metric == Metric::InnerProduct) t.pq->ip_table(sc->q.data(), sc->table.data());
            sc->probes = std::min<std::size_t>(meta.lists, static_cast<std::size_t>(effective_probes(index)));
            // Lists in centroid order: the first probes (and the next one,
            // whose bound the first refill needs) now, the rest only if the
            // scan gets that far.
            sc->lists_by_dist.resize(meta.lists);
            for (uint32 l = 0; l < meta.lists; l++) sc->lists_by_dist[l] = {dist[l], l};
            sc->sorted_upto = std::min<std::size_t>(meta.lists, sc->probes + 1);
            std::partial_sort(sc->lists_by_dist.begin(), sc->lists_by_dist.begin() + static_cast<long>(sc->sorted_upto),
                              sc->lists_by_dist.end());
            sc->rerank = static_cast<std::size_t>(effective_rerank(index));
            if (sc->untrained) {
                // No centroids or codebooks to trust: re-rank everything.
                sc->probes = meta.lists;
                sc->rerank = kMaxBatch;
            }
            sc->batch = sc->rerank;
        }
    });
    if (sc->query_null) all_rows(scan, sc);
}

bool get_tuple(IndexScanDesc scan, ScanDirection dir) {
    auto* ss = static_cast<ScanState*>(scan->opaque);
    ScanCore* sc = ss->core;
    while (sc->out_pos >= sc->out.size()) {
        if (sc->phase == Phase::Done) return false;
        if (!refill(scan, ss) && sc->phase == Phase::Done && sc->out_pos >= sc->out.size()) return false;
    }
    const Hit& h = sc->out[sc->out_pos++];
    sc->last = h;
    sc->have_last = true;
    key_to_tid(h.key, &scan->xs_heaptid);
    scan->xs_recheck = false;
    scan->xs_recheckorderby = false;
    scan->xs_orderbyvals[0] = Float8GetDatum(h.value);
    scan->xs_orderbynulls[0] = h.null;
    return true;
}

void end_scan(IndexScanDesc scan) {
    auto* ss = static_cast<ScanState*>(scan->opaque);
    if (ss->fetch != nullptr) table_index_fetch_end(ss->fetch);
    if (ss->slot != nullptr) ExecDropSingleTupleTableSlot(ss->slot);
    if (ss->estate != nullptr) FreeExecutorState(ss->estate);
    ss->fetch = nullptr;
    ss->slot = nullptr;
    ss->estate = nullptr;
    ss->core->trained.reset();
}

}  // namespace lrv::pg::livfpq
