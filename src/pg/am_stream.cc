#include "am_stream.h"

#include <algorithm>
#include <cstring>

namespace lrv::pg {

void stream_build_init(StreamBuilder* b, const Stream& s) {
    b->s = s;
    b->used = 0;
    b->open = false;
}

static void build_flush(StreamBuilder* b) {
    Buffer buf = extend_index(b->s.index);
    std::memcpy(BufferGetPage(buf), b->page.data, BLCKSZ);
    MarkBufferDirty(buf);
    UnlockReleaseBuffer(buf);
    b->open = false;
}

void stream_build_append(StreamBuilder* b, const uint8* bytes, uint32 len) {
    while (len > 0) {
        if (!b->open) {
            Page page = static_cast<Page>(b->page.data);
            init_page(page, b->s.magic, b->s.kind, b->s.data_per_page);
            std::memset(page_data(page), 0, b->s.data_per_page);
            b->used = 0;
            b->open = true;
        }
        uint32 take = std::min(len, b->s.data_per_page - b->used);
        std::memcpy(page_data(static_cast<Page>(b->page.data)) + b->used, bytes, take);
        b->used += take;
        bytes += take;
        len -= take;
        if (b->used == b->s.data_per_page) build_flush(b);
    }
}

void stream_build_finish(StreamBuilder* b) {
    if (b->open) build_flush(b);
}

namespace {

// Pins and exclusively locks stream pages [first, last], extending the
// index for pages that do not exist yet. fresh[i] says page i must be
// initialised (new, or extended before a crash and never written).
void lock_pages(const Stream& s, uint64 first, uint64 last, Buffer* bufs, bool* fresh) {
    BlockNumber nblocks = RelationGetNumberOfBlocks(s.index);
    for (uint64 p = first; p <= last; p++) {
        int i = static_cast<int>(p - first);
        BlockNumber blk = Stream::block_of(p);
        if (blk < nblocks) {
            bufs[i] = ReadBuffer(s.index, blk);
            LockBuffer(bufs[i], BUFFER_LOCK_EXCLUSIVE);
            Page page = BufferGetPage(bufs[i]);
            fresh[i] = PageIsNew(page);
            if (!fresh[i]) check_page(s.index, blk, page, s.magic, s.kind);
        } else {
            // Blocks between the end of the index and this one (an entry
            // written before lower-numbered ones, such as an insert's upper
            // slots before its node): added as empty stream pages, each
            // logged, so a crash leaves only valid pages behind.
            while (nblocks < blk) {
                Buffer gap = extend_index(s.index);
                GenericXLogState* state = GenericXLogStart(s.index);
                Page pg = GenericXLogRegisterBuffer(state, gap, GENERIC_XLOG_FULL_IMAGE);
                init_page(pg, s.magic, s.kind, s.data_per_page);
                std::memset(page_data(pg), 0, s.data_per_page);
                GenericXLogFinish(state);
                UnlockReleaseBuffer(gap);
                nblocks++;
            }
            bufs[i] = extend_index(s.index);
            if (BufferGetBlockNumber(bufs[i]) != blk)
                elog(ERROR, "index \"%s\" extended to block %u, expected %u", RelationGetRelationName(s.index),
                     BufferGetBlockNumber(bufs[i]), blk);
            fresh[i] = true;
            nblocks++;
        }
    }
}

}  // namespace

void stream_write(const Stream& s, uint64 slot, uint32 from, uint32 to, const uint8* entry, Buffer extra,
                  void (*apply)(Page, void*), void* arg) {
    const uint64 start = slot * s.entry_size;
    const uint64 first = (start + from) / s.data_per_page;
    const uint64 last = (start + to - 1) / s.data_per_page;
    const bool with_extra = BufferIsValid(extra);
    for (uint64 p = first; p <= last;) {
        // Leave room for the extra buffer in the record that writes the last page.
        uint64 remaining = last - p + 1;
        int room = MAX_GENERIC_XLOG_PAGES;
        int n = static_cast<int>(std::min<uint64>(remaining, room));
        if (with_extra && n == static_cast<int>(remaining) && n == room) n--;  // extra goes in a later record
        uint64 q = p + n - 1;
        bool final_record = (q == last);

        Buffer bufs[MAX_GENERIC_XLOG_PAGES];
        bool fresh[MAX_GENERIC_XLOG_PAGES];
        lock_pages(s, p, q, bufs, fresh);
        GenericXLogState* state = GenericXLogStart(s.index);
        Page pages[MAX_GENERIC_XLOG_PAGES];
        for (int i = 0; i < n; i++) {
            pages[i] = GenericXLogRegisterBuffer(state, bufs[i], fresh[i] ? GENERIC_XLOG_FULL_IMAGE : 0);
            if (fresh[i]) {
                init_page(pages[i], s.magic, s.kind, s.data_per_page);
                std::memset(page_data(pages[i]), 0, s.data_per_page);
            }
        }
        uint64 lo = std::max<uint64>(start + from, p * s.data_per_page);
        uint64 hi = std::min<uint64>(start + to, (q + 1) * s.data_per_page);
        for (uint64 b = lo; b < hi;) {
            uint64 page = b / s.data_per_page;
            uint32 off = static_cast<uint32>(b % s.data_per_page);
            uint32 take = static_cast<uint32>(std::min<uint64>(hi - b, s.data_per_page - off));
            std::memcpy(page_data(pages[page - p]) + off, entry + (b - start), take);
            b += take;
        }
        if (final_record && with_extra) apply(GenericXLogRegisterBuffer(state, extra, 0), arg);
        GenericXLogFinish(state);
        for (int i = 0; i < n; i++) UnlockReleaseBuffer(bufs[i]);
        p = q + 1;
    }
}

bool stream_write_if(const Stream& s, uint64 slot, uint32 from, uint32 to, const uint8* expected,
                     const uint8* bytes) {
    const uint64 start = slot * s.entry_size;
    const uint64 first = (start + from) / s.data_per_page;
    const uint64 last = (start + to - 1) / s.data_per_page;
    if (last - first + 1 > MAX_GENERIC_XLOG_PAGES)
        elog(ERROR, "conditional write of %u bytes spans more than %d pages", to - from, MAX_GENERIC_XLOG_PAGES);
    const int n = static_cast<int>(last - first + 1);
    Buffer bufs[MAX_GENERIC_XLOG_PAGES];
    bool fresh[MAX_GENERIC_XLOG_PAGES];
    lock_pages(s, first, last, bufs, fresh);
    bool same = true;
    for (int i = 0; i < n && same; i++) {
        if (fresh[i]) {
            same = false;  // the range was never written
            break;
        }
        uint64 lo = std::max<uint64>(start + from, (first + i) * s.data_per_page);
        uint64 hi = std::min<uint64>(start + to, (first + i + 1) * s.data_per_page);
        same = std::memcmp(page_data(BufferGetPage(bufs[i])) + (lo - (first + i) * s.data_per_page),
                           expected + (lo - start - from), hi - lo) == 0;
    }
    if (same) {
        GenericXLogState* state = GenericXLogStart(s.index);
        for (int i = 0; i < n; i++) {
            Page page = GenericXLogRegisterBuffer(state, bufs[i], 0);
            uint64 lo = std::max<uint64>(start + from, (first + i) * s.data_per_page);
            uint64 hi = std::min<uint64>(start + to, (first + i + 1) * s.data_per_page);
            std::memcpy(page_data(page) + (lo - (first + i) * s.data_per_page), bytes + (lo - start - from), hi - lo);
        }
        GenericXLogFinish(state);
    }
    for (int i = 0; i < n; i++) UnlockReleaseBuffer(bufs[i]);
    return same;
}

void stream_read(const Stream& s, uint64 slot, uint32 from, uint32 to, uint8* out) {
    const uint64 start = slot * s.entry_size;
    for (uint64 b = start + from; b < start + to;) {
        uint64 page = b / s.data_per_page;
        uint32 off = static_cast<uint32>(b % s.data_per_page);
        uint32 take = static_cast<uint32>(std::min<uint64>(start + to - b, s.data_per_page - off));
        BlockNumber blk = Stream::block_of(page);
        Buffer buf = ReadBuffer(s.index, blk);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page pg = BufferGetPage(buf);
        check_page(s.index, blk, pg, s.magic, s.kind);
        std::memcpy(out + (b - start - from), page_data(pg) + off, take);
        UnlockReleaseBuffer(buf);
        b += take;
    }
}

}  // namespace lrv::pg
