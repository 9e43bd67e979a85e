// VACUUM for livfpq: each list page loses the entries of dead heap tuples,
// the rest moved up so a page stays packed; the directory learns the new
// count and the first page of the chain with room, where inserts go next.
// Pages stay in their chain (emptied ones too) and are filled again by
// inserts into that list.
//
// Each page is compacted in one WAL record together with its list's
// directory entry (the count, and the insert hint), so a crash cannot leave
// the two disagreeing. Locks are taken as inserts take them, directory page
// first, one list page at a time, so VACUUM and inserts cannot deadlock.
#include <cstring>

#include "guard.h"
#include "livfpq.h"

extern "C" {
#include "commands/vacuum.h"
#include "miscadmin.h"
}

namespace lrv::pg::livfpq {

using iv::ListDirEntry;
using iv::MetaPage;

IndexBulkDeleteResult* bulk_delete(IndexVacuumInfo* info, IndexBulkDeleteResult* stats,
                                   IndexBulkDeleteCallback callback, void* callback_state) {
    Relation index = info->index;
    if (stats == nullptr) stats = static_cast<IndexBulkDeleteResult*>(palloc0(sizeof(IndexBulkDeleteResult)));
    const MetaPage meta = read_meta(index);
    const uint32 per_page = iv::entries_per_page(meta.data_per_page, meta.entry_size);
    BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    auto* keep = static_cast<uint8*>(palloc(per_page));
    double live = 0, removed_total = 0;

    for (uint32 list = 0; list <= meta.lists; list++) {
        const BlockNumber dblk = dir_block(meta, list);
        const ListDirEntry e = read_dir(index, meta, list);
        uint32 removed = 0;
        bool hinted = false;
        uint32 hops = 0;
        for (BlockNumber blk = e.head; blk != iv::kNoBlock; hops++) {
            vacuum_delay_point();
            check_chain_step(index, meta, list, blk, hops, &nblocks);
            // Directory page first, then the list page, as inserts lock them.
            Buffer dbuf = ReadBuffer(index, dblk);
            LockBuffer(dbuf, BUFFER_LOCK_EXCLUSIVE);
            check_page(index, dblk, BufferGetPage(dbuf), kMagic, kPageIvfDir);
            Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, info->strategy);
            LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
            const uint32 n = list_page_entries(index, meta, buf, blk, list);
            Page page = BufferGetPage(buf);
            // Ask about every entry first; then only byte edits between
            // GenericXLogStart and Finish.
            uint32 ndead = 0;
            for (uint32 i = 0; i < n; i++) {
                ItemPointerData tid;
                key_to_tid(iv::entry_tid_key(*reinterpret_cast<const iv::EntryHeader*>(list_entry(page, meta, i))),
                           &tid);
                keep[i] = !callback(&tid, callback_state);
                ndead += !keep[i];
            }
            // The page and the list's count change in one record, so a crash
            // never leaves them disagreeing. The first page of the chain
            // with room becomes the insert hint.
            const bool hint_here = !hinted && n - ndead < per_page;
            if (ndead > 0) {
                GenericXLogState* state = GenericXLogStart(index);
                Page dpage = GenericXLogRegisterBuffer(state, dbuf, 0);
                Page w = GenericXLogRegisterBuffer(state, buf, 0);
                uint32 out = 0;
                for (uint32 i = 0; i < n; i++) {
                    if (!keep[i]) continue;
                    if (out != i) std::memmove(list_entry(w, meta, out), list_entry(w, meta, i), meta.entry_size);
                    out++;
                }
                std::memset(list_entry(w, meta, out), 0, std::size_t{n - out} * meta.entry_size);
                list_header(w)->n_entries = static_cast<uint16>(out);
                reinterpret_cast<PageHeader>(w)->pd_lower =
                    static_cast<LocationIndex>(kPageHeaderSize + sizeof(iv::ListPageHeader) + out * meta.entry_size);
                ListDirEntry cur;
                std::memcpy(&cur, page_data(dpage) + dir_offset(meta, list), sizeof cur);
                cur.count = cur.count >= ndead ? cur.count - ndead : 0;
                if (hint_here) cur.free_hint = blk;
                std::memcpy(page_data(dpage) + dir_offset(meta, list), &cur, sizeof cur);
                GenericXLogFinish(state);
                removed += ndead;
            } else if (hint_here) {
                ListDirEntry cur;
                std::memcpy(&cur, page_data(BufferGetPage(dbuf)) + dir_offset(meta, list), sizeof cur);
                if (cur.free_hint != blk) {
                    GenericXLogState* state = GenericXLogStart(index);
                    Page dpage = GenericXLogRegisterBuffer(state, dbuf, 0);
                    cur.free_hint = blk;
                    std::memcpy(page_data(dpage) + dir_offset(meta, list), &cur, sizeof cur);
                    GenericXLogFinish(state);
                }
            }
            hinted = hinted || hint_here;
            live += n - ndead;
            const BlockNumber next = list_header(page)->next;
            UnlockReleaseBuffer(buf);
            UnlockReleaseBuffer(dbuf);
            blk = next;
        }
        removed_total += removed;
    }
    pfree(keep);
    stats->tuples_removed += removed_total;
    stats->num_index_tuples = live;
    stats->num_pages = RelationGetNumberOfBlocks(index);
    return stats;
}

IndexBulkDeleteResult* vacuum_cleanup(IndexVacuumInfo* info, IndexBulkDeleteResult* stats) {
    if (info->analyze_only) return stats;
    if (stats == nullptr) {
        stats = static_cast<IndexBulkDeleteResult*>(palloc0(sizeof(IndexBulkDeleteResult)));
        const MetaPage meta = read_meta(info->index);
        double n = 0;
        for (uint32 list = 0; list <= meta.lists; list++) n += read_dir(info->index, meta, list).count;
        stats->num_index_tuples = n;
    }
    stats->num_pages = RelationGetNumberOfBlocks(info->index);
    return stats;
}

}  // namespace lrv::pg::livfpq
