// The one place the glue includes Postgres headers. They are C headers without
// C++ linkage guards, so they are wrapped here once.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/float.h"
#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "common/shortest_dec.h"
#include "miscadmin.h"
}

// PG_FUNCTION_INFO_V1 marks functions PGDLLEXPORT, which only carries a
// visibility attribute from PG 16 on; spell it out so -fvisibility=hidden
// builds keep every SQL-callable symbol visible on older servers too.
#define LRV_EXPORT __attribute__((visibility("default")))
