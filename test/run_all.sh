#!/usr/bin/env bash
# LibraVDB's whole test suite, the one command CI runs:
#
#   bash test/run_all.sh
#
# Runs from any directory, as root (CI) or as a user with sudo, on a clean
# clone with no server running. Suites, in order:
#
#   deps     scripts/install-deps.sh (apt; a no-op when everything is there)
#   build    make -j2 && make install (sudo when not root)
#   unit     test/unit/run.sh: GoogleTest on the C++ core, no Postgres
#   fuzz     test/fuzz/run.sh: libFuzzer targets (clang, ASan + UBSan) on the
#            core's input parsers and page decoders, a bounded number of runs
#   server   a throwaway cluster (scripts/pgcluster.sh) in a mktemp -d dir, free port
#   regress  make installcheck: pg_regress on sql/[0-9]*.sql against that cluster,
#            then pg_isolation_regress on test/isolation/specs/*.spec
#   pgtap    pg_prove test/pgtap/*.sql: the catalog contract
#   tap      prove test/t/*.pl: PostgreSQL::Test::Cluster (crash recovery, ...)
#   bench    bench/tests/run.sh if present: the bench logic on tiny data
#   crashes  no server log (the cluster's, every TAP node's) shows a crash
#
# Every suite runs even when an earlier one failed, unless it cannot (no build,
# no server). Logs end up in tmp_check/log/ at the top of the repository.
# The last line is "N passed, N failed"; the exit status is non-zero if any
# suite failed.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
LOGDIR="$ROOT/tmp_check/log"   # collected server logs, kept after the run
WORK="$(mktemp -d)"            # suite outputs; removed at exit
CLUSTER_DIR=""                 # the throwaway cluster (its own mktemp -d)
TAP_DIR=""                     # TESTDIR of the Perl TAP tests (its own mktemp -d)
START=$SECONDS

declare -a S_NAME=() S_STATUS=() S_TIME=() S_NOTE=()
declare -A STATUS=()

# ---------------------------------------------------------------------------
# Bookkeeping

banner() { printf '\n======== %s ========\n' "$*"; }

record() { # name status seconds note
  S_NAME+=("$1"); S_STATUS+=("$2"); S_TIME+=("$3"); S_NOTE+=("$4"); STATUS[$1]=$2
}

# run_suite NAME SUMMARY_REGEX COMMAND...: streams the command's output, keeps a
# copy, and records PASS/FAIL with the last line that matches SUMMARY_REGEX.
run_suite() {
  local name="$1" summary_re="$2"
  shift 2
  banner "$name: $*"
  local t0=$SECONDS out="$WORK/$name.out" rc note=""
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if [ "$summary_re" = prove ]; then
    note="$(prove_note "$out")"
  elif [ -n "$summary_re" ]; then
    note="$(grep -E "$summary_re" "$out" | tail -1 | sed 's/^[[:space:]]*//')"
  fi
  # A suite stopped by Ctrl-C or a TERM ends the run (the EXIT trap cleans up).
  if [ "$rc" -eq 130 ] || [ "$rc" -eq 143 ]; then
    echo "interrupted during $name" >&2
    exit "$rc"
  fi
  if [ "$rc" -eq 0 ]; then
    record "$name" PASS $((SECONDS - t0)) "$note"
  else
    [ -n "$note" ] || note="exit status $rc"
    record "$name" FAIL $((SECONDS - t0)) "$note"
  fi
  return "$rc"
}

# "Files=5, Tests=243", and which files failed, from prove's or pg_prove's output.
prove_note() {
  local counts failing
  counts="$(grep -E '^Files=' "$1" | tail -1 | cut -d, -f1-2)"
  failing="$(prove_failed_files "$1" | paste -sd' ')"
  echo "$counts${failing:+; failed: $failing}"
}
prove_failed_files() {
  sed -n '/^Test Summary Report/,$p' "$1" | grep -oE '^[^ ]+\.(sql|pl)' | xargs -r -n1 basename
}

skip_suite() { # name reason
  banner "$1: skipped ($2)"
  record "$1" SKIP 0 "$2"
}

cleanup() {
  local pidfile
  if [ -n "$CLUSTER_DIR" ]; then
    lrv_cluster_stop "$CLUSTER_DIR" >/dev/null 2>&1 || true
    rm -rf "$CLUSTER_DIR"
  fi
  if [ -n "$TAP_DIR" ]; then
    # A TAP test interrupted before its END block leaves its nodes running.
    while IFS= read -r pidfile; do
      lrv_as_owner "$LRV_PGBIN/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1 || true
    done < <(find "$TAP_DIR" -name postmaster.pid 2>/dev/null)
    rm -rf "$TAP_DIR"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nothing listens on, over TCP or as a Unix socket in any directory.
port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null && return 0
  grep -qE "/\.s\.PGSQL\.$1\$" /proc/net/unix 2>/dev/null
}
free_port() {
  local p
  for p in $(seq 55440 55540); do
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# ---------------------------------------------------------------------------
# Suites

suite_build() {
  make -j2 && $SUDO make install
}

suite_server() {
  local port
  port=$(free_port) || { echo "no free port in 55440-55540"; return 1; }
  CLUSTER_DIR=$(mktemp -d)
  echo "cluster in $CLUSTER_DIR, port $port"
  lrv_cluster_start "$CLUSTER_DIR" "$port" fsync=off || return 1
  psql -X -q -v ON_ERROR_STOP=1 -c "SELECT version()" -At
}

suite_regress() {
  local d
  rm -rf regression.diffs regression.out output_iso
  if make installcheck; then
    return 0
  fi
  for d in regression.diffs output_iso/regression.diffs; do
    [ -s "$d" ] || continue
    banner "$d"
    head -n 600 "$d"
    [ "$(wc -l < "$d")" -gt 600 ] && echo "... (truncated; the whole file is $ROOT/$d)"
  done
  return 1
}

suite_pgtap() {
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS lrv_pgtap" -c "CREATE DATABASE lrv_pgtap" &&
    psql -X -q -v ON_ERROR_STOP=1 -d lrv_pgtap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION libravdb" &&
    pg_prove -d lrv_pgtap test/pgtap/*.sql
}

suite_tap() {
  local perldir
  perldir="$(pg_config --pkglibdir)/pgxs/src/test/perl"
  [ -f "$perldir/PostgreSQL/Test/Cluster.pm" ] || { echo "no PostgreSQL::Test::Cluster in $perldir"; return 1; }
  # Cluster.pm runs initdb as the current user, which must not be root: the
  # tests run as the cluster owner from a copy in a directory it owns (a clone
  # in a private temp dir would not be readable by it).
  cp -R test/t "$TAP_DIR/t"
  [ "$(id -u)" -eq 0 ] && chown -R "$LRV_PGUSER_OS" "$TAP_DIR"
  # setpriv, unlike su, keeps the process group, so Ctrl-C reaches the tests.
  local as_owner=()
  if [ "$(id -u)" -eq 0 ]; then
    as_owner=(setpriv --reuid="$LRV_PGUSER_OS" --regid="$(id -g "$LRV_PGUSER_OS")" --init-groups
              env HOME="$TAP_DIR" USER="$LRV_PGUSER_OS" LOGNAME="$LRV_PGUSER_OS")
  fi
  (
    cd "$TAP_DIR" &&
      "${as_owner[@]}" env PATH="$LRV_PGBIN:$PATH" TESTDIR="$TAP_DIR" \
        PG_REGRESS="$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" \
        prove -I "$perldir" -I t t/*.pl
  ) 2>&1 | tee "$WORK/prove.out"
  local rc=${PIPESTATUS[0]}
  if [ -d "$TAP_DIR/tmp_check/log" ]; then
    mkdir -p "$LOGDIR" && cp "$TAP_DIR"/tmp_check/log/* "$LOGDIR"/ 2>/dev/null
  fi
  if [ $rc -ne 0 ]; then
    # prove shows only the TAP stream; the reason (a psql error, a failed
    # initdb) is usually at the end of the test's own log.
    local t f
    for t in $(prove_failed_files "$WORK/prove.out"); do
      f="$LOGDIR/regress_log_${t%.pl}"
      [ -e "$f" ] || continue
      banner "tail of $f"
      tail -n 25 "$f"
    done
    echo "TAP logs: $LOGDIR (regress_log_* has each test's full output)"
  fi
  return $rc
}

suite_crashes() {
  local f bad=0
  if [ -n "$CLUSTER_DIR" ]; then
    lrv_cluster_stop "$CLUSTER_DIR" || { echo "could not stop the cluster"; bad=1; }
    cp "$CLUSTER_DIR/server.log" "$LOGDIR/installcheck_server.log" 2>/dev/null
    echo "checking $CLUSTER_DIR/server.log"
    lrv_cluster_check_log "$CLUSTER_DIR" || bad=1
  fi
  for f in "$LOGDIR"/*.log; do
    [ -e "$f" ] || continue
    case "$f" in */installcheck_server.log) continue ;; esac
    echo "checking $f"
    if grep -E "$LRV_CRASH_PATTERN" "$f"; then
      echo "server log $f shows a crash" >&2
      bad=1
    fi
  done
  [ $bad -eq 0 ] && echo "no crash in any server log"
  return $bad
}

# ---------------------------------------------------------------------------
# Main

run_suite deps "" bash scripts/install-deps.sh

# pg_config exists only once the deps are in.
PGBIN="$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
export PATH="$PGBIN:$PATH"
# shellcheck source=../scripts/pgcluster.sh
source scripts/pgcluster.sh
rm -rf "$LOGDIR" && mkdir -p "$LOGDIR"

run_suite build "" suite_build

if [ -f test/unit/run.sh ]; then
  run_suite unit "tests passed|tests failed" bash test/unit/run.sh
else
  skip_suite unit "test/unit/run.sh not present"
fi

if [ -f test/fuzz/run.sh ]; then
  run_suite fuzz "^fuzz: " bash test/fuzz/run.sh
else
  skip_suite fuzz "test/fuzz/run.sh not present"
fi

if [ "${STATUS[build]}" = PASS ]; then
  # Not run under run_suite's pipe: the cluster's variables must reach this shell.
  banner "server: scripts/pgcluster.sh"
  t0=$SECONDS
  if suite_server > "$WORK/server.out" 2>&1; then
    cat "$WORK/server.out"; record server PASS $((SECONDS - t0)) "port $PGPORT"
  else
    cat "$WORK/server.out"; record server FAIL $((SECONDS - t0)) "the throwaway cluster did not start"
  fi
else
  skip_suite server "build failed"
fi

if [ "${STATUS[server]}" = PASS ]; then
  if compgen -G "sql/[0-9]*.sql" >/dev/null; then
    run_suite regress "tests passed|tests failed|^command failed" suite_regress
  else
    skip_suite regress "no sql/[0-9]*.sql"
  fi
  if compgen -G "test/pgtap/*.sql" >/dev/null; then
    run_suite pgtap prove suite_pgtap
  else
    skip_suite pgtap "no test/pgtap/*.sql"
  fi
else
  skip_suite regress "no server"
  skip_suite pgtap "no server"
fi

if [ "${STATUS[build]}" != PASS ]; then
  skip_suite tap "build failed"
elif compgen -G "test/t/*.pl" >/dev/null; then
  TAP_DIR=$(mktemp -d)   # here, not in the suite's subshell, so cleanup sees it
  run_suite tap prove suite_tap
else
  skip_suite tap "no test/t/*.pl"
fi

if [ -f bench/tests/run.sh ]; then
  run_suite bench "" bash bench/tests/run.sh
else
  skip_suite bench "bench/tests/run.sh not present"
fi

run_suite crashes "shows a crash|no crash" suite_crashes

# ---------------------------------------------------------------------------
# Summary

# The failed assertions of the TAP and pgTAP suites (Test::More's "Failed
# test" diagnostics with their got/expected lines, and the message of a test
# that died), repeated next to the summary: a log viewer that shows
# only the end of the output still shows what failed.
for name in tap pgtap; do
  [ "${STATUS[$name]:-}" = FAIL ] && [ -f "$WORK/$name.out" ] || continue
  banner "$name: failed assertions"
  grep -E -A4 "^#   Failed test|^# Looks like your test exited|error running SQL|^[^#].* at t/[^ ]+ line [0-9]+\.$" \
    "$WORK/$name.out" | head -n 60
done

passed=0
failed=0
banner "summary"
for i in "${!S_NAME[@]}"; do
  printf '  %-4s  %-8s %4ss  %s\n' "${S_STATUS[$i]}" "${S_NAME[$i]}" "${S_TIME[$i]}" "${S_NOTE[$i]}"
  case "${S_STATUS[$i]}" in
    PASS) passed=$((passed + 1)) ;;
    FAIL) failed=$((failed + 1)) ;;
  esac
done
echo "  total time $((SECONDS - START))s; server logs in $LOGDIR"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
