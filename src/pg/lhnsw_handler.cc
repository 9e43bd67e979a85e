// Registers lhnsw with Postgres: the IndexAmRoutine, options and cost.
#include <cmath>

#include "lhnsw.h"

#include "guard.h"

extern "C" {
#include "commands/vacuum.h"
#include "nodes/pathnodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/selfuncs.h"
}

namespace lrv::pg::lhnsw {
namespace {

bytea* options(Datum reloptions, bool validate) {
    static const relopt_parse_elt tab[] = {
        {"m", RELOPT_TYPE_INT, offsetof(Options, m)},
        {"ef_construction", RELOPT_TYPE_INT, offsetof(Options, ef_construction)},
        {"ef_search", RELOPT_TYPE_INT, offsetof(Options, ef_search)},
        {"quantizer", RELOPT_TYPE_ENUM, offsetof(Options, quantizer)},
    };
    return static_cast<bytea*>(
        build_reloptions(reloptions, validate, lhnsw_relopt_kind, sizeof(Options), tab, lengthof(tab)));
}

// A scan's work is its nodes evaluated: about ef_search * m for the first
// round (what LIMIT k <= ef_search needs), then more rounds for as long as
// the executor asks (a WHERE that throws rows away). Each evaluation reads a
// node, usually from shared buffers, and computes one distance. Charging the
// first round as startup and the rest per tuple lets the planner weigh
// "fetch k / selectivity rows through the graph" against an exact search of
// the rows a selective btree filter leaves.
void cost_estimate(PlannerInfo* root, IndexPath* path, double loop_count, Cost* startup_cost, Cost* total_cost,
                   Selectivity* selectivity, double* correlation, double* pages) {
    IndexOptInfo* index = path->indexinfo;
    if (refuse_unordered_path(path, startup_cost, total_cost, selectivity, correlation, pages)) return;
    Relation rel = index_open(index->indexoid, NoLock);
    auto* opts = reinterpret_cast<Options*>(rel->rd_options);
    const int m = opts ? opts->m : 16;
    const int ef = effective_ef_search(rel);
    const int quantizer = opts ? opts->quantizer : 0;
    const int dims = TupleDescAttr(RelationGetDescr(rel), 0)->atttypmod;
    index_close(rel, NoLock);

    const double tuples = estimated_index_tuples(index);
    double npages = index->pages > 0 ? index->pages : 1;
    // Distance cost relative to the SQL operator on a heap row (one
    // cpu_operator_cost per 64 float dimensions, less for codes).
    double per_distance = cpu_operator_cost * std::max(1.0, dims / 64.0) * (quantizer == 2 ? 0.25 : quantizer == 1 ? 0.5 : 1.0);
    // A node read: a buffer lookup, mostly a hit.
    double per_node = per_distance + cpu_index_tuple_cost + 0.05 * random_page_cost;
    double first = std::min(tuples, static_cast<double>(ef) * m * 1.5 + 20.0 * std::log2(tuples + 1));
    *startup_cost = first * per_node;
    *total_cost = *startup_cost + std::max(0.0, tuples - first) * per_node;
    *selectivity = 1.0;
    *correlation = 0;
    *pages = std::min(npages, first);
}

char* phase_name(int64 phase) {
    switch (phase) {
        case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
            return pstrdup("initializing");
        case 2:
            return pstrdup("computing quantizer range");
        case 3:
            return pstrdup("loading tuples");
        case 4:
            return pstrdup("linking graph");
        case 5:
            return pstrdup("writing pages");
        default:
            return nullptr;
    }
}

}  // namespace
}  // namespace lrv::pg::lhnsw

LRV_FUNCTION(lrv_lhnsw_handler) {
    namespace am = lrv::pg::lhnsw;
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
    cb.uses_maintenance_work_mem = true;
    PG_RETURN_POINTER(lrv::pg::make_am_routine(cb));
}
