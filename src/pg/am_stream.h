// Entry streams: fixed-size entries laid end to end across the data areas of
// consecutive index blocks, starting at block 1 (block 0 is the metapage).
// An entry may cross page boundaries, so no space is lost to page ends and
// entries larger than a page work. lflat stores its vectors this way; lhnsw
// stores graph nodes this way. Written once here: bulk writing during builds,
// WAL-logged writes of any byte range of an entry, and reads.
#pragma once

#include "am_common.h"

namespace lrv::pg {

struct Stream {
    Relation index;
    uint32 magic;        // page magic of the access method
    uint16 kind;         // page kind of the data pages
    uint32 entry_size;   // bytes per entry
    uint32 data_per_page;
    static BlockNumber block_of(uint64 page) { return static_cast<BlockNumber>(page + 1); }
};

// Builds append entries through a page image in backend memory; full pages
// go to the buffer manager unlogged, and the caller WAL-logs the whole index
// with log_newpage_range once the build is complete.
struct StreamBuilder {
    Stream s;
    PGAlignedBlock page;
    uint32 used;
    bool open;
};
void stream_build_init(StreamBuilder* b, const Stream& s);
void stream_build_append(StreamBuilder* b, const uint8* bytes, uint32 len);
void stream_build_finish(StreamBuilder* b);

// Writes bytes [from, to) of entry `slot`, extending the index when the
// entry reaches past its end. Each generic WAL record covers at most four
// pages, so a long range takes several records, written in stream order. If
// `extra` is a valid buffer (locked exclusively by the caller), the last
// record also registers it and calls apply(page, arg) on its image: that is
// how an entry becomes visible together with a metapage change.
void stream_write(const Stream& s, uint64 slot, uint32 from, uint32 to, const uint8* entry, Buffer extra,
                  void (*apply)(Page, void*), void* arg);

// Writes bytes [from, to) of entry `slot` (at most four pages) in one WAL
// record if they still equal `expected`; returns false, writing nothing,
// when they changed since the caller read them. Lets a caller compute a
// change under share locks and apply it only if nobody got there first.
bool stream_write_if(const Stream& s, uint64 slot, uint32 from, uint32 to, const uint8* expected,
                     const uint8* bytes);

// Copies bytes [from, to) of entry `slot` into out, page by page under
// share locks.
void stream_read(const Stream& s, uint64 slot, uint32 from, uint32 to, uint8* out);

}  // namespace lrv::pg
