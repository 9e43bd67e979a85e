#include "libravdb/core/flat/scanner.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "libravdb/core/error.h"

namespace lrv::core::flat {

bool Hit::operator<(const Hit& o) const noexcept {
    bool an = std::isnan(key), bn = std::isnan(o.key);
    if (an != bn) return bn;  // numbers before NaN
    if (!an && key != o.key) return key < o.key;
    return tid < o.tid;
}

void validate_meta(const MetaPage& m, std::uint32_t data_per_page) {
    auto bad = [](const std::string& why) { fail(ErrorKind::IndexCorrupted, "lflat metapage is invalid: " + why); };
    if (m.magic != kMagic) bad("bad magic number");
    if (m.version != kVersion) bad("unsupported format version " + std::to_string(m.version));
    if (m.metric > static_cast<std::uint8_t>(distance::Metric::L1)) bad("unknown metric");
    if (m.quantizer > static_cast<std::uint8_t>(QuantizerKind::Sq8)) bad("unknown quantizer");
    if (m.dims < 1 || m.dims > 16000) bad("dimensions out of range");
    if (m.entry_size != entry_size(static_cast<QuantizerKind>(m.quantizer), m.dims)) bad("entry size does not match");
    if (m.data_per_page != data_per_page) bad("page data size does not match this build");
    if (m.n_live > m.n_slots || m.n_free > m.n_slots) bad("entry counts are inconsistent");
    if (m.quantizer == static_cast<std::uint8_t>(QuantizerKind::Sq8) && !(m.sq_step > 0)) bad("sq8 step is not positive");
}

Pass::Pass(const MetaPage& meta, const QueryCoder* coder, std::size_t capacity, const Hit* after)
    : entry_size_(meta.entry_size),
      data_per_page_(meta.data_per_page),
      n_slots_(meta.n_slots),
      coder_(coder),
      capacity_(std::max<std::size_t>(capacity, 1)),
      has_after_(after != nullptr),
      code_bytes_(code_bytes(static_cast<QuantizerKind>(meta.quantizer), meta.dims)),
      elem_bytes_(code_bytes(static_cast<QuantizerKind>(meta.quantizer), 1)) {
    if (after) after_ = *after;
    heap_.reserve(std::min<std::size_t>(capacity_, 1 << 16));
}

std::uint64_t Pass::pages_needed() const noexcept {
    std::uint64_t bytes = n_slots_ * entry_size_;
    return (bytes + data_per_page_ - 1) / data_per_page_;
}

void Pass::push(const Hit& h) {
    if (has_after_ && !(after_ < h)) return;
    seen_after_++;
    if (heap_.size() < capacity_) {
        heap_.push_back(h);
        std::push_heap(heap_.begin(), heap_.end());
    } else if (h < heap_.front()) {
        std::pop_heap(heap_.begin(), heap_.end());
        heap_.back() = h;
        std::push_heap(heap_.begin(), heap_.end());
    }
}

bool Pass::classify(const EntryHeader& h, Hit* hit, bool* needs_distance) const {
    hit->tid = entry_tid(h).key();
    hit->key = 0.0;
    *needs_distance = false;
    switch (h.flags) {
        case kEntryLive:
            *needs_distance = coder_ != nullptr;
            return true;
        case kEntryNull:
            if (coder_) hit->key = std::numeric_limits<double>::quiet_NaN();
            hit->tid |= kNullTidBit;
            return true;
        case kEntryFree:
            return false;
    }
    // A scan that skipped it would silently drop a row from the answer.
    std::uint64_t at = next_slot_ * entry_size_;
    fail(ErrorKind::IndexCorrupted,
         "lflat entry " + std::to_string(next_slot_) + " at block " + std::to_string(at / data_per_page_ + 1) +
             ", data offset " + std::to_string(at % data_per_page_) + " has unknown flags " +
             std::to_string(h.flags));
}

void Pass::consider(const std::uint8_t* entry) {
    EntryHeader h;
    std::memcpy(&h, entry, sizeof h);
    Hit hit;
    bool distance;
    if (!classify(h, &hit, &distance)) return;
    if (distance) hit.key = coder_->lower_bound(entry + sizeof(EntryHeader), h.residual, h.norm);
    push(hit);
}

void Pass::absorb(const std::uint8_t* bytes, std::size_t at, std::size_t len) {
    if (at == 0) {
        // The header never crosses a page boundary (16-byte alignment).
        std::memcpy(&carry_header_, bytes, sizeof carry_header_);
        carry_sums_ = QueryCoder::Sums{};
        carry_distance_ = false;
        if (!classify(carry_header_, &carry_hit_, &carry_distance_)) carry_hit_.tid = UINT64_MAX;  // free slot
    }
    if (carry_distance_) {
        // Code bytes in this piece; piece boundaries fall on whole elements.
        std::size_t lo = std::max<std::size_t>(at, sizeof(EntryHeader));
        std::size_t hi = std::min<std::size_t>(at + len, sizeof(EntryHeader) + code_bytes_);
        if (hi > lo) {
            std::size_t first = (lo - sizeof(EntryHeader)) / elem_bytes_;
            std::size_t count = (hi - lo) / elem_bytes_;
            carry_sums_ = QueryCoder::add(carry_sums_, coder_->sums(bytes + (lo - at), first, count));
        }
    }
    carry_len_ = at + len;
    if (carry_len_ < entry_size_) return;
    carry_len_ = 0;
    if (carry_hit_.tid == UINT64_MAX) return;
    if (carry_distance_) {
        carry_hit_.key = coder_->lower_bound_split(carry_sums_, carry_header_.residual, carry_header_.norm);
        if (coder_->exact()) carry_hit_.tid |= kRecheckTidBit;
    }
    push(carry_hit_);
}

bool Pass::feed(const std::uint8_t* data) {
    std::uint32_t off = 0;
    // Finish (or continue) an entry begun on an earlier page.
    if (carry_len_ > 0) {
        std::size_t take = std::min<std::size_t>(entry_size_ - carry_len_, data_per_page_);
        absorb(data, carry_len_, take);
        off = static_cast<std::uint32_t>(take);
        if (carry_len_ > 0) return true;  // spans yet another page
        next_slot_++;
    }
    while (next_slot_ < n_slots_) {
        std::uint32_t room = data_per_page_ - off;
        if (room >= entry_size_) {
            consider(data + off);
            off += entry_size_;
            next_slot_++;
            continue;
        }
        if (room > 0) absorb(data + off, 0, room);
        break;
    }
    return next_slot_ < n_slots_;
}

std::vector<Hit> Pass::finish(bool* exhausted) {
    std::sort_heap(heap_.begin(), heap_.end());
    *exhausted = seen_after_ <= heap_.size();
    return std::move(heap_);
}

}  // namespace lrv::core::flat
