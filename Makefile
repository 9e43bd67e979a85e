# LibraVDB: PGXS build of the C++17 core and the Postgres glue into one module.
#
# The core (src/core) is compiled with its own rule, without the server include
# path and with LRV_CORE defined, so it cannot include a Postgres header. The
# glue (src/pg) gets the server headers. Per-ISA kernel files get their own
# -m flags; the library itself targets baseline x86-64 and picks kernels at run
# time.

EXTENSION    = libravdb
EXTVERSION   = 0.1.0
MODULE_big   = libravdb
DATA         = sql/$(EXTENSION)--$(EXTVERSION).sql
PGFILEDESC   = "libravdb - vector search for PostgreSQL"

CORE_SRCS := $(sort $(wildcard src/core/*/*.cc))
PG_SRCS   := $(sort $(wildcard src/pg/*.cc))
OBJS       = $(CORE_SRCS:.cc=.o) $(PG_SRCS:.cc=.o)

REGRESS      = $(basename $(notdir $(sort $(wildcard sql/[0-9]*.sql))))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

# Isolation specs for concurrent sessions (test/isolation/specs/*.spec,
# expected output in test/isolation/expected/): `make installcheck` runs them
# through pg_isolation_regress after the regression suite, in a database of
# their own; results and diffs go to output_iso/.
ISOLATION      = $(basename $(notdir $(sort $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=$(EXTENSION)

SHLIB_LINK += -lstdc++ -lm
EXTRA_CLEAN = $(OBJS) $(OBJS:.o=.d)

# JIT bitcode would need clang for every C++ file and buys nothing for
# distance-heavy code that is already vectorised.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

LRV_CXXFLAGS := -std=c++17 -fPIC -O2 -g -Wall -Wextra -Wno-unused-parameter \
                -fno-math-errno -fno-trapping-math -MMD -MP -Iinclude

# Server headers still use "register", which C++17 removed.
LRV_PG_FLAGS := -Wno-register
# Eigen (header-only) does livfpq's k-means GEMM, single-threaded as
# DESIGN.md 3.8 asks and, like all of the core outside the per-ISA files,
# without -m flags. Keep in step with test/unit/CMakeLists.txt.
LRV_EIGEN_FLAGS := $(or $(shell pkg-config --cflags eigen3 2>/dev/null),-I/usr/include/eigen3) -DEIGEN_DONT_PARALLELIZE
LRV_CORE_FLAGS := $(LRV_CXXFLAGS) -DLRV_CORE -fvisibility=hidden $(LRV_EIGEN_FLAGS)

# One set of flags per level, matching what dispatch.cc checks on the CPU
# before it hands out that level's tables (the AVX2 level includes F16C for
# the fp16 kernels). Keep in step with test/unit/CMakeLists.txt.
LRV_AVX2_FLAGS   := -mavx2 -mfma -mf16c
LRV_AVX512_FLAGS := -mavx512f -mavx2 -mfma -mf16c
src/core/distance/avx2.o src/core/distance/quant_avx2.o:     LRV_ISA_FLAGS = $(LRV_AVX2_FLAGS)
src/core/distance/avx512.o src/core/distance/quant_avx512.o: LRV_ISA_FLAGS = $(LRV_AVX512_FLAGS)
src/core/ivfpq/adc_avx2.o src/core/ivfpq/nearest_avx2.o:     LRV_ISA_FLAGS = $(LRV_AVX2_FLAGS)
src/core/ivfpq/adc_avx512.o src/core/ivfpq/nearest_avx512.o: LRV_ISA_FLAGS = $(LRV_AVX512_FLAGS)

src/core/%.o: src/core/%.cc
	$(CXX) $(LRV_CORE_FLAGS) $(LRV_ISA_FLAGS) -c -o $@ $<

# Server headers are C headers; -fno-exceptions is NOT used because the glue
# catches core exceptions at every entry point (DESIGN.md section 3).
src/pg/%.o: src/pg/%.cc
	$(CXX) $(LRV_CXXFLAGS) $(LRV_PG_FLAGS) -I$(includedir_server) -I$(includedir_internal) \
	    $(filter -D%,$(CPPFLAGS)) -c -o $@ $<

-include $(OBJS:.o=.d)

.PHONY: unit
unit:
	test/unit/run.sh
