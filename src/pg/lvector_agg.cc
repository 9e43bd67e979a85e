// avg(lvector) and sum(lvector) share one transition state: a float8[] of
// {count, sum_1, ..., sum_n}. Summing in double keeps long sums from drifting
// and makes the result independent of how parallel workers split the rows.
#include <cmath>

#include "guard.h"
#include "lvector.h"

using lrv::pg::LVector;

namespace {

double* state_values(ArrayType* a, int* n) {
    if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID || ARR_DIMS(a)[0] < 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid lvector aggregate state")));
    *n = ARR_DIMS(a)[0];
    return reinterpret_cast<double*>(ARR_DATA_PTR(a));
}

ArrayType* new_state(int dim) {
    Datum* zeros = static_cast<Datum*>(palloc(sizeof(Datum) * (dim + 1)));
    for (int i = 0; i <= dim; i++) zeros[i] = Float8GetDatum(0.0);
    return construct_array(zeros, dim + 1, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

void check_state_dims(int have, int want) {
    if (have != want)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("different lvector dimensions %d and %d", have, want)));
}

}  // namespace

// Modifies the state in place when called as an aggregate (the state is ours,
// in the aggregate's memory context), as float8_accum does; otherwise copies.
LRV_FUNCTION(lrv_lvector_accum) {
    ArrayType* state = PG_GETARG_ARRAYTYPE_P(0);
    LVector* v = LRV_GETARG_LVECTOR(1);
    int n;
    double* s = state_values(state, &n);
    if (s[0] == 0 && n == 1) {
        state = new_state(v->dim);
        s = state_values(state, &n);
    } else {
        check_state_dims(n - 1, v->dim);
        if (!AggCheckCallContext(fcinfo, nullptr)) {
            state = reinterpret_cast<ArrayType*>(PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(0)));
            s = state_values(state, &n);
        }
    }
    s[0] += 1;
    for (int i = 0; i < v->dim; i++) s[i + 1] += v->x[i];
    PG_RETURN_ARRAYTYPE_P(state);
}

LRV_FUNCTION(lrv_lvector_combine) {
    ArrayType* a = PG_GETARG_ARRAYTYPE_P(0);
    ArrayType* b = PG_GETARG_ARRAYTYPE_P(1);
    int na, nb;
    double* sa = state_values(a, &na);
    double* sb = state_values(b, &nb);
    if (sb[0] == 0) PG_RETURN_ARRAYTYPE_P(a);
    if (sa[0] == 0) PG_RETURN_ARRAYTYPE_P(b);
    check_state_dims(na - 1, nb - 1);
    ArrayType* r = new_state(na - 1);
    int nr;
    double* sr = state_values(r, &nr);
    for (int i = 0; i < na; i++) sr[i] = sa[i] + sb[i];
    PG_RETURN_ARRAYTYPE_P(r);
}

static Datum finish(FunctionCallInfo fcinfo, bool average) {
    ArrayType* state = PG_GETARG_ARRAYTYPE_P(0);
    int n;
    double* s = state_values(state, &n);
    if (s[0] == 0) PG_RETURN_NULL();
    LVector* r = lrv::pg::lvector_new(n - 1);
    for (int i = 1; i < n; i++) {
        r->x[i - 1] = static_cast<float>(average ? s[i] / s[0] : s[i]);
        if (std::isinf(r->x[i - 1]))
            ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("value out of range: overflow")));
    }
    LRV_RETURN_LVECTOR(r);
}

LRV_FUNCTION(lrv_lvector_avg) { return finish(fcinfo, true); }
LRV_FUNCTION(lrv_lvector_sum) { return finish(fcinfo, false); }
