// livfpq pages as the core decodes them: the metapage through
// ivfpq::validate_meta, a list page through ivfpq::validate_list_page (what
// libravdb_index_check runs), and the page's PQ codes through the ADC
// kernels the way a scan scores them (src/pg/livfpq_scan.cc probe_list:
// min(n_entries, entries_per_page) codes, entry_size apart, from the first
// entry's code on), at every instruction-set level this CPU has, against the
// scalar reference.
//
// Contract: validate_meta and validate_list_page return or throw
// Error(IndexCorrupted); validate_list_page returns at most entries_per_page;
// no kernel reads outside the page's data area (the page is a heap block of
// exactly data_per_page bytes, so ASan sees any read past it); kernels agree
// with adc_reference to float rounding.
//
// Input: MetaPage (104 bytes) | list number (uint32) | one list page's data
// area (8160 bytes, zeros past the input's end).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "libravdb/core/distance.h"
#include "libravdb/core/ivfpq/format.h"
#include "libravdb/core/ivfpq/pq.h"

using namespace lrv;
namespace iv = lrv::core::ivfpq;
using core::distance::Metric;

namespace {

// ADC tables are per query; their values do not matter for memory safety,
// only for the comparison, so any finite pattern in [0.5, 1.5] will do. One
// table, grown as needed and kept across runs (8000 sub-spaces of 256 take
// 8 MB).
constexpr float kTableMax = 1.5f;
const float* table_for(std::size_t m, std::size_t ksub) {
    static std::vector<float> t;
    if (t.size() < m * ksub) {
        std::size_t old = t.size();
        t.resize(m * ksub);
        for (std::size_t i = old; i < t.size(); i++) t[i] = static_cast<float>((i * 37) % 101) * 0.01f + 0.5f;
    }
    return t.data();
}

iv::MetaPage meta_for(std::uint32_t dims, std::uint32_t lists, std::uint32_t pq_m, std::uint8_t bits, Metric metric) {
    const std::uint32_t dpp = fuzz::kPageDataSize;
    iv::MetaPage m{};
    m.magic = iv::kMagic;
    m.version = iv::kVersion;
    m.metric = static_cast<std::uint8_t>(metric);
    m.pq_bits = bits;
    m.dims = dims;
    m.lists = lists;
    m.pq_m = pq_m;
    m.code_bytes = bits == 8 ? pq_m : (pq_m + 1) / 2;
    m.entry_size = iv::entry_size(m.code_bytes);
    m.data_per_page = dpp;
    m.dir_start = 1;
    m.dir_blocks = (lists + 1 + iv::dir_per_page(dpp) - 1) / iv::dir_per_page(dpp);
    m.centroid_start = m.dir_start + m.dir_blocks;
    m.codebook_start = m.centroid_start + iv::stream_blocks(std::uint64_t{lists} * dims * 4, dpp);
    m.list_start = m.codebook_start + iv::stream_blocks((std::uint64_t{1} << bits) * dims * 4, dpp);
    m.build_id = 0x1234;
    m.trained_rows = 1000;
    iv::validate_meta(m, dpp);  // a seed must be valid
    return m;
}

// A list page with `n` entries: live ones in a list, NULL (and, under
// cosine, zero-vector) ones in the NULL list. Only the used bytes are
// written; the zeros after them come from the harness.
std::vector<std::uint8_t> seed(const iv::MetaPage& m, std::uint32_t list, std::uint16_t n, std::uint32_t next) {
    std::vector<std::uint8_t> out;
    fuzz::append(&out, m);
    fuzz::append(&out, list);
    iv::ListPageHeader h{};
    h.next = next;
    h.list = list;
    h.n_entries = n;
    std::vector<std::uint8_t> page(sizeof h + std::size_t{n} * m.entry_size, 0);
    std::memcpy(page.data(), &h, sizeof h);
    const bool null_list = list == m.lists;
    for (std::uint16_t i = 0; i < n; i++) {
        std::uint8_t* e = page.data() + sizeof h + std::size_t{i} * m.entry_size;
        iv::EntryHeader eh{};
        iv::set_entry_tid(&eh, (std::uint64_t{i} << 16) | 1);
        if (null_list) {
            eh.flags = (m.metric == static_cast<std::uint8_t>(Metric::Cosine) && i % 2) ? iv::kEntryZero : iv::kEntryNull;
        } else {
            eh.flags = iv::kEntryLive;
            eh.error = 0.25f * i;
            for (std::uint32_t b = 0; b < m.code_bytes; b++) e[sizeof eh + b] = static_cast<std::uint8_t>(i * 31 + b * 7);
            if (m.pq_bits == 4 && m.pq_m % 2) e[sizeof eh + m.code_bytes - 1] &= 0x0F;
        }
        std::memcpy(e, &eh, sizeof eh);
    }
    out.insert(out.end(), page.begin(), page.end());
    return out;
}

void write_seeds(fuzz::SeedWriter& w) {
    const iv::MetaPage l2 = meta_for(8, 3, 4, 8, Metric::L2);
    w.add("l2_8bit_list", seed(l2, 1, 5, iv::kNoBlock));
    w.add("l2_8bit_null_list", seed(l2, 3, 4, l2.list_start + 2));
    const iv::MetaPage cos4 = meta_for(6, 1, 3, 4, Metric::Cosine);
    w.add("cosine_4bit_odd_m", seed(cos4, 0, 17, iv::kNoBlock));
    w.add("cosine_4bit_null_zero", seed(cos4, 1, 6, iv::kNoBlock));
    const iv::MetaPage ip = meta_for(64, 200, 32, 4, Metric::InnerProduct);
    w.add("ip_4bit_many", seed(ip, 7, 40, ip.list_start + 9));
    // One entry fills the page almost to the end.
    const iv::MetaPage big = meta_for(16000, 2, 8000, 8, Metric::L2);
    w.add("l2_8bit_one_big_entry", seed(big, 0, 1, iv::kNoBlock));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::maybe_write_seeds(write_seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Bytes in(data, size);
    const auto meta = in.take<iv::MetaPage>();
    const auto list = in.take<std::uint32_t>();
    if (!fuzz::accepts("ivfpq::validate_meta", {fuzz::ErrorKind::IndexCorrupted},
                       [&] { iv::validate_meta(meta, fuzz::kPageDataSize); }))
        return 0;
    const std::uint32_t per_page = iv::entries_per_page(meta.data_per_page, meta.entry_size);
    LRV_CHECK(per_page >= 1);
    LRV_CHECK(sizeof(iv::ListPageHeader) + std::size_t{per_page} * meta.entry_size <= meta.data_per_page);
    LRV_CHECK(meta.code_bytes + sizeof(iv::EntryHeader) <= meta.entry_size);

    const auto pages = fuzz::pages_from(in.data(), in.size(), meta.data_per_page, 1);
    const std::uint8_t* page = pages[0].data();
    std::uint32_t n = 0;
    if (fuzz::accepts("ivfpq::validate_list_page", {fuzz::ErrorKind::IndexCorrupted},
                      [&] { n = iv::validate_list_page(meta, page, list); }))
        LRV_CHECKF(n <= per_page, "validate_list_page: %u entries, at most %u fit", n, per_page);

    // Scored as a scan does, whether or not the checker liked the page.
    iv::ListPageHeader h;
    std::memcpy(&h, page, sizeof h);
    const std::uint32_t count = std::min<std::uint32_t>(h.n_entries, per_page);
    if (count == 0) return 0;
    const std::size_t ksub = std::size_t{1} << meta.pq_bits;
    const float* table = table_for(meta.pq_m, ksub);
    const std::uint8_t* codes = page + sizeof(iv::ListPageHeader) + sizeof(iv::EntryHeader);
    std::vector<float> want(count), got(count + 1);
    for (std::uint32_t i = 0; i < count; i++)
        want[i] = iv::adc_reference(table, codes + std::size_t{i} * meta.entry_size, meta.pq_m, meta.pq_bits);
    // A sum of pq_m entries in another order: float rounding only.
    const double tolerance = 1e-5 * meta.pq_m * kTableMax;
    for (int isa = 0; isa <= 2; isa++) {
        const iv::AdcKernels* k = iv::adc_for_isa(isa);
        if (k == nullptr) continue;
        const iv::AdcFn fn = meta.pq_bits == 8 ? k->adc8 : k->adc4;
        got[count] = -12345.0f;
        fn(table, meta.pq_m, codes, meta.entry_size, count, got.data());
        LRV_CHECKF(got[count] == -12345.0f, "ISA %d ADC wrote past its %u outputs", isa, count);
        for (std::uint32_t i = 0; i < count; i++)
            LRV_CHECKF(std::fabs(got[i] - want[i]) <= tolerance, "ISA %d ADC code %u: %g, reference %g", isa,
                       i, static_cast<double>(got[i]), static_cast<double>(want[i]));
    }
    return 0;
}
