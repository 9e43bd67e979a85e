// On-disk format of the lflat index, described in prose in src/core/flat/FORMAT.md.
//
// The index is a metapage followed by data pages whose data areas, laid end to
// end, form one byte stream of fixed-size entries. Entries may straddle page
// boundaries, so no page space is wasted and a 16,000-dimension vector (64 kB)
// fits like any other. Entry i starts at stream offset i * entry_size.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "libravdb/core/distance.h"
#include "libravdb/core/quantizer.h"

namespace lrv::core::flat {

constexpr std::uint32_t kMagic = 0x4C464C54;  // "LFLT"
constexpr std::uint16_t kVersion = 1;

// A heap tuple identifier as the core sees it; the glue converts to and from
// ItemPointerData, whose 6-byte layout (block hi, block lo, offset) the entry
// header reproduces.
struct HeapTid {
    std::uint32_t block = 0;
    std::uint16_t offset = 0;
    std::uint64_t key() const noexcept { return (static_cast<std::uint64_t>(block) << 16) | offset; }
};

enum EntryFlags : std::uint16_t {
    kEntryFree = 0,       // slot unused (never written, or freed by VACUUM)
    kEntryLive = 1,       // slot holds an entry for a heap tuple
    kEntryNull = 2,       // slot holds a heap tuple whose vector is NULL
};

// Hits for NULL vectors sort after every distance, NaN included: their tid
// key carries this bit (heap tids use 48 bits).
constexpr std::uint64_t kNullTidBit = std::uint64_t{1} << 63;
// Hits whose key is a lower bound although the index has no quantizer (the
// entry crossed a page boundary and was summed in pieces): the executor must
// recheck them.
constexpr std::uint64_t kRecheckTidBit = std::uint64_t{1} << 62;
constexpr std::uint64_t kTidKeyMask = (std::uint64_t{1} << 48) - 1;

// The first 16 bytes of every entry. Entry size and page data size are both
// multiples of 16, so a header never straddles a page boundary.
struct EntryHeader {
    std::uint16_t tid_hi;    // heap block number, high 16 bits
    std::uint16_t tid_lo;    // heap block number, low 16 bits
    std::uint16_t tid_off;   // line pointer offset
    std::uint16_t flags;     // EntryFlags
    float residual;          // quantization error bound (0 without a quantizer)
    float norm;              // Euclidean norm of the original vector
};
static_assert(sizeof(EntryHeader) == 16, "entry header is 16 bytes on disk");
static_assert(offsetof(EntryHeader, residual) == 8, "entry header layout");

inline HeapTid entry_tid(const EntryHeader& h) noexcept {
    return HeapTid{(static_cast<std::uint32_t>(h.tid_hi) << 16) | h.tid_lo, h.tid_off};
}
inline void set_entry_tid(EntryHeader* h, HeapTid t) noexcept {
    h->tid_hi = static_cast<std::uint16_t>(t.block >> 16);
    h->tid_lo = static_cast<std::uint16_t>(t.block & 0xffff);
    h->tid_off = t.offset;
}

// The metapage contents (block 0), after the page header.
struct MetaPage {
    std::uint32_t magic;
    std::uint16_t version;
    std::uint8_t metric;      // distance::Metric
    std::uint8_t quantizer;   // QuantizerKind
    std::uint32_t dims;
    std::uint32_t entry_size;     // bytes per entry, a multiple of 16
    std::uint32_t data_per_page;  // stream bytes per data page, a multiple of 16
    std::uint32_t reserved0;
    std::uint64_t n_slots;    // entries ever allocated (live + free)
    std::uint64_t n_live;     // live entries
    std::uint64_t n_free;     // free slots below n_slots (a hint for reuse)
    std::uint64_t free_hint;  // no free slot lies below this one
    float sq_lo;              // sq8 range
    float sq_step;
    std::uint32_t reserved[8];
};
static_assert(sizeof(MetaPage) == 96, "lflat metapage layout is fixed");

inline std::size_t entry_size(QuantizerKind q, std::size_t dims) noexcept {
    std::size_t raw = sizeof(EntryHeader) + code_bytes(q, dims);
    return (raw + 15) & ~static_cast<std::size_t>(15);
}

// Which data page (0-based, block = page + 1) and offset a stream byte has.
struct StreamPos {
    std::uint64_t page;
    std::uint32_t offset;
};
inline StreamPos stream_pos(std::uint64_t byte, std::uint32_t data_per_page) noexcept {
    return StreamPos{byte / data_per_page, static_cast<std::uint32_t>(byte % data_per_page)};
}

// Checks a metapage read from disk; throws Error(IndexCorrupted) with the
// reason. `data_per_page` is what this build expects.
void validate_meta(const MetaPage& m, std::uint32_t data_per_page);

}  // namespace lrv::core::flat
