// On-disk format of the lhnsw index, described in prose in src/core/hnsw/FORMAT.md.
//
// Like lflat, the index is a metapage followed by data pages whose data areas,
// laid end to end, form one stream of fixed-size slots (src/pg/am_stream.h).
// A graph node's id is its slot number, so a link is a 32-bit slot number and
// finding a node is arithmetic. A node slot holds its header, its vector code
// and its level-0 links; the links of levels 1 and up (about one node in m
// has any) live in "upper" slots of the same stream, chained from the node.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdint>

#include "libravdb/core/distance.h"
#include "libravdb/core/quantizer.h"

namespace lrv::core::hnsw {

constexpr std::uint32_t kMagic = 0x4C484E57;  // "LHNW"
constexpr std::uint16_t kVersion = 1;
// No node / empty link.
constexpr std::uint32_t kNone = 0xFFFFFFFFu;
// Levels above 0 a node may have; with m >= 2 a level this high has
// probability below 2^-40 per node.
constexpr int kMaxLevel = 40;
// Option limits (validated by reloptions and again by validate_meta).
constexpr int kMinM = 2, kMaxM = 100;
constexpr int kMinEfConstruction = 4, kMaxEfConstruction = 1000;

enum NodeFlags : std::uint16_t {
    kSlotFree = 0,     // unused: never written, or freed by VACUUM
    kNodeLive = 1,     // a vector of a heap tuple, linked into the graph
    kNodeNull = 2,     // a heap tuple whose vector is NULL: not in the graph
    kNodeDeleted = 3,  // heap tuple gone; still navigable until VACUUM unlinks it
    kSlotUpper = 4,    // links of levels >= 1 of the node named in the header
    kNodeIsolated = 5, // a vector kept out of the graph: a zero vector under cosine
};

// The first 32 bytes of every slot. Slot size and page data size are both
// multiples of 32, so a header never crosses a page boundary.
struct NodeHeader {
    std::uint16_t tid_hi;   // heap block number, high 16 bits (upper slots: 0)
    std::uint16_t tid_lo;   // heap block number, low 16 bits
    std::uint16_t tid_off;  // line pointer offset
    std::uint16_t flags;    // NodeFlags
    float residual;         // quantization error bound (0 without a quantizer)
    float norm;             // Euclidean norm of the original vector
    std::uint8_t level;     // node: its top level; upper slot: first level it holds
    std::uint8_t n_levels;  // upper slot: how many levels it holds
    std::uint16_t reserved0;
    std::uint32_t upper;    // node or upper slot: next upper slot in the chain, or kNone
    std::uint32_t owner;    // upper slot: the node it belongs to; node: kNone
    std::uint32_t reserved1;
};
static_assert(sizeof(NodeHeader) == 32, "node header is 32 bytes on disk");
static_assert(offsetof(NodeHeader, flags) == 6, "flags at the same place as lflat entries");

// The metapage contents (block 0), after the page header.
struct MetaPage {
    std::uint32_t magic;
    std::uint16_t version;
    std::uint8_t metric;     // distance::Metric
    std::uint8_t quantizer;  // QuantizerKind
    std::uint32_t dims;
    std::uint32_t slot_size;      // bytes per slot, a multiple of 32
    std::uint32_t data_per_page;  // stream bytes per data page, a multiple of 32
    std::uint16_t m;              // links per level (2m at level 0)
    std::uint16_t ef_construction;
    std::uint32_t entry_point;  // node id, or kNone for an empty graph
    std::uint8_t max_level;     // level of the entry point
    std::uint8_t reserved0[3];
    std::uint32_t reserved1;
    std::uint64_t n_slots;    // slots ever allocated (nodes, upper slots, free)
    std::uint64_t n_nodes;    // live and NULL nodes
    std::uint64_t n_deleted;  // nodes marked deleted, not yet unlinked
    std::uint64_t n_free;     // free slots below n_slots (a hint for reuse)
    std::uint64_t free_hint;  // no free slot lies below this one
    float sq_lo;              // sq8 range
    float sq_step;
    std::uint32_t reserved[8];
};
static_assert(sizeof(MetaPage) == 120, "lhnsw metapage layout is fixed");

// Where the parts of a slot are, for one index.
struct Layout {
    std::uint32_t code_offset;   // sizeof(NodeHeader) + 8: codes 32-byte aligned in shared buffers
    std::uint32_t code_bytes;
    std::uint32_t links_offset;  // level-0 links (2m uint32), after the code
    std::uint32_t m;
    std::uint32_t slot_size;
    // An upper slot holds this many levels (m links each) after its header.
    std::uint32_t levels_per_upper;
};
Layout layout(QuantizerKind q, std::uint32_t dims, std::uint32_t m) noexcept;
inline Layout layout(const MetaPage& meta) noexcept {
    return layout(static_cast<QuantizerKind>(meta.quantizer), meta.dims, meta.m);
}

// Data pages the metapage's slots occupy (the last one may be partly used).
inline std::uint64_t data_pages(const MetaPage& meta) noexcept {
    return (meta.n_slots * meta.slot_size + meta.data_per_page - 1) / meta.data_per_page;
}

// Number of upper slots a node of top level `level` needs.
inline std::uint32_t upper_slots_needed(const Layout& l, int level) noexcept {
    if (level <= 0) return 0;
    return (static_cast<std::uint32_t>(level) + l.levels_per_upper - 1) / l.levels_per_upper;
}

inline std::uint64_t tid_key(const NodeHeader& h) noexcept {
    return (static_cast<std::uint64_t>((static_cast<std::uint32_t>(h.tid_hi) << 16) | h.tid_lo) << 16) | h.tid_off;
}
inline void set_tid_key(NodeHeader* h, std::uint64_t key) noexcept {
    std::uint32_t block = static_cast<std::uint32_t>(key >> 16);
    h->tid_hi = static_cast<std::uint16_t>(block >> 16);
    h->tid_lo = static_cast<std::uint16_t>(block & 0xffff);
    h->tid_off = static_cast<std::uint16_t>(key & 0xffff);
}

// Checks a metapage read from disk; throws Error(IndexCorrupted) with the
// reason. `data_per_page` is what this build expects.
void validate_meta(const MetaPage& m, std::uint32_t data_per_page);

}  // namespace lrv::core::hnsw
