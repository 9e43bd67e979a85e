// Building a livfpq index.
//
// Two passes over the heap, with memory bounded by the training sample and
// the codes, never by the vectors:
//   1. A reservoir sample of the vectors (normalised under cosine), from
//      which the core trains the coarse centroids (k-means++ and Lloyd) and
//      then the product quantizer on the sample's residuals, on
//      1 + max_parallel_maintenance_workers threads.
//   2. Every row again, in batches: the nearest centroid (a GEMM), the
//      residual's code, appended to its list in memory.
// Then the pages are written in order -- metapage, directory, centroids,
// codebooks, each list's pages one after another, so a probe reads
// consecutive blocks -- and the index is WAL-logged in bulk with
// log_newpage_range.
//
// lists defaults to the square root of the row count (pgvector's advice for
// IVFFlat, and FAISS's rule of thumb); codes to 4 bits a sub-space and pq_m
// to dimensions / 4 rounded to a divisor: a code of about dims / 8 bytes.
// On Fashion-MNIST 4-bit codes of 196 sub-spaces reach the recall of 8-bit
// codes of 98 (the same 98 bytes) at twice the queries per second: a 4-bit
// table row fits one register (see adc_avx512.cc) and the per-list tables
// are 16 entries a sub-space instead of 256.
// Core headers (and the standard headers they pull in) before the server's,
// whose port.h redefines printf-family names.
#include "libravdb/core/common/parallel.h"
#include "libravdb/core/ivfpq/kmeans.h"
#include "libravdb/core/ivfpq/pq.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "guard.h"
#include "livfpq.h"
#include "lvector.h"

extern "C" {
#include "catalog/index.h"
#include "pgstat.h"
#include "utils/backend_progress.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

namespace lrv::pg::livfpq {

using iv::ListDirEntry;
using iv::MetaPage;

namespace {

constexpr int kPhaseSample = 2;
constexpr int kPhaseCentroids = 3;
constexpr int kPhaseCodebooks = 4;
constexpr int kPhaseAssign = 5;
constexpr int kPhaseWrite = 6;
constexpr std::size_t kBatch = 2048;
constexpr std::size_t kSamplePerList = 50;
constexpr std::size_t kMinSample = 256 * 40;  // enough for 8-bit codebooks
constexpr std::size_t kMaxSample = 1 << 17;
constexpr uint64 kSeed = 0x5eed;

int build_threads() { return 1 + std::max(0, max_parallel_maintenance_workers); }

// One row's place in the index.
struct Placed {
    uint64 key;
    uint32 list;
    uint16 flags;
    float error;  // of the code
};

// C++ members of a build, owned by a memory context (context_owned) so an
// ERROR anywhere frees them; the Postgres-style frames hold none.
struct BuildCore {
    MetaPage meta{};
    core::distance::Metric metric = core::distance::Metric::L2;
    std::size_t dims = 0;
    // Pass 1: the reservoir.
    std::size_t sample_cap = 0;
    std::vector<float> sample;
    std::size_t sampled = 0;  // rows in the reservoir
    uint64 seen = 0;          // vectors offered to it
    uint64 rng = kSeed;
    // Training results.
    std::vector<float> centroids;
    std::unique_ptr<iv::ProductQuantizer> pq;
    // Pass 2: batch, then placed rows and their codes.
    std::vector<float> batch;
    std::vector<uint64> batch_keys;
    std::vector<uint32> labels;
    std::vector<Placed> placed;
    std::vector<uint8> codes;  // code_bytes per placed row (zeros for NULL-list rows)
    std::vector<float> norm;   // scratch
    std::vector<float> radius; // per list: the farthest member from its centroid
    std::vector<float> errors, decoded;

    uint64 next_random() {
        // splitmix64: deterministic reservoir for a given heap order.
        uint64 z = (rng += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    // The vector as the index sees it (normalised under cosine); false for a
    // zero vector under cosine.
    bool prepare(const float* x, float* out) {
        if (metric != core::distance::Metric::Cosine) {
            std::memcpy(out, x, dims * sizeof(float));
            return true;
        }
        double n2 = 0;
        for (std::size_t i = 0; i < dims; i++) n2 += static_cast<double>(x[i]) * x[i];
        if (n2 == 0) return false;
        const float inv = static_cast<float>(1.0 / std::sqrt(n2));
        for (std::size_t i = 0; i < dims; i++) out[i] = x[i] * inv;
        return true;
    }

    void offer(const float* x) {
        norm.resize(dims);
        if (!prepare(x, norm.data())) return;
        seen++;
        if (sampled < sample_cap) {
            sample.insert(sample.end(), norm.begin(), norm.end());
            sampled++;
            return;
        }
        uint64 j = next_random() % seen;
        if (j < sample_cap) std::memcpy(sample.data() + j * dims, norm.data(), dims * sizeof(float));
    }

    // Assigns and encodes the batch; appends to placed/codes.
    void flush(int threads, const std::function<void()>& poll) {
        const std::size_t n = batch_keys.size();
        if (n == 0) return;
        labels.resize(n);
        iv::assign_nearest(centroids.data(), meta.lists, dims, batch.data(), n, labels.data(), nullptr, threads, poll);
        radius.resize(meta.lists, 0.0f);
        for (std::size_t i = 0; i < n; i++) {
            const float* c = centroids.data() + std::size_t{labels[i]} * dims;
            float* r = batch.data() + i * dims;
            double r2 = 0;
            for (std::size_t k = 0; k < dims; k++) {
                r[k] -= c[k];
                r2 += static_cast<double>(r[k]) * r[k];
            }
            radius[labels[i]] = std::max(radius[labels[i]], static_cast<float>(std::sqrt(r2)));
        }
        const std::size_t cb = meta.code_bytes;
        const std::size_t base = codes.size();
        codes.resize(base + n * cb);
        errors.resize(n);
        decoded.resize(std::size_t(std::max(threads, 1)) * dims);
        core::parallel_for(
            n, 64, threads,
            [&](std::size_t b, std::size_t e, int w) {
                pq->encode(batch.data() + b * dims, e - b, codes.data() + base + b * cb);
                for (std::size_t i = b; i < e; i++)
                    errors[i] = code_error(*pq, batch.data() + i * dims, codes.data() + base + i * cb,
                                           decoded.data() + std::size_t(w) * dims);
            },
            poll);
        for (std::size_t i = 0; i < n; i++)
            placed.push_back(Placed{batch_keys[i], labels[i], iv::kEntryLive, errors[i]});
        batch_keys.clear();
    }
};

struct BuildState {
    BuildCore* bc;
    MemoryContext tmp;
    int threads;
    double tuples;
};

void poll_interrupts() {
    guard_pg([] { CHECK_FOR_INTERRUPTS(); });
}

void sample_callback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool alive, void* arg) {
    auto* st = static_cast<BuildState*>(arg);
    if (isnull[0]) return;
    MemoryContext old = MemoryContextSwitchTo(st->tmp);
    LVector* v = build_vector(values[0], static_cast<uint32>(st->bc->dims));
    LRV_GUARDED(st->bc->offer(v->x));
    MemoryContextSwitchTo(old);
    MemoryContextReset(st->tmp);
}

void assign_callback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool alive, void* arg) {
    auto* st = static_cast<BuildState*>(arg);
    BuildCore* bc = st->bc;
    MemoryContext old = MemoryContextSwitchTo(st->tmp);
    LVector* v = isnull[0] ? nullptr : build_vector(values[0], static_cast<uint32>(bc->dims));
    const uint64 key = tid_to_key(tid);
    LRV_GUARDED({
        const std::size_t i = bc->batch_keys.size();
        if (v == nullptr || !bc->prepare(v->x, bc->batch.data() + i * bc->dims)) {
            bc->placed.push_back(Placed{key, bc->meta.lists, v == nullptr ? iv::kEntryNull : iv::kEntryZero, 0.0f});
            bc->codes.resize(bc->codes.size() + bc->meta.code_bytes, 0);
        } else {
            bc->batch_keys.push_back(key);
            if (bc->batch_keys.size() == kBatch) bc->flush(st->threads, poll_interrupts);
        }
    });
    MemoryContextSwitchTo(old);
    MemoryContextReset(st->tmp);
    st->tuples += 1;
    if ((static_cast<int64>(st->tuples) & 1023) == 0)
        pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, static_cast<int64>(st->tuples));
}

// pq_m for `dims` when the user gave none: the smallest divisor of dims that
// leaves at most 4 dimensions a sub-space with 4-bit codes, 8 with 8-bit
// codes -- about one bit a dimension either way, a code of dims / 8 bytes.
uint32 default_pq_m(uint32 dims, uint32 pq_bits) {
    const uint32 dsub = pq_bits == 4 ? 4 : 8;
    for (uint32 m = (dims + dsub - 1) / dsub; m <= dims; m++)
        if (dims % m == 0) return m;
    return dims;
}

// The metapage of an index with `lists` lists (layout fields included).
MetaPage make_meta(Relation index, uint32 dims, uint32 lists, uint32 pq_m, uint32 pq_bits) {
    MetaPage m{};
    m.magic = kMagic;
    m.version = iv::kVersion;
    m.metric = static_cast<uint8>(index_metric(index));
    m.pq_bits = static_cast<uint8>(pq_bits);
    m.dims = dims;
    m.lists = lists;
    m.pq_m = pq_m;
    m.code_bytes = pq_bits == 8 ? pq_m : (pq_m + 1) / 2;
    m.entry_size = iv::entry_size(m.code_bytes);
    m.data_per_page = kPageDataSize;
    m.dir_start = 1;
    m.dir_blocks = (lists + 1 + iv::dir_per_page(kPageDataSize) - 1) / iv::dir_per_page(kPageDataSize);
    m.centroid_start = m.dir_start + m.dir_blocks;
    m.codebook_start =
        m.centroid_start + iv::stream_blocks(uint64{lists} * dims * sizeof(float), kPageDataSize);
    const uint64 ksub = uint64{1} << pq_bits;
    m.list_start = m.codebook_start + iv::stream_blocks(uint64{pq_m} * ksub * (dims / pq_m) * sizeof(float),
                                                        kPageDataSize);
    m.build_id = static_cast<uint64>(GetCurrentTimestamp()) ^ (static_cast<uint64>(MyProcPid) << 40) ^
                 index->rd_node.relNode;
    return m;
}

// Options checked against the column: pq_m must divide the dimensions and a
// code must fit an index page.
void check_options(Relation index, uint32 dims, uint32 pq_m, uint32 pq_bits) {
    if (pq_m > dims || dims % pq_m != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("pq_m = %u does not divide the %u dimensions of the column", pq_m, dims),
                        errhint("Choose a divisor of %u, or leave pq_m out (the default is %u).", dims,
                                default_pq_m(dims, pq_bits))));
    const uint32 cb = pq_bits == 8 ? pq_m : (pq_m + 1) / 2;
    if (iv::entries_per_page(kPageDataSize, iv::entry_size(cb)) < 1)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("a livfpq code of %u bytes (pq_m = %u, pq_bits = %u) does not fit an index page", cb,
                               pq_m, pq_bits),
                        errhint("Use a smaller pq_m or pq_bits = 4.")));
}

// Appends one page image to `fork`, unlogged (the caller logs the fork).
void append_page(Relation index, ForkNumber fork, const PGAlignedBlock& img) {
    Buffer buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, nullptr);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    std::memcpy(BufferGetPage(buf), img.data, BLCKSZ);
    MarkBufferDirty(buf);
    UnlockReleaseBuffer(buf);
}

// Appends `len` bytes as a stream over data pages of kind kPageIvfData.
void append_stream(Relation index, ForkNumber fork, const uint8* bytes, uint64 len, PGAlignedBlock* img) {
    for (uint64 done = 0; done < len;) {
        Page page = static_cast<Page>(img->data);
        init_page(page, kMagic, kPageIvfData, kPageDataSize);
        std::memset(page_data(page), 0, kPageDataSize);
        const uint64 take = std::min<uint64>(len - done, kPageDataSize);
        std::memcpy(page_data(page), bytes + done, take);
        append_page(index, fork, *img);
        done += take;
    }
}

// Writes a whole index into `fork`: metapage, directory, centroids,
// codebooks and the lists, whose rows are `order` (indexes into placed,
// grouped by list). Plain Postgres style: only palloc'd memory is live.
void write_index(Relation index, ForkNumber fork, const MetaPage& meta, const float* centroids, const float* codebook,
                 const Placed* placed, const uint8* codes, const uint32* order, const uint32* list_start,
                 const uint32* list_count, const float* radius) {
    auto* img = static_cast<PGAlignedBlock*>(palloc(sizeof(PGAlignedBlock)));
    const uint32 per_page = iv::entries_per_page(meta.data_per_page, meta.entry_size);
    const uint32 nlists = meta.lists + 1;

    Page page = static_cast<Page>(img->data);
    init_page(page, kMagic, kPageMeta, sizeof meta);
    std::memcpy(page_data(page), &meta, sizeof meta);
    append_page(index, fork, *img);

    // Directory: list chains take consecutive blocks from list_start.
    const uint32 dpp = iv::dir_per_page(meta.data_per_page);
    BlockNumber next_block = meta.list_start;
    uint32 list = 0;
    for (uint32 b = 0; b < meta.dir_blocks; b++) {
        init_page(page, kMagic, kPageIvfDir, kPageDataSize);
        std::memset(page_data(page), 0, kPageDataSize);
        for (uint32 i = 0; i < dpp && list < nlists; i++, list++) {
            ListDirEntry e{};
            e.head = e.tail = e.free_hint = iv::kNoBlock;
            e.radius = radius != nullptr && list < meta.lists ? radius[list] : 0.0f;
            const uint32 n = list_count[list];
            if (n > 0) {
                const uint32 pages = (n + per_page - 1) / per_page;
                e.head = next_block;
                e.tail = next_block + pages - 1;
                e.free_hint = e.tail;
                e.count = n;
                next_block += pages;
            }
            std::memcpy(page_data(page) + i * sizeof(ListDirEntry), &e, sizeof e);
        }
        append_page(index, fork, *img);
    }

    append_stream(index, fork, reinterpret_cast<const uint8*>(centroids),
                  uint64{meta.lists} * meta.dims * sizeof(float), img);
    const uint64 ksub = uint64{1} << meta.pq_bits;
    append_stream(index, fork, reinterpret_cast<const uint8*>(codebook),
                  uint64{meta.pq_m} * ksub * (meta.dims / meta.pq_m) * sizeof(float), img);

    BlockNumber blk = meta.list_start;
    for (uint32 l = 0; l < nlists; l++) {
        const uint32 n = list_count[l];
        for (uint32 done = 0; done < n;) {
            if ((blk & 63) == 0) CHECK_FOR_INTERRUPTS();
            const uint32 take = std::min(per_page, n - done);
            init_list_page(page, l);
            iv::ListPageHeader* h = list_header(page);
            h->n_entries = static_cast<uint16>(take);
            h->next = done + take < n ? blk + 1 : iv::kNoBlock;
            for (uint32 i = 0; i < take; i++) {
                const uint32 row = order[list_start[l] + done + i];
                uint8* e = list_entry(page, meta, i);
                auto* eh = reinterpret_cast<iv::EntryHeader*>(e);
                iv::set_entry_tid(eh, placed[row].key);
                eh->flags = placed[row].flags;
                eh->error = placed[row].error;
                std::memcpy(e + sizeof(iv::EntryHeader), codes + std::size_t{row} * meta.code_bytes,
                            meta.code_bytes);
            }
            reinterpret_cast<PageHeader>(page)->pd_lower = static_cast<LocationIndex>(
                kPageHeaderSize + sizeof(iv::ListPageHeader) + take * meta.entry_size);
            append_page(index, fork, *img);
            blk++;
            done += take;
        }
    }
    pfree(img);
}

// Groups rows by list: order[] lists row numbers list by list, in heap order.
struct Grouping {
    std::vector<uint32> order, start, count;
};
Grouping group_rows(const std::vector<Placed>& placed, uint32 nlists) {
    Grouping g;
    g.count.assign(nlists, 0);
    for (const Placed& p : placed) g.count[p.list]++;
    g.start.assign(nlists, 0);
    for (uint32 l = 1; l < nlists; l++) g.start[l] = g.start[l - 1] + g.count[l - 1];
    g.order.resize(placed.size());
    std::vector<uint32> fill = g.start;
    for (uint32 i = 0; i < placed.size(); i++) g.order[fill[placed[i].list]++] = i;
    return g;
}

struct WriteCore {
    Grouping g;
};

}  // namespace

IndexBuildResult* build(Relation heap, Relation index, IndexInfo* info) {
    if (RelationGetNumberOfBlocks(index) != 0)
        elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));
    auto* opts = reinterpret_cast<Options*>(index->rd_options);
    const uint32 dims = static_cast<uint32>(index_dims(index));
    const uint32 pq_bits = opts ? static_cast<uint32>(opts->pq_bits) : 4;
    const uint32 pq_m = opts && opts->pq_m > 0 ? static_cast<uint32>(opts->pq_m) : default_pq_m(dims, pq_bits);
    check_options(index, dims, pq_m, pq_bits);
    const int threads = build_threads();

    // Rows expected, for the reservoir's size (reltuples is -1 before the
    // first VACUUM or ANALYZE; then a guess from the heap's size).
    double est_rows = heap->rd_rel->reltuples;
    if (est_rows < 0)
        est_rows = static_cast<double>(RelationGetNumberOfBlocks(heap)) *
                   std::max(1.0, static_cast<double>(BLCKSZ) / (dims * sizeof(float) + 40.0));
    const uint32 lists_hint = opts && opts->lists > 0 ? static_cast<uint32>(opts->lists)
                                                      : static_cast<uint32>(std::max(1.0, std::sqrt(est_rows)));
    const std::size_t budget = static_cast<std::size_t>(maintenance_work_mem) * 1024;
    const std::size_t want = std::min(kMaxSample, std::max(kMinSample, kSamplePerList * lists_hint));
    const std::size_t fit = std::max<std::size_t>(1024, budget / 2 / (dims * sizeof(float)));
    const std::size_t cap = std::min(want, fit);
    MemoryContext build_cxt = AllocSetContextCreate(CurrentMemoryContext, "livfpq build", ALLOCSET_DEFAULT_SIZES);
    BuildCore* bc = context_owned<BuildCore>(build_cxt);
    bc->dims = dims;
    bc->metric = index_metric(index);
    bc->sample_cap = cap;

    auto* st = static_cast<BuildState*>(palloc0(sizeof(BuildState)));
    st->bc = bc;
    st->threads = threads;
    st->tmp = AllocSetContextCreate(CurrentMemoryContext, "livfpq build tuple", ALLOCSET_DEFAULT_SIZES);

    // Pass 1: the sample.
    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseSample);
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, static_cast<int64>(est_rows));
    table_index_build_scan(heap, index, info, true, true, sample_callback, st, nullptr);

    const uint64 vectors = bc->seen;
    if (cap < want && vectors > cap)
        ereport(NOTICE, (errmsg("livfpq trains on %zu sampled rows instead of %zu to stay within "
                                "maintenance_work_mem (%d MB)",
                                cap, std::min<std::size_t>(want, vectors), maintenance_work_mem / 1024),
                         errhint("Increase maintenance_work_mem for better centroids.")));
    uint32 lists = opts && opts->lists > 0 ? static_cast<uint32>(opts->lists)
                                           : static_cast<uint32>(std::max(1.0, std::round(std::sqrt(double(vectors)))));
    lists = std::min(lists, iv::kMaxLists);
    if (vectors > 0 && lists > vectors) {
        ereport(NOTICE, (errmsg("livfpq index has %u lists but the table has only %llu vectors; using %llu lists",
                                lists, static_cast<unsigned long long>(vectors),
                                static_cast<unsigned long long>(vectors))));
        lists = static_cast<uint32>(vectors);
    }
    if (vectors == 0) {
        lists = 1;
        ereport(NOTICE, (errmsg("livfpq index created on a table without vectors: its list is untrained and "
                                "scans read every row"),
                         errhint("REINDEX once the table holds data.")));
    }
    bc->meta = make_meta(index, dims, lists, pq_m, pq_bits);
    bc->meta.trained_rows = bc->sampled;

    // Training.
    LRV_GUARDED({
        iv::KMeansOptions ko;
        ko.seed = kSeed;
        ko.threads = threads;
        ko.poll = poll_interrupts;
        pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseCentroids);
        bc->centroids = iv::kmeans(bc->sample.data(), bc->sampled, dims, lists, ko);
        pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseCodebooks);
        // Residuals of the sample, in place.
        std::vector<uint32> lab(bc->sampled);
        iv::assign_nearest(bc->centroids.data(), lists, dims, bc->sample.data(), bc->sampled, lab.data(), nullptr,
                           threads, poll_interrupts);
        for (std::size_t i = 0; i < bc->sampled; i++) {
            const float* c = bc->centroids.data() + std::size_t{lab[i]} * dims;
            float* r = bc->sample.data() + i * dims;
            for (std::size_t k = 0; k < dims; k++) r[k] -= c[k];
        }
        bc->pq.reset(new iv::ProductQuantizer(dims, pq_m, static_cast<int>(pq_bits)));
        bc->pq->train(bc->sample.data(), bc->sampled, ko);
        bc->sample.clear();
        bc->sample.shrink_to_fit();
        bc->batch.resize(kBatch * dims);
        bc->placed.reserve(static_cast<std::size_t>(std::max<double>(vectors, est_rows) * 1.05) + 16);
    });

    // Pass 2: every row to its list.
    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseAssign);
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
    double heap_tuples = table_index_build_scan(heap, index, info, true, true, assign_callback, st, nullptr);
    LRV_GUARDED(bc->flush(threads, poll_interrupts));

    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, kPhaseWrite);
    WriteCore* wc = context_owned<WriteCore>(build_cxt);
    LRV_GUARDED(wc->g = group_rows(bc->placed, lists + 1));
    write_index(index, MAIN_FORKNUM, bc->meta, bc->centroids.data(), bc->pq->codebook(), bc->placed.data(),
                bc->codes.data(), wc->g.order.data(), wc->g.start.data(), wc->g.count.data(),
                bc->radius.empty() ? nullptr : bc->radius.data());
    MetaPage meta = bc->meta;
    const double index_tuples = static_cast<double>(bc->placed.size());
    MemoryContextDelete(build_cxt);
    MemoryContextDelete(st->tmp);
    return finish_build(index, &meta, sizeof meta, heap_tuples, index_tuples);
}

// Unlogged tables: the init fork holds an empty, untrained index (one list
// with a zero centroid), copied over the main fork at restart.
void build_empty(Relation index) {
    const uint32 dims = static_cast<uint32>(index_dims(index));
    auto* opts = reinterpret_cast<Options*>(index->rd_options);
    const uint32 pq_bits = opts ? static_cast<uint32>(opts->pq_bits) : 4;
    const uint32 pq_m = opts && opts->pq_m > 0 ? static_cast<uint32>(opts->pq_m) : default_pq_m(dims, pq_bits);
    check_options(index, dims, pq_m, pq_bits);
    MetaPage meta = make_meta(index, dims, 1, pq_m, pq_bits);
    const uint64 ksub = uint64{1} << pq_bits;
    auto* centroid = static_cast<float*>(palloc0(dims * sizeof(float)));
    auto* codebook = static_cast<float*>(palloc_extended(ksub * dims * sizeof(float), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO));
    const uint32 zero[2] = {0, 0};
    write_index(index, INIT_FORKNUM, meta, centroid, codebook, nullptr, nullptr, nullptr, zero, zero, nullptr);
    log_newpage_range(index, INIT_FORKNUM, 0, RelationGetNumberOfBlocksInFork(index, INIT_FORKNUM), true);
    pfree(centroid);
    pfree(codebook);
}

}  // namespace lrv::pg::livfpq
