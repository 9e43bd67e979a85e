// VACUUM for lflat: entries whose heap tuples are dead become free slots
// (their headers are cleared), and the metapage learns where the first free
// slot is so that inserts reuse the space before extending the index.
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
    uint64 removed = 0, first_freed = UINT64_MAX, live = 0;

    for (uint64 p = 0; p < npages; p++) {
        vacuum_delay_point();
        Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, data_block(p), RBM_NORMAL, info->strategy);
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        Page page = BufferGetPage(buf);
        check_page(index, data_block(p), page, kMagic, kPageFlatData);

        // Slots whose header starts on this page.
        uint64 page_start = p * meta.data_per_page;
        uint64 slot = (page_start + meta.entry_size - 1) / meta.entry_size;
        // Ask about every entry first, then change the page in one record:
        // nothing but byte edits between GenericXLogStart and Finish.
        uint32 dead[kPageDataSize / sizeof(EntryHeader)];
        int ndead = 0;
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
            first_freed = std::min(first_freed, slot);
        }
        if (ndead > 0) {
            GenericXLogState* state = GenericXLogStart(index);
            Page wpage = GenericXLogRegisterBuffer(state, buf, 0);
            for (int i = 0; i < ndead; i++) std::memset(page_data(wpage) + dead[i], 0, sizeof(EntryHeader));
            GenericXLogFinish(state);
            removed += ndead;
        }
        UnlockReleaseBuffer(buf);
    }

    if (removed > 0) {
        Buffer metabuf = ReadBuffer(index, kMetaBlock);
        LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
        GenericXLogState* state = GenericXLogStart(index);
        Page metapage = GenericXLogRegisterBuffer(state, metabuf, 0);
        MetaPage cur;
        std::memcpy(&cur, page_data(metapage), sizeof cur);
        cur.n_live = cur.n_live >= removed ? cur.n_live - removed : 0;
        cur.n_free += removed;
        cur.free_hint = std::min<uint64>(cur.free_hint, first_freed);
        put_meta(metapage, cur);
        GenericXLogFinish(state);
        UnlockReleaseBuffer(metabuf);
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
