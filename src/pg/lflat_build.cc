// Building an lflat index.
//
// One pass over the heap (two with sq8, whose value range is measured
// first) appends entries to the entry stream in heap order (am_stream.h:
// pages filled in backend memory), and the whole index is WAL-logged in bulk
// with log_newpage_range at the end, as Postgres's own sorted GiST build
// does: no per-tuple WAL during a build.
#include <cmath>
#include <cstring>
#include <limits>

#include "guard.h"
#include "lflat.h"
#include "lvector.h"

extern "C" {
#include "catalog/index.h"
#include "pgstat.h"
#include "utils/backend_progress.h"
#include "utils/memutils.h"
}

namespace lrv::pg::lflat {

using core::flat::MetaPage;

namespace {

constexpr int kPhaseRange = 2;
constexpr int kPhaseLoad = 3;

struct BuildState {
    Relation index;
    MetaPage meta;
    MemoryContext tmp;
    uint8* entry;
    StreamBuilder out;
    double tuples;
};

void load_callback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool alive, void* arg) {
    auto* st = static_cast<BuildState*>(arg);
    MemoryContext old = MemoryContextSwitchTo(st->tmp);
    LVector* v = isnull[0] ? nullptr : build_vector(values[0], st->meta.dims);
    encode_entry(st->meta, v ? v->x : nullptr, tid, st->entry);
    stream_build_append(&st->out, st->entry, st->meta.entry_size);
    MemoryContextSwitchTo(old);
    MemoryContextReset(st->tmp);
    st->meta.n_slots++;
    st->meta.n_live++;
    st->tuples += 1;
    if ((static_cast<int64>(st->tuples) & 1023) == 0)
        pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, static_cast<int64>(st->tuples));
}

MetaPage initial_meta(Relation index) {
    MetaPage m{};
    m.magic = kMagic;
    m.version = core::flat::kVersion;
    m.metric = static_cast<uint8>(index_metric(index));
    auto* opts = reinterpret_cast<Options*>(index->rd_options);
    m.quantizer = static_cast<uint8>(opts ? opts->quantizer : 0);
    m.dims = static_cast<uint32>(index_dims(index));
    m.entry_size = static_cast<uint32>(core::flat::entry_size(static_cast<core::QuantizerKind>(m.quantizer), m.dims));
    m.data_per_page = kPageDataSize;
    m.sq_lo = 0;
    m.sq_step = 1;
    return m;
}

}  // namespace

IndexBuildResult* build(Relation heap, Relation index, IndexInfo* info) {
    if (RelationGetNumberOfBlocks(index) != 0)
        elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

    auto* st = static_cast<BuildState*>(palloc0(sizeof(BuildState)));
    st->index = index;
    st->meta = initial_meta(index);
    st->tmp = AllocSetContextCreate(CurrentMemoryContext, "lflat build tuple", ALLOCSET_DEFAULT_SIZES);
    st->entry = static_cast<uint8*>(palloc0(st->meta.entry_size));

    // The metapage takes block 0 now; its final contents are written last.
    write_meta_page(index, MAIN_FORKNUM, kMagic, &st->meta, sizeof st->meta, false);

    if (st->meta.quantizer == static_cast<uint8>(core::QuantizerKind::Sq8)) {
        core::QuantizerParams qp = measure_sq8_range(heap, index, info, st->meta.dims, kPhaseRange);
        st->meta.sq_lo = qp.lo;
        st->meta.sq_step = qp.step;
    }

    stream_build_init(&st->out, entry_stream(index, st->meta));
    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseLoad);
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, static_cast<int64>(heap->rd_rel->reltuples));
    double heap_tuples = table_index_build_scan(heap, index, info, true, true, load_callback, st, nullptr);
    stream_build_finish(&st->out);
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, static_cast<int64>(st->tuples));

    MemoryContextDelete(st->tmp);
    return finish_build(index, &st->meta, sizeof st->meta, heap_tuples, st->tuples);
}

// Unlogged tables: the init fork holds an empty index (just the metapage),
// copied over the main fork at restart.
void build_empty(Relation index) {
    MetaPage meta = initial_meta(index);
    write_meta_page(index, INIT_FORKNUM, kMagic, &meta, sizeof meta, true);
}

}  // namespace lrv::pg::lflat
