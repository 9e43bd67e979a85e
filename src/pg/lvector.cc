// Shared helpers of the lvector functions, and module initialisation.
#include "lvector.h"

#include <cmath>

#include "am_common.h"
#include "guard.h"
#include "lhnsw.h"
#include "livfpq.h"

extern "C" {
#include "utils/guc.h"
}
#include "libravdb/core/distance.h"

extern "C" {
PG_MODULE_MAGIC;
LRV_EXPORT void _PG_init(void);
}

static bool keep_vectors_inline = true;

void _PG_init(void) {
    lrv::pg::register_am_options();
    lrv::pg::lhnsw::register_gucs();
    lrv::pg::livfpq::register_gucs();
    // Read by the libravdb_keep_vectors_inline event trigger (see the
    // extension script); defined here so SET validates it and SHOW lists it.
    DefineCustomBoolVariable("libravdb.keep_vectors_inline",
                             "New tables with lvector columns keep rows up to a page inline and uncompressed.",
                             "Sets toast_tuple_target = 8160 on tables that get an lvector column.",
                             &keep_vectors_inline, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
#if PG_VERSION_NUM >= 150000
    MarkGUCPrefixReserved("libravdb");
#else
    EmitWarningsOnPlaceholders("libravdb");
#endif
}

namespace lrv::pg {

LVector* lvector_new(int dim) {
    check_dim_count(dim);
    Size size = lvector_size(dim);
    auto* v = static_cast<LVector*>(palloc0(size));
    SET_VARSIZE(v, size);
    v->dim = static_cast<uint16>(dim);
    return v;
}

void check_dim_count(int dim) {
    if (dim < 1)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("lvector must have at least 1 dimension")));
    if (dim > static_cast<int>(core::kMaxDims))
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("lvector cannot have more than %d dimensions", static_cast<int>(core::kMaxDims))));
}

void check_same_dims(const LVector* a, const LVector* b) {
    if (a->dim != b->dim)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("different lvector dimensions %d and %d", a->dim, b->dim)));
}

void check_typmod(int32 typmod, int dim) {
    if (typmod >= 0 && typmod != dim)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("expected %d dimensions, not %d", typmod, dim)));
}

void check_element(float value) {
    if (std::isnan(value))
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("NaN not allowed in lvector")));
    if (std::isinf(value))
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("infinite value not allowed in lvector")));
}

}  // namespace lrv::pg

// The kernel level chosen for this CPU, for users checking their install.
LRV_FUNCTION(lrv_simd_level) {
    PG_RETURN_TEXT_P(cstring_to_text(lrv::core::distance::best().name));
}
