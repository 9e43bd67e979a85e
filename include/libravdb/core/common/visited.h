// A set of node ids for graph searches that touch a few thousand nodes of a
// graph that may hold millions: open addressing over a table that grows with
// what was visited, not with the graph, so a query on a large index does not
// allocate and clear an array the size of the index.
#pragma once
#include "libravdb/core/fence.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lrv::core {

class VisitedSet {
  public:
    // Allocates nothing until the first insert: scans create one per
    // execution of a statement.
    VisitedSet() = default;

    // True the first time an id is inserted since the last clear().
    bool insert(std::uint32_t id) {
        if (id == kEmpty) return false;
        if (table_.empty()) table_.assign(kInitial, kEmpty);
        std::size_t mask = table_.size() - 1;
        for (std::size_t i = hash(id) & mask;; i = (i + 1) & mask) {
            if (table_[i] == id) return false;
            if (table_[i] == kEmpty) {
                table_[i] = id;
                used_.push_back(static_cast<std::uint32_t>(i));
                if (used_.size() * 2 > table_.size()) grow();
                return true;
            }
        }
    }
    bool contains(std::uint32_t id) const {
        if (table_.empty()) return false;
        std::size_t mask = table_.size() - 1;
        for (std::size_t i = hash(id) & mask;; i = (i + 1) & mask) {
            if (table_[i] == id) return true;
            if (table_[i] == kEmpty) return false;
        }
    }
    // Empties the used slots only (a search visits a few hundred ids of a
    // table of thousands); a table that grew far beyond what searches need
    // is given back.
    void clear() {
        if (table_.size() > kKeep) {
            table_.assign(kKeep, kEmpty);
            used_ = std::vector<std::uint32_t>();
            return;
        }
        if (used_.size() * 8 < table_.size()) {
            for (std::uint32_t i : used_) table_[i] = kEmpty;
        } else {
            std::fill(table_.begin(), table_.end(), kEmpty);
        }
        used_.clear();
    }
    std::size_t size() const noexcept { return used_.size(); }

  private:
    static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;
    static constexpr std::size_t kInitial = 4096;
    static constexpr std::size_t kKeep = 1 << 16;
    static std::size_t hash(std::uint32_t x) noexcept { return (x * 0x9E3779B1u) >> 7 ^ x; }
    void grow() {
        std::vector<std::uint32_t> old;
        old.swap(table_);
        table_.assign(old.size() * 2, kEmpty);
        used_.clear();
        std::size_t mask = table_.size() - 1;
        for (std::uint32_t id : old) {
            if (id == kEmpty) continue;
            std::size_t i = hash(id) & mask;
            while (table_[i] != kEmpty) i = (i + 1) & mask;
            table_[i] = id;
            used_.push_back(static_cast<std::uint32_t>(i));
        }
    }
    std::vector<std::uint32_t> table_;  // open addressing, kEmpty = free
    std::vector<std::uint32_t> used_;   // the slots holding an id
};

}  // namespace lrv::core
