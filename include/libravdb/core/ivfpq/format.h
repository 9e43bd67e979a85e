// On-disk format of the livfpq index, described in prose in
// src/core/ivfpq/FORMAT.md.
//
//   block 0                      metapage
//   blocks dir_start ..          list directory: one ListDirEntry per list,
//                                plus one for the NULL list
//   blocks centroid_start ..     coarse centroids, lists * dims float32, as
//                                one byte stream over the pages' data areas
//   blocks codebook_start ..     PQ codebooks, pq_m * ksub * dsub float32
//   then                         list pages: ListPageHeader + entries
//
// Centroids and codebooks never change after a build; list pages and the
// directory change with every INSERT and VACUUM.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdint>

namespace lrv::core::ivfpq {

constexpr std::uint32_t kMagic = 0x4C495650;  // "LIVP"
constexpr std::uint16_t kVersion = 1;
constexpr std::uint32_t kNoBlock = 0xFFFFFFFFu;
constexpr std::uint32_t kMaxLists = 32768;

// The metapage contents (block 0), after the page header.
struct MetaPage {
    std::uint32_t magic;
    std::uint16_t version;
    std::uint8_t metric;   // distance::Metric
    std::uint8_t pq_bits;  // 4 or 8
    std::uint32_t dims;
    std::uint32_t lists;       // coarse centroids; list `lists` holds NULLs
    std::uint32_t pq_m;        // sub-spaces
    std::uint32_t code_bytes;  // bytes per PQ code
    std::uint32_t entry_size;  // bytes per list entry (header + code)
    std::uint32_t data_per_page;
    std::uint32_t dir_start;       // first directory block
    std::uint32_t dir_blocks;
    std::uint32_t centroid_start;  // first centroid block
    std::uint32_t codebook_start;  // first codebook block
    std::uint32_t list_start;      // first list page written by the build
    std::uint32_t reserved0;
    std::uint64_t build_id;        // differs between builds: keys backend caches
    std::uint64_t trained_rows;    // rows the build trained on (0: untrained)
    std::uint32_t reserved[8];
};
static_assert(sizeof(MetaPage) == 104, "livfpq metapage layout is fixed");

// One per list, in the directory pages (data_per_page / 32 a page).
struct ListDirEntry {
    std::uint32_t head;       // first page of the chain, kNoBlock when none
    std::uint32_t tail;       // last page of the chain
    std::uint32_t free_hint;  // no page before this one in the chain has room
    std::uint32_t count;      // entries in the chain
    // No vector ever placed in the list lay farther than this from its
    // centroid (L2, after normalisation under cosine): scans bound the
    // distance of lists they have not probed with it. Only grows.
    float radius;
    std::uint32_t reserved[3];
};
static_assert(sizeof(ListDirEntry) == 32, "directory entry is 32 bytes");

// The start of a list page's data area.
struct ListPageHeader {
    std::uint32_t next;       // next page of the chain, kNoBlock at the tail
    std::uint32_t list;       // the list this page belongs to
    std::uint16_t n_entries;  // entries in use, packed from the start
    std::uint16_t reserved0;
    std::uint32_t reserved1;
};
static_assert(sizeof(ListPageHeader) == 16, "list page header is 16 bytes");

enum EntryFlags : std::uint16_t {
    kEntryLive = 1,  // a heap tuple and its code
    kEntryNull = 2,  // a heap tuple whose vector is NULL (in the NULL list)
    kEntryZero = 3,  // cosine: a zero vector, whose distance is NaN (NULL list)
};

// The first 12 bytes of every entry; the PQ code follows.
struct EntryHeader {
    std::uint16_t tid_hi;  // heap block number, high 16 bits
    std::uint16_t tid_lo;  // heap block number, low 16 bits
    std::uint16_t tid_off; // line pointer offset
    std::uint16_t flags;   // EntryFlags
    // |r - decode(code)| for the residual r the code stands for: with it a
    // scan bounds the exact distance from the PQ score (triangle
    // inequality). Zero in the NULL list.
    float error;
};
static_assert(sizeof(EntryHeader) == 12, "entry header is 12 bytes");

inline std::uint64_t entry_tid_key(const EntryHeader& h) noexcept {
    return (static_cast<std::uint64_t>((static_cast<std::uint32_t>(h.tid_hi) << 16) | h.tid_lo) << 16) | h.tid_off;
}
inline void set_entry_tid(EntryHeader* h, std::uint64_t key) noexcept {
    std::uint32_t block = static_cast<std::uint32_t>(key >> 16);
    h->tid_hi = static_cast<std::uint16_t>(block >> 16);
    h->tid_lo = static_cast<std::uint16_t>(block & 0xffff);
    h->tid_off = static_cast<std::uint16_t>(key & 0xffff);
}

inline std::uint32_t entry_size(std::uint32_t code_bytes) noexcept {
    return (static_cast<std::uint32_t>(sizeof(EntryHeader)) + code_bytes + 3u) & ~3u;
}
inline std::uint32_t entries_per_page(std::uint32_t data_per_page, std::uint32_t entry_size) noexcept {
    return (data_per_page - static_cast<std::uint32_t>(sizeof(ListPageHeader))) / entry_size;
}
inline std::uint32_t dir_per_page(std::uint32_t data_per_page) noexcept {
    return data_per_page / static_cast<std::uint32_t>(sizeof(ListDirEntry));
}
// Blocks a stream of `bytes` bytes takes.
inline std::uint32_t stream_blocks(std::uint64_t bytes, std::uint32_t data_per_page) noexcept {
    return static_cast<std::uint32_t>((bytes + data_per_page - 1) / data_per_page);
}

// Checks a metapage read from disk against itself and `data_per_page` (what
// this build expects); throws Error(IndexCorrupted) with the reason.
void validate_meta(const MetaPage& m, std::uint32_t data_per_page);

// Checks one list page's data area (data_per_page bytes) of list `list`;
// throws Error(IndexCorrupted) naming the offset of the first bad entry.
// Returns the number of entries.
std::uint32_t validate_list_page(const MetaPage& m, const std::uint8_t* data, std::uint32_t list);

}  // namespace lrv::core::ivfpq
