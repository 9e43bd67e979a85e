#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests, the demo and the benchmarks.
#
#   source scripts/pgcluster.sh
#   lrv_cluster_start DIR PORT [extra postgres -c settings...]
#   psql ... (PGHOST, PGPORT, PGUSER, PGDATABASE are exported)
#   lrv_cluster_stop DIR
#   lrv_cluster_check_log DIR    # non-zero when the log shows a crash
#
# initdb refuses to run as root, so as root the cluster belongs to an
# unprivileged OS user (LRV_PGUSER_OS, default "postgres", which Debian's
# postgresql package creates). The socket lives in DIR, so nothing collides
# with a system cluster.

LRV_PGBIN="${LRV_PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}"
LRV_PGUSER_OS="${LRV_PGUSER_OS:-postgres}"
# A crashed backend, a PANIC, or a failed assertion (cassert builds print
# "TRAP:" to stderr). Two spaces follow an ereport level, which keeps a logged
# statement that merely contains the word from matching. test/run_all.sh and
# test/t/LibraVDB/Test.pm use the same pattern.
LRV_CRASH_PATTERN='terminated by signal|was terminated by exception|PANIC:  |^TRAP: '

lrv_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    su -s /bin/bash "$LRV_PGUSER_OS" -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

lrv_cluster_start() {
  local dir="$1" port="$2"
  shift 2
  local opts="-c listen_addresses= -c unix_socket_directories=$dir -c port=$port"
  for s in "$@"; do opts="$opts -c $s"; done
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    id "$LRV_PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home "$LRV_PGUSER_OS"
    chown "$LRV_PGUSER_OS" "$dir"
    lrv_as_owner test -w "$dir" ||
      { echo "$LRV_PGUSER_OS cannot write $dir (is a parent directory private?)" >&2; return 1; }
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    lrv_as_owner "$LRV_PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log"; return 1; }
  fi
  lrv_as_owner "$LRV_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null ||
    { tail -20 "$dir/server.log"; return 1; }
  export PGHOST="$dir" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
}

lrv_cluster_stop() {
  local dir="$1"
  [ -f "$dir/data/postmaster.pid" ] || return 0
  lrv_as_owner "$LRV_PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
}

# Fails when the server log shows a crashed backend or a PANIC.
lrv_cluster_check_log() {
  local dir="$1"
  if grep -E "$LRV_CRASH_PATTERN" "$dir/server.log"; then
    echo "server log $dir/server.log shows a crash" >&2
    return 1
  fi
  return 0
}
