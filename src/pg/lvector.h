// The lvector datum: a varlena header, the dimension count and the float4
// elements, laid out like pgvector's vector so the binary form is familiar.
#pragma once

#include "pg.h"

#include "libravdb/core/limits.h"

namespace lrv::pg {

struct LVector {
    int32 vl_len_;  // varlena header (do not touch directly)
    uint16 dim;
    uint16 unused;  // always 0; reserved for flags
    float x[];
};
static_assert(offsetof(LVector, x) == 8, "lvector header is 8 bytes");

constexpr const char* kTypeName = "lvector";

inline Size lvector_size(int dim) { return offsetof(LVector, x) + sizeof(float) * static_cast<Size>(dim); }

// palloc0 a vector of `dim` elements with its header set.
LVector* lvector_new(int dim);

inline LVector* datum_to_lvector(Datum d) { return reinterpret_cast<LVector*>(PG_DETOAST_DATUM(d)); }

// ereport(ERROR) helpers shared by every lvector function.
void check_dim_count(int dim);                          // 1..kMaxDims
void check_same_dims(const LVector* a, const LVector* b);  // 22000
void check_typmod(int32 typmod, int dim);               // 22000 when typmod >= 0 and differs
void check_element(float value);                        // NaN/Inf -> 22000

}  // namespace lrv::pg

#define LRV_GETARG_LVECTOR(n) (lrv::pg::datum_to_lvector(PG_GETARG_DATUM(n)))
#define LRV_RETURN_LVECTOR(v) PG_RETURN_POINTER(v)
