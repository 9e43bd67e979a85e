// Registers livfpq with Postgres: the IndexAmRoutine, options and cost.
#include <cmath>

#include "livfpq.h"

#include "guard.h"

extern "C" {
#include "commands/vacuum.h"
#include "nodes/pathnodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/selfuncs.h"
}

namespace lrv::pg::livfpq {
namespace {

bytea* options(Datum reloptions, bool validate) {
    static const relopt_parse_elt tab[] = {
        {"lists", RELOPT_TYPE_INT, offsetof(Options, lists)},
        {"pq_m", RELOPT_TYPE_INT, offsetof(Options, pq_m)},
        {"pq_bits", RELOPT_TYPE_INT, offsetof(Options, pq_bits)},
        {"probes", RELOPT_TYPE_INT, offsetof(Options, probes)},
        {"rerank", RELOPT_TYPE_INT, offsetof(Options, rerank)},
    };
    auto* opts = static_cast<Options*>(
        build_reloptions(reloptions, validate, livfpq_relopt_kind, sizeof(Options), tab, lengthof(tab)));
    if (validate && opts != nullptr && opts->pq_bits != 4 && opts->pq_bits != 8)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid value for livfpq option \"pq_bits\": %d", opts->pq_bits),
                        errdetail("Valid values are 4 and 8.")));
    return reinterpret_cast<bytea*>(opts);
}

// A scan's work: rank every centroid, build a table and score every code of
// `probes` lists, then read `rerank` rows from the heap for exact
// distances -- all before the first row, so it is startup cost. Further rows
// (a WHERE that throws rows away) cost their share of more lists and more
// re-ranking.
void cost_estimate(PlannerInfo* root, IndexPath* path, double loop_count, Cost* startup_cost, Cost* total_cost,
                   Selectivity* selectivity, double* correlation, double* pages) {
    IndexOptInfo* index = path->indexinfo;
    if (refuse_unordered_path(path, startup_cost, total_cost, selectivity, correlation, pages)) return;
    Relation rel = index_open(index->indexoid, NoLock);
    auto* opts = reinterpret_cast<Options*>(rel->rd_options);
    const int dims = TupleDescAttr(RelationGetDescr(rel), 0)->atttypmod;
    const double probes = effective_probes(rel);
    const double rerank = effective_rerank(rel);
    const double pq_m = opts && opts->pq_m > 0 ? opts->pq_m : std::max(1.0, dims / 4.0);
    const double tuples = estimated_index_tuples(index);
    const double lists = opts && opts->lists > 0 ? opts->lists : std::max(1.0, std::sqrt(tuples));
    index_close(rel, NoLock);

    const double npages = index->pages > 0 ? index->pages : 1;
    const double per_dim64 = cpu_operator_cost * std::max(1.0, dims / 64.0);
    const double per_list = tuples / lists;
    const double probed = std::min(lists, probes);
    // Centroids, tables (256 sub-centroids' worth of dimensions), codes.
    const double scoring = lists * per_dim64 + probed * 256 * per_dim64 / 8 +
                           probed * per_list * cpu_operator_cost * std::max(1.0, pq_m / 16.0);
    // A heap row for each re-ranked candidate: mostly a buffer hit.
    const double per_rerank = cpu_tuple_cost + per_dim64 + 0.05 * random_page_cost;
    *startup_cost = scoring + std::min(rerank, tuples) * per_rerank + probed / lists * npages * seq_page_cost;
    *total_cost = *startup_cost + tuples * (2 * per_rerank + cpu_operator_cost * pq_m / 16.0);
    *selectivity = 1.0;
    *correlation = 0;
    *pages = std::min(npages, probed / lists * npages + 1);
}

char* phase_name(int64 phase) {
    switch (phase) {
        case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
            return pstrdup("initializing");
        case 2:
            return pstrdup("sampling rows");
        case 3:
            return pstrdup("training centroids");
        case 4:
            return pstrdup("training codebooks");
        case 5:
            return pstrdup("assigning rows");
        case 6:
            return pstrdup("writing pages");
        default:
            return nullptr;
    }
}

}  // namespace
}  // namespace lrv::pg::livfpq

LRV_FUNCTION(lrv_livfpq_handler) {
    namespace am = lrv::pg::livfpq;
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
