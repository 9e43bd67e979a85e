#!/usr/bin/env bash
# Runs the SQL suites against an AddressSanitizer + UndefinedBehaviorSanitizer
# build of the extension, loaded into the stock PostgreSQL 15 server:
#
#   scripts/sanitize-sql.sh              pg_regress (make installcheck), then pgTAP
#   scripts/sanitize-sql.sh --no-pgtap   pg_regress only
#   scripts/sanitize-sql.sh --keep       keep the temporary directory
#
# Fails when a suite fails or when the server log shows a sanitizer report or
# a crash. Nothing outside a mktemp -d directory changes: the system's
# installation of the extension is left alone, and the server log is copied
# to tmp_check/sanitize/server.log at the top of the repository.
#
# How: the sources are copied and built there with g++ -fsanitize=address,
# undefined (the same Makefile, so the same per-ISA flags). The server must
# load that libravdb.so through $libdir, which PostgreSQL 15 resolves
# relative to the postgres executable, so the script lays out a relocated
# copy of the installation: copies of postgres, pg_ctl and initdb, symlinks
# to every other file of the lib and share directories, and the sanitized
# libravdb.so and extension scripts in their place. The postgres there is a
# wrapper that preloads GCC's libasan into the real binary (an ASan shared
# object can only be loaded into a process whose first library is the ASan
# runtime); backends are forked from it and inherit the runtime.
#
# What it catches: out-of-bounds and use-after-free on malloc/new memory
# (everything the C++ core allocates), stack and global overflows, and
# undefined behaviour (signed overflow, bad shifts, misaligned or null
# access, float-to-int overflow, ...) in the extension's code. palloc'd
# memory is not poisoned (the stock server has no ASan hooks in its memory
# contexts), so an overrun inside a palloc chunk goes unseen. Leak checking
# is off: backends exit without freeing by design.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

keep=0
pgtap=1
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    --no-pgtap) pgtap=0 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done

PG_CONFIG="${PG_CONFIG:-pg_config}"
command -v "$PG_CONFIG" >/dev/null || { echo "no pg_config (scripts/install-deps.sh installs it)" >&2; exit 1; }
BINDIR="$($PG_CONFIG --bindir)"
SHAREDIR="$($PG_CONFIG --sharedir)"
PKGLIBDIR="$($PG_CONFIG --pkglibdir)"
SAN_FLAGS="-fsanitize=address,undefined -fsanitize=float-cast-overflow -fno-omit-frame-pointer"
ASAN_RT="$(readlink -f "$(g++ -print-file-name=libasan.so)")"
[ -f "$ASAN_RT" ] || { echo "no libasan for g++ (install g++)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/lrv-sanitize.XXXXXX)"
chmod 755 "$WORK"   # the cluster's owner (postgres when run as root) reads it
SRC="$WORK/src"
INST="$WORK/inst"   # the relocated installation: $INST$BINDIR, $INST$SHAREDIR, ...
CLUSTER="$WORK/cluster"
OUT="$ROOT/tmp_check/sanitize"

export LRV_PGBIN="$INST$BINDIR"
# shellcheck source=pgcluster.sh
source "$ROOT/scripts/pgcluster.sh"

cleanup() {
  lrv_cluster_stop "$CLUSTER" >/dev/null 2>&1 || true
  if [ $keep -eq 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

banner() { printf '\n======== %s ========\n' "$*"; }

# --- build ------------------------------------------------------------------
banner "build: the extension with $SAN_FLAGS, in $SRC"
mkdir -p "$SRC"
# Everything make installcheck reads (sql/, expected/, test/isolation/, ...)
# and the pgTAP files; no build outputs.
tar -C "$ROOT" --exclude='*.o' --exclude='*.d' --exclude='*.so' --exclude='*.bc' --exclude=test/fuzz/corpus \
  --exclude=results --exclude=output_iso --exclude=tmp_check --exclude=log \
  -cf - Makefile libravdb.control include src sql expected test |
  tar -C "$SRC" -xf - || exit 1
# CXX compiles the core and the glue; CC links the shared library (PGXS).
make -C "$SRC" -j2 PG_CONFIG="$PG_CONFIG" CXX="g++ $SAN_FLAGS" CC="gcc $SAN_FLAGS" >"$WORK/build.log" 2>&1 ||
  { tail -n 40 "$WORK/build.log"; exit 1; }
make -C "$SRC" PG_CONFIG="$PG_CONFIG" CXX="g++ $SAN_FLAGS" CC="gcc $SAN_FLAGS" DESTDIR="$WORK/dest" install \
  >>"$WORK/build.log" 2>&1 || { tail -n 20 "$WORK/build.log"; exit 1; }
ldd "$WORK/dest$PKGLIBDIR/libravdb.so" | grep -q libasan || { echo "libravdb.so is not linked with libasan" >&2; exit 1; }
echo "built $(du -h "$WORK/dest$PKGLIBDIR/libravdb.so" | cut -f1) libravdb.so (ASan runtime $ASAN_RT)"

# --- the relocated installation ---------------------------------------------
mkdir -p "$INST$BINDIR" "$INST$PKGLIBDIR" "$INST$SHAREDIR/extension"
cp "$BINDIR/postgres" "$INST$BINDIR/postgres.bin"
cp "$BINDIR/pg_ctl" "$BINDIR/initdb" "$INST$BINDIR/"
# Preloaded, ASan initialises on the first malloc, which in postgres happens
# in libgpg-error's constructor inside bindtextdomain, with glibc's gettext
# lock held. ASan's start-up then looks up swift_demangle with dlsym, and
# the failed lookup's dlerror translates its message through gettext, which
# takes and releases that lock again: the lock's count underflows and the
# next bindtextdomain (postgres's own, in main) waits forever. Defining
# swift_demangle (ASan only asks it to demangle Swift names; returning NULL
# means "not Swift") makes the lookup succeed and avoids the gettext call.
echo 'char *swift_demangle(const char *n, unsigned long l, char *o, unsigned long *ol, unsigned f) { return 0; }' \
  >"$WORK/swift_demangle.c"
gcc -shared -fPIC -O2 -o "$INST$BINDIR/liblrv_swift_demangle.so" "$WORK/swift_demangle.c" || exit 1
cat >"$INST$BINDIR/postgres" <<EOF
#!/bin/sh
# postgres with the ASan runtime first in its library list (scripts/sanitize-sql.sh).
LD_PRELOAD="$ASAN_RT $INST$BINDIR/liblrv_swift_demangle.so" \\
ASAN_OPTIONS="detect_leaks=0:print_stacktrace=1:symbolize=1:detect_odr_violation=0" \\
UBSAN_OPTIONS="print_stacktrace=1" \\
exec "$INST$BINDIR/postgres.bin" "\$@"
EOF
chmod 755 "$INST$BINDIR/postgres"
timeout 60 "$INST$BINDIR/postgres" -V >/dev/null ||
  { echo "the ASan-preloaded postgres does not start ($INST$BINDIR/postgres -V)" >&2; exit 1; }
for f in "$PKGLIBDIR"/*; do
  [ "$(basename "$f")" = libravdb.so ] || ln -s "$f" "$INST$PKGLIBDIR/"
done
cp "$WORK/dest$PKGLIBDIR/libravdb.so" "$INST$PKGLIBDIR/"
for f in "$SHAREDIR"/*; do
  [ "$(basename "$f")" = extension ] || ln -s "$f" "$INST$SHAREDIR/"
done
for f in "$SHAREDIR"/extension/*; do
  case "$(basename "$f")" in libravdb.control | libravdb--*) ;; *) ln -s "$f" "$INST$SHAREDIR/extension/" ;; esac
done
cp "$WORK/dest$SHAREDIR"/extension/libravdb* "$INST$SHAREDIR/extension/"
chmod -R a+rX "$WORK"

# --- server -----------------------------------------------------------------
port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null && return 0
  grep -qE "/\.s\.PGSQL\.$1\$" /proc/net/unix 2>/dev/null
}
port=""
for p in $(seq 55600 55700); do port_in_use "$p" || { port=$p; break; }; done
[ -n "$port" ] || { echo "no free port in 55600-55700" >&2; exit 1; }
banner "server: $LRV_PGBIN/postgres (ASan preloaded), port $port"
lrv_cluster_start "$CLUSTER" "$port" fsync=off || exit 1
libdir="$(psql -X -At -c "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")"
echo "the server's \$libdir is $libdir"
[ "$libdir" = "$INST$PKGLIBDIR" ] || { echo "the server is not the relocated installation" >&2; exit 1; }
# A backend that loaded the module maps the ASan runtime and our build.
maps="$(psql -X -At -c "LOAD 'libravdb'" -c "SELECT string_agg(l, E'\n') FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\n') l WHERE l ~ '(libasan|libravdb)'")"
echo "$maps" | grep -q libasan && echo "$maps" | grep -q "$INST$PKGLIBDIR/libravdb.so" ||
  { echo "a backend did not map libasan and the sanitized libravdb.so:" >&2; echo "$maps" >&2; exit 1; }
echo "a backend maps $(echo "$maps" | grep -o '[^ ]*libasan[^ ]*' | head -1) and $INST$PKGLIBDIR/libravdb.so"

status=0
# --- suites -----------------------------------------------------------------
banner "regress: make installcheck (pg_regress, and isolation specs if any)"
rm -f "$SRC/regression.diffs" "$SRC/output_iso/regression.diffs"
if ! make -C "$SRC" PG_CONFIG="$PG_CONFIG" installcheck; then
  status=1
  for d in "$SRC/regression.diffs" "$SRC/output_iso/regression.diffs"; do
    [ -s "$d" ] && head -n 300 "$d"
  done
fi

if [ $pgtap -eq 1 ] && compgen -G "$SRC/test/pgtap/*.sql" >/dev/null; then
  if command -v pg_prove >/dev/null && [ -e "$SHAREDIR/extension/pgtap.control" ]; then
    banner "pgtap: pg_prove test/pgtap/*.sql"
    psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS lrv_pgtap" \
      -c "CREATE DATABASE lrv_pgtap" &&
      psql -X -q -v ON_ERROR_STOP=1 -d lrv_pgtap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION libravdb" &&
      pg_prove -d lrv_pgtap "$SRC"/test/pgtap/*.sql || status=1
  else
    echo "pgtap: skipped (no pg_prove or no pgtap extension)"
  fi
fi

# --- the log ----------------------------------------------------------------
banner "sanitizer reports"
lrv_cluster_stop "$CLUSTER" || { echo "could not stop the server" >&2; status=1; }
mkdir -p "$OUT"
cp "$CLUSTER/server.log" "$OUT/server.log"
report_re='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer'
n_reports=$(grep -cE "$report_re" "$OUT/server.log")
if [ "$n_reports" -gt 0 ]; then
  echo "$n_reports sanitizer report line(s) in the server log; the first:"
  grep -nE "$report_re" "$OUT/server.log" | head -n 10
  status=1
fi
if grep -E "$LRV_CRASH_PATTERN" "$OUT/server.log"; then
  echo "the server log shows a crash" >&2
  status=1
fi
echo "server log: $OUT/server.log"
if [ $status -eq 0 ]; then
  echo "sanitize-sql: passed, no sanitizer report"
else
  echo "sanitize-sql: FAILED"
fi
exit $status
