// The lflat format and scan pass (flat/format.h, flat/scanner.h), on streams
// built in memory: entries laid end to end across page data areas, fed page
// by page the way the scan glue reads buffers, and compared with a brute-force
// ordering of every entry.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "libravdb/core/distance.h"
#include "libravdb/core/error.h"
#include "libravdb/core/flat/format.h"
#include "libravdb/core/flat/scanner.h"
#include "libravdb/core/limits.h"
#include "libravdb/core/quantizer.h"

namespace lrv::core::flat {
namespace {

using distance::Metric;

constexpr std::uint32_t kPageData = 8160;  // an 8 kB page less its header and special space
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// --- format helpers -----------------------------------------------------------

TEST(FlatFormat, EntrySizeIsTheSmallestMultipleOf16) {
    for (QuantizerKind q : {QuantizerKind::None, QuantizerKind::Fp16, QuantizerKind::Sq8}) {
        for (std::size_t d = 1; d <= kMaxDims; d += (d < 80 ? 1 : 997)) {
            std::size_t need = sizeof(EntryHeader) + code_bytes(q, d), got = entry_size(q, d);
            ASSERT_EQ(got % 16, 0u) << quantizer_name(q) << " d" << d;
            ASSERT_GE(got, need) << quantizer_name(q) << " d" << d;
            ASSERT_LT(got, need + 16) << quantizer_name(q) << " d" << d;
        }
    }
    EXPECT_EQ(entry_size(QuantizerKind::None, kMaxDims), 64016u);
    EXPECT_EQ(entry_size(QuantizerKind::Sq8, 1), 32u);
    EXPECT_EQ(entry_size(QuantizerKind::Fp16, 8), 32u);
}

TEST(FlatFormat, TidRoundTripsThroughTheHeader) {
    for (HeapTid t : {HeapTid{0, 1}, HeapTid{0xffff, 0xffff}, HeapTid{0x10000, 7}, HeapTid{0xfedcba98, 291}}) {
        EntryHeader h{};
        set_entry_tid(&h, t);
        HeapTid back = entry_tid(h);
        EXPECT_EQ(back.block, t.block);
        EXPECT_EQ(back.offset, t.offset);
        EXPECT_EQ(back.key(), (static_cast<std::uint64_t>(t.block) << 16) | t.offset);
        EXPECT_EQ(back.key() & kNullTidBit, 0u);
    }
    // Keys order like tids: block first, then offset.
    EXPECT_LT((HeapTid{1, 0xffff}.key()), (HeapTid{2, 0}.key()));
}

TEST(FlatFormat, StreamPos) {
    StreamPos p = stream_pos(0, kPageData);
    EXPECT_EQ(p.page, 0u);
    EXPECT_EQ(p.offset, 0u);
    p = stream_pos(kPageData - 1, kPageData);
    EXPECT_EQ(p.page, 0u);
    EXPECT_EQ(p.offset, kPageData - 1);
    p = stream_pos(std::uint64_t{5} * kPageData + 32, kPageData);
    EXPECT_EQ(p.page, 5u);
    EXPECT_EQ(p.offset, 32u);
    // Beyond 4 GB of stream (more than 2^32 / 8160 pages).
    p = stream_pos(std::uint64_t{1000000} * kPageData + 16, kPageData);
    EXPECT_EQ(p.page, 1000000u);
    EXPECT_EQ(p.offset, 16u);
}

TEST(FlatHit, OrdersByKeyThenTidWithNanLast) {
    const double inf = std::numeric_limits<double>::infinity();
    // Ascending, each strictly before the next.
    const Hit sorted[] = {{-inf, 5}, {-1.5, 9}, {-0.0, 1}, {0.0, 2}, {0.5, 1},
                          {0.5, 3},  {inf, 0},  {kNaN, 0}, {kNaN, 4}, {kNaN, kNullTidBit | 1}};
    const std::size_t n = sizeof sorted / sizeof sorted[0];
    for (std::size_t i = 0; i < n; i++) {
        EXPECT_FALSE(sorted[i] < sorted[i]) << i;
        for (std::size_t j = i + 1; j < n; j++) {
            EXPECT_TRUE(sorted[i] < sorted[j]) << i << " < " << j;
            EXPECT_FALSE(sorted[j] < sorted[i]) << j << " < " << i;
        }
    }
}

// --- validate_meta ------------------------------------------------------------

MetaPage good_meta() {
    MetaPage m{};
    m.magic = kMagic;
    m.version = kVersion;
    m.metric = static_cast<std::uint8_t>(Metric::Cosine);
    m.quantizer = static_cast<std::uint8_t>(QuantizerKind::Sq8);
    m.dims = 100;
    m.entry_size = static_cast<std::uint32_t>(entry_size(QuantizerKind::Sq8, 100));
    m.data_per_page = kPageData;
    m.n_slots = 10;
    m.n_live = 6;
    m.n_free = 4;
    m.free_hint = 2;
    m.sq_lo = -1.0f;
    m.sq_step = 2.0f / 255;
    return m;
}

void expect_corrupt(const MetaPage& m, const char* what) {
    try {
        validate_meta(m, kPageData);
        ADD_FAILURE() << "accepted a metapage with " << what;
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::IndexCorrupted) << what << ": " << e.what();
    } catch (...) {
        ADD_FAILURE() << what << ": threw something other than lrv::core::Error";
    }
}

TEST(FlatMeta, AcceptsGoodMetapages) {
    EXPECT_NO_THROW(validate_meta(good_meta(), kPageData));
    for (Metric metric : {Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1}) {
        for (QuantizerKind q : {QuantizerKind::None, QuantizerKind::Fp16, QuantizerKind::Sq8}) {
            for (std::uint32_t dims : {1u, 3u, 16000u}) {
                MetaPage m = good_meta();
                m.metric = static_cast<std::uint8_t>(metric);
                m.quantizer = static_cast<std::uint8_t>(q);
                m.dims = dims;
                m.entry_size = static_cast<std::uint32_t>(entry_size(q, dims));
                EXPECT_NO_THROW(validate_meta(m, kPageData)) << quantizer_name(q) << " d" << dims;
            }
        }
    }
    MetaPage empty = good_meta();
    empty.n_slots = empty.n_live = empty.n_free = 0;
    EXPECT_NO_THROW(validate_meta(empty, kPageData));
    // Without sq8 the range is not used, whatever it holds.
    MetaPage fp16 = good_meta();
    fp16.quantizer = static_cast<std::uint8_t>(QuantizerKind::Fp16);
    fp16.entry_size = static_cast<std::uint32_t>(entry_size(QuantizerKind::Fp16, fp16.dims));
    fp16.sq_step = 0;
    EXPECT_NO_THROW(validate_meta(fp16, kPageData));
}

TEST(FlatMeta, RejectsCorruptMetapages) {
    MetaPage m = good_meta();
    m.magic ^= 1;
    expect_corrupt(m, "a bad magic number");
    m = good_meta();
    m.version = kVersion + 1;
    expect_corrupt(m, "a newer version");
    m.version = 0;
    expect_corrupt(m, "version 0");
    m = good_meta();
    m.metric = 4;
    expect_corrupt(m, "an unknown metric");
    m.metric = 255;
    expect_corrupt(m, "metric 255");
    m = good_meta();
    m.quantizer = 3;
    expect_corrupt(m, "an unknown quantizer");
    m = good_meta();
    m.dims = 0;
    m.entry_size = static_cast<std::uint32_t>(entry_size(QuantizerKind::Sq8, 0));
    expect_corrupt(m, "0 dimensions");
    m = good_meta();
    m.dims = 16001;
    m.entry_size = static_cast<std::uint32_t>(entry_size(QuantizerKind::Sq8, 16001));
    expect_corrupt(m, "16001 dimensions");
    m = good_meta();
    m.entry_size += 16;
    expect_corrupt(m, "a wrong entry size");
    m = good_meta();
    m.entry_size = static_cast<std::uint32_t>(entry_size(QuantizerKind::None, m.dims));  // another quantizer's
    expect_corrupt(m, "an entry size for another quantizer");
    m = good_meta();
    m.data_per_page = kPageData - 16;
    expect_corrupt(m, "a data_per_page of another build");
    m = good_meta();
    m.n_live = m.n_slots + 1;
    expect_corrupt(m, "n_live > n_slots");
    m = good_meta();
    m.n_free = m.n_slots + 1;
    expect_corrupt(m, "n_free > n_slots");
    m = good_meta();
    m.sq_step = 0;
    expect_corrupt(m, "an sq8 step of 0");
    m.sq_step = -0.5f;
    expect_corrupt(m, "a negative sq8 step");
    m.sq_step = std::numeric_limits<float>::quiet_NaN();
    expect_corrupt(m, "a NaN sq8 step");
}

// --- Pass ---------------------------------------------------------------------

class Rng {
  public:
    explicit Rng(std::uint32_t seed) : gen_(seed) {}
    std::uint32_t next() { return gen_(); }
    std::uint32_t below(std::uint32_t n) { return gen_() % n; }
    float unit() { return static_cast<float>(static_cast<double>(gen_() >> 8) * 0x1p-23 - 1.0); }  // [-1, 1)

  private:
    std::mt19937 gen_;
};

// One slot of the stream as the test means it.
struct Slot {
    std::uint16_t flags = kEntryFree;
    HeapTid tid;
    std::vector<float> x;  // live entries only
};

// An index in memory: the metapage, the slots it was built from, and the
// encoded stream cut into pages.
struct Index {
    MetaPage meta{};
    QuantizerParams params;
    std::vector<Slot> slots;
    std::vector<std::vector<std::uint8_t>> pages;
};

Index build_index(QuantizerKind q, Metric metric, std::uint32_t dims, std::uint32_t data_per_page,
                  std::vector<Slot> slots, std::uint32_t seed) {
    Index ix;
    ix.slots = std::move(slots);
    MetaPage& m = ix.meta;
    m.magic = kMagic;
    m.version = kVersion;
    m.metric = static_cast<std::uint8_t>(metric);
    m.quantizer = static_cast<std::uint8_t>(q);
    m.dims = dims;
    m.entry_size = static_cast<std::uint32_t>(entry_size(q, dims));
    m.data_per_page = data_per_page;
    m.n_slots = ix.slots.size();
    if (q == QuantizerKind::Sq8) {
        std::vector<float> sample;
        for (const Slot& s : ix.slots) sample.insert(sample.end(), s.x.begin(), s.x.end());
        ix.params = train_sq8(sample.data(), sample.size() / dims, dims);
        m.sq_lo = ix.params.lo;
        m.sq_step = ix.params.step;
    }
    ix.params.kind = q;
    for (const Slot& s : ix.slots) m.n_live += s.flags != kEntryFree;
    m.n_free = m.n_slots - m.n_live;

    // Free slots and the tail of the last page hold junk, as reused space may.
    Rng junk(seed);
    std::vector<std::uint8_t> stream(m.n_slots * m.entry_size);
    for (auto& b : stream) b = static_cast<std::uint8_t>(junk.next());
    for (std::size_t i = 0; i < ix.slots.size(); i++) {
        const Slot& s = ix.slots[i];
        std::uint8_t* e = stream.data() + i * m.entry_size;
        EntryHeader h;
        std::memcpy(&h, e, sizeof h);  // a free slot keeps junk in all but its flags
        if (s.flags != kEntryFree) {
            std::memset(e, 0, m.entry_size);
            h = EntryHeader{};
            set_entry_tid(&h, s.tid);
            if (s.flags == kEntryLive) {
                h.residual = encode(ix.params, metric, s.x.data(), dims, e + sizeof h);
                h.norm = vector_norm(s.x.data(), dims);
            }
        }
        h.flags = s.flags;
        std::memcpy(e, &h, sizeof h);
    }
    for (std::size_t off = 0; off < stream.size(); off += data_per_page) {
        std::vector<std::uint8_t> page(data_per_page);
        for (auto& b : page) b = static_cast<std::uint8_t>(junk.next());
        std::size_t n = std::min<std::size_t>(data_per_page, stream.size() - off);
        std::memcpy(page.data(), stream.data() + off, n);
        ix.pages.push_back(std::move(page));
    }
    return ix;
}

// Every entry a scan must return, in order: computed here from the vectors,
// not from the bytes, and sorted by the rule itself (NaN after numbers, ties
// and NaNs by tid). An entry that crosses a page boundary is summed piece by
// piece, page by page, exactly as the scan must do it, which makes its key a
// bound to recheck even without a quantizer.
std::vector<Hit> brute_force(const Index& ix, const QueryCoder* coder) {
    std::vector<Hit> all;
    std::size_t code = code_bytes(ix.params.kind, ix.meta.dims);
    std::size_t elem = code_bytes(ix.params.kind, 1);
    std::vector<std::uint8_t> buf(code);
    for (std::size_t i = 0; i < ix.slots.size(); i++) {
        const Slot& s = ix.slots[i];
        if (s.flags == kEntryFree) continue;
        Hit h{0.0, s.tid.key()};
        if (s.flags == kEntryNull) {
            h.tid |= kNullTidBit;
            if (coder) h.key = kNaN;
        } else if (coder) {
            float r = encode(ix.params, static_cast<Metric>(ix.meta.metric), s.x.data(), ix.meta.dims, buf.data());
            float norm = vector_norm(s.x.data(), ix.meta.dims);
            std::uint64_t start = i * ix.meta.entry_size, dpp = ix.meta.data_per_page;
            if (start / dpp == (start + ix.meta.entry_size - 1) / dpp) {
                h.key = coder->lower_bound(buf.data(), r, norm);
            } else {
                QueryCoder::Sums sums;
                std::uint64_t b = start + sizeof(EntryHeader), end = b + code;
                while (b < end) {
                    std::uint64_t piece_end = std::min<std::uint64_t>(end, (b / dpp + 1) * dpp);
                    std::size_t first = (b - start - sizeof(EntryHeader)) / elem;
                    sums = QueryCoder::add(sums, coder->sums(buf.data() + first * elem, first, (piece_end - b) / elem));
                    b = piece_end;
                }
                h.key = coder->lower_bound_split(sums, r, norm);
                if (coder->exact()) h.tid |= kRecheckTidBit;
            }
        }
        all.push_back(h);
    }
    std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) {
        bool an = std::isnan(a.key), bn = std::isnan(b.key);
        if (an != bn) return bn;
        if (!an && a.key != b.key) return a.key < b.key;
        return a.tid < b.tid;
    });
    return all;
}

std::string describe(const Hit& h) {
    return "(" + std::to_string(h.key) + ", " + std::to_string(h.tid) + ")";
}

bool same_hit(const Hit& a, const Hit& b) {
    std::uint64_t ka, kb;
    std::memcpy(&ka, &a.key, 8);
    std::memcpy(&kb, &b.key, 8);
    return (ka == kb || (std::isnan(a.key) && std::isnan(b.key))) && a.tid == b.tid;
}

// One pass as the glue runs it: pages_needed() pages, stopping when feed says
// every slot has been seen (and checking it says so exactly at the last one).
std::vector<Hit> run_pass(const Index& ix, const QueryCoder* coder, std::size_t capacity, const Hit* after,
                          bool* exhausted) {
    Pass pass(ix.meta, coder, capacity, after);
    std::uint64_t bytes = ix.meta.n_slots * ix.meta.entry_size;
    std::uint64_t want = (bytes + ix.meta.data_per_page - 1) / ix.meta.data_per_page;
    EXPECT_EQ(pass.pages_needed(), want);
    EXPECT_LE(want, ix.pages.size());
    for (std::uint64_t p = 0; p < want; p++) {
        bool more = pass.feed(ix.pages[p].data());
        EXPECT_EQ(more, p + 1 < want) << "feed's answer for page " << p << " of " << want;
        if (!more) break;
    }
    return pass.finish(exhausted);
}

// Successive passes, each continuing after the last hit of the one before,
// must return every entry exactly once, in order, and say when none is left.
void expect_drains_in_order(const Index& ix, const QueryCoder* coder, std::size_t capacity) {
    SCOPED_TRACE("capacity " + std::to_string(capacity));
    std::vector<Hit> want = brute_force(ix, coder);
    std::size_t pos = 0, passes = 0;
    const Hit* after = nullptr;
    Hit last{};
    for (;;) {
        bool exhausted = false;
        std::vector<Hit> got = run_pass(ix, coder, capacity, after, &exhausted);
        passes++;
        ASSERT_LE(got.size(), std::max<std::size_t>(capacity, 1));
        ASSERT_LE(pos + got.size(), want.size()) << "more hits than entries";
        for (std::size_t i = 0; i < got.size(); i++)
            ASSERT_TRUE(same_hit(got[i], want[pos + i]))
                << "pass " << passes << ", hit " << i << ": got " << describe(got[i]) << ", want "
                << describe(want[pos + i]);
        pos += got.size();
        ASSERT_EQ(exhausted, pos == want.size()) << "after pass " << passes << " with " << pos << " of "
                                                 << want.size() << " returned";
        if (exhausted) break;
        ASSERT_FALSE(got.empty()) << "an empty pass that is not the last";
        last = got.back();
        after = &last;
    }
    std::size_t cap = std::max<std::size_t>(capacity, 1);
    EXPECT_EQ(passes, std::max<std::size_t>(1, (want.size() + cap - 1) / cap)) << "a pass short of capacity";
}

// Random vectors, a fraction of free and NULL slots, repeated vectors (equal
// keys, so the tid decides) and zero vectors (NaN under cosine); tids are
// unique but not in slot order and use all 32 block bits.
std::vector<Slot> random_slots(std::size_t n, std::uint32_t dims, std::uint32_t seed) {
    Rng rng(seed);
    std::vector<Slot> slots(n);
    std::set<std::uint64_t> used;
    for (std::size_t i = 0; i < n; i++) {
        Slot& s = slots[i];
        std::uint32_t kind = rng.below(20);
        s.flags = kind < 4 ? kEntryFree : kind < 5 ? kEntryNull : kEntryLive;
        do {
            std::uint32_t block = rng.below(3) == 0 ? rng.next() : rng.below(50);
            s.tid = HeapTid{block, static_cast<std::uint16_t>(1 + rng.below(291))};
        } while (!used.insert(s.tid.key()).second);
        if (s.flags != kEntryLive) continue;
        if (kind == 5 && i > 0 && !slots[i - 1].x.empty()) {
            s.x = slots[i - 1].x;  // a duplicate
        } else if (kind == 6) {
            s.x.assign(dims, 0.0f);
        } else {
            s.x.resize(dims);
            for (float& v : s.x) v = rng.unit();
        }
    }
    return slots;
}

std::vector<float> random_query(std::uint32_t dims, std::uint32_t seed) {
    Rng rng(seed);
    std::vector<float> q(dims);
    for (float& v : q) v = rng.unit();
    return q;
}

struct PassCase {
    QuantizerKind q;
    Metric metric;
    std::uint32_t dims, data_per_page;
    std::size_t n_slots;
};

class PassTest : public testing::TestWithParam<PassCase> {};

TEST_P(PassTest, MatchesBruteForceAcrossContinuations) {
    const PassCase& c = GetParam();
    std::uint32_t seed = c.dims * 31 + c.data_per_page + static_cast<std::uint32_t>(c.n_slots);
    Index ix = build_index(c.q, c.metric, c.dims, c.data_per_page, random_slots(c.n_slots, c.dims, seed), seed);
    ASSERT_NO_THROW(validate_meta(ix.meta, c.data_per_page));
    std::vector<float> q = random_query(c.dims, seed + 1);
    QueryCoder coder(ix.params, c.metric, q.data(), c.dims);
    for (std::size_t cap : {std::size_t{1}, std::size_t{7}, std::size_t{64}, c.n_slots, c.n_slots + 1000})
        expect_drains_in_order(ix, &coder, cap);
    // A query equal to a stored vector, and (for cosine) the zero vector,
    // whose keys are all NaN.
    for (const Slot& s : ix.slots) {
        if (s.flags != kEntryLive) continue;
        QueryCoder same(ix.params, c.metric, s.x.data(), c.dims);
        expect_drains_in_order(ix, &same, 5);
        break;
    }
    std::vector<float> zero(c.dims, 0.0f);
    QueryCoder zq(ix.params, c.metric, zero.data(), c.dims);
    expect_drains_in_order(ix, &zq, 9);
}

// A NULL query: every entry has key 0 and comes out in tid order, NULL
// vectors last.
TEST_P(PassTest, NullQueryGivesTidOrder) {
    const PassCase& c = GetParam();
    Index ix = build_index(c.q, c.metric, c.dims, c.data_per_page, random_slots(c.n_slots, c.dims, 5), 5);
    std::vector<Hit> want = brute_force(ix, nullptr);
    for (std::size_t i = 1; i < want.size(); i++) ASSERT_LT(want[i - 1].tid, want[i].tid);
    for (std::size_t cap : {std::size_t{3}, c.n_slots + 1}) expect_drains_in_order(ix, nullptr, cap);
}

std::vector<PassCase> pass_cases() {
    std::vector<PassCase> cases;
    for (QuantizerKind q : {QuantizerKind::None, QuantizerKind::Fp16, QuantizerKind::Sq8}) {
        // Whole pages: entries straddle 8160-byte boundaries now and then.
        cases.push_back({q, Metric::L2, 17, kPageData, 700});
        cases.push_back({q, Metric::Cosine, 33, kPageData, 300});
        // Tiny pages: entries of 32 to 160 bytes over 48-byte pages, so most
        // straddle and some span three or four pages.
        for (std::uint32_t dims : {1u, 3u, 8u, 16u, 33u})
            cases.push_back({q, dims % 2 ? Metric::InnerProduct : Metric::L1, dims, 48, 150});
    }
    // Entries of 64 kB (16000 floats) over 8 kB pages, and 32 kB ones.
    cases.push_back({QuantizerKind::None, Metric::L2, 16000, kPageData, 12});
    cases.push_back({QuantizerKind::Fp16, Metric::Cosine, 16000, kPageData, 12});
    cases.push_back({QuantizerKind::Sq8, Metric::InnerProduct, 16000, kPageData, 12});
    return cases;
}

INSTANTIATE_TEST_SUITE_P(Streams, PassTest, testing::ValuesIn(pass_cases()),
                         [](const testing::TestParamInfo<PassCase>& info) {
                             const PassCase& c = info.param;
                             return std::string(quantizer_name(c.q)) + "_" + distance::metric_name(c.metric) + "_d" +
                                    std::to_string(c.dims) + "_p" + std::to_string(c.data_per_page) + "_n" +
                                    std::to_string(c.n_slots);
                         });

TEST(FlatPass, EmptyIndex) {
    Index ix = build_index(QuantizerKind::None, Metric::L2, 4, kPageData, {}, 1);
    std::vector<float> q(4, 1.0f);
    QueryCoder coder(ix.params, Metric::L2, q.data(), 4);
    Pass pass(ix.meta, &coder, 10, nullptr);
    EXPECT_EQ(pass.pages_needed(), 0u);
    bool exhausted = false;
    EXPECT_TRUE(pass.finish(&exhausted).empty());
    EXPECT_TRUE(exhausted);
    Hit after{1.0, 5};
    Pass later(ix.meta, &coder, 10, &after);
    exhausted = false;
    EXPECT_TRUE(later.finish(&exhausted).empty());
    EXPECT_TRUE(exhausted);
}

TEST(FlatPass, OnlyFreeSlots) {
    std::vector<Slot> slots(40);
    for (std::size_t i = 0; i < slots.size(); i++) slots[i].tid = HeapTid{1, static_cast<std::uint16_t>(i + 1)};
    Index ix = build_index(QuantizerKind::Sq8, Metric::L2, 3, 48, slots, 2);
    std::vector<float> q(3, 0.5f);
    QueryCoder coder(ix.params, Metric::L2, q.data(), 3);
    bool exhausted = false;
    EXPECT_TRUE(run_pass(ix, &coder, 5, nullptr, &exhausted).empty());
    EXPECT_TRUE(exhausted);
}

// Capacity 0 is taken as 1: a scan still makes progress.
TEST(FlatPass, CapacityZeroActsAsOne) {
    Index ix = build_index(QuantizerKind::Fp16, Metric::L2, 5, 48, random_slots(30, 5, 3), 3);
    std::vector<float> q = random_query(5, 4);
    QueryCoder coder(ix.params, Metric::L2, q.data(), 5);
    expect_drains_in_order(ix, &coder, 0);
}

// Many entries with one key (equal vectors): the tid breaks the tie, and a
// continuation in the middle of the tie neither repeats nor skips any.
TEST(FlatPass, ContinuesInsideTies) {
    std::vector<Slot> slots(60);
    Rng rng(6);
    std::vector<float> v(6);
    for (float& x : v) x = rng.unit();
    for (std::size_t i = 0; i < slots.size(); i++) {
        slots[i].flags = i % 7 == 3 ? kEntryFree : kEntryLive;
        slots[i].tid = HeapTid{static_cast<std::uint32_t>(100 - i), static_cast<std::uint16_t>(1 + i % 3)};
        if (slots[i].flags == kEntryLive) slots[i].x = v;
    }
    for (QuantizerKind q : {QuantizerKind::None, QuantizerKind::Fp16, QuantizerKind::Sq8}) {
        Index ix = build_index(q, Metric::L2, 6, 48, slots, 7);
        std::vector<float> query = random_query(6, 8);
        QueryCoder coder(ix.params, Metric::L2, query.data(), 6);
        std::vector<Hit> want = brute_force(ix, &coder);
        ASSERT_EQ(want.front().key, want.back().key);
        for (std::size_t cap : {1, 4, 5, 51, 52}) expect_drains_in_order(ix, &coder, cap);
    }
}

}  // namespace
}  // namespace lrv::core::flat
