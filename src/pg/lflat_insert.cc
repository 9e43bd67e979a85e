// Inserting into an lflat index.
//
// Inserts are serialised by the metapage's exclusive lock. A new entry goes
// into a slot freed by VACUUM when the metapage says one exists, else at the
// end of the stream. An entry spanning at most three pages is written in one
// generic WAL record together with the metapage. A longer one (thousands of
// dimensions) is written in records of up to four pages while its header
// still says "free", and made live by a last record touching only its first
// page and the metapage, so a crash between records leaves an unused slot,
// never a half-written live entry.
#include <cstring>

#include "guard.h"
#include "lflat.h"
#include "lvector.h"

extern "C" {
#include "utils/memutils.h"
}

namespace lrv::pg::lflat {

using core::flat::MetaPage;

namespace {

constexpr int kMaxPagesPerRecord = MAX_GENERIC_XLOG_PAGES;  // 4

bool slot_is_free(Relation index, const MetaPage& meta, uint64 slot) {
    auto pos = core::flat::stream_pos(slot * meta.entry_size, meta.data_per_page);
    Buffer buf = ReadBuffer(index, data_block(pos.page));
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    check_page(index, data_block(pos.page), page, kMagic, kPageFlatData);
    core::flat::EntryHeader h;
    std::memcpy(&h, page_data(page) + pos.offset, sizeof h);
    UnlockReleaseBuffer(buf);
    return h.flags == core::flat::kEntryFree;
}

// A slot freed by VACUUM, or n_slots (append) when there is none.
uint64 choose_slot(Relation index, MetaPage* meta) {
    if (meta->n_free > 0) {
        for (uint64 s = meta->free_hint; s < meta->n_slots; s++) {
            if (slot_is_free(index, *meta, s)) {
                meta->free_hint = s + 1;
                meta->n_free--;
                return s;
            }
        }
        meta->n_free = 0;  // the hint overcounted; nothing below n_slots is free
        meta->free_hint = meta->n_slots;
    }
    return meta->n_slots;
}

// Writes entry bytes [from, to) of `slot` into the pages they cover (which
// must be locked exclusively in bufs[], page indexes first..), inside one
// generic WAL record that may also carry the metapage.
void write_record(Relation index, const MetaPage& meta, uint64 slot, const uint8* entry, uint32 from, uint32 to,
                  Buffer* bufs, bool* fresh, int nbufs, uint64 first_page, Buffer metabuf,
                  const MetaPage* new_meta) {
    GenericXLogState* state = GenericXLogStart(index);
    Page pages[kMaxPagesPerRecord];
    for (int i = 0; i < nbufs; i++) {
        pages[i] = GenericXLogRegisterBuffer(state, bufs[i], fresh[i] ? GENERIC_XLOG_FULL_IMAGE : 0);
        if (fresh[i]) {
            init_page(pages[i], kMagic, kPageFlatData, kPageDataSize);
            std::memset(page_data(pages[i]), 0, kPageDataSize);
        }
    }
    Page metapage = nullptr;
    if (new_meta) metapage = GenericXLogRegisterBuffer(state, metabuf, 0);

    uint64 start = slot * meta.entry_size;
    for (uint32 b = from; b < to;) {
        auto pos = core::flat::stream_pos(start + b, meta.data_per_page);
        uint32 take = std::min<uint32>(to - b, meta.data_per_page - pos.offset);
        std::memcpy(page_data(pages[pos.page - first_page]) + pos.offset, entry + b, take);
        b += take;
    }
    if (new_meta) put_meta(metapage, *new_meta);
    GenericXLogFinish(state);
}

void lock_pages(Relation index, uint64 first, uint64 last, Buffer* bufs, bool* fresh) {
    BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    for (uint64 p = first; p <= last; p++) {
        int i = static_cast<int>(p - first);
        BlockNumber blk = data_block(p);
        if (blk < nblocks) {
            bufs[i] = ReadBuffer(index, blk);
            LockBuffer(bufs[i], BUFFER_LOCK_EXCLUSIVE);
            Page page = BufferGetPage(bufs[i]);
            fresh[i] = PageIsNew(page);  // extended before a crash, never written
            if (!fresh[i]) check_page(index, blk, page, kMagic, kPageFlatData);
        } else {
            bufs[i] = extend_index(index);
            if (BufferGetBlockNumber(bufs[i]) != blk)
                elog(ERROR, "lflat index \"%s\" extended to block %u, expected %u", RelationGetRelationName(index),
                     BufferGetBlockNumber(bufs[i]), blk);
            fresh[i] = true;
            nblocks++;
        }
    }
}

void release_pages(Buffer* bufs, int n) {
    for (int i = 0; i < n; i++) UnlockReleaseBuffer(bufs[i]);
}

}  // namespace

bool insert(Relation index, Datum* values, bool* isnull, ItemPointer tid, Relation heap,
            IndexUniqueCheck check_unique, bool index_unchanged, IndexInfo* info) {
    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "lflat insert", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(tmp);

    LVector* v = isnull[0] ? nullptr : datum_to_lvector(values[0]);

    Buffer metabuf = ReadBuffer(index, kMetaBlock);
    LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
    Page metapage = BufferGetPage(metabuf);
    check_page(index, kMetaBlock, metapage, kMagic, kPageMeta);
    MetaPage meta;
    std::memcpy(&meta, page_data(metapage), sizeof meta);
    check_meta(index, meta);
    if (v != nullptr && v->dim != meta.dims)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("expected %u dimensions, not %d", meta.dims, static_cast<int>(v->dim))));

    uint8* entry = static_cast<uint8*>(palloc(meta.entry_size));
    encode_entry(meta, v ? v->x : nullptr, tid, entry);

    MetaPage next = meta;
    uint64 slot = choose_slot(index, &next);
    if (slot == next.n_slots) next.n_slots++;
    next.n_live++;

    const uint64 start = slot * meta.entry_size;
    const uint64 first = core::flat::stream_pos(start, meta.data_per_page).page;
    const uint64 last = core::flat::stream_pos(start + meta.entry_size - 1, meta.data_per_page).page;
    const int npages = static_cast<int>(last - first + 1);

    if (npages < kMaxPagesPerRecord) {
        Buffer bufs[kMaxPagesPerRecord];
        bool fresh[kMaxPagesPerRecord];
        lock_pages(index, first, last, bufs, fresh);
        write_record(index, meta, slot, entry, 0, meta.entry_size, bufs, fresh, npages, first, metabuf, &next);
        release_pages(bufs, npages);
    } else {
        // Payload first, under a header that still says free.
        core::flat::EntryHeader live;
        std::memcpy(&live, entry, sizeof live);
        core::flat::EntryHeader pending = live;
        pending.flags = core::flat::kEntryFree;
        std::memcpy(entry, &pending, sizeof pending);
        for (uint64 p = first; p <= last; p += kMaxPagesPerRecord) {
            uint64 q = std::min<uint64>(last, p + kMaxPagesPerRecord - 1);
            Buffer bufs[kMaxPagesPerRecord];
            bool fresh[kMaxPagesPerRecord];
            lock_pages(index, p, q, bufs, fresh);
            uint64 lo = std::max<uint64>(start, p * meta.data_per_page);
            uint64 hi = std::min<uint64>(start + meta.entry_size, (q + 1) * meta.data_per_page);
            write_record(index, meta, slot, entry, static_cast<uint32>(lo - start), static_cast<uint32>(hi - start),
                         bufs, fresh, static_cast<int>(q - p + 1), p, metabuf, nullptr);
            release_pages(bufs, static_cast<int>(q - p + 1));
        }
        // Then the header goes live together with the metapage.
        std::memcpy(entry, &live, sizeof live);
        Buffer buf;
        bool fresh = false;
        lock_pages(index, first, first, &buf, &fresh);
        write_record(index, meta, slot, entry, 0, sizeof live, &buf, &fresh, 1, first, metabuf, &next);
        UnlockReleaseBuffer(buf);
    }

    UnlockReleaseBuffer(metabuf);
    MemoryContextSwitchTo(old);
    MemoryContextDelete(tmp);
    return false;
}

}  // namespace lrv::pg::lflat
