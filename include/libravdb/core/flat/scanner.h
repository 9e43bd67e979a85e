// One pass of an lflat scan: streams page data areas in order and keeps the
// `capacity` entries with the smallest ORDER BY key that come after a given
// (key, tid) position. Scans run successive passes with growing capacity, so a
// LIMIT 10 query reads the index once and a heavily filtered one a few times,
// with memory bounded by the capacity.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdint>
#include <vector>

#include "libravdb/core/flat/format.h"
#include "libravdb/core/quantizer.h"

namespace lrv::core::flat {

struct Hit {
    double key;  // lower bound (or exact value) of the ORDER BY value; NaN last
    std::uint64_t tid;  // HeapTid::key(), plus kNullTidBit / kRecheckTidBit
    bool operator<(const Hit& o) const noexcept;  // NaN after numbers, then by tid
};

class Pass {
  public:
    // `coder` is null when the query is NULL: every entry then has key 0 and
    // comes out in tid order.
    Pass(const MetaPage& meta, const QueryCoder* coder, std::size_t capacity, const Hit* after);

    // Feeds the next data page's data area (data_per_page bytes). Returns
    // false once every slot has been seen.
    bool feed(const std::uint8_t* data);
    std::uint64_t pages_needed() const noexcept;

    // The kept entries in ascending order. `exhausted` is true when no
    // further entry exists past the last one returned.
    std::vector<Hit> finish(bool* exhausted);

  private:
    void consider(const std::uint8_t* entry);
    // Classifies a header: false when the slot is free; otherwise fills the
    // hit's tid (and the key when no distance is needed).
    bool classify(const EntryHeader& h, Hit* hit, bool* needs_distance) const;
    // Takes the bytes [at, at + len) of the entry being carried across pages.
    void absorb(const std::uint8_t* bytes, std::size_t at, std::size_t len);
    void push(const Hit& h);

    std::uint32_t entry_size_, data_per_page_;
    std::uint64_t n_slots_;
    const QueryCoder* coder_;
    std::size_t capacity_;
    bool has_after_;
    Hit after_{};
    std::uint64_t next_slot_ = 0;   // next entry to complete
    std::size_t code_bytes_;
    std::size_t elem_bytes_;
    // An entry crossing page boundaries is summed piece by piece rather than
    // copied whole: copying was a fifth of a float32 scan's time.
    std::size_t carry_len_ = 0;  // bytes of the carried entry seen so far
    EntryHeader carry_header_{};
    Hit carry_hit_{};
    bool carry_distance_ = false;
    QueryCoder::Sums carry_sums_{};
    std::vector<Hit> heap_;  // max-heap of the best `capacity` so far
    std::uint64_t seen_after_ = 0;  // entries past `after`
};

}  // namespace lrv::core::flat
