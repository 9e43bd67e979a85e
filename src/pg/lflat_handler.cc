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

bool validate(Oid opclassoid) { return true; }

}  // namespace
}  // namespace lrv::pg::lflat

LRV_FUNCTION(lrv_lflat_handler) {
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
    am->amusemaintenanceworkmem = false;
    am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
    am->amkeytype = InvalidOid;

    am->ambuild = lrv::pg::lflat::build;
    am->ambuildempty = lrv::pg::lflat::build_empty;
    am->aminsert = lrv::pg::lflat::insert;
    am->ambulkdelete = lrv::pg::lflat::bulk_delete;
    am->amvacuumcleanup = lrv::pg::lflat::vacuum_cleanup;
    am->amcanreturn = nullptr;
    am->amcostestimate = lrv::pg::lflat::cost_estimate;
    am->amoptions = lrv::pg::lflat::options;
    am->amproperty = nullptr;
    am->ambuildphasename = lrv::pg::lflat::phase_name;
    am->amvalidate = lrv::pg::lflat::validate;
    am->amadjustmembers = nullptr;
    am->ambeginscan = lrv::pg::lflat::begin_scan;
    am->amrescan = lrv::pg::lflat::rescan;
    am->amgettuple = lrv::pg::lflat::get_tuple;
    am->amgetbitmap = nullptr;
    am->amendscan = lrv::pg::lflat::end_scan;
    am->ammarkpos = nullptr;
    am->amrestrpos = nullptr;
    am->amestimateparallelscan = nullptr;
    am->aminitparallelscan = nullptr;
    am->amparallelrescan = nullptr;
    PG_RETURN_POINTER(am);
}
