// lflat pages as the core decodes them: the metapage through
// flat::validate_meta, then the data pages through flat::Pass, the scanner a
// scan feeds page after page (src/pg/lflat_scan.cc run_pass).
//
// Contract: validate_meta returns or throws Error(IndexCorrupted); once it
// has accepted a metapage, Pass takes any bytes as data pages and either
// returns hits or throws Error(IndexCorrupted) (an entry with unknown
// flags). Hits come out in order (Hit::operator<), at most `capacity` of
// them, all after the continuation point when one is given.
//
// Input: MetaPage (96 bytes) | cfg (1) | after.key float, after.tid low 32
// bits (8) | data page areas of 8160 bytes each, laid end to end (a page past
// the input's end is all zeros, i.e. never-written free slots). At most 64
// pages are fed, however many the metapage claims (the glue stops at the end
// of the relation with a Postgres read error).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "fuzz_common.h"
#include "libravdb/core/flat/format.h"
#include "libravdb/core/flat/scanner.h"
#include "libravdb/core/quantizer.h"

using namespace lrv;
namespace flat = lrv::core::flat;
using core::QuantizerKind;
using core::distance::Metric;

namespace {

constexpr std::size_t kMaxPages = 64;

std::vector<float> query_for(std::size_t dims) {
    std::vector<float> q(dims);
    for (std::size_t i = 0; i < dims; i++) q[i] = static_cast<float>(static_cast<int>((i * 7) % 11) - 5) * 0.25f;
    return q;
}

core::QuantizerParams params_of(const flat::MetaPage& m) {
    core::QuantizerParams p;
    p.kind = static_cast<QuantizerKind>(m.quantizer);
    p.lo = m.sq_lo;
    p.step = m.sq_step;
    return p;
}

// ---------------------------------------------------------------------------
// Seeds: valid indexes written with the core's own encoder, laid out as
// src/pg/lflat_build.cc lays them out.

std::vector<std::uint8_t> seed_index(Metric metric, QuantizerKind q, std::uint32_t dims, std::uint32_t slots,
                                     std::uint8_t cfg) {
    flat::MetaPage m{};
    m.magic = flat::kMagic;
    m.version = flat::kVersion;
    m.metric = static_cast<std::uint8_t>(metric);
    m.quantizer = static_cast<std::uint8_t>(q);
    m.dims = dims;
    m.entry_size = static_cast<std::uint32_t>(flat::entry_size(q, dims));
    m.data_per_page = fuzz::kPageDataSize;
    m.n_slots = slots;
    core::QuantizerParams p;
    p.kind = q;
    if (q == QuantizerKind::Sq8) p = core::sq8_from_range(-2, 3);
    m.sq_lo = q == QuantizerKind::Sq8 ? p.lo : 0;
    m.sq_step = q == QuantizerKind::Sq8 ? p.step : 1;

    std::vector<std::uint8_t> stream(std::size_t{slots} * m.entry_size, 0);
    std::vector<float> x(dims);
    for (std::uint32_t s = 0; s < slots; s++) {
        std::uint8_t* e = stream.data() + std::size_t{s} * m.entry_size;
        flat::EntryHeader h{};
        flat::set_entry_tid(&h, flat::HeapTid{s / 7, static_cast<std::uint16_t>(s % 7 + 1)});
        if (s % 5 == 3) {
            h.flags = flat::kEntryFree;
        } else if (s % 5 == 4) {
            h.flags = flat::kEntryNull;
        } else {
            h.flags = flat::kEntryLive;
            for (std::uint32_t i = 0; i < dims; i++) x[i] = std::sin(static_cast<float>(s * 31 + i)) * 2.5f;
            h.residual = core::encode(p, metric, x.data(), dims, e + sizeof h);
            h.norm = core::vector_norm(x.data(), dims);
            m.n_live++;
        }
        if (h.flags == flat::kEntryFree) m.n_free++;
        std::memcpy(e, &h, sizeof h);
    }
    flat::validate_meta(m, fuzz::kPageDataSize);  // a seed must be a valid index

    std::vector<std::uint8_t> out;
    fuzz::append(&out, m);
    out.push_back(cfg);
    fuzz::append(&out, 0.5f);
    fuzz::append(&out, std::uint32_t{0x10002});
    out.insert(out.end(), stream.begin(), stream.end());  // the data pages, end to end
    return out;
}

void write_seeds(fuzz::SeedWriter& w) {
    w.add("l2_none_4d", seed_index(Metric::L2, QuantizerKind::None, 4, 12, 9 << 2));
    w.add("ip_fp16_100d_crossing", seed_index(Metric::InnerProduct, QuantizerKind::Fp16, 100, 40, 2 | (3 << 2)));
    w.add("cosine_sq8_16d", seed_index(Metric::Cosine, QuantizerKind::Sq8, 16, 9, 0));
    w.add("l1_none_2044d_straddling", seed_index(Metric::L1, QuantizerKind::None, 2044, 1, 1 << 2));
    w.add("null_query", seed_index(Metric::L2, QuantizerKind::Sq8, 3, 6, 1));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::maybe_write_seeds(write_seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Bytes in(data, size);
    const auto meta = in.take<flat::MetaPage>();
    const std::uint8_t cfg = in.u8();
    flat::Hit after{};
    after.key = in.take<float>();
    after.tid = in.take<std::uint32_t>();

    if (!fuzz::accepts("flat::validate_meta", {fuzz::ErrorKind::IndexCorrupted},
                       [&] { flat::validate_meta(meta, fuzz::kPageDataSize); }))
        return 0;
    LRV_CHECK(meta.dims >= 1 && meta.dims <= 16000);
    LRV_CHECK(meta.entry_size % 16 == 0 && meta.entry_size >= sizeof(flat::EntryHeader));

    const bool null_query = cfg & 1;
    const bool have_after = cfg & 2;
    const std::size_t capacity = (cfg >> 2) + 1;
    const std::vector<float> q = query_for(meta.dims);
    std::unique_ptr<core::QueryCoder> coder;
    if (!null_query) coder.reset(new core::QueryCoder(params_of(meta), static_cast<Metric>(meta.metric), q.data(), q.size()));

    flat::Pass pass(meta, coder.get(), capacity, have_after ? &after : nullptr);
    const std::size_t in_input = (in.size() + fuzz::kPageDataSize - 1) / fuzz::kPageDataSize;
    const std::size_t feed = static_cast<std::size_t>(
        std::min<std::uint64_t>(pass.pages_needed(), std::min<std::uint64_t>(in_input + 1, kMaxPages)));
    const auto pages = fuzz::pages_from(in.data(), in.size(), fuzz::kPageDataSize, feed);

    std::vector<flat::Hit> hits;
    bool exhausted = false;
    const bool ok = fuzz::accepts("flat::Pass", {fuzz::ErrorKind::IndexCorrupted}, [&] {
        for (const auto& page : pages)
            if (!pass.feed(page.data())) break;
        hits = pass.finish(&exhausted);
    });
    if (!ok) return 0;

    LRV_CHECKF(hits.size() <= capacity, "%zu hits for capacity %zu", hits.size(), capacity);
    for (std::size_t i = 1; i < hits.size(); i++)
        LRV_CHECKF(!(hits[i] < hits[i - 1]), "hit %zu (key %.17g tid %llx) sorts before hit %zu (key %.17g)", i,
                   hits[i].key, static_cast<unsigned long long>(hits[i].tid), i - 1, hits[i - 1].key);
    for (const flat::Hit& h : hits) {
        if (have_after) LRV_CHECKF(after < h, "a hit at key %.17g is not after the continuation point", h.key);
        if (null_query) LRV_CHECKF(h.key == 0, "NULL query: key %.17g", h.key);
    }
    return 0;
}
