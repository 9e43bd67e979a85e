// The lflat access method: exact k-NN over vectors packed in index pages.
// Byte format: include/libravdb/core/flat/format.h and src/core/flat/FORMAT.md.
#pragma once

#include "am_common.h"
#include "am_stream.h"

#include "libravdb/core/flat/format.h"

namespace lrv::pg::lflat {

constexpr uint32 kMagic = core::flat::kMagic;
constexpr BlockNumber kMetaBlock = 0;

struct Options {
    int32 vl_len_;
    int quantizer;  // core::QuantizerKind
};

// A copy of the metapage, validated (XX002 on corruption).
core::flat::MetaPage read_meta(Relation index);
// The same from a metapage buffer the caller has locked.
core::flat::MetaPage meta_from_buffer(Relation index, Buffer buf);
// ERROR (XX002, naming block 0) unless `meta` is a valid metapage.
void check_meta(Relation index, const core::flat::MetaPage& meta);
// Writes `meta` into a registered metapage image.
void put_meta(Page page, const core::flat::MetaPage& meta);

inline BlockNumber data_block(uint64 page) { return Stream::block_of(page); }
inline Stream entry_stream(Relation index, const core::flat::MetaPage& meta) {
    return Stream{index, kMagic, kPageFlatData, meta.entry_size, meta.data_per_page};
}

inline core::flat::HeapTid to_core(ItemPointer tid) {
    return core::flat::HeapTid{ItemPointerGetBlockNumberNoCheck(tid), ItemPointerGetOffsetNumberNoCheck(tid)};
}
inline void from_key(uint64 key, ItemPointer tid) {
    key &= core::flat::kTidKeyMask;
    ItemPointerSet(tid, static_cast<BlockNumber>(key >> 16), static_cast<OffsetNumber>(key & 0xffff));
}

// Fills `entry` (meta.entry_size bytes) for vector x, or for a NULL vector
// when x is null (NULLs are indexed so an index scan returns every row).
void encode_entry(const core::flat::MetaPage& meta, const float* x, ItemPointer tid, uint8* entry);

// libravdb_index_check: ERROR (XX002) at the first problem; returns the
// number of live entries.
uint64 check(Relation index);

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

}  // namespace lrv::pg::lflat
