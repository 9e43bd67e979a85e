// livfpq settings, metapage and directory access, and the backend cache of
// the trained centroids and codebooks.
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/distance.h"
#include "libravdb/core/ivfpq/pq.h"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "guard.h"
#include "livfpq.h"

namespace lrv::pg::livfpq {

using iv::ListDirEntry;
using iv::MetaPage;

namespace {

int probes_guc = 10;
bool probes_explicit = false;
int rerank_guc = 100;
bool rerank_explicit = false;

void assign_probes(int newval, void* extra) { probes_explicit = explicit_source(extra); }
void assign_rerank(int newval, void* extra) { rerank_explicit = explicit_source(extra); }

Options* index_options(Relation index) { return reinterpret_cast<Options*>(index->rd_options); }

}  // namespace

void register_gucs() {
    DefineCustomIntVariable("libravdb.ivfpq_probes", "Lists a livfpq scan probes first.",
                            "More lists find more of the true nearest neighbours and take longer. A scan whose "
                            "rows a WHERE clause throws away goes on to further lists. When not set in the "
                            "session, an index's own probes option (if any) is used.",
                            &probes_guc, 10, 1, static_cast<int>(iv::kMaxLists), PGC_USERSET, 0,
                            check_explicit_source, assign_probes, nullptr);
    DefineCustomIntVariable("libravdb.ivfpq_rerank", "Candidates a livfpq scan re-ranks with exact distances.",
                            "The best candidates by PQ distance are read from the table and ordered by exact "
                            "distance; more re-ranking finds more of the true nearest neighbours and reads more "
                            "rows. When not set in the session, an index's own rerank option (if any) is used.",
                            &rerank_guc, 100, 1, 100000, PGC_USERSET, 0, check_explicit_source, assign_rerank,
                            nullptr);
}

int effective_probes(Relation index) {
    if (probes_explicit) return probes_guc;
    Options* o = index_options(index);
    return o != nullptr && o->probes > 0 ? o->probes : probes_guc;
}

int effective_rerank(Relation index) {
    if (rerank_explicit) return rerank_guc;
    Options* o = index_options(index);
    return o != nullptr && o->rerank > 0 ? o->rerank : rerank_guc;
}

MetaPage read_meta(Relation index) {
    Buffer buf = ReadBuffer(index, kMetaBlock);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    check_page(index, kMetaBlock, page, kMagic, kPageMeta);
    MetaPage meta;
    std::memcpy(&meta, page_data(page), sizeof meta);
    UnlockReleaseBuffer(buf);
    char why[256] = "";
    try {
        iv::validate_meta(meta, kPageDataSize);
    } catch (const std::exception& e) {
        snprintf(why, sizeof why, "%s", e.what());
    }
    if (why[0] != '\0')
        ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                        errmsg("index \"%s\" has an invalid metapage at block %u", RelationGetRelationName(index),
                               kMetaBlock),
                        errdetail("%s", why)));
    return meta;
}

BlockNumber dir_block(const MetaPage& meta, uint32 list) {
    return meta.dir_start + list / iv::dir_per_page(meta.data_per_page);
}
uint32 dir_offset(const MetaPage& meta, uint32 list) {
    return (list % iv::dir_per_page(meta.data_per_page)) * static_cast<uint32>(sizeof(ListDirEntry));
}

ListDirEntry read_dir(Relation index, const MetaPage& meta, uint32 list) {
    const BlockNumber blk = dir_block(meta, list);
    Buffer buf = ReadBuffer(index, blk);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    check_page(index, blk, page, kMagic, kPageIvfDir);
    ListDirEntry e;
    std::memcpy(&e, page_data(page) + dir_offset(meta, list), sizeof e);
    UnlockReleaseBuffer(buf);
    return e;
}

void init_list_page(Page page, uint32 list) {
    init_page(page, kMagic, kPageIvfList, sizeof(iv::ListPageHeader));
    std::memset(page_data(page), 0, kPageDataSize);
    iv::ListPageHeader* h = list_header(page);
    h->next = iv::kNoBlock;
    h->list = list;
}

void check_chain_step(Relation index, const MetaPage& meta, uint32 list, BlockNumber blk, uint32 hops,
                      BlockNumber* nblocks) {
    if (blk >= *nblocks || hops > *nblocks) *nblocks = RelationGetNumberOfBlocks(index);
    if (blk < *nblocks && hops <= *nblocks) return;
    if (list == meta.lists)
        ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                        errmsg("index \"%s\" has a broken chain in the NULL list at block %u",
                               RelationGetRelationName(index), blk)));
    ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED), errmsg("index \"%s\" has a broken chain in list %u at block %u",
                                                             RelationGetRelationName(index), list, blk)));
}

namespace {
bool entry_is_empty(Page page, const MetaPage& meta, uint32 i) {
    const uint8* e = list_entry(page, meta, i);
    for (std::size_t b = 0; b < sizeof(iv::EntryHeader); b++)
        if (e[b] != 0) return false;
    return true;
}
}  // namespace

uint32 list_page_entries(Relation index, const MetaPage& meta, Buffer buf, BlockNumber blk, uint32 list) {
    Page page = BufferGetPage(buf);
    const char* what = nullptr;
    const bool ours = !PageIsNew(page) && PageGetSpecialSize(page) == kSpecialSize &&
                      page_opaque(page)->magic == kMagic && page_opaque(page)->kind == kPageIvfList;
    const iv::ListPageHeader* h = list_header(page);
    const uint32 per_page = iv::entries_per_page(meta.data_per_page, meta.entry_size);
    if (!ours)
        what = nullptr;  // check_page below says what it is
    else if (h->list != list)
        what = "the page belongs to another list";
    else if (h->n_entries > per_page)
        what = "the page counts more entries than fit";
    else if (h->n_entries < per_page && !entry_is_empty(page, meta, h->n_entries))
        // Entries past the count are zero (writes append and count in one
        // record, VACUUM zeroes what compaction frees): a count too small
        // would otherwise hide the entries after it.
        what = "the entry after the last one counted is not empty";
    if (ours && what == nullptr) return h->n_entries;
    const uint32 found_list = ours ? h->list : 0;
    PGAlignedBlock copy;
    std::memcpy(copy.data, page, BLCKSZ);
    UnlockReleaseBuffer(buf);
    check_page(index, blk, static_cast<Page>(copy.data), kMagic, kPageIvfList);
    ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                    errmsg("index \"%s\" is corrupted at block %u: %s", RelationGetRelationName(index), blk, what),
                    errdetail("Reached from list %u; the page says list %u.", list, found_list)));
    pg_unreachable();
}

void bad_entry(Relation index, Buffer buf, BlockNumber blk, uint32 list, uint32 i, uint16 flags) {
    UnlockReleaseBuffer(buf);
    ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                    errmsg("index \"%s\" is corrupted at block %u: entry %u has flags %u, which do not belong in "
                           "list %u",
                           RelationGetRelationName(index), blk, i, flags, list)));
    pg_unreachable();
}

namespace {

// Bytes [0, len) of the stream that starts at block `first`, into out.
void read_stream(Relation index, BlockNumber first, uint64 len, uint8* out) {
    for (uint64 done = 0; done < len;) {
        const BlockNumber blk = first + static_cast<BlockNumber>(done / kPageDataSize);
        Buffer buf = ReadBuffer(index, blk);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        check_page(index, blk, page, kMagic, kPageIvfData);
        const uint64 take = std::min<uint64>(len - done, kPageDataSize);
        std::memcpy(out + done, page_data(page), take);
        UnlockReleaseBuffer(buf);
        done += take;
    }
}

// A few indexes per backend; a scan holds its own reference, so eviction
// never frees what a running scan uses.
constexpr std::size_t kCached = 8;
std::vector<std::shared_ptr<const Trained>>* cache() {
    static auto* c = new std::vector<std::shared_ptr<const Trained>>();
    return c;
}

}  // namespace

std::shared_ptr<const Trained> trained(Relation index, const MetaPage& meta) {
    const Oid node = index->rd_node.relNode;
    std::shared_ptr<const Trained> hit;
    LRV_GUARDED({
        auto* c = cache();
        for (std::size_t i = 0; i < c->size(); i++) {
            if ((*c)[i]->relfilenode == node && (*c)[i]->build_id == meta.build_id) {
                hit = (*c)[i];
                std::rotate(c->begin(), c->begin() + static_cast<long>(i), c->begin() + static_cast<long>(i) + 1);
                break;
            }
        }
    });
    if (hit) return hit;

    // Plain Postgres style while pages are read: only palloc'd memory.
    const uint64 cbytes = uint64{meta.lists} * meta.dims * sizeof(float);
    const uint64 ksub = uint64{1} << meta.pq_bits;
    const uint64 bbytes = uint64{meta.pq_m} * ksub * (meta.dims / meta.pq_m) * sizeof(float);
    auto* cbuf = static_cast<uint8*>(palloc_extended(cbytes, MCXT_ALLOC_HUGE));
    auto* bbuf = static_cast<uint8*>(palloc_extended(bbytes, MCXT_ALLOC_HUGE));
    read_stream(index, meta.centroid_start, cbytes, cbuf);
    read_stream(index, meta.codebook_start, bbytes, bbuf);
    LRV_GUARDED({
        auto t = std::make_shared<Trained>();
        t->relfilenode = node;
        t->build_id = meta.build_id;
        t->dims = meta.dims;
        t->lists = meta.lists;
        t->centroids.resize(std::size_t{meta.lists} * meta.dims);
        std::memcpy(t->centroids.data(), cbuf, cbytes);
        t->centroid_norms2.resize(meta.lists);
        for (uint32 l = 0; l < meta.lists; l++) {
            const float* c = t->centroids.data() + std::size_t{l} * meta.dims;
            t->centroid_norms2[l] = core::distance::inner_product(c, c, meta.dims);
        }
        t->pq.reset(new iv::ProductQuantizer(meta.dims, meta.pq_m, meta.pq_bits));
        t->pq->set_codebook(reinterpret_cast<const float*>(bbuf));
        auto* c = cache();
        if (c->size() >= kCached) c->pop_back();
        c->insert(c->begin(), t);
        hit = std::move(t);
    });
    pfree(cbuf);
    pfree(bbuf);
    return hit;
}

float code_error(const iv::ProductQuantizer& pq, const float* r, const uint8* code, float* decoded) {
    pq.decode(code, decoded);
    double e2 = 0;
    for (std::size_t i = 0; i < pq.dims(); i++) {
        const double d = static_cast<double>(r[i]) - decoded[i];
        e2 += d * d;
    }
    return static_cast<float>(std::sqrt(e2));
}

uint32 place_vector(const Trained& t, const MetaPage& meta, const float* x, uint8* code, float* scratch,
                    float* distance, float* error) {
    const std::size_t d = meta.dims;
    const auto metric = static_cast<core::distance::Metric>(meta.metric);
    std::memset(code, 0, meta.code_bytes);
    const float* v = x;
    if (metric == core::distance::Metric::Cosine) {
        double n2 = 0;
        for (std::size_t i = 0; i < d; i++) n2 += static_cast<double>(x[i]) * x[i];
        if (n2 == 0) {
            *distance = 0;
            *error = 0;
            return meta.lists;
        }
        const float inv = static_cast<float>(1.0 / std::sqrt(n2));
        for (std::size_t i = 0; i < d; i++) scratch[i] = x[i] * inv;
        v = scratch;
    }
    uint32 best = 0;
    float best_d = 0;
    for (uint32 l = 0; l < t.lists; l++) {
        const float dist = core::distance::l2_squared(v, t.centroids.data() + std::size_t{l} * d, d);
        if (l == 0 || dist < best_d) {
            best = l;
            best_d = dist;
        }
    }
    // The residual goes where the normalised copy was (or into scratch).
    const float* c = t.centroids.data() + std::size_t{best} * d;
    double r2 = 0;
    for (std::size_t i = 0; i < d; i++) {
        scratch[i] = v[i] - c[i];
        r2 += static_cast<double>(scratch[i]) * scratch[i];
    }
    *distance = static_cast<float>(std::sqrt(r2));
    t.pq->encode(scratch, 1, code);
    std::vector<float> decoded(d);
    *error = code_error(*t.pq, scratch, code, decoded.data());
    return best;
}

}  // namespace lrv::pg::livfpq
