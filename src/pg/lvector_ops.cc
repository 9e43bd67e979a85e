// Distances, element-wise arithmetic, norms and comparisons on lvector.
#include <cmath>

#include "guard.h"
#include "lvector.h"
#include "libravdb/core/distance.h"

using lrv::pg::LVector;
namespace dist = lrv::core::distance;

namespace {

struct Pair {
    LVector* a;
    LVector* b;
};

Pair same_dim_args(FunctionCallInfo fcinfo) {
    Pair p{LRV_GETARG_LVECTOR(0), LRV_GETARG_LVECTOR(1)};
    lrv::pg::check_same_dims(p.a, p.b);
    return p;
}

void check_overflow(const LVector* r) {
    for (int i = 0; i < r->dim; i++)
        if (std::isinf(r->x[i]))
            ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("value out of range: overflow")));
}

}  // namespace

LRV_FUNCTION(lrv_l2_distance) {
    Pair p = same_dim_args(fcinfo);
    PG_RETURN_FLOAT8(std::sqrt(static_cast<double>(dist::l2_squared(p.a->x, p.b->x, p.a->dim))));
}

LRV_FUNCTION(lrv_l2_squared_distance) {
    Pair p = same_dim_args(fcinfo);
    PG_RETURN_FLOAT8(static_cast<double>(dist::l2_squared(p.a->x, p.b->x, p.a->dim)));
}

LRV_FUNCTION(lrv_inner_product) {
    Pair p = same_dim_args(fcinfo);
    PG_RETURN_FLOAT8(static_cast<double>(dist::inner_product(p.a->x, p.b->x, p.a->dim)));
}

LRV_FUNCTION(lrv_negative_inner_product) {
    Pair p = same_dim_args(fcinfo);
    PG_RETURN_FLOAT8(-static_cast<double>(dist::inner_product(p.a->x, p.b->x, p.a->dim)));
}

LRV_FUNCTION(lrv_cosine_distance) {
    Pair p = same_dim_args(fcinfo);
    PG_RETURN_FLOAT8(static_cast<double>(dist::cosine_distance(p.a->x, p.b->x, p.a->dim)));
}

LRV_FUNCTION(lrv_l1_distance) {
    Pair p = same_dim_args(fcinfo);
    PG_RETURN_FLOAT8(static_cast<double>(dist::l1(p.a->x, p.b->x, p.a->dim)));
}

LRV_FUNCTION(lrv_lvector_dims) {
    LVector* v = LRV_GETARG_LVECTOR(0);
    PG_RETURN_INT32(v->dim);
}

// Norms are summed in double: users compare them against exact expectations.
LRV_FUNCTION(lrv_lvector_norm) {
    LVector* v = LRV_GETARG_LVECTOR(0);
    double s = 0;
    for (int i = 0; i < v->dim; i++) s += static_cast<double>(v->x[i]) * v->x[i];
    PG_RETURN_FLOAT8(std::sqrt(s));
}

// A zero vector has no direction; it is returned unchanged rather than
// divided by zero, as pgvector does.
LRV_FUNCTION(lrv_l2_normalize) {
    LVector* v = LRV_GETARG_LVECTOR(0);
    LVector* r = lrv::pg::lvector_new(v->dim);
    double s = 0;
    for (int i = 0; i < v->dim; i++) s += static_cast<double>(v->x[i]) * v->x[i];
    if (s > 0) {
        double norm = std::sqrt(s);
        for (int i = 0; i < v->dim; i++) r->x[i] = static_cast<float>(v->x[i] / norm);
        check_overflow(r);
    }
    LRV_RETURN_LVECTOR(r);
}

// subvector(v, start, count): `count` elements from 1-based position `start`,
// clipped to the vector like substring() clips to a string.
LRV_FUNCTION(lrv_subvector) {
    LVector* v = LRV_GETARG_LVECTOR(0);
    int64 start = PG_GETARG_INT32(1);
    int64 count = PG_GETARG_INT32(2);
    if (count < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("negative subvector length not allowed")));
    int64 end = start + count;  // exclusive, in 64 bits so it cannot overflow
    if (start < 1) start = 1;
    if (end > static_cast<int64>(v->dim) + 1) end = static_cast<int64>(v->dim) + 1;
    int64 n = end - start;
    if (n < 1)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("lvector must have at least 1 dimension")));
    LVector* r = lrv::pg::lvector_new(static_cast<int>(n));
    memcpy(r->x, v->x + (start - 1), sizeof(float) * n);
    LRV_RETURN_LVECTOR(r);
}

LRV_FUNCTION(lrv_lvector_add) {
    Pair p = same_dim_args(fcinfo);
    LVector* r = lrv::pg::lvector_new(p.a->dim);
    for (int i = 0; i < r->dim; i++) r->x[i] = p.a->x[i] + p.b->x[i];
    check_overflow(r);
    LRV_RETURN_LVECTOR(r);
}

LRV_FUNCTION(lrv_lvector_sub) {
    Pair p = same_dim_args(fcinfo);
    LVector* r = lrv::pg::lvector_new(p.a->dim);
    for (int i = 0; i < r->dim; i++) r->x[i] = p.a->x[i] - p.b->x[i];
    check_overflow(r);
    LRV_RETURN_LVECTOR(r);
}

LRV_FUNCTION(lrv_lvector_mul) {
    Pair p = same_dim_args(fcinfo);
    LVector* r = lrv::pg::lvector_new(p.a->dim);
    for (int i = 0; i < r->dim; i++) r->x[i] = p.a->x[i] * p.b->x[i];
    check_overflow(r);
    LRV_RETURN_LVECTOR(r);
}

LRV_FUNCTION(lrv_lvector_concat) {
    LVector* a = LRV_GETARG_LVECTOR(0);
    LVector* b = LRV_GETARG_LVECTOR(1);
    LVector* r = lrv::pg::lvector_new(a->dim + b->dim);
    memcpy(r->x, a->x, sizeof(float) * a->dim);
    memcpy(r->x + a->dim, b->x, sizeof(float) * b->dim);
    LRV_RETURN_LVECTOR(r);
}

// Total order for btree: element by element, then the shorter vector first.
static int lvector_compare(const LVector* a, const LVector* b) {
    int n = a->dim < b->dim ? a->dim : b->dim;
    for (int i = 0; i < n; i++) {
        if (a->x[i] < b->x[i]) return -1;
        if (a->x[i] > b->x[i]) return 1;
    }
    if (a->dim != b->dim) return a->dim < b->dim ? -1 : 1;
    return 0;
}

#define LRV_COMPARISON(name, expr)                                    \
    LRV_FUNCTION(name) {                                              \
        int c = lvector_compare(LRV_GETARG_LVECTOR(0), LRV_GETARG_LVECTOR(1)); \
        PG_RETURN_BOOL(expr);                                         \
    }

LRV_COMPARISON(lrv_lvector_lt, c < 0)
LRV_COMPARISON(lrv_lvector_le, c <= 0)
LRV_COMPARISON(lrv_lvector_eq, c == 0)
LRV_COMPARISON(lrv_lvector_ne, c != 0)
LRV_COMPARISON(lrv_lvector_ge, c >= 0)
LRV_COMPARISON(lrv_lvector_gt, c > 0)

LRV_FUNCTION(lrv_lvector_cmp) {
    PG_RETURN_INT32(lvector_compare(LRV_GETARG_LVECTOR(0), LRV_GETARG_LVECTOR(1)));
}
