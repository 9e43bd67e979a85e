// VisitedSet against std::unordered_set: inserts, lookups, growth, and clears
// of small and large sets (the two ways clear() empties a table).
#include "libravdb/core/common/visited.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <unordered_set>

namespace {

using lrv::core::VisitedSet;

void check_round(VisitedSet& v, std::mt19937& rng, std::size_t n, std::uint32_t range) {
    std::unordered_set<std::uint32_t> ref;
    for (std::size_t i = 0; i < n; i++) {
        const std::uint32_t id = rng() % range;
        ASSERT_EQ(v.insert(id), ref.insert(id).second) << "id " << id;
    }
    ASSERT_EQ(v.size(), ref.size());
    for (std::uint32_t id = 0; id < std::min<std::uint32_t>(range, 200000); id++)
        ASSERT_EQ(v.contains(id), ref.count(id) == 1) << "id " << id;
    v.clear();
    ASSERT_EQ(v.size(), 0u);
    for (std::uint32_t id : ref) ASSERT_FALSE(v.contains(id)) << "id " << id << " after clear";
}

TEST(VisitedSet, MatchesAHashSetAcrossClears) {
    std::mt19937 rng(7);
    VisitedSet v;
    EXPECT_FALSE(v.contains(3));  // nothing allocated yet
    v.clear();
    // Small rounds (clear empties the used slots), rounds that grow the
    // table (it is filled), one past kKeep (given back), then small again.
    for (std::size_t n : {10u, 300u, 2000u, 5000u, 40000u, 200000u, 50u, 700u})
        check_round(v, rng, n, 4 * static_cast<std::uint32_t>(n) + 10);
}

TEST(VisitedSet, NeverHoldsTheEmptyMarker) {
    VisitedSet v;
    EXPECT_FALSE(v.insert(0xFFFFFFFFu));
    EXPECT_FALSE(v.contains(0xFFFFFFFFu));
    EXPECT_TRUE(v.insert(0));
    EXPECT_FALSE(v.insert(0));
    EXPECT_EQ(v.size(), 1u);
}

}  // namespace
