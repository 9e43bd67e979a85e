// Casts between lvector and one-dimensional arrays of real, double precision,
// integer and numeric.
#include <cmath>

#include "guard.h"
#include "lvector.h"

using lrv::pg::LVector;

namespace {

float element_to_float(Datum d, Oid type) {
    switch (type) {
        case INT4OID:
            return static_cast<float>(DatumGetInt32(d));
        case FLOAT4OID:
            return DatumGetFloat4(d);
        case FLOAT8OID: {
            double v = DatumGetFloat8(d);
            float f = static_cast<float>(v);
            if (std::isinf(f) && !std::isinf(v))
                ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("value out of range: overflow")));
            return f;
        }
        case NUMERICOID:
            return DatumGetFloat4(DirectFunctionCall1(numeric_float4, d));
    }
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("cannot cast an array of type %s to lvector", format_type_be(type))));
    pg_unreachable();
}

Datum lvector_to_array(FunctionCallInfo fcinfo, Oid elemtype) {
    LVector* v = LRV_GETARG_LVECTOR(0);
    Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * v->dim));
    for (int i = 0; i < v->dim; i++) {
        float f = v->x[i];
        switch (elemtype) {
            case FLOAT4OID:
                elems[i] = Float4GetDatum(f);
                break;
            case FLOAT8OID:
                elems[i] = Float8GetDatum(static_cast<double>(f));
                break;
            case INT4OID: {
                double r = std::rint(static_cast<double>(f));
                if (r < PG_INT32_MIN || r > PG_INT32_MAX)
                    ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("integer out of range")));
                elems[i] = Int32GetDatum(static_cast<int32>(r));
                break;
            }
            case NUMERICOID:
                elems[i] = DirectFunctionCall1(float4_numeric, Float4GetDatum(f));
                break;
        }
    }
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
    ArrayType* result = construct_array(elems, v->dim, elemtype, typlen, typbyval, typalign);
    PG_RETURN_POINTER(result);
}

}  // namespace

// array_to_lvector(anyarray, typmod, explicit): backs the casts from real[],
// double precision[], integer[] and numeric[].
LRV_FUNCTION(lrv_array_to_lvector) {
    ArrayType* array = PG_GETARG_ARRAYTYPE_P(0);
    int32 typmod = PG_GETARG_INT32(1);

    if (ARR_NDIM(array) > 1)
        ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("array must be 1-D")));
    if (ARR_HASNULL(array) && array_contains_nulls(array))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("array must not contain nulls")));

    Oid elemtype = ARR_ELEMTYPE(array);
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
    Datum* elems;
    int n;
    deconstruct_array(array, elemtype, typlen, typbyval, typalign, &elems, nullptr, &n);

    lrv::pg::check_dim_count(n);
    lrv::pg::check_typmod(typmod, n);
    LVector* v = lrv::pg::lvector_new(n);
    for (int i = 0; i < n; i++) {
        v->x[i] = element_to_float(elems[i], elemtype);
        lrv::pg::check_element(v->x[i]);
    }
    LRV_RETURN_LVECTOR(v);
}

LRV_FUNCTION(lrv_lvector_to_float4) { return lvector_to_array(fcinfo, FLOAT4OID); }
LRV_FUNCTION(lrv_lvector_to_float8) { return lvector_to_array(fcinfo, FLOAT8OID); }
LRV_FUNCTION(lrv_lvector_to_int4) { return lvector_to_array(fcinfo, INT4OID); }
LRV_FUNCTION(lrv_lvector_to_numeric) { return lvector_to_array(fcinfo, NUMERICOID); }
