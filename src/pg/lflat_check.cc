// libravdb_index_check for lflat: every page is ours and of the right kind,
// the metapage is consistent, every entry header is well formed, and the
// counts agree with what the pages hold. The first problem is reported with
// its block and offset as ERRCODE_INDEX_CORRUPTED.
#include <cstring>

#include "guard.h"
#include "lflat.h"

namespace lrv::pg::lflat {

using core::flat::EntryHeader;
using core::flat::MetaPage;

namespace {

[[noreturn]] void corrupt(Relation index, BlockNumber blk, uint32 off, const char* what) {
    ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                    errmsg("index \"%s\" is corrupted at block %u, offset %u: %s", RelationGetRelationName(index), blk,
                           off, what)));
    pg_unreachable();
}

}  // namespace

// Returns the number of live entries found (NULL vectors included).
uint64 check(Relation index) {
    MetaPage meta = read_meta(index);  // validates the metapage itself
    const uint64 end = meta.n_slots * meta.entry_size;
    const uint64 npages = (end + meta.data_per_page - 1) / meta.data_per_page;
    BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    if (npages + 1 > nblocks) corrupt(index, kMetaBlock, 0, "metapage counts more entries than the index has pages");

    uint64 live = 0;
    for (BlockNumber blk = 1; blk < nblocks; blk++) {
        CHECK_FOR_INTERRUPTS();
        Buffer buf = ReadBuffer(index, blk);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        if (PageIsNew(page)) {
            // A page extended just before a crash and never written is
            // harmless past the end of the stream; inside it, it is not.
            if (blk <= npages) corrupt(index, blk, 0, "page inside the entry stream was never written");
            UnlockReleaseBuffer(buf);
            continue;
        }
        check_page(index, blk, page, kMagic, kPageFlatData);
        uint64 p = blk - 1;
        uint64 page_start = p * meta.data_per_page;
        for (uint64 slot = (page_start + meta.entry_size - 1) / meta.entry_size;
             slot < meta.n_slots && slot * meta.entry_size < page_start + meta.data_per_page; slot++) {
            uint32 off = static_cast<uint32>(slot * meta.entry_size - page_start);
            EntryHeader h;
            std::memcpy(&h, page_data(page) + off, sizeof h);
            uint32 loc = static_cast<uint32>(kPageHeaderSize) + off;
            if (h.flags == core::flat::kEntryFree) continue;
            if (h.flags != core::flat::kEntryLive && h.flags != core::flat::kEntryNull)
                corrupt(index, blk, loc, "entry has unknown flags");
            if (core::flat::entry_tid(h).offset == 0 || core::flat::entry_tid(h).offset > MaxHeapTuplesPerPage)
                corrupt(index, blk, loc, "entry points at an invalid heap line pointer");
            if (h.flags == core::flat::kEntryLive && (!(h.residual >= 0) || !(h.norm >= 0)))
                corrupt(index, blk, loc, "entry has an invalid residual or norm");
            live++;
        }
        UnlockReleaseBuffer(buf);
    }
    if (live != meta.n_live)
        ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                        errmsg("index \"%s\" is corrupted: metapage counts %llu live entries, pages hold %llu",
                               RelationGetRelationName(index), static_cast<unsigned long long>(meta.n_live),
                               static_cast<unsigned long long>(live))));
    // n_free and free_hint are hints (n_free may overcount): not checked.
    return live;
}

}  // namespace lrv::pg::lflat
