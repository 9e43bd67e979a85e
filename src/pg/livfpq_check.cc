// libravdb_index_check and libravdb_index_info for livfpq.
//
// The check validates the metapage, the directory pages, the centroid and
// codebook pages (kind, and finite floats), then walks every list's chain:
// each page of the right kind and list, its entries valid (core's
// validate_list_page), no page reached twice, tail and count as the
// directory says. The first problem is an ERROR (XX002) naming the block.
#include "libravdb/core/ivfpq/format.h"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "guard.h"
#include "livfpq.h"

extern "C" {
#include "access/xlog.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
}

namespace lrv::pg::livfpq {

using iv::ListDirEntry;
using iv::MetaPage;

namespace {

[[noreturn]] void corrupt(Relation index, BlockNumber blk, const char* what) {
    ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                    errmsg("index \"%s\" is corrupted at block %u: %s", RelationGetRelationName(index), blk, what)));
    pg_unreachable();
}

// True when `blk` is on the chain from `head` (the chain was checked).
bool chain_has(Relation index, const MetaPage& meta, BlockNumber head, BlockNumber blk) {
    const BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    uint32 hops = 0;
    for (BlockNumber b = head; b != iv::kNoBlock && b < nblocks && hops <= nblocks; hops++) {
        if (b == blk) return true;
        Buffer buf = ReadBuffer(index, b);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        const BlockNumber next = list_header(BufferGetPage(buf))->next;
        UnlockReleaseBuffer(buf);
        b = next;
    }
    return false;
}

struct ListStats {
    uint64 entries = 0, nulls = 0, zeros = 0, pages = 0;
    uint32 min_len = UINT32_MAX, max_len = 0, empty = 0;
    double sum_sq = 0;
};

// Walks everything; raises at the first problem.
ListStats survey(Relation index, const MetaPage& meta) {
    const BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    if (meta.list_start > nblocks) corrupt(index, 0, "the metapage places lists past the end of the index");
    for (BlockNumber b = meta.dir_start; b < meta.dir_start + meta.dir_blocks; b++) {
        Buffer buf = ReadBuffer(index, b);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        check_page(index, b, BufferGetPage(buf), kMagic, kPageIvfDir);
        UnlockReleaseBuffer(buf);
    }
    for (BlockNumber b = meta.centroid_start; b < meta.list_start; b++) {
        Buffer buf = ReadBuffer(index, b);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        Page page = BufferGetPage(buf);
        check_page(index, b, page, kMagic, kPageIvfData);
        const float* f = reinterpret_cast<const float*>(page_data(page));
        bool finite = true;
        for (uint32 i = 0; i < kPageDataSize / sizeof(float); i++) finite = finite && std::isfinite(f[i]);
        UnlockReleaseBuffer(buf);
        if (!finite) corrupt(index, b, "a centroid or codebook value is not finite");
    }
    // Blocks seen in some chain: a page in two chains, or twice in one, is corrupt.
    auto* seen = static_cast<uint8*>(palloc0(nblocks));
    ListStats s;
    char why[512];
    for (uint32 list = 0; list <= meta.lists; list++) {
        CHECK_FOR_INTERRUPTS();
        const ListDirEntry e = read_dir(index, meta, list);
        uint64 count = 0;
        BlockNumber last = iv::kNoBlock;
        for (BlockNumber blk = e.head; blk != iv::kNoBlock;) {
            if (blk < meta.list_start || blk >= nblocks) {
                snprintf(why, sizeof why, "list %u links to block %u, outside the list pages", list, blk);
                corrupt(index, blk, why);
            }
            if (seen[blk]) {
                snprintf(why, sizeof why, "list %u reaches block %u a second time", list, blk);
                corrupt(index, blk, why);
            }
            seen[blk] = 1;
            Buffer buf = ReadBuffer(index, blk);
            LockBuffer(buf, BUFFER_LOCK_SHARE);
            Page page = BufferGetPage(buf);
            check_page(index, blk, page, kMagic, kPageIvfList);
            why[0] = '\0';
            uint32 n = 0;
            try {
                n = iv::validate_list_page(meta, reinterpret_cast<const uint8*>(page_data(page)), list);
            } catch (const std::exception& ex) {
                snprintf(why, sizeof why, "%s", ex.what());
            }
            for (uint32 i = 0; i < n && why[0] == '\0'; i++) {
                const uint16 f = reinterpret_cast<const iv::EntryHeader*>(list_entry(page, meta, i))->flags;
                s.nulls += f == iv::kEntryNull;
                s.zeros += f == iv::kEntryZero;
            }
            const BlockNumber next = list_header(page)->next;
            UnlockReleaseBuffer(buf);
            if (why[0] != '\0') corrupt(index, blk, why);
            count += n;
            s.pages++;
            last = blk;
            blk = next;
        }
        if (e.free_hint != iv::kNoBlock && (e.free_hint >= nblocks || !seen[e.free_hint] ||
                                            !chain_has(index, meta, e.head, e.free_hint))) {
            snprintf(why, sizeof why, "list %u's insert hint, block %u, is not a page of its chain", list, e.free_hint);
            corrupt(index, dir_block(meta, list), why);
        }
        if (e.head != iv::kNoBlock && last != e.tail) {
            snprintf(why, sizeof why, "list %u ends at block %u but the directory says %u", list, last, e.tail);
            corrupt(index, dir_block(meta, list), why);
        }
        if (count != e.count) {
            snprintf(why, sizeof why, "list %u holds %llu entries but the directory counts %u", list,
                     static_cast<unsigned long long>(count), e.count);
            corrupt(index, dir_block(meta, list), why);
        }
        s.entries += count;
        if (list < meta.lists) {
            const uint32 len = static_cast<uint32>(count);
            s.min_len = std::min(s.min_len, len);
            s.max_len = std::max(s.max_len, len);
            s.empty += len == 0;
            s.sum_sq += static_cast<double>(len) * len;
        }
    }
    pfree(seen);
    return s;
}

}  // namespace

char* check(Relation index) {
    // Writers change counts and chains page by page; a check that ran
    // beside them would compare a count with a chain from different
    // moments. ShareLock lets scans go on and makes inserts and VACUUM wait
    // (as amcheck's parent check does), until the end of the transaction.
    // A standby cannot take it; there, a check that runs while replay
    // changes the same list may report a mismatch that is gone on retry.
    if (!RecoveryInProgress()) LockRelation(index, ShareLock);  // already held when called from SQL
    const MetaPage meta = read_meta(index);
    const ListStats s = survey(index, meta);
    return psprintf("{\"am\": \"livfpq\", \"ok\": true, \"tuples\": %llu, \"lists\": %u, \"pages\": %llu}",
                    static_cast<unsigned long long>(s.entries), meta.lists,
                    static_cast<unsigned long long>(s.pages));
}

char* info(Relation index) {
    // From the directory alone (and the NULL list), so info stays cheap on a
    // big index and never waits for writers.
    const MetaPage meta = read_meta(index);
    ListStats s;
    for (uint32 list = 0; list < meta.lists; list++) {
        const uint32 len = read_dir(index, meta, list).count;
        s.entries += len;
        s.min_len = std::min(s.min_len, len);
        s.max_len = std::max(s.max_len, len);
        s.empty += len == 0;
        s.sum_sq += static_cast<double>(len) * len;
    }
    const ListDirEntry nl = read_dir(index, meta, meta.lists);
    s.entries += nl.count;
    const BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    uint32 hops = 0;
    for (BlockNumber blk = nl.head; blk != iv::kNoBlock && blk < nblocks && hops <= nblocks; hops++) {
        Buffer buf = ReadBuffer(index, blk);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
        const uint32 n = list_page_entries(index, meta, buf, blk, meta.lists);
        Page page = BufferGetPage(buf);
        for (uint32 i = 0; i < n; i++) {
            const uint16 f = reinterpret_cast<const iv::EntryHeader*>(list_entry(page, meta, i))->flags;
            s.nulls += f == iv::kEntryNull;
            s.zeros += f == iv::kEntryZero;
        }
        const BlockNumber next = list_header(page)->next;
        UnlockReleaseBuffer(buf);
        blk = next;
    }
    const BlockNumber pages = nblocks;
    const uint64 in_lists = s.entries - s.nulls - s.zeros;
    const double mean = meta.lists ? static_cast<double>(in_lists) / meta.lists : 0;
    const double var = meta.lists ? std::max(0.0, s.sum_sq / meta.lists - mean * mean) : 0;
    return psprintf(
        "{\"am\": \"livfpq\", \"dims\": %u, \"metric\": \"%s\", \"lists\": %u, \"pq_m\": %u, \"pq_bits\": %u, "
        "\"code_bytes\": %u, \"entry_bytes\": %u, \"tuples\": %llu, \"null_tuples\": %llu, \"zero_tuples\": %llu, "
        "\"list_size\": {\"min\": %u, \"max\": %u, \"mean\": %.1f, \"stddev\": %.1f, \"empty\": %u}, "
        "\"trained_rows\": %llu, \"probes\": %d, \"rerank\": %d, \"pages\": %u, \"bytes\": %llu}",
        meta.dims, core::distance::metric_name(static_cast<core::distance::Metric>(meta.metric)), meta.lists,
        meta.pq_m, meta.pq_bits, meta.code_bytes, meta.entry_size, static_cast<unsigned long long>(s.entries),
        static_cast<unsigned long long>(s.nulls), static_cast<unsigned long long>(s.zeros),
        s.min_len == UINT32_MAX ? 0 : s.min_len, s.max_len, mean, std::sqrt(var), s.empty,
        static_cast<unsigned long long>(meta.trained_rows), effective_probes(index), effective_rerank(index), pages,
        static_cast<unsigned long long>(pages) * BLCKSZ);
}

}  // namespace lrv::pg::livfpq
