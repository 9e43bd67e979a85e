// What the three access methods share, written once: page special space and
// checks, the metric an opclass implies, index dimensions, relation extension,
// reloption kinds and the cost estimate of an ordered (ORDER BY <op>) scan.
#pragma once

#include "pg.h"

extern "C" {
#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/reloptions.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "commands/progress.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/rel.h"
}

#include "libravdb/core/distance.h"
#include "libravdb/core/quantizer.h"

namespace lrv::pg {

// Special space at the end of every index page.
struct PageOpaque {
    uint32 magic;  // one per access method
    uint16 kind;   // PageKind
    uint16 flags;  // reserved, zero
};
static_assert(sizeof(PageOpaque) == 8, "page special space is 8 bytes");

enum PageKind : uint16 {
    kPageMeta = 1,
    kPageFlatData = 2,
    kPageHnswData = 3,
    kPageIvfDir = 4,   // livfpq list directory
    kPageIvfData = 5,  // livfpq centroids and codebooks
    kPageIvfList = 6,  // livfpq list entries
};

constexpr Size kPageHeaderSize = MAXALIGN(SizeOfPageHeaderData);
constexpr Size kSpecialSize = MAXALIGN(sizeof(PageOpaque));
// Bytes of a page available to an access method between header and special.
constexpr uint32 kPageDataSize = BLCKSZ - kPageHeaderSize - kSpecialSize;

inline PageOpaque* page_opaque(Page page) { return reinterpret_cast<PageOpaque*>(PageGetSpecialPointer(page)); }
inline char* page_data(Page page) { return reinterpret_cast<char*>(page) + kPageHeaderSize; }

// PageInit plus our special space. `used` bytes of the data area count as
// page contents (pd_lower), so WAL and checksums cover them.
void init_page(Page page, uint32 magic, uint16 kind, Size used);

// ereport(XX002) unless the page carries `magic` and `kind`. Inline because
// scans call it for every page they read; the error path is out of line.
[[noreturn]] void report_bad_page(Relation index, BlockNumber blkno, Page page, uint32 magic, uint16 kind);
inline void check_page(Relation index, BlockNumber blkno, Page page, uint32 magic, uint16 kind) {
    if (unlikely(PageIsNew(page) || PageGetSpecialSize(page) != kSpecialSize || page_opaque(page)->magic != magic ||
                 page_opaque(page)->kind != kind))
        report_bad_page(index, blkno, page, magic, kind);
}

// The metric an index's opclass implies, from its distance support function.
core::distance::Metric index_metric(Relation index);
// The dimensions of the indexed lvector(n) column; ERROR when it has none.
int index_dims(Relation index);

// Appends a new page to the index and returns it pinned and exclusively
// locked, not yet initialised.
Buffer extend_index(Relation index);

// Reloption kinds, registered once in _PG_init.
void register_am_options();
extern relopt_kind lflat_relopt_kind;
extern relopt_kind lhnsw_relopt_kind;
extern relopt_kind livfpq_relopt_kind;

// Search settings that an index option can override unless the session SETs
// them: the check hook records in `extra` whether the value was set
// explicitly (any source above the default), and explicit_source() reads
// that back in the assign hook. RESET reinstalls the default's extra.
bool check_explicit_source(int* newval, void** extra, GucSource source);
inline bool explicit_source(void* extra) { return extra != nullptr && *static_cast<bool*>(extra); }

// For a path without ORDER BY <op> (which our indexes cannot answer): sets
// costs that keep the planner off it and returns true.
bool refuse_unordered_path(const IndexPath* path, Cost* startup_cost, Cost* total_cost, Selectivity* selectivity,
                           double* correlation, double* pages);
// The planner's row count for an index (the table's when the index has
// none yet), at least 1.
double estimated_index_tuples(const IndexOptInfo* index);

// Cost of an ordered scan that reads `index_pages` once and evaluates a
// distance per entry at `per_entry_cost`; paths without ORDER BY are refused.
void ordered_scan_costestimate(PlannerInfo* root, IndexPath* path, double loop_count, Cost* startup_cost,
                               Cost* total_cost, Selectivity* selectivity, double* correlation, double* pages,
                               double per_entry_cpu_factor);

// The IndexAmRoutine of one of our access methods: what differs between
// them is the callbacks (and whether builds use maintenance_work_mem); the
// rest is the same for all three -- one key column, ordered by an operator
// only, tuples one at a time, no bitmaps, no unique or parallel scans.
struct AmCallbacks {
    ambuild_function build;
    ambuildempty_function build_empty;
    aminsert_function insert;
    ambulkdelete_function bulk_delete;
    amvacuumcleanup_function vacuum_cleanup;
    amcostestimate_function cost_estimate;
    amoptions_function options;
    ambuildphasename_function phase_name;
    ambeginscan_function begin_scan;
    amrescan_function rescan;
    amgettuple_function get_tuple;
    amendscan_function end_scan;
    bool uses_maintenance_work_mem;
};
IndexAmRoutine* make_am_routine(const AmCallbacks& cb);

// Reads an orderby key's lvector; returns nullptr for NULL.
struct LVector;
LVector* orderby_vector(ScanKey key, int dims);

// Shared by the builds of the access methods.
// The lvector of an indexed heap value, ERROR (22000) unless it has `dims`.
LVector* build_vector(Datum value, uint32 dims);
// The sq8 range of the indexed column: one pass over the heap, reported as
// build subphase `phase`.
core::QuantizerParams measure_sq8_range(Relation heap, Relation index, IndexInfo* info, uint32 dims, int phase);
// Writes block 0 of `fork`: a metapage holding `len` bytes of `meta`,
// WAL-logged as a full image when `log` (the init fork of unlogged indexes),
// else left for the build's bulk log_newpage_range.
void write_meta_page(Relation index, ForkNumber fork, uint32 magic, const void* meta, Size len, bool log);
// Ends a bulk build: the final `len` bytes of `meta` into block 0 (unlogged,
// like every page the build wrote), then the whole index WAL-logged with
// log_newpage_range, as Postgres's sorted GiST build does.
IndexBuildResult* finish_build(Relation index, const void* meta, Size len, double heap_tuples, double index_tuples);

}  // namespace lrv::pg
