// lvector input and output: text ("[1,2.5,-3]"), binary send/recv, the type
// modifier (dimension count) and the typmod-enforcing cast.
#include "guard.h"
#include "lvector.h"
#include "libravdb/core/vector_text.h"

using lrv::pg::LVector;

LRV_FUNCTION(lrv_lvector_in) {
    const char* text = PG_GETARG_CSTRING(0);
    int32 typmod = PG_GETARG_INT32(2);

    std::size_t cap = lrv::core::vector_text_max_elements(text);
    if (cap > lrv::core::kMaxDims) cap = lrv::core::kMaxDims;
    float* buf = static_cast<float*>(palloc(sizeof(float) * cap));
    int dim = static_cast<int>(lrv::core::parse_vector_text(text, buf, cap, lrv::pg::kTypeName));

    lrv::pg::check_typmod(typmod, dim);
    LVector* v = lrv::pg::lvector_new(dim);
    memcpy(v->x, buf, sizeof(float) * dim);
    pfree(buf);
    LRV_RETURN_LVECTOR(v);
}

LRV_FUNCTION(lrv_lvector_out) {
    LVector* v = LRV_GETARG_LVECTOR(0);
    int dim = v->dim;
    // Each element needs at most FLOAT_SHORTEST_DECIMAL_LEN - 1 characters plus a comma.
    char* out = static_cast<char*>(palloc(static_cast<Size>(FLOAT_SHORTEST_DECIMAL_LEN) * dim + 2));
    char* p = out;
    *p++ = '[';
    for (int i = 0; i < dim; i++) {
        if (i > 0) *p++ = ',';
        p += float_to_shortest_decimal_bufn(v->x[i], p);
    }
    *p++ = ']';
    *p = '\0';
    PG_FREE_IF_COPY(v, 0);
    PG_RETURN_CSTRING(out);
}

LRV_FUNCTION(lrv_lvector_typmod_in) {
    ArrayType* ta = PG_GETARG_ARRAYTYPE_P(0);
    int n;
    int32* tl = ArrayGetIntegerTypmods(ta, &n);
    if (n != 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid type modifier"),
                        errhint("lvector takes one modifier, the number of dimensions.")));
    if (*tl < 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("dimensions for type lvector must be at least 1")));
    if (*tl > static_cast<int32>(lrv::core::kMaxDims))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("dimensions for type lvector cannot exceed %d", static_cast<int>(lrv::core::kMaxDims))));
    PG_RETURN_INT32(*tl);
}

LRV_FUNCTION(lrv_lvector_typmod_out) {
    int32 typmod = PG_GETARG_INT32(0);
    if (typmod < 0) PG_RETURN_CSTRING(pstrdup(""));
    PG_RETURN_CSTRING(psprintf("(%d)", typmod));
}

// Binary form: int16 dimension count, int16 reserved (0), then float4 elements
// in network byte order -- the same as pgvector's, so drivers that speak one
// speak the other.
LRV_FUNCTION(lrv_lvector_recv) {
    StringInfo buf = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
    int32 typmod = PG_GETARG_INT32(2);

    if (buf->len - buf->cursor < 4)
        ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
                        errmsg("invalid binary lvector: header is truncated")));
    int dim = pq_getmsgint(buf, sizeof(int16));
    int unused = pq_getmsgint(buf, sizeof(int16));
    if (unused != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
                        errmsg("invalid binary lvector: reserved field is %d, expected 0", unused)));
    lrv::pg::check_dim_count(dim);
    if (buf->len - buf->cursor != static_cast<int>(sizeof(float)) * dim)
        ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
                        errmsg("invalid binary lvector: %d dimensions need %d bytes of data, got %d", dim,
                               static_cast<int>(sizeof(float)) * dim, buf->len - buf->cursor)));
    lrv::pg::check_typmod(typmod, dim);

    LVector* v = lrv::pg::lvector_new(dim);
    for (int i = 0; i < dim; i++) {
        v->x[i] = pq_getmsgfloat4(buf);
        lrv::pg::check_element(v->x[i]);
    }
    LRV_RETURN_LVECTOR(v);
}

LRV_FUNCTION(lrv_lvector_send) {
    LVector* v = LRV_GETARG_LVECTOR(0);
    StringInfoData buf;
    pq_begintypsend(&buf);
    pq_sendint(&buf, v->dim, sizeof(int16));
    pq_sendint(&buf, v->unused, sizeof(int16));
    for (int i = 0; i < v->dim; i++) pq_sendfloat4(&buf, v->x[i]);
    PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

// lvector(lvector, typmod, explicit): the cast that enforces lvector(n).
LRV_FUNCTION(lrv_lvector_typmod_cast) {
    LVector* v = LRV_GETARG_LVECTOR(0);
    lrv::pg::check_typmod(PG_GETARG_INT32(1), v->dim);
    LRV_RETURN_LVECTOR(v);
}
