// libravdb_index_info(regclass) and libravdb_index_check(regclass): what an
// index of ours holds, and whether its pages are consistent.
#include "guard.h"
#include "lflat.h"
#include "lhnsw.h"
#include "livfpq.h"

#include "libravdb/core/quantizer.h"

extern "C" {
#include "access/relation.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "storage/lmgr.h"
}

namespace {

Oid am_oid(const char* name) { return get_index_am_oid(name, true); }

Datum to_jsonb(const char* text) { return DirectFunctionCall1(jsonb_in, CStringGetDatum(text)); }

Relation open_our_index(Oid relid) {
    Relation index = relation_open(relid, AccessShareLock);
    if (index->rd_rel->relkind != RELKIND_INDEX)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("\"%s\" is not an index", RelationGetRelationName(index))));
    const Oid am = index->rd_rel->relam;
    if (am != am_oid("lflat") && am != am_oid("lhnsw") && am != am_oid("livfpq"))
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("\"%s\" is not a LibraVDB index", RelationGetRelationName(index))));
    return index;
}

}  // namespace

LRV_FUNCTION(lrv_index_info) {
    Relation index = open_our_index(PG_GETARG_OID(0));
    Oid am = index->rd_rel->relam;
    BlockNumber pages = RelationGetNumberOfBlocks(index);
    char* json = nullptr;
    if (am == am_oid("lflat")) {
        auto meta = lrv::pg::lflat::read_meta(index);
        json = psprintf(
            "{\"am\": \"lflat\", \"dims\": %u, \"metric\": \"%s\", \"quantizer\": \"%s\", \"tuples\": %llu, "
            "\"free_slots\": %llu, \"slots\": %llu, \"entry_bytes\": %u, \"pages\": %u, \"bytes\": %llu}",
            meta.dims, lrv::core::distance::metric_name(static_cast<lrv::core::distance::Metric>(meta.metric)),
            lrv::core::quantizer_name(static_cast<lrv::core::QuantizerKind>(meta.quantizer)),
            static_cast<unsigned long long>(meta.n_live), static_cast<unsigned long long>(meta.n_free),
            static_cast<unsigned long long>(meta.n_slots), meta.entry_size, pages,
            static_cast<unsigned long long>(pages) * BLCKSZ);
    } else if (am == am_oid("livfpq")) {
        json = lrv::pg::livfpq::info(index);
    } else {
        json = lrv::pg::lhnsw::info(index);
    }
    relation_close(index, AccessShareLock);
    PG_RETURN_DATUM(to_jsonb(json));
}

LRV_FUNCTION(lrv_index_check) {
    // A check holds off writers (INSERT, VACUUM) with ShareLock, so what it
    // reads is one consistent index: without it a concurrent insert's new
    // slots and links, or entries moving between a livfpq list's pages, read
    // as corruption. Readers go on. Taken before the relation is opened, not
    // as an upgrade from AccessShareLock, which deadlocks against REINDEX
    // CONCURRENTLY. A standby takes no lock (none can be taken in recovery):
    // a check there may race replay.
    const Oid relid = PG_GETARG_OID(0);
    if (!RecoveryInProgress()) {
        HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
        if (HeapTupleIsValid(tup)) {
            const Oid relam = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relam;
            ReleaseSysCache(tup);
            if (relam == am_oid("livfpq") || relam == am_oid("lhnsw") || relam == am_oid("lflat"))
                LockRelationOid(relid, ShareLock);
        }
    }
    Relation index = open_our_index(relid);
    char* json;
    if (index->rd_rel->relam == am_oid("lflat")) {
        uint64 live = lrv::pg::lflat::check(index);
        json = psprintf("{\"am\": \"lflat\", \"ok\": true, \"tuples\": %llu}", static_cast<unsigned long long>(live));
    } else if (index->rd_rel->relam == am_oid("livfpq")) {
        json = lrv::pg::livfpq::check(index);
    } else {
        json = lrv::pg::lhnsw::check(index);
    }
    relation_close(index, AccessShareLock);
    PG_RETURN_DATUM(to_jsonb(json));
}
