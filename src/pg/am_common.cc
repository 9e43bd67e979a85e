#include <algorithm>
#include <cstring>
#include <limits>

#include "am_common.h"

extern "C" {
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/selfuncs.h"
#include "nodes/pathnodes.h"
#include "pgstat.h"
#include "utils/backend_progress.h"
#include "utils/memutils.h"
#include "commands/vacuum.h"
}

#include "guard.h"
#include "lvector.h"

#include "libravdb/core/hnsw/format.h"
#include "libravdb/core/ivfpq/format.h"
#include "libravdb/core/limits.h"

extern "C" {
Datum lrv_l2_distance(PG_FUNCTION_ARGS);
Datum lrv_negative_inner_product(PG_FUNCTION_ARGS);
Datum lrv_cosine_distance(PG_FUNCTION_ARGS);
Datum lrv_l1_distance(PG_FUNCTION_ARGS);
}

namespace lrv::pg {

using core::distance::Metric;

relopt_kind lflat_relopt_kind;
relopt_kind lhnsw_relopt_kind;
relopt_kind livfpq_relopt_kind;

bool check_explicit_source(int* newval, void** extra, GucSource source) {
    bool* explicit_set = static_cast<bool*>(malloc(sizeof(bool)));
    if (explicit_set == nullptr) return false;
    *explicit_set = source > PGC_S_DEFAULT;
    *extra = explicit_set;
    return true;
}

void init_page(Page page, uint32 magic, uint16 kind, Size used) {
    PageInit(page, BLCKSZ, kSpecialSize);
    PageOpaque* op = page_opaque(page);
    op->magic = magic;
    op->kind = kind;
    op->flags = 0;
    reinterpret_cast<PageHeader>(page)->pd_lower = static_cast<LocationIndex>(kPageHeaderSize + used);
}

void report_bad_page(Relation index, BlockNumber blkno, Page page, uint32 magic, uint16 kind) {
    if (PageIsNew(page))
        ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                        errmsg("index \"%s\" contains an uninitialized page at block %u", RelationGetRelationName(index),
                               blkno)));
    if (PageGetSpecialSize(page) != kSpecialSize || page_opaque(page)->magic != magic ||
        page_opaque(page)->kind != kind)
        ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                        errmsg("index \"%s\" has an unexpected page at block %u", RelationGetRelationName(index),
                               blkno),
                        errdetail("Expected page kind %u with magic %08x, found kind %u with magic %08x.", kind,
                                  magic, page_opaque(page)->kind, page_opaque(page)->magic)));
    pg_unreachable();
}

Metric index_metric(Relation index) {
    FmgrInfo* proc = index_getprocinfo(index, 1, 1);
    if (proc->fn_addr == lrv_l2_distance) return Metric::L2;
    if (proc->fn_addr == lrv_negative_inner_product) return Metric::InnerProduct;
    if (proc->fn_addr == lrv_cosine_distance) return Metric::Cosine;
    if (proc->fn_addr == lrv_l1_distance) return Metric::L1;
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("operator class of index \"%s\" has an unsupported distance function",
                           RelationGetRelationName(index))));
    pg_unreachable();
}

int index_dims(Relation index) {
    int dims = TupleDescAttr(RelationGetDescr(index), 0)->atttypmod;
    if (dims < 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("column does not have dimensions"),
                        errhint("Declare the column as lvector(n), for example lvector(768).")));
    return dims;
}

Buffer extend_index(Relation index) {
    LockRelationForExtension(index, ExclusiveLock);
    Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, nullptr);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    UnlockRelationForExtension(index, ExclusiveLock);
    return buf;
}

static relopt_enum_elt_def quantizer_values[] = {
    {"none", 0},
    {"fp16", 1},
    {"sq8", 2},
    {nullptr, 0},
};

void register_am_options() {
    lflat_relopt_kind = add_reloption_kind();
    add_enum_reloption(lflat_relopt_kind, "quantizer", "How vectors are stored in the index: none, fp16 or sq8",
                       quantizer_values, 0, "Valid values are \"none\", \"fp16\" and \"sq8\".", AccessExclusiveLock);

    lhnsw_relopt_kind = add_reloption_kind();
    add_int_reloption(lhnsw_relopt_kind, "m", "Links per node and level (2m at level 0)", 16, core::hnsw::kMinM,
                      core::hnsw::kMaxM, AccessExclusiveLock);
    add_int_reloption(lhnsw_relopt_kind, "ef_construction", "Size of the candidate list while building",
                      64, core::hnsw::kMinEfConstruction, core::hnsw::kMaxEfConstruction, AccessExclusiveLock);
    add_int_reloption(lhnsw_relopt_kind, "ef_search",
                      "Default size of the candidate list of a scan (0: libravdb.hnsw_ef_search)", 0, 0, 1000,
                      AccessExclusiveLock);
    add_enum_reloption(lhnsw_relopt_kind, "quantizer", "How the graph stores vectors: none, fp16 or sq8",
                       quantizer_values, 0, "Valid values are \"none\", \"fp16\" and \"sq8\".", AccessExclusiveLock);

    livfpq_relopt_kind = add_reloption_kind();
    add_int_reloption(livfpq_relopt_kind, "lists", "Inverted lists (0: the square root of the row count)", 0, 0,
                      static_cast<int>(core::ivfpq::kMaxLists), AccessExclusiveLock);
    add_int_reloption(livfpq_relopt_kind, "pq_m", "Sub-spaces of the product quantizer (0: dimensions / 4)", 0, 0,
                      static_cast<int>(core::kMaxDims), AccessExclusiveLock);
    add_int_reloption(livfpq_relopt_kind, "pq_bits", "Bits per sub-space code: 4 or 8", 4, 4, 8,
                      AccessExclusiveLock);
    add_int_reloption(livfpq_relopt_kind, "probes", "Default lists a scan probes (0: libravdb.ivfpq_probes)", 0, 0,
                      static_cast<int>(core::ivfpq::kMaxLists), AccessExclusiveLock);
    add_int_reloption(livfpq_relopt_kind, "rerank",
                      "Default candidates a scan re-ranks exactly (0: libravdb.ivfpq_rerank)", 0, 0, 100000,
                      AccessExclusiveLock);
}

bool refuse_unordered_path(const IndexPath* path, Cost* startup_cost, Cost* total_cost, Selectivity* selectivity,
                           double* correlation, double* pages) {
    if (path->indexorderbys != NIL) return false;
    // Without ORDER BY <op> the index cannot answer anything.
    *startup_cost = *total_cost = 1.0e10;
    *selectivity = 0;
    *correlation = 0;
    *pages = 0;
    return true;
}

double estimated_index_tuples(const IndexOptInfo* index) {
    const double tuples = index->tuples >= 0 ? index->tuples : index->rel->tuples;
    return tuples < 1 ? 1 : tuples;
}

void ordered_scan_costestimate(PlannerInfo* root, IndexPath* path, double loop_count, Cost* startup_cost,
                               Cost* total_cost, Selectivity* selectivity, double* correlation, double* pages,
                               double per_entry_cpu_factor) {
    IndexOptInfo* index = path->indexinfo;
    if (refuse_unordered_path(path, startup_cost, total_cost, selectivity, correlation, pages)) return;
    const double tuples = estimated_index_tuples(index);
    double npages = index->pages > 0 ? index->pages : 1;
    // One sequential pass over the index, one distance per entry; every
    // tuple is then handed out in order, so selectivity is 1 and the heap
    // fetches (which cost_index adds) scale with how many rows LIMIT takes.
    *startup_cost = npages * seq_page_cost + tuples * cpu_operator_cost * per_entry_cpu_factor;
    *total_cost = *startup_cost + tuples * cpu_index_tuple_cost;
    *selectivity = 1.0;
    *correlation = 0;
    *pages = npages;
}

LVector* build_vector(Datum value, uint32 dims) {
    LVector* v = datum_to_lvector(value);
    if (v->dim != dims)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("expected %u dimensions, not %d", dims, static_cast<int>(v->dim))));
    return v;
}

namespace {

struct RangeState {
    uint32 dims;
    MemoryContext tmp;
    float lo, hi;
};

void range_callback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool alive, void* arg) {
    auto* st = static_cast<RangeState*>(arg);
    if (isnull[0]) return;
    MemoryContext old = MemoryContextSwitchTo(st->tmp);
    LVector* v = build_vector(values[0], st->dims);
    for (int i = 0; i < v->dim; i++) {
        st->lo = std::min(st->lo, v->x[i]);
        st->hi = std::max(st->hi, v->x[i]);
    }
    MemoryContextSwitchTo(old);
    MemoryContextReset(st->tmp);
}

}  // namespace

core::QuantizerParams measure_sq8_range(Relation heap, Relation index, IndexInfo* info, uint32 dims, int phase) {
    RangeState st;
    st.dims = dims;
    st.tmp = AllocSetContextCreate(CurrentMemoryContext, "sq8 range", ALLOCSET_DEFAULT_SIZES);
    st.lo = std::numeric_limits<float>::max();
    st.hi = std::numeric_limits<float>::lowest();
    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, phase);
    table_index_build_scan(heap, index, info, true, true, range_callback, &st, nullptr);
    MemoryContextDelete(st.tmp);
    return core::sq8_from_range(st.lo, st.hi);
}

void write_meta_page(Relation index, ForkNumber fork, uint32 magic, const void* meta, Size len, bool log) {
    Buffer buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, nullptr);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    Page page;
    GenericXLogState* state = nullptr;
    if (log) {
        state = GenericXLogStart(index);
        page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
    } else {
        page = BufferGetPage(buf);
    }
    init_page(page, magic, kPageMeta, len);
    std::memcpy(page_data(page), meta, len);
    if (log)
        GenericXLogFinish(state);
    else
        MarkBufferDirty(buf);
    UnlockReleaseBuffer(buf);
}

IndexBuildResult* finish_build(Relation index, const void* meta, Size len, double heap_tuples, double index_tuples) {
    Buffer buf = ReadBuffer(index, 0);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    Page page = BufferGetPage(buf);
    std::memcpy(page_data(page), meta, len);
    reinterpret_cast<PageHeader>(page)->pd_lower = static_cast<LocationIndex>(kPageHeaderSize + len);
    MarkBufferDirty(buf);
    UnlockReleaseBuffer(buf);
    if (RelationNeedsWAL(index))
        log_newpage_range(index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(index), true);
    auto* result = static_cast<IndexBuildResult*>(palloc(sizeof(IndexBuildResult)));
    result->heap_tuples = heap_tuples;
    result->index_tuples = index_tuples;
    return result;
}

namespace {
// Operator classes are ours alone (the extension script defines them).
bool validate_opclass(Oid opclassoid) { return true; }
}  // namespace

IndexAmRoutine* make_am_routine(const AmCallbacks& cb) {
    IndexAmRoutine* am = makeNode(IndexAmRoutine);
    am->amstrategies = 0;
    am->amsupport = 1;
    am->amoptsprocnum = 0;
    am->amcanorder = false;
    am->amcanorderbyop = true;
    am->amcanbackward = false;
    am->amcanunique = false;
    am->amcanmulticol = false;
    am->amoptionalkey = true;
    am->amsearcharray = false;
    am->amsearchnulls = false;
    am->amstorage = false;
    am->amclusterable = false;
    am->ampredlocks = false;
    am->amcanparallel = false;
    am->amcaninclude = false;
    am->amusemaintenanceworkmem = cb.uses_maintenance_work_mem;
    am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
    am->amkeytype = InvalidOid;

    am->ambuild = cb.build;
    am->ambuildempty = cb.build_empty;
    am->aminsert = cb.insert;
    am->ambulkdelete = cb.bulk_delete;
    am->amvacuumcleanup = cb.vacuum_cleanup;
    am->amcanreturn = nullptr;
    am->amcostestimate = cb.cost_estimate;
    am->amoptions = cb.options;
    am->amproperty = nullptr;
    am->ambuildphasename = cb.phase_name;
    am->amvalidate = validate_opclass;
    am->amadjustmembers = nullptr;
    am->ambeginscan = cb.begin_scan;
    am->amrescan = cb.rescan;
    am->amgettuple = cb.get_tuple;
    am->amgetbitmap = nullptr;
    am->amendscan = cb.end_scan;
    am->ammarkpos = nullptr;
    am->amrestrpos = nullptr;
    am->amestimateparallelscan = nullptr;
    am->aminitparallelscan = nullptr;
    am->amparallelrescan = nullptr;
    return am;
}

LVector* orderby_vector(ScanKey key, int dims) {
    if (key->sk_flags & SK_ISNULL) return nullptr;
    LVector* v = datum_to_lvector(key->sk_argument);
    if (v->dim != dims)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("different lvector dimensions %d and %d", dims, static_cast<int>(v->dim))));
    return v;
}

}  // namespace lrv::pg
