#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz (clang++, ASan + UBSan, in
# build/fuzz) and runs them.
#
#   test/fuzz/run.sh                  bounded: each target a fixed number of runs
#                                     (what test/run_all.sh's fuzz suite runs)
#   test/fuzz/run.sh --long 600       each target for 600 seconds, keeping what it
#                                     finds in build/fuzz/corpus/<target>/
#   test/fuzz/run.sh --runs 100000    bounded, with another run count
#   test/fuzz/run.sh --seeds          rewrite test/fuzz/corpus/ from the targets'
#                                     own seed writers
#   test/fuzz/run.sh ... flat_page    only the targets named (without _fuzz)
#
# Targets (one per *_fuzz.cc, each file says what it checks): vector_text,
# vector_binary, flat_page, hnsw_page, hnsw_build, ivfpq_page. Inputs come
# from test/fuzz/corpus/<target>/ (seeds) and test/fuzz/regressions/<target>/
# (inputs that once failed; keep them forever). Two targets run at a time.
#
# A failing input is saved as build/fuzz/artifacts/<target>-crash-<sha1> (or
# -timeout-, -oom-); rerun it alone with  build/fuzz/<target>_fuzz FILE.
# Bounded runs use a fixed libFuzzer seed (LRV_FUZZ_SEED, default 1), so CI
# sees the same inputs every time; long runs use a random one.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 1
SRC=test/fuzz
BUILD=build/fuzz
ALL_TARGETS=(vector_text vector_binary flat_page hnsw_page hnsw_build ivfpq_page)

# Bounded runs per target: a few seconds each on one core (about 30 s for all
# six, two at a time, after a first build of about 40 s). hnsw_build builds a
# graph per input, so it gets fewer.
declare -A RUNS=([vector_text]=200000 [vector_binary]=200000 [flat_page]=200000 [hnsw_page]=200000
                 [hnsw_build]=4000 [ivfpq_page]=200000)
# Largest input per target: one or two 8 kB pages for the page decoders.
declare -A MAXLEN=([vector_text]=4096 [vector_binary]=4096 [flat_page]=20000 [hnsw_page]=20000
                   [hnsw_build]=4096 [ivfpq_page]=8300)

mode=bounded
long_secs=0
runs_override=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --long) mode=long; long_secs="${2:?--long needs seconds per target}"; shift 2 ;;
    --runs) runs_override="${2:?--runs needs a number}"; shift 2 ;;
    --seeds) mode=seeds; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [ -f "$SRC/${t}_fuzz.cc" ] || { echo "no target $t (no $SRC/${t}_fuzz.cc)" >&2; exit 2; }
done

CXX="${LRV_FUZZ_CXX:-clang++}"
command -v "$CXX" >/dev/null || { echo "$CXX not found (scripts/install-deps.sh installs clang)" >&2; exit 1; }

echo "building the fuzz targets in $BUILD ($CXX)"
mkdir -p "$BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX" >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" -j2 >"$BUILD/build.log" 2>&1 || { tail -n 60 "$BUILD/build.log"; exit 1; }

if [ "$mode" = seeds ]; then
  mkdir -p "$SRC/corpus"
  for t in "${targets[@]}"; do
    rm -rf "${SRC:?}/corpus/$t"
    LRV_FUZZ_WRITE_SEEDS="$SRC/corpus/$t" "$BUILD/${t}_fuzz" || exit 1
  done
  exit 0
fi

mkdir -p "$BUILD/artifacts" "$BUILD/logs"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# ASan: no leak checking (the targets keep per-process caches); UBSan is
# already fatal by compile flags, print its stack too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# run_target NAME: runs one target, writes its log, prints one line.
run_target() {
  local t="$1" log="$BUILD/logs/$1.log" corpus dirs=() args=() rc t0=$SECONDS
  if [ "$mode" = long ]; then
    corpus="$BUILD/corpus/$t"   # grows across long runs
    args=(-max_total_time="$long_secs" -timeout=25)
  else
    corpus="$WORK/$t"           # new inputs of a bounded run are thrown away
    args=(-runs="${runs_override:-${RUNS[$t]}}" -seed="${LRV_FUZZ_SEED:-1}" -timeout=10)
  fi
  mkdir -p "$corpus"
  dirs=("$corpus" "$SRC/corpus/$t")
  [ -d "$SRC/regressions/$t" ] && dirs+=("$SRC/regressions/$t")
  "$BUILD/${t}_fuzz" "${args[@]}" -max_len="${MAXLEN[$t]}" -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$t-" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  local execs cov
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -1)"
  if [ $rc -eq 0 ]; then
    printf '  ok    %-14s %8s inputs in %4ss, %s\n' "$t" "${execs:-?}" $((SECONDS - t0)) "${cov:-cov: ?}"
  else
    printf '  FAIL  %-14s exit %s after %ss; log %s\n' "$t" "$rc" $((SECONDS - t0)) "$log"
    grep -E 'lrv fuzz check failed|ERROR: (Address|Undefined|Leak)Sanitizer|runtime error|ERROR: libFuzzer|Test unit written to' "$log" | head -n 6 | sed 's/^/        /'
    local art
    art="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
    [ -n "$art" ] && echo "        reproduce: $BUILD/${t}_fuzz $art"
  fi
  return $rc
}

if [ "$mode" = long ]; then
  echo "fuzzing ${#targets[@]} targets for ${long_secs}s each, two at a time (logs in $BUILD/logs/)"
else
  echo "fuzzing ${#targets[@]} targets, bounded runs, two at a time (logs in $BUILD/logs/)"
fi

# Two at a time: start the next target as soon as one of the two finishes.
declare -A PID_OF=()
failed=0
passed=0
start=$SECONDS
reap_one() {
  local pid
  wait -n -p pid "${!PID_OF[@]}" 2>/dev/null
  local rc=$?
  if [ -z "${pid:-}" ]; then return; fi
  if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  unset "PID_OF[$pid]"
}
for t in "${targets[@]}"; do
  while [ ${#PID_OF[@]} -ge 2 ]; do reap_one; done
  run_target "$t" &
  PID_OF[$!]=$t
done
while [ ${#PID_OF[@]} -gt 0 ]; do reap_one; done

echo "fuzz: ${#targets[@]} targets, $passed passed, $failed failed in $((SECONDS - start))s"
[ $failed -eq 0 ]
