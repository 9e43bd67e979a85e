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
      dims_(meta.dims),
      coder_(coder),
      capacity_(std::max<std::size_t>(capacity, 1)),
      has_after_(after != nullptr),
      carry_(meta.entry_size) {
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

void Pass::consider(const std::uint8_t* entry) {
    EntryHeader h;
    std::memcpy(&h, entry, sizeof h);
    Hit hit;
    hit.tid = entry_tid(h).key();
    if (h.flags == kEntryLive) {
        hit.key = coder_ ? coder_->lower_bound(entry + sizeof(EntryHeader), h.residual, h.norm) : 0.0;
    } else if (h.flags == kEntryNull) {
        hit.key = coder_ ? std::numeric_limits<double>::quiet_NaN() : 0.0;
        hit.tid |= kNullTidBit;
    } else if (h.flags != kEntryFree) {
        // A scan that skipped it would silently drop a row from the answer.
        std::uint64_t at = next_slot_ * entry_size_;
        fail(ErrorKind::IndexCorrupted,
             "lflat entry " + std::to_string(next_slot_) + " at block " +
                 std::to_string(at / data_per_page_ + 1) + ", data offset " + std::to_string(at % data_per_page_) +
                 " has unknown flags " + std::to_string(h.flags));
    } else {
        return;
    }
    push(hit);
}

bool Pass::feed(const std::uint8_t* data) {
    const std::uint64_t end = n_slots_ * entry_size_;
    std::uint32_t off = 0;
    // Finish an entry begun on the previous page.
    if (carry_len_ > 0) {
        std::size_t want = entry_size_ - carry_len_;
        std::size_t take = std::min<std::size_t>(want, data_per_page_);
        std::memcpy(carry_.data() + carry_len_, data, take);
        carry_len_ += take;
        off = static_cast<std::uint32_t>(take);
        stream_pos_ += take;
        if (carry_len_ < entry_size_) return stream_pos_ < end;  // spans yet another page
        consider(carry_.data());
        carry_len_ = 0;
        next_slot_++;
    }
    while (next_slot_ < n_slots_) {
        std::uint32_t room = data_per_page_ - off;
        if (room >= entry_size_) {
            consider(data + off);
            off += entry_size_;
            stream_pos_ += entry_size_;
            next_slot_++;
            continue;
        }
        if (room > 0) {
            std::memcpy(carry_.data(), data + off, room);
            carry_len_ = room;
            stream_pos_ += room;
        }
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
