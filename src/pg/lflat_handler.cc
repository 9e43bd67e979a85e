// Registers lflat with Postgres: the IndexAmRoutine, options and cost.
#include "lflat.h"

#include "guard.h"

extern "C" {
#include "access/amvalidate.h"
#include "commands/vacuum.h"
#include "nodes/pathnodes.h"
}

namespace lrv::pg::lflat {
namespace {

bytea* options(Datum reloptions, bool validate) {
    static const relopt_parse_elt tab[] = {
        {"quantizer", RELOPT_TYPE_ENUM, offsetof(Options, quantizer)},
    };
    return static_cast<bytea*>(
        build_reloptions(reloptions, validate, lflat_relopt_kind, sizeof(Options), tab, lengthof(tab)));
}

void cost_estimate(PlannerInfo* root, IndexPath* path, double loop_count, Cost* startup_cost, Cost* total_cost,
                   Selectivity* selectivity, double* correlation, double* pages) {
    // An entry costs about what the distance operator costs on a heap row;
    // codes smaller than float vectors cost less, in proportion to bytes read.
    double factor = 1.0;
    Relation index = index_open(path->indexinfo->indexoid, NoLock);
    auto* opts = reinterpret_cast<Options*>(index->rd_options);
    if (opts && opts->quantizer == static_cast<int>(core::QuantizerKind::Fp16)) factor = 0.5;
    if (opts && opts->quantizer == static_cast<int>(core::QuantizerKind::Sq8)) factor = 0.25;
    index_close(index, NoLock);
    ordered_scan_costestimate(root, path, loop_count, startup_cost, total_cost, selectivity, correlation, pages,
                              factor);
}

char* phase_name(int64 phase) {
    switch (phase) {
        case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
            return pstrdup("initializing");
        case 2:
            return pstrdup("computing quantizer range");
        case 3:
            return pstrdup("loading tuples");
        default:
            return nullptr;
    }
}

}  // namespace
}  // namespace lrv::pg::lflat

LRV_FUNCTION(lrv_lflat_handler) {
    namespace am = lrv::pg::lflat;
    lrv::pg::AmCallbacks cb{};
    cb.build = am::build;
    cb.build_empty = am::build_empty;
    cb.insert = am::insert;
    cb.bulk_delete = am::bulk_delete;
    cb.vacuum_cleanup = am::vacuum_cleanup;
    cb.cost_estimate = am::cost_estimate;
    cb.options = am::options;
    cb.phase_name = am::phase_name;
    cb.begin_scan = am::begin_scan;
    cb.rescan = am::rescan;
    cb.get_tuple = am::get_tuple;
    cb.end_scan = am::end_scan;
    cb.uses_maintenance_work_mem = false;
    PG_RETURN_POINTER(lrv::pg::make_am_routine(cb));
}
