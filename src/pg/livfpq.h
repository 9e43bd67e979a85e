// The livfpq access method: an inverted file of product-quantized codes,
// re-ranked with exact distances from the heap.
// Byte format: include/libravdb/core/ivfpq/format.h and src/core/ivfpq/FORMAT.md.
#pragma once

#include <memory>
#include <vector>

#include "am_common.h"

#include "libravdb/core/common/aligned.h"
#include "libravdb/core/ivfpq/format.h"
#include "libravdb/core/ivfpq/pq.h"

namespace lrv::pg::livfpq {

namespace iv = core::ivfpq;

constexpr uint32 kMagic = iv::kMagic;
constexpr BlockNumber kMetaBlock = 0;

struct Options {
    int32 vl_len_;
    int lists;    // 0: from the row count
    int pq_m;     // 0: from the dimensions
    int pq_bits;  // 4 or 8
    int probes;   // 0: not set (libravdb.ivfpq_probes decides)
    int rerank;   // 0: not set (libravdb.ivfpq_rerank decides)
};

// GUCs (registered in _PG_init through register_gucs).
void register_gucs();
// A value SET in the session, else the index's option, else the GUC default.
int effective_probes(Relation index);
int effective_rerank(Relation index);

// The metapage, validated (XX002 on corruption).
iv::MetaPage read_meta(Relation index);

// What never changes after a build: centroids and codebooks, read from the
// pages once per backend and kept (keyed by relfilenode and build id) so a
// query does not copy a megabyte of floats out of shared buffers.
struct Trained {
    Oid relfilenode = InvalidOid;
    uint64 build_id = 0;
    uint32 dims = 0, lists = 0;
    core::AlignedVector<float> centroids;  // lists * dims
    std::vector<float> centroid_norms2;    // |c|^2 per list
    std::unique_ptr<iv::ProductQuantizer> pq;
};
// The trained state of `index` whose metapage is `meta` (from the cache, or
// read now). Plain Postgres style: may ereport.
std::shared_ptr<const Trained> trained(Relation index, const iv::MetaPage& meta);

// Directory entries: read one, or (for writers) locate it.
BlockNumber dir_block(const iv::MetaPage& meta, uint32 list);
uint32 dir_offset(const iv::MetaPage& meta, uint32 list);  // byte offset in the page's data area
iv::ListDirEntry read_dir(Relation index, const iv::MetaPage& meta, uint32 list);

inline uint64 tid_to_key(ItemPointer tid) {
    return (static_cast<uint64>(ItemPointerGetBlockNumberNoCheck(tid)) << 16) | ItemPointerGetOffsetNumberNoCheck(tid);
}
inline void key_to_tid(uint64 key, ItemPointer tid) {
    ItemPointerSet(tid, static_cast<BlockNumber>(key >> 16), static_cast<OffsetNumber>(key & 0xffff));
}
inline iv::ListPageHeader* list_header(Page page) { return reinterpret_cast<iv::ListPageHeader*>(page_data(page)); }
inline uint8* list_entry(Page page, const iv::MetaPage& meta, uint32 i) {
    return reinterpret_cast<uint8*>(page_data(page)) + sizeof(iv::ListPageHeader) + std::size_t{i} * meta.entry_size;
}
void init_list_page(Page page, uint32 list);
// Checks a walk down list `list`'s chain (meta.lists: the NULL list) that
// reached `blk` after `hops` steps: ERROR (XX002) for a block past the end
// of the index or a chain longer than the index has blocks. *nblocks is the
// end the walk knows; a block past it is checked again against the current
// end (and *nblocks updated), as a concurrent insert may just have added it.
void check_chain_step(Relation index, const iv::MetaPage& meta, uint32 list, BlockNumber blk, uint32 hops,
                      BlockNumber* nblocks);
// The number of entries of list page `blk`, read under the caller's lock,
// after checking that it is a list page of `list` whose count fits: ERROR (XX002) naming the block
// otherwise. The buffer is released first, so the error owns nothing.
uint32 list_page_entries(Relation index, const iv::MetaPage& meta, Buffer buf, BlockNumber blk, uint32 list);
// ERROR (XX002) for entry `i` of list page `blk` whose flags do not belong
// in list `list`; releases `buf` first.
[[noreturn]] void bad_entry(Relation index, Buffer buf, BlockNumber blk, uint32 list, uint32 i, uint16 flags);
inline bool entry_fits_list(const iv::MetaPage& meta, uint32 list, uint16 flags) {
    if (list < meta.lists) return flags == iv::kEntryLive;
    return flags == iv::kEntryNull || (flags == iv::kEntryZero && meta.metric == 2 /* cosine */);
}

// Where a vector goes: its list and code (code_bytes bytes), in *distance
// how far it lies from the list's centroid and in *error how far the code's
// decoded residual lies from the true one. Under cosine the
// vector is normalised first; a zero vector under cosine, like a NULL, goes
// to the NULL list (returns meta.lists, code zeroed).
uint32 place_vector(const Trained& t, const iv::MetaPage& meta, const float* x, uint8* code, float* scratch,
                    float* distance, float* error);
// |r - decode(code)|, with `decoded` as scratch (dims floats).
float code_error(const iv::ProductQuantizer& pq, const float* r, const uint8* code, float* decoded);

// libravdb_index_check / libravdb_index_info for livfpq, as JSON text.
char* check(Relation index);
char* info(Relation index);

// Access method callbacks.
IndexBuildResult* build(Relation heap, Relation index, IndexInfo* info);
void build_empty(Relation index);
bool insert(Relation index, Datum* values, bool* isnull, ItemPointer tid, Relation heap,
            IndexUniqueCheck check_unique, bool index_unchanged, IndexInfo* info);
IndexBulkDeleteResult* bulk_delete(IndexVacuumInfo* info, IndexBulkDeleteResult* stats,
                                   IndexBulkDeleteCallback callback, void* callback_state);
IndexBulkDeleteResult* vacuum_cleanup(IndexVacuumInfo* info, IndexBulkDeleteResult* stats);
IndexScanDesc begin_scan(Relation index, int nkeys, int norderbys);
void rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
bool get_tuple(IndexScanDesc scan, ScanDirection dir);
void end_scan(IndexScanDesc scan);

}  // namespace lrv::pg::livfpq
