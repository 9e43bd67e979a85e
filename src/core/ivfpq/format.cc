#include "libravdb/core/ivfpq/format.h"

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "libravdb/core/distance.h"
#include "libravdb/core/error.h"
#include "libravdb/core/limits.h"

namespace lrv::core::ivfpq {

namespace {

[[noreturn]] void corrupt(const std::string& what, std::size_t offset) {
    fail(ErrorKind::IndexCorrupted, what + " (byte offset " + std::to_string(offset) + ")");
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llX", static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

void validate_meta(const MetaPage& m, std::uint32_t data_per_page) {
    if (m.magic != kMagic) corrupt("livfpq metapage: bad magic number " + hex(m.magic), offsetof(MetaPage, magic));
    if (m.version != kVersion)
        corrupt("livfpq metapage: unsupported format version " + std::to_string(m.version),
                offsetof(MetaPage, version));
    if (m.metric > static_cast<std::uint8_t>(distance::Metric::Cosine))
        corrupt("livfpq metapage: unknown metric " + std::to_string(m.metric), offsetof(MetaPage, metric));
    if (m.pq_bits != 4 && m.pq_bits != 8)
        corrupt("livfpq metapage: pq bits " + std::to_string(m.pq_bits) + " is neither 4 nor 8",
                offsetof(MetaPage, pq_bits));
    if (m.dims < 1 || m.dims > kMaxDims)
        corrupt("livfpq metapage: dimensions " + std::to_string(m.dims) + " out of range", offsetof(MetaPage, dims));
    if (m.lists < 1 || m.lists > kMaxLists)
        corrupt("livfpq metapage: list count " + std::to_string(m.lists) + " out of range", offsetof(MetaPage, lists));
    if (m.pq_m < 1 || m.dims % m.pq_m != 0)
        corrupt(
            "livfpq metapage: pq_m " + std::to_string(m.pq_m) + " does not divide dimensions " + std::to_string(m.dims),
            offsetof(MetaPage, pq_m));
    const std::uint32_t code_bytes = m.pq_bits == 8 ? m.pq_m : (m.pq_m + 1) / 2;
    if (m.code_bytes != code_bytes)
        corrupt("livfpq metapage: code bytes " + std::to_string(m.code_bytes) + " do not match pq_m and pq bits",
                offsetof(MetaPage, code_bytes));
    if (m.entry_size != entry_size(code_bytes))
        corrupt("livfpq metapage: entry size " + std::to_string(m.entry_size) + " does not match the code bytes",
                offsetof(MetaPage, entry_size));
    if (m.data_per_page != data_per_page)
        corrupt("livfpq metapage: data bytes per page " + std::to_string(m.data_per_page) +
                    " differ from this build's " + std::to_string(data_per_page),
                offsetof(MetaPage, data_per_page));
    // Checked before entries_per_page, whose subtraction would wrap.
    if (m.data_per_page < sizeof(ListPageHeader) + m.entry_size)
        corrupt("livfpq metapage: an entry does not fit on a list page", offsetof(MetaPage, entry_size));
    if (entries_per_page(m.data_per_page, m.entry_size) < 1)
        corrupt("livfpq metapage: an entry does not fit on a list page", offsetof(MetaPage, entry_size));

    // The fixed part of the index is laid out by arithmetic alone; any other
    // block number means the metapage (or the build that wrote it) is wrong.
    if (m.dir_start != 1)
        corrupt("livfpq metapage: directory starts at block " + std::to_string(m.dir_start) + ", not 1",
                offsetof(MetaPage, dir_start));
    const std::uint64_t dir_blocks =
        (static_cast<std::uint64_t>(m.lists) + 1 + dir_per_page(m.data_per_page) - 1) / dir_per_page(m.data_per_page);
    if (m.dir_blocks != dir_blocks)
        corrupt("livfpq metapage: directory blocks " + std::to_string(m.dir_blocks) + ", expected " +
                    std::to_string(dir_blocks),
                offsetof(MetaPage, dir_blocks));
    const std::uint64_t centroid_start = static_cast<std::uint64_t>(m.dir_start) + dir_blocks;
    if (m.centroid_start != centroid_start)
        corrupt("livfpq metapage: centroids start at block " + std::to_string(m.centroid_start) + ", expected " +
                    std::to_string(centroid_start),
                offsetof(MetaPage, centroid_start));
    const std::uint64_t centroid_bytes = static_cast<std::uint64_t>(m.lists) * m.dims * sizeof(float);
    const std::uint64_t codebook_start = centroid_start + stream_blocks(centroid_bytes, m.data_per_page);
    if (m.codebook_start != codebook_start)
        corrupt("livfpq metapage: codebooks start at block " + std::to_string(m.codebook_start) + ", expected " +
                    std::to_string(codebook_start),
                offsetof(MetaPage, codebook_start));
    // pq_m * ksub * dsub floats = ksub * dims floats.
    const std::uint64_t codebook_bytes = (std::uint64_t{1} << m.pq_bits) * m.dims * sizeof(float);
    const std::uint64_t list_start = codebook_start + stream_blocks(codebook_bytes, m.data_per_page);
    if (m.list_start != list_start)
        corrupt("livfpq metapage: list pages start at block " + std::to_string(m.list_start) + ", expected " +
                    std::to_string(list_start),
                offsetof(MetaPage, list_start));

    if (m.reserved0 != 0) corrupt("livfpq metapage: reserved field not zero", offsetof(MetaPage, reserved0));
    for (std::size_t i = 0; i < sizeof m.reserved / sizeof m.reserved[0]; i++)
        if (m.reserved[i] != 0)
            corrupt("livfpq metapage: reserved field not zero",
                    offsetof(MetaPage, reserved) + i * sizeof m.reserved[0]);
}

std::uint32_t validate_list_page(const MetaPage& m, const std::uint8_t* data, std::uint32_t list) {
    ListPageHeader h;
    std::memcpy(&h, data, sizeof h);
    const std::string page = "livfpq list page of list " + std::to_string(list) + ": ";
    if (list > m.lists) corrupt(page + "no such list (the index has " + std::to_string(m.lists) + ")", 0);
    if (h.list != list) corrupt(page + "header names list " + std::to_string(h.list), offsetof(ListPageHeader, list));
    if (h.next != kNoBlock && h.next < m.list_start)
        corrupt(page + "next page " + std::to_string(h.next) + " is not a list page", offsetof(ListPageHeader, next));
    const std::uint32_t capacity = entries_per_page(m.data_per_page, m.entry_size);
    if (h.n_entries > capacity)
        corrupt(page + std::to_string(h.n_entries) + " entries, at most " + std::to_string(capacity) + " fit",
                offsetof(ListPageHeader, n_entries));
    if (h.reserved0 != 0) corrupt(page + "reserved field not zero", offsetof(ListPageHeader, reserved0));
    if (h.reserved1 != 0) corrupt(page + "reserved field not zero", offsetof(ListPageHeader, reserved1));

    const bool null_list = list == m.lists;
    const bool cosine = m.metric == static_cast<std::uint8_t>(distance::Metric::Cosine);
    std::size_t off = sizeof(ListPageHeader);
    for (std::uint32_t i = 0; i < h.n_entries; i++, off += m.entry_size) {
        EntryHeader e;
        std::memcpy(&e, data + off, sizeof e);
        const std::size_t flags_at = off + offsetof(EntryHeader, flags);
        const std::size_t error_at = off + offsetof(EntryHeader, error);
        const std::string entry = page + "entry " + std::to_string(i);
        switch (e.flags) {
            case kEntryLive:
                if (null_list) corrupt(entry + " holds a vector in the NULL list", flags_at);
                // Scans bound exact distances with it: NaN or a negative
                // value would make the bound claim anything.
                if (!(e.error >= 0.0f && e.error <= std::numeric_limits<float>::max()))
                    corrupt(entry + " has a code error out of range", error_at);
                break;
            case kEntryNull:
            case kEntryZero:
                if (!null_list)
                    corrupt(
                        entry + (e.flags == kEntryNull ? " is a NULL" : " is a zero vector") + " outside the NULL list",
                        flags_at);
                if (e.flags == kEntryZero && !cosine)
                    corrupt(entry + " is a zero vector, but the metric is not cosine", flags_at);
                if (e.error != 0.0f) corrupt(entry + " has a code error in the NULL list", error_at);
                break;
            default:
                corrupt(entry + " has unknown flags " + std::to_string(e.flags), flags_at);
        }
    }
    for (std::size_t b = off; b < m.data_per_page; b++)
        if (data[b] != 0) corrupt(page + "nonzero byte after the last entry", b);
    return h.n_entries;
}

}  // namespace lrv::core::ivfpq
