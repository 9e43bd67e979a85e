// VACUUM for lflat: entries whose heap tuples are dead become free slots
// (their headers are cleared), and the metapage learns where the first free
// slot is so that inserts reuse the space before extending the index.
//
// Each data page's cleared headers and the metapage's counts change in one
// generic WAL record, so a crash between two pages leaves the metapage
// counting exactly the live entries the pages hold.
#include <cstring>

#include "guard.h"
#include "lflat.h"

extern "C" {
#include "commands/vacuum.h"
#include "miscadmin.h"
}

namespace lrv::pg::lflat {

using core::flat::EntryHeader;
using core::flat::MetaPage;

IndexBulkDeleteResult* bulk_delete(IndexVacuumInfo* info, IndexBulkDeleteResult* stats,
                                   IndexBulkDeleteCallback callback, void* callback_state) {
    Relation index = info->index;
    if (stats == nullptr) stats = static_cast<IndexBulkDeleteResult*>(palloc0(sizeof(IndexBulkDeleteResult)));

    MetaPage meta = read_meta(index);
    const uint64 end = meta.n_slots * meta.entry_size;
    const uint64 npages = (end + meta.data_per_page - 1) / meta.data_per_page;
    uint64 removed = 0, live = 0;

    for (uint64 p = 0; p < npages; p++) {
        vacuum_delay_point();
        Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, data_block(p), RBM_NORMAL, info->strategy);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        check_page(index, data_block(p), page, kMagic, kPageFlatData);

        // Slots whose header starts on this page. Ask about every entry
        // first, under a share lock: nothing but byte edits may run between
        // GenericXLogStart and Finish.
        uint64 page_start = p * meta.data_per_page;
        uint64 slot = (page_start + meta.entry_size - 1) / meta.entry_size;
        uint32 dead[kPageDataSize / sizeof(EntryHeader)];
        int ndead = 0;
        uint64 page_first = UINT64_MAX;
        for (; slot < meta.n_slots && slot * meta.entry_size < page_start + meta.data_per_page; slot++) {
            uint32 off = static_cast<uint32>(slot * meta.entry_size - page_start);
            EntryHeader h;
            std::memcpy(&h, page_data(page) + off, sizeof h);
            if (h.flags != core::flat::kEntryLive && h.flags != core::flat::kEntryNull) continue;
            ItemPointerData tid;
            ItemPointerSet(&tid, core::flat::entry_tid(h).block, core::flat::entry_tid(h).offset);
            if (!callback(&tid, callback_state)) {
                live++;
                continue;
            }
            dead[ndead++] = off;
            page_first = std::min(page_first, slot);
        }
        LockBuffer(buf, BUFFER_LOCK_UNLOCK);
        if (ndead > 0) {
            // The metapage before the data page, the order inserts lock in.
            // Only VACUUM (one at a time per index) turns a live entry into
            // a free one, so the entries found dead above are still there.
            Buffer metabuf = ReadBuffer(index, kMetaBlock);
            LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
            LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
            MetaPage cur = meta_from_buffer(index, metabuf);
            GenericXLogState* state = GenericXLogStart(index);
            Page wpage = GenericXLogRegisterBuffer(state, buf, 0);
            Page metapage = GenericXLogRegisterBuffer(state, metabuf, 0);
            for (int i = 0; i < ndead; i++) std::memset(page_data(wpage) + dead[i], 0, sizeof(EntryHeader));
            cur.n_live = cur.n_live >= static_cast<uint64>(ndead) ? cur.n_live - ndead : 0;
            cur.n_free += ndead;
            cur.free_hint = std::min<uint64>(cur.free_hint, page_first);
            put_meta(metapage, cur);
            GenericXLogFinish(state);
            LockBuffer(buf, BUFFER_LOCK_UNLOCK);
            UnlockReleaseBuffer(metabuf);
            removed += ndead;
        }
        ReleaseBuffer(buf);
    }

    stats->tuples_removed += static_cast<double>(removed);
    stats->num_index_tuples = static_cast<double>(live);
    stats->num_pages = RelationGetNumberOfBlocks(index);
    return stats;
}

IndexBulkDeleteResult* vacuum_cleanup(IndexVacuumInfo* info, IndexBulkDeleteResult* stats) {
    if (info->analyze_only) return stats;
    if (stats == nullptr) {
        // No deletions this time: report what the metapage says.
        stats = static_cast<IndexBulkDeleteResult*>(palloc0(sizeof(IndexBulkDeleteResult)));
        MetaPage meta = read_meta(info->index);
        stats->num_index_tuples = static_cast<double>(meta.n_live);
    }
    stats->num_pages = RelationGetNumberOfBlocks(info->index);
    return stats;
}

}  // namespace lrv::pg::lflat
