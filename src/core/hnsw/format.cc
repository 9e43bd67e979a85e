#include "libravdb/core/hnsw/format.h"

#include <string>

#include "libravdb/core/error.h"
#include "libravdb/core/limits.h"

namespace lrv::core::hnsw {

Layout layout(QuantizerKind q, std::uint32_t dims, std::uint32_t m) noexcept {
    Layout l;
    // Page data starts 24 bytes into a page and slots start at multiples of
    // 32, so 8 bytes of padding put every code on a 32-byte boundary of the
    // (32-byte aligned) buffer: vector loads of the kernels then never split.
    l.code_offset = sizeof(NodeHeader) + 8;
    l.code_bytes = static_cast<std::uint32_t>(code_bytes(q, dims));
    l.links_offset = l.code_offset + ((l.code_bytes + 3) & ~3u);
    l.m = m;
    std::uint32_t raw = l.links_offset + 2 * m * static_cast<std::uint32_t>(sizeof(std::uint32_t));
    l.slot_size = (raw + 31) & ~31u;
    l.levels_per_upper = (l.slot_size - static_cast<std::uint32_t>(sizeof(NodeHeader))) /
                         (m * static_cast<std::uint32_t>(sizeof(std::uint32_t)));
    return l;
}

void validate_meta(const MetaPage& m, std::uint32_t data_per_page) {
    auto bad = [](const std::string& why) { fail(ErrorKind::IndexCorrupted, why); };
    if (m.magic != kMagic) bad("bad magic number");
    if (m.version != kVersion) bad("unsupported format version " + std::to_string(m.version));
    if (m.metric > static_cast<std::uint8_t>(distance::Metric::L1)) bad("unknown metric");
    if (m.quantizer > static_cast<std::uint8_t>(QuantizerKind::Sq8)) bad("unknown quantizer");
    if (m.dims < 1 || m.dims > kMaxDims) bad("dimensions out of range");
    if (m.m < kMinM || m.m > kMaxM) bad("m out of range");
    if (m.ef_construction < kMinEfConstruction || m.ef_construction > kMaxEfConstruction)
        bad("ef_construction out of range");
    if (m.data_per_page != data_per_page) bad("data bytes per page differ from this build's");
    if (m.slot_size != layout(m).slot_size) bad("slot size does not match dimensions, quantizer and m");
    if (m.max_level > kMaxLevel) bad("top level out of range");
    if (m.entry_point != kNone && m.entry_point >= m.n_slots) bad("entry point beyond the last slot");
    if (m.n_nodes > m.n_slots || m.n_free > m.n_slots || m.n_deleted > m.n_slots) bad("node counts exceed slots");
    if (m.n_slots >= kNone) bad("slot count out of range");
    if (m.quantizer == static_cast<std::uint8_t>(QuantizerKind::Sq8) && !(m.sq_step > 0 && m.sq_step < 3.4e38f) )
        bad("sq8 step out of range");
    if (!(m.sq_lo > -3.4e38f && m.sq_lo < 3.4e38f)) bad("sq8 range out of range");
}

}  // namespace lrv::core::hnsw
