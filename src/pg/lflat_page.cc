// lflat metapage access and entry encoding, shared by build, insert, scan
// and vacuum.
#include "lflat.h"

#include <cstdio>
#include <cstring>

#include "libravdb/core/quantizer.h"

namespace lrv::pg::lflat {

using core::flat::MetaPage;

MetaPage meta_from_buffer(Relation index, Buffer buf) {
    Page page = BufferGetPage(buf);
    check_page(index, kMetaBlock, page, kMagic, kPageMeta);
    MetaPage meta;
    std::memcpy(&meta, page_data(page), sizeof meta);
    check_meta(index, meta);
    return meta;
}

MetaPage read_meta(Relation index) {
    Buffer buf = ReadBuffer(index, kMetaBlock);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    MetaPage meta = meta_from_buffer(index, buf);  // an ERROR here releases the lock too
    UnlockReleaseBuffer(buf);
    return meta;
}

void check_meta(Relation index, const MetaPage& meta) {
    char why[256] = "";
    try {
        core::flat::validate_meta(meta, kPageDataSize);
    } catch (const std::exception& e) {
        snprintf(why, sizeof why, "%s", e.what());
    }
    if (why[0] != '\0')
        ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                        errmsg("index \"%s\" has an invalid metapage at block %u", RelationGetRelationName(index),
                               kMetaBlock),
                        errdetail("%s", why)));
}

void put_meta(Page page, const MetaPage& meta) {
    std::memcpy(page_data(page), &meta, sizeof meta);
    reinterpret_cast<PageHeader>(page)->pd_lower = static_cast<LocationIndex>(kPageHeaderSize + sizeof meta);
}

void encode_entry(const MetaPage& meta, const float* x, ItemPointer tid, uint8* entry) {
    std::memset(entry, 0, meta.entry_size);
    core::flat::EntryHeader h{};
    core::flat::set_entry_tid(&h, to_core(tid));
    if (x == nullptr) {
        h.flags = core::flat::kEntryNull;
        std::memcpy(entry, &h, sizeof h);
        return;
    }
    h.flags = core::flat::kEntryLive;
    core::QuantizerParams qp;
    qp.kind = static_cast<core::QuantizerKind>(meta.quantizer);
    qp.lo = meta.sq_lo;
    qp.step = meta.sq_step;
    h.residual = core::encode(qp, static_cast<core::distance::Metric>(meta.metric), x, meta.dims,
                              entry + sizeof(core::flat::EntryHeader));
    h.norm = core::vector_norm(x, meta.dims);
    std::memcpy(entry, &h, sizeof h);
}

}  // namespace lrv::pg::lflat
