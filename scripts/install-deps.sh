#!/usr/bin/env bash
# Installs, by Debian package name, everything the build, the tests and the
# benchmarks use. Safe to run again; skips apt when everything is present.
set -euo pipefail

PKGS=(
  build-essential g++ make cmake pkg-config
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  libeigen3-dev                       # k-means / PQ training in the core
  libgtest-dev libbenchmark-dev       # core unit tests, kernel microbenchmarks
  clang libclang-rt-dev               # libFuzzer targets (test/fuzz): clang++ and its fuzzer/ASan runtimes
  postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl  # pgTAP + pg_prove
  libipc-run-perl                     # PostgreSQL::Test::Cluster TAP tests
  dataset-fashion-mnist               # the real data set for the demo and bench
  python3 python3-numpy python3-psycopg  # data loading and bench harness
)
[ "${LIBRAVDB_BENCH_EXTRAS:-0}" = 1 ] && PKGS+=(python3-matplotlib python3-hnswlib python3-faiss)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
