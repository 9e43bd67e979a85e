// A set of node ids for graph searches that touch a few thousand nodes of a
// graph that may hold millions: open addressing over a table that grows with
// what was visited, not with the graph, so a query on a large index does not
// allocate and clear an array the size of the index.
#pragma once
#include "libravdb/core/fence.h"

#include <cstdint>
#include <vector>

namespace lrv::core {

class VisitedSet {
  public:
    VisitedSet() { table_.assign(kInitial, kEmpty); }

    // True the first time an id is inserted since the last clear().
    bool insert(std::uint32_t id) {
        if (id == kEmpty) return false;
        std::size_t mask = table_.size() - 1;
        for (std::size_t i = hash(id) & mask;; i = (i + 1) & mask) {
            if (table_[i] == id) return false;
            if (table_[i] == kEmpty) {
                table_[i] = id;
                if (++size_ * 2 > table_.size()) grow();
                return true;
            }
        }
    }
    bool contains(std::uint32_t id) const {
        std::size_t mask = table_.size() - 1;
        for (std::size_t i = hash(id) & mask;; i = (i + 1) & mask) {
            if (table_[i] == id) return true;
            if (table_[i] == kEmpty) return false;
        }
    }
    void clear() {
        // Keep a table that grew, unless it grew far beyond what searches need.
        if (table_.size() > kKeep) table_.assign(kKeep, kEmpty);
        else std::fill(table_.begin(), table_.end(), kEmpty);
        size_ = 0;
    }
    std::size_t size() const noexcept { return size_; }

  private:
    static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;
    static constexpr std::size_t kInitial = 4096;
    static constexpr std::size_t kKeep = 1 << 16;
    static std::size_t hash(std::uint32_t x) noexcept { return (x * 0x9E3779B1u) >> 7 ^ x; }
    void grow() {
        std::vector<std::uint32_t> old;
        old.swap(table_);
        table_.assign(old.size() * 2, kEmpty);
        std::size_t mask = table_.size() - 1;
        for (std::uint32_t id : old) {
            if (id == kEmpty) continue;
            std::size_t i = hash(id) & mask;
            while (table_[i] != kEmpty) i = (i + 1) & mask;
            table_[i] = id;
        }
    }
    std::vector<std::uint32_t> table_;
    std::size_t size_ = 0;
};

}  // namespace lrv::core
