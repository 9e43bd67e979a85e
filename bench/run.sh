#!/usr/bin/env bash
# One command for the LibraVDB benchmarks: installs what they need, builds and
# installs the extension, starts a throwaway PostgreSQL 15 with recorded
# settings, runs bench/run.py with the given arguments, and stops the server.
#
#   bash bench/run.sh                      # every exact-scan target on Fashion-MNIST
#   bash bench/run.sh --quick              # 10k rows, 50 queries
#   bash bench/run.sh --dataset clustered:100k:128 --targets 'lvector-*'
#   bash bench/run.sh --targets 'lvector-lhnsw-*' --with-baselines   # lhnsw vs pgvector HNSW and hnswlib
#
# pgvector is compared when its extension ("vector") is installed in this
# PostgreSQL; the harness says so when it is not. LIBRAVDB_BENCH_SKIP_BUILD=1
# skips the dependency install and the build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${LIBRAVDB_BENCH_SKIP_BUILD:-0}" != 1 ]; then
  LIBRAVDB_BENCH_EXTRAS=1 bash scripts/install-deps.sh
  make -j2 >/dev/null
  if [ "$(id -u)" -eq 0 ]; then make install >/dev/null; else sudo make install >/dev/null; fi
  export LIBRAVDB_BENCH_BUILD="built and installed by run.sh from this tree"
else
  # The report says so: the installed build may come from another tree.
  export LIBRAVDB_BENCH_BUILD="installed before the run (LIBRAVDB_BENCH_SKIP_BUILD=1)"
fi

# Settings recorded in every report header. One worker per gather is off so
# each query runs on one core and latency is per query, not per machine.
SETTINGS=(
  shared_buffers=2GB
  maintenance_work_mem=1GB
  max_parallel_maintenance_workers=1
  max_parallel_workers_per_gather=0
  jit=off
  max_wal_size=8GB        # no checkpoint storms while loading
)

# shellcheck source=../scripts/pgcluster.sh
source scripts/pgcluster.sh
DIR="$(mktemp -d /tmp/libravdb-bench.XXXXXX)"
PORT="${LIBRAVDB_BENCH_PORT:-$((55000 + RANDOM % 5000))}"
cleanup() {
  lrv_cluster_stop "$DIR" || true
  if ! lrv_cluster_check_log "$DIR" >/dev/null; then
    echo "the server crashed during the run; its log is kept at $DIR/server.log" >&2
  else
    rm -rf "$DIR"
  fi
}
trap cleanup EXIT
echo "starting a throwaway server in $DIR on port $PORT with: ${SETTINGS[*]}"
lrv_cluster_start "$DIR" "$PORT" "${SETTINGS[@]}"

/usr/bin/python3 bench/run.py "$@"
