// Scanning an lflat index: ORDER BY <op> in exact distance order, for as long
// as the executor asks.
//
// Each pass reads the whole index once and keeps the best `capacity` entries
// after the last one returned (ordered by key, then heap TID). The first pass
// keeps a thousand, enough for any LIMIT without a filter; when a WHERE
// clause throws rows away and the executor keeps asking, later passes keep
// eight times more each, so a filter never cuts a result short and the
// number of passes grows only logarithmically.
//
// Without a quantizer the keys are the exact distances, computed by the same
// kernels as the SQL operators. With one, keys are lower bounds (see
// quantizer.h) and xs_recheckorderby makes the executor compute the exact
// distance on the heap row and reorder -- exact results in exact order, with
// heap rows read only for the candidates whose bound beats the k-th distance.
#include <memory>
#include <new>
#include <vector>

#include "guard.h"
#include "lflat.h"
#include "lvector.h"

#include "libravdb/core/flat/scanner.h"

extern "C" {
#include "miscadmin.h"
#include "utils/memutils.h"
}

namespace lrv::pg::lflat {

using core::flat::Hit;

namespace {

constexpr std::size_t kFirstCapacity = 1000;
constexpr std::size_t kGrowth = 8;

// C++ members live here; the struct is freed by a memory-context reset
// callback, so an ERROR anywhere cannot leak them.
struct ScanCore {
    core::flat::MetaPage meta{};
    std::unique_ptr<core::QueryCoder> coder;
    std::unique_ptr<core::flat::Pass> pass;
    std::vector<Hit> batch;
    std::size_t next = 0;
    Hit last{};
    bool have_last = false;
    bool exhausted = false;
    bool query_null = false;
    std::size_t capacity = kFirstCapacity;
};

std::size_t capacity_limit() {
    // work_mem bounds one pass's candidate list (16 bytes a candidate).
    return std::max<std::size_t>(kFirstCapacity, static_cast<std::size_t>(work_mem) * 1024 / sizeof(Hit));
}

// One pass over the data pages. Plain Postgres style: the only C++ objects
// are owned by ScanCore, so ereport from ReadBuffer or interrupts is safe.
void run_pass(IndexScanDesc scan, ScanCore* sc) {
    Relation index = scan->indexRelation;
    LRV_GUARDED(sc->pass.reset(new core::flat::Pass(sc->meta, sc->query_null ? nullptr : sc->coder.get(),
                                                    sc->capacity, sc->have_last ? &sc->last : nullptr)));
    uint64 npages = sc->pass->pages_needed();
    for (uint64 p = 0; p < npages; p++) {
        CHECK_FOR_INTERRUPTS();
        Buffer buf = ReadBuffer(index, data_block(p));
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        check_page(index, data_block(p), page, kMagic, kPageFlatData);
        bool more;
        LRV_GUARDED(more = sc->pass->feed(reinterpret_cast<const uint8*>(page_data(page))));
        UnlockReleaseBuffer(buf);
        if (!more) break;
    }
    LRV_GUARDED(sc->batch = sc->pass->finish(&sc->exhausted));
    sc->pass.reset();
    sc->next = 0;
    sc->capacity = std::min(sc->capacity * kGrowth, capacity_limit());
}

}  // namespace

IndexScanDesc begin_scan(Relation index, int nkeys, int norderbys) {
    IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
    // The AM provides the ORDER BY value arrays (as GiST does).
    scan->xs_orderbyvals = static_cast<Datum*>(palloc0(sizeof(Datum) * Max(norderbys, 1)));
    scan->xs_orderbynulls = static_cast<bool*>(palloc(sizeof(bool) * Max(norderbys, 1)));
    // The metapage is read by rescan, which always comes first.
    scan->opaque = context_owned<ScanCore>(CurrentMemoryContext);
    return scan;
}

void rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
    auto* sc = static_cast<ScanCore*>(scan->opaque);
    if (orderbys && scan->numberOfOrderBys > 0)
        memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
    sc->meta = read_meta(scan->indexRelation);
    sc->batch.clear();
    sc->next = 0;
    sc->have_last = false;
    sc->exhausted = false;
    sc->capacity = kFirstCapacity;
    sc->query_null = true;
    sc->coder.reset();
    if (scan->numberOfOrderBys == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("lflat index scans need ORDER BY <op>")));
    LVector* q = orderby_vector(&scan->orderByData[0], static_cast<int>(sc->meta.dims));
    if (q != nullptr) {
        core::QuantizerParams qp;
        qp.kind = static_cast<core::QuantizerKind>(sc->meta.quantizer);
        qp.lo = sc->meta.sq_lo;
        qp.step = sc->meta.sq_step;
        sc->query_null = false;
        LRV_GUARDED(sc->coder.reset(new core::QueryCoder(qp, static_cast<core::distance::Metric>(sc->meta.metric),
                                                         q->x, sc->meta.dims)));
    }
}

bool get_tuple(IndexScanDesc scan, ScanDirection dir) {
    auto* sc = static_cast<ScanCore*>(scan->opaque);
    // After rescan the batch is empty and not exhausted: the first call runs
    // the first pass.
    while (sc->next >= sc->batch.size()) {
        if (sc->exhausted) return false;
        run_pass(scan, sc);
    }
    const Hit& h = sc->batch[sc->next++];
    sc->last = h;
    sc->have_last = true;
    from_key(h.tid, &scan->xs_heaptid);
    scan->xs_recheck = false;
    scan->xs_recheckorderby = !sc->query_null && (h.tid & core::flat::kNullTidBit) == 0 &&
                              (!sc->coder->exact() || (h.tid & core::flat::kRecheckTidBit) != 0);
    scan->xs_orderbyvals[0] = Float8GetDatum(h.key);
    scan->xs_orderbynulls[0] = sc->query_null || (h.tid & core::flat::kNullTidBit) != 0;
    return true;
}

void end_scan(IndexScanDesc scan) {
    auto* sc = static_cast<ScanCore*>(scan->opaque);
    sc->batch.clear();
    sc->batch.shrink_to_fit();
}

}  // namespace lrv::pg::lflat
