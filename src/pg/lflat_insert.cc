// Inserting into an lflat index.
//
// Inserts are serialised by the metapage's exclusive lock. A new entry goes
// into a slot freed by VACUUM when the metapage says one exists, else at the
// end of the stream. An entry spanning at most three pages is written in one
// generic WAL record together with the metapage. A longer one (thousands of
// dimensions) is written in records of up to four pages while its header
// still says "free", and made live by a last record touching only its header
// and the metapage, so a crash between records leaves an unused slot, never
// a half-written live entry.
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

bool slot_is_free(Relation index, const MetaPage& meta, uint64 slot) {
    core::flat::EntryHeader h;
    stream_read(entry_stream(index, meta), slot, 0, sizeof h, reinterpret_cast<uint8*>(&h));
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

void apply_meta(Page page, void* arg) { put_meta(page, *static_cast<const MetaPage*>(arg)); }

}  // namespace

bool insert(Relation index, Datum* values, bool* isnull, ItemPointer tid, Relation heap,
            IndexUniqueCheck check_unique, bool index_unchanged, IndexInfo* info) {
    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "lflat insert", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(tmp);

    LVector* v = isnull[0] ? nullptr : datum_to_lvector(values[0]);

    Buffer metabuf = ReadBuffer(index, kMetaBlock);
    LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
    MetaPage meta = meta_from_buffer(index, metabuf);
    if (v != nullptr && v->dim != meta.dims)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("expected %u dimensions, not %d", meta.dims, static_cast<int>(v->dim))));

    uint8* entry = static_cast<uint8*>(palloc(meta.entry_size));
    encode_entry(meta, v ? v->x : nullptr, tid, entry);

    MetaPage next = meta;
    uint64 slot = choose_slot(index, &next);
    if (slot == next.n_slots) next.n_slots++;
    next.n_live++;

    Stream stream = entry_stream(index, meta);
    const uint64 start = slot * meta.entry_size;
    const uint64 npages = (start + meta.entry_size - 1) / meta.data_per_page - start / meta.data_per_page + 1;
    if (npages < MAX_GENERIC_XLOG_PAGES) {
        // One record: the entry's pages and the metapage.
        stream_write(stream, slot, 0, meta.entry_size, entry, metabuf, apply_meta, &next);
    } else {
        // Payload first, under the header the slot already has (free), then
        // the header together with the metapage.
        const uint32 hdr = sizeof(core::flat::EntryHeader);
        stream_write(stream, slot, hdr, meta.entry_size, entry, InvalidBuffer, nullptr, nullptr);
        stream_write(stream, slot, 0, hdr, entry, metabuf, apply_meta, &next);
    }

    UnlockReleaseBuffer(metabuf);
    MemoryContextSwitchTo(old);
    MemoryContextDelete(tmp);
    return false;
}

}  // namespace lrv::pg::lflat
