// Inserting into a livfpq index.
//
// The row's vector goes to the list of its nearest centroid (the trained
// state never changes after a build), encoded as the PQ code of its
// residual; a NULL, or a zero vector under cosine, goes to the NULL list.
// The entry is appended in one WAL record that covers the directory page
// (the list's count and hints), the page that receives it and, when the
// chain grows, the old tail page whose `next` now points at the new one.
//
// Locks are taken in one order, directory page then list pages along the
// chain; VACUUM never holds a list page while it takes a directory page, so
// the two cannot deadlock.
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/ivfpq/pq.h"
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "guard.h"
#include "livfpq.h"
#include "lvector.h"

extern "C" {
#include "utils/memutils.h"
}

namespace lrv::pg::livfpq {

using iv::ListDirEntry;
using iv::MetaPage;

namespace {

struct InsertCore {
    std::shared_ptr<const Trained> trained;
    std::vector<float> scratch;
};

}  // namespace

bool insert(Relation index, Datum* values, bool* isnull, ItemPointer tid, Relation heap,
            IndexUniqueCheck check_unique, bool index_unchanged, IndexInfo* info) {
    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "livfpq insert", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(tmp);
    const MetaPage meta = read_meta(index);
    InsertCore* ic = context_owned<InsertCore>(tmp);
    ic->trained = trained(index, meta);

    auto* entry = static_cast<uint8*>(palloc0(meta.entry_size));
    auto* eh = reinterpret_cast<iv::EntryHeader*>(entry);
    iv::set_entry_tid(eh, tid_to_key(tid));
    uint32 list = meta.lists;
    float distance = 0, error = 0;
    eh->flags = iv::kEntryNull;
    if (!isnull[0]) {
        LVector* v = build_vector(values[0], meta.dims);
        LRV_GUARDED({
            ic->scratch.resize(meta.dims);
            list = place_vector(*ic->trained, meta, v->x, entry + sizeof(iv::EntryHeader), ic->scratch.data(), &distance, &error);
        });
        eh->flags = list == meta.lists ? iv::kEntryZero : iv::kEntryLive;
        eh->error = error;
    }
    const uint32 per_page = iv::entries_per_page(meta.data_per_page, meta.entry_size);

    const BlockNumber dblk = dir_block(meta, list);
    Buffer dbuf = ReadBuffer(index, dblk);
    LockBuffer(dbuf, BUFFER_LOCK_EXCLUSIVE);
    check_page(index, dblk, BufferGetPage(dbuf), kMagic, kPageIvfDir);
    ListDirEntry e;
    std::memcpy(&e, page_data(BufferGetPage(dbuf)) + dir_offset(meta, list), sizeof e);

    // The first page from the hint on that has room.
    Buffer target = InvalidBuffer;
    BlockNumber blk = e.free_hint != iv::kNoBlock ? e.free_hint : e.tail;
    BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    for (uint32 hops = 0; blk != iv::kNoBlock; hops++) {
        check_chain_step(index, meta, list, blk, hops, &nblocks);
        Buffer buf = ReadBuffer(index, blk);
        LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
        const uint32 used = list_page_entries(index, meta, buf, blk, list);
        Page page = BufferGetPage(buf);
        if (used < per_page) {
            target = buf;
            break;
        }
        BlockNumber next = list_header(page)->next;
        UnlockReleaseBuffer(buf);
        blk = next;
    }

    GenericXLogState* state;
    Page dpage, tpage;
    if (BufferIsValid(target)) {
        state = GenericXLogStart(index);
        dpage = GenericXLogRegisterBuffer(state, dbuf, 0);
        tpage = GenericXLogRegisterBuffer(state, target, 0);
    } else {
        // Grow the chain: a new page after the tail.
        Buffer tail = InvalidBuffer;
        if (e.tail != iv::kNoBlock) {
            tail = ReadBuffer(index, e.tail);
            LockBuffer(tail, BUFFER_LOCK_EXCLUSIVE);
            check_page(index, e.tail, BufferGetPage(tail), kMagic, kPageIvfList);
        }
        target = extend_index(index);
        state = GenericXLogStart(index);
        dpage = GenericXLogRegisterBuffer(state, dbuf, 0);
        tpage = GenericXLogRegisterBuffer(state, target, GENERIC_XLOG_FULL_IMAGE);
        init_list_page(tpage, list);
        const BlockNumber nblk = BufferGetBlockNumber(target);
        if (BufferIsValid(tail)) {
            Page tailpage = GenericXLogRegisterBuffer(state, tail, 0);
            list_header(tailpage)->next = nblk;
        } else {
            e.head = nblk;
        }
        e.tail = nblk;
        // The tail buffer stays locked until the record is written.
        blk = nblk;
        iv::ListPageHeader* h = list_header(tpage);
        std::memcpy(list_entry(tpage, meta, h->n_entries), entry, meta.entry_size);
        h->n_entries++;
        reinterpret_cast<PageHeader>(tpage)->pd_lower =
            static_cast<LocationIndex>(kPageHeaderSize + sizeof(iv::ListPageHeader) + h->n_entries * meta.entry_size);
        e.free_hint = nblk;
        e.count++;
        e.radius = std::max(e.radius, distance);
        std::memcpy(page_data(dpage) + dir_offset(meta, list), &e, sizeof e);
        GenericXLogFinish(state);
        if (BufferIsValid(tail)) UnlockReleaseBuffer(tail);
        UnlockReleaseBuffer(target);
        UnlockReleaseBuffer(dbuf);
        MemoryContextSwitchTo(old);
        MemoryContextDelete(tmp);
        return false;
    }
    iv::ListPageHeader* h = list_header(tpage);
    std::memcpy(list_entry(tpage, meta, h->n_entries), entry, meta.entry_size);
    h->n_entries++;
    reinterpret_cast<PageHeader>(tpage)->pd_lower =
        static_cast<LocationIndex>(kPageHeaderSize + sizeof(iv::ListPageHeader) + h->n_entries * meta.entry_size);
    e.free_hint = BufferGetBlockNumber(target);
    e.count++;
    e.radius = std::max(e.radius, distance);
    std::memcpy(page_data(dpage) + dir_offset(meta, list), &e, sizeof e);
    GenericXLogFinish(state);
    UnlockReleaseBuffer(target);
    UnlockReleaseBuffer(dbuf);
    MemoryContextSwitchTo(old);
    MemoryContextDelete(tmp);
    return false;
}

}  // namespace lrv::pg::livfpq
