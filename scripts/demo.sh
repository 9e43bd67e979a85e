#!/usr/bin/env bash
# LibraVDB in two minutes: on a fresh Debian 12 machine, installs what is
# needed, builds and installs the extension, starts a throwaway PostgreSQL 15
# in a temporary directory, loads Fashion-MNIST (60000 x 784) into a table with
# an lvector column, runs k-NN queries (L2, cosine, inner product, filtered)
# with their timings and an EXPLAIN ANALYZE, then stops the server.
#
#   bash scripts/demo.sh
#
# Run as root or as a user with sudo (apt-get and make install need it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$SECONDS

echo "== installing dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh

echo "== building (make -j2) and installing the extension"
make -j2 >/dev/null
if [ "$(id -u)" -eq 0 ]; then make install >/dev/null; else sudo make install >/dev/null; fi

# shellcheck source=pgcluster.sh
source scripts/pgcluster.sh
DIR="$(mktemp -d /tmp/libravdb-demo.XXXXXX)"
PORT="${LIBRAVDB_DEMO_PORT:-$((50000 + RANDOM % 5000))}"
cleanup() {
  lrv_cluster_stop "$DIR" || true
  if lrv_cluster_check_log "$DIR" >/dev/null; then
    rm -rf "$DIR"
  else
    echo "the server crashed; its log is kept at $DIR/server.log" >&2
  fi
}
trap cleanup EXIT

echo "== starting a throwaway PostgreSQL 15 in $DIR (port $PORT)"
lrv_cluster_start "$DIR" "$PORT" shared_buffers=1GB maintenance_work_mem=512MB jit=off \
  max_parallel_workers_per_gather=0

/usr/bin/python3 bench/demo.py

echo
echo "== done in $((SECONDS - START)) s; stopping the server and removing $DIR"
