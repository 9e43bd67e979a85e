#!/usr/bin/python3
"""LibraVDB benchmark harness.

Usually started by bench/run.sh, which builds and installs the extension and
runs this against a throwaway server with recorded settings. It can also run
against any server the PG* environment variables point at:

    /usr/bin/python3 bench/run.py --dataset fashion-mnist --queries 100
    /usr/bin/python3 bench/run.py --quick --targets 'lvector-*'
    /usr/bin/python3 bench/run.py --list-targets
    /usr/bin/python3 bench/run.py --clients 1,2,4 --targets 'lvector-lflat-l2'
    /usr/bin/python3 bench/run.py --scaling --targets 'lvector-lflat-l2,pgvector-exact-l2'
    /usr/bin/python3 bench/run.py --targets 'lvector-lhnsw-*' --with-baselines

For every target it loads (once per table layout) the data set with binary
COPY, runs warm-up queries, then N timed queries one after another as a
server-side prepared statement, and reports QPS, p50/p95/p99 latency and
recall@k against exact ground truth computed here with numpy (for filtered
targets, the exact ground truth of the filtered query), plus recall@100 for
index scans, and the client floor: the same client path on a statement
that only parses the query vector. With --clients it also runs pgbench
with several clients per point (TPS and average latency). In-process targets (hnswlib, FAISS) give
ceilings without SQL. --scaling repeats the run over generated data sets of
growing size. When pgvector's extension is available in the server it
measures the same queries on vector columns and reports lvector / pgvector
ratios from the same run.
"""

import argparse
import datetime
import fnmatch
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import concurrency  # noqa: E402
import datasets  # noqa: E402
import inprocess  # noqa: E402
import metrics  # noqa: E402
import pgload  # noqa: E402
import progress  # noqa: E402
import report  # noqa: E402
import targets as registry  # noqa: E402

try:
    import psycopg
    import psycopg.sql
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("psycopg 3 is missing: run with Debian's /usr/bin/python3 and install python3-psycopg "
             "(scripts/install-deps.sh does)")


def log(msg: str) -> None:
    print(msg, flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist",
                    help="fashion-mnist | clustered:N:D (e.g. clustered:100k:128) | PATH (.fvecs/.bvecs/.npy)")
    ap.add_argument("--queries", type=int, default=None, help="timed queries per point (default 100; 50 with --quick)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed queries before each point (default 10)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed rounds per point; the fastest round is reported (default 1)")
    ap.add_argument("--build-repeat", type=int, default=1,
                    help="build each index this many times (dropping it in between); the fastest build time is "
                         "reported, the last build is measured (default 1)")
    ap.add_argument("--rows", type=int, default=None, help="load only the first N base rows")
    ap.add_argument("--k", type=int, default=10, help="LIMIT k and recall@k (default 10)")
    ap.add_argument("--targets", default=None,
                    help="comma-separated target names or patterns (default: every exact-scan target)")
    ap.add_argument("--with-baselines", action="store_true",
                    help="add the baseline and in-process ceiling of every selected target (e.g. pgvector-hnsw-l2 "
                         "and inproc-hnswlib-l2 for lvector-lhnsw-l2), so each ratio is measured in the same run")
    ap.add_argument("--quick", action="store_true", help="10000 rows and 50 queries")
    ap.add_argument("--out", default=None, help="output folder (default bench/results/<timestamp>/)")
    ap.add_argument("--reload", action="store_true", help="reload tables even when they hold this data set")
    ap.add_argument("--keep-tables", action="store_true", help="do not drop the tables at the end")
    ap.add_argument("--list-targets", action="store_true", help="list the registered targets and exit")
    ap.add_argument("--k2", type=int, default=100,
                    help="second LIMIT for recall@k2 on index targets (default 100; 0 turns it off)")
    ap.add_argument("--clients", default=None,
                    help="comma-separated client counts for pgbench throughput runs, e.g. 1,2,4 (default: none)")
    ap.add_argument("--clients-time", type=int, default=10, help="seconds per pgbench run (default 10)")
    ap.add_argument("--clients-targets", default=None,
                    help="targets (names or patterns) that get pgbench runs (default: every selected SQL target)")
    ap.add_argument("--recall-levels", default="0.95,0.99",
                    help="recall@k levels at which approximate indexes' QPS is compared (default 0.95,0.99)")
    ap.add_argument("--scaling", action="store_true",
                    help="run the targets on clustered data sets of 10k, 100k (and 1M) rows and tabulate "
                         "build time, index size and QPS against N")
    ap.add_argument("--scaling-max", default="100k",
                    help="largest data set of --scaling: 10k, 100k or 1M (default 100k)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows = args.rows or 10000
        args.queries = args.queries or 50
    args.queries = args.queries or 100
    if args.k < 1 or args.k > datasets.GT_K:
        ap.error(f"--k must be between 1 and {datasets.GT_K}")
    if args.k2 and not args.k < args.k2 <= datasets.GT_K:
        ap.error(f"--k2 must be 0 or between --k + 1 and {datasets.GT_K}")
    try:
        args.client_counts = parse_clients(args.clients)
        args.recall_levels_list = parse_recall_levels(args.recall_levels)
        args.scaling_sizes = scaling_sizes(args.scaling_max) if args.scaling else []
    except ValueError as e:
        ap.error(str(e))
    if args.clients_time < 1:
        ap.error("--clients-time must be at least 1 second")
    if args.build_repeat < 1:
        ap.error("--build-repeat must be at least 1")
    return args


def parse_clients(text) -> list:
    """'1,2,4' -> [1, 2, 4]; None or '' -> []."""
    if not text:
        return []
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"--clients wants positive integers, got {part!r}")
        if int(part) not in out:
            out.append(int(part))
    return out


def parse_recall_levels(text) -> list:
    """'0.95,0.99' -> [0.95, 0.99], each in (0, 1]."""
    out = []
    for part in str(text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part)
        except ValueError:
            raise ValueError(f"--recall-levels wants numbers in (0, 1], got {part!r}") from None
        if not 0 < v <= 1:
            raise ValueError(f"--recall-levels wants numbers in (0, 1], got {part!r}")
        out.append(v)
    if not out:
        raise ValueError("--recall-levels needs at least one level")
    return sorted(set(out))


SCALING_STEPS = (10000, 100000, 1000000)


def scaling_sizes(limit: str) -> list:
    """The data set sizes of --scaling up to limit (10k, 100k or 1M)."""
    n = datasets.parse_count(limit)
    sizes = [s for s in SCALING_STEPS if s <= n]
    if not sizes:
        raise ValueError(f"--scaling-max {limit!r} is below the smallest step (10k)")
    return sizes


def scaling_spec(dataset: str, n: int) -> str:
    """clustered:N:D for a scaling step, with D from --dataset when that is a
    clustered set, else 128."""
    dims = 128
    if dataset.startswith("clustered:"):
        parts = dataset.split(":")
        if len(parts) == 3 and parts[2].isdigit():
            dims = int(parts[2])
    return f"clustered:{n}:{dims}"


def source_revision():
    """The git commit of the tree the harness runs from: '+changes' when
    bench/ itself has uncommitted changes, and the top folders of uncommitted
    changes elsewhere in the tree (other people's work on src/ is not the
    harness, and with LIBRAVDB_BENCH_SKIP_BUILD=1 not the installed build
    either); None outside a git checkout. run.sh builds and installs the
    extension from this tree unless LIBRAVDB_BENCH_SKIP_BUILD=1."""
    import subprocess
    try:
        rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return None
        top = subprocess.run(["git", "-C", HERE, "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", top or HERE, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout
        return describe_revision(rev.stdout.strip(), status)
    except (OSError, subprocess.SubprocessError):
        return None


def describe_revision(rev: str, porcelain: str) -> str:
    """rev with '+changes' when a path under bench/ is modified and, after a
    semicolon, the folders (two levels) of modified paths outside bench/."""
    paths = [line[3:].split(" -> ")[-1].strip('"') for line in porcelain.splitlines() if len(line) > 3]
    bench = any(p.startswith("bench/") for p in paths)
    other = sorted({"/".join(p.split("/")[:2]) if "/" in p else p for p in paths if not p.startswith("bench/")})
    return (rev + ("+changes" if bench else "")
            + (f"; uncommitted changes outside bench/: {', '.join(other)}" if other else ""))


def list_targets() -> None:
    for t in registry.REGISTRY.values():
        extra = f", filter {t.filter}" if t.filter else ""
        where = f"on {t.spec.table}" if t.spec else f"in-process ({t.engine}, no SQL)"
        log(f"{t.name:32s} {'default' if t.default else 'opt-in ':7s} {t.kind:9s} {t.metric:6s} "
            f"{where}{extra}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.conn = None
        self.lines = []            # every JSON record, in order
        self.tables = {}           # table key -> load and storage figures (current data set)
        self.points = []           # every point, all data sets
        self.conc = []             # every pgbench record, all data sets
        self.floors = []           # every client floor record, all data sets
        self.errors = []
        self.dataset = None        # name of the data set being measured
        self.pgbench = None
        self.client_targets = set()
        self.have_prewarm = None    # pg_prewarm available (None: not tried yet)

    # --- connection -----------------------------------------------------------
    def connect(self):
        self.conn = psycopg.connect("", autocommit=True)
        self.conn.execute("SET client_min_messages = warning")
        return self.conn

    def reconnect_after_failure(self, what: str, err: Exception) -> None:
        msg = f"{what} failed: {type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"
        log("  ERROR: " + msg)
        self.errors.append(msg)
        for attempt in range(30):
            try:
                self.connect()
                return
            except psycopg.OperationalError:
                time.sleep(2)   # the server restarts after a crashed backend
        raise SystemExit("the server did not come back; see its log")

    def emit(self, record: dict) -> None:
        self.lines.append(record)

    # --- data -----------------------------------------------------------------
    def prewarm(self, relation: str, with_toast: bool = False) -> None:
        """Reads a relation (and its TOAST table) into shared buffers with
        pg_prewarm, so the first point measured on it does not pay for the
        cold reads that COPY's ring buffer and the build leave behind. Skipped
        when the server lacks pg_prewarm (contrib)."""
        if self.have_prewarm is None:
            try:
                self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
                self.have_prewarm = True
            except psycopg.Error as e:
                self.have_prewarm = False
                log(f"pg_prewarm is not available ({str(e).strip().splitlines()[0]}): relations are not prewarmed")
        if not self.have_prewarm:
            return
        rels = [relation]
        if with_toast:
            toast = self.conn.execute("SELECT reltoastrelid::regclass::text FROM pg_class "
                                      "WHERE oid = %s::regclass AND reltoastrelid <> 0", (relation,)).fetchone()
            if toast:
                rels.append(toast[0])
        for rel in rels:
            self.conn.execute("SELECT pg_prewarm(%s::regclass)", (rel,))

    def _load(self, table, type_name, ds, ids, cat, cat100, vectors, options="", storage=None,
              description="") -> dict:
        tag = f"libravdb-bench {ds.key} rows={len(ds.base)} dims={ds.dims}" + (
            f" queries={len(vectors)}" if len(vectors) != len(ds.base) else "") + (
            f" options={options}" if options else "")
        existing = self.conn.execute(
            "SELECT obj_description(to_regclass(%s), 'pg_class')", (table,)).fetchone()[0]
        if existing == tag and not self.args.reload:
            log(f"table {table}: already holds {tag}, reusing it (--reload to load again)")
            return None
        log(f"loading {len(vectors)} rows into {table} ({description})")
        pgload.create_items_table(self.conn, table, type_name, ds.dims, options, storage)
        load = pgload.copy_items(self.conn, table, ids, cat, cat100, vectors, progress=log)
        self.conn.execute(f"COMMENT ON TABLE {table} IS '{tag}'")
        log(f"  loaded in {load['load_s']:.1f} s ({load['rows_per_s']:.0f} rows/s in COPY), "
            f"WAL {load['wal_bytes'] / 2**20:.0f} MB")
        return load

    def ensure_table(self, spec, ds, cat, cat100) -> None:
        if spec.key in self.tables:
            return
        ids = np.arange(len(ds.base), dtype=np.int32)
        load = self._load(spec.table, spec.type_name, ds, ids, cat, cat100, ds.base, spec.options,
                          spec.storage, spec.description)
        self.prewarm(spec.table, with_toast=True)
        st = pgload.storage_stats(self.conn, spec.table)
        log(f"  {spec.table}: heap {st['heap_bytes'] / 2**20:.1f} MB, TOAST {st['toast_bytes'] / 2**20:.1f} MB, "
            f"{st['compressed_rows']}/{st['rows']} vectors compressed, "
            f"avg stored vector {st['avg_stored_vector_bytes']:.0f} B")
        self.tables[spec.key] = {"table": spec.table, "description": spec.description,
                                 "load": load, "storage": st}
        self.emit({"type": "table", "dataset": self.dataset, "key": spec.key, **self.tables[spec.key]})

    def ensure_queries_table(self, t, ds) -> str:
        """The pgbench queries table for t's vector type: the timed queries with
        the filter values the single-client run uses (filtered_values)."""
        qtable = concurrency.queries_table(t)
        key = "queries:" + qtable
        if key not in self.tables:
            nq = self.args.queries
            ids = np.arange(nq, dtype=np.int32)
            # Inline storage: a query vector in TOAST would reach the k-NN
            # query as a TOAST pointer (the InitPlan's Param), detoasted again
            # for every distance -- pgvector's default storage does that.
            self._load(qtable, t.spec.type_name, ds, ids, filtered_values("category", nq).astype(np.int32),
                       filtered_values("category100", nq).astype(np.int32), ds.queries[:nq],
                       options="toast_tuple_target = 8160", description="queries for pgbench")
            self.tables[key] = None
        return qtable

    # --- one target -------------------------------------------------------------
    def build_index(self, t, bp: dict) -> dict:
        name = re.sub(r"[^a-z0-9_]", "_", f"bench_{t.name}".lower())[:60]
        sql = t.index_sql.format(index=name, table=t.spec.table, opclass=t.opclass, **bp)
        self.conn.execute(f"DROP INDEX IF EXISTS {name}")
        lsn0 = self.conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        log(f"  building: {sql}")
        t0 = time.perf_counter()
        with progress.BuildMonitor(lambda: psycopg.connect("", autocommit=True), self.conn.info.backend_pid, log):
            self.conn.execute(sql)
        build_s = time.perf_counter() - t0
        size, wal = self.conn.execute(
            "SELECT pg_relation_size(%s::regclass), pg_wal_lsn_diff(pg_current_wal_lsn(), %s)",
            (name, lsn0)).fetchone()
        self.conn.execute(f"ANALYZE {t.spec.table}")
        self.prewarm(name)
        log(f"  built in {build_s:.1f} s, index {size / 2**20:.1f} MB, WAL {float(wal) / 2**20:.1f} MB")
        return {"index": name, "build_s": build_s, "index_bytes": int(size), "wal_bytes": int(wal)}

    def _run_queries(self, cur, sql, params, texts) -> tuple:
        lat, results = [], []
        prog = progress.LoopProgress(len(texts), log)
        t0 = time.perf_counter()
        for i, text in enumerate(texts):
            s = time.perf_counter()
            cur.execute(sql, params(i, text), prepare=True)
            rows = cur.fetchall()
            lat.append(time.perf_counter() - s)
            results.append([r[0] for r in rows])
            prog.tick(i + 1)
        return metrics.latency_summary(lat, time.perf_counter() - t0), results

    def _score(self, t, ds, queries, gt, flt, results, k) -> dict:
        """Recall@k and row counts of one result set; for a filtered target,
        ids breaking the filter count as wrong and are counted."""
        out = {}
        gt_ids = None
        matching = None
        if t.filter:
            rows, fv = flt
            results, out["filter_violations"] = metrics.drop_filter_violations(results, rows, fv)
            gt_ids = gt[0]
            matching = np.bincount(rows, minlength=int(max(rows.max(), fv.max())) + 1)[fv]
        out["recall"] = metrics.mean_recall(results, queries, ds.base, gt[1], t.metric, k, gt_ids)
        out.update(metrics.rows_returned(results, k, matching))
        return out

    def executed_plans(self, sql: str, param_sets: list) -> list:
        """The plan each parameter set really ran with, as node chains.

        A server-side prepared statement plans each execution for its values
        (custom plans), or switches to one generic plan after five executions
        when that looks no dearer, and either can differ from query to query
        (a filter value decides between a sequential and an index scan). So
        this asks the plan cache of the statement the timed loop used (found
        in pg_prepared_statements) with EXPLAIN EXECUTE for every parameter
        set. Without such a statement (pgbench runs in other sessions) it
        PREPAREs its own and executes it six times first."""
        n = 0

        def dollar(_m):
            nonlocal n
            n += 1
            return f"${n}"
        body = re.sub(r"%s", dollar, sql)
        row = self.conn.execute("SELECT name FROM pg_prepared_statements WHERE statement = %s",
                                (body,)).fetchone()
        name = row[0] if row else "lrv_bench_plan"

        # EXECUTE is a utility statement: no bound parameters, so literals.
        def execute(prefix, p):
            return self.conn.execute(psycopg.sql.SQL(prefix + "EXECUTE {}({})").format(
                psycopg.sql.Identifier(name), psycopg.sql.SQL(", ").join(map(psycopg.sql.Literal, p))))

        if not row:
            self.conn.execute(f"PREPARE {name} AS {body}")
        try:
            if not row:
                for p in param_sets[:6]:
                    execute("", p).fetchall()
            return [" > ".join(plan_nodes(execute("EXPLAIN (FORMAT JSON) ", p).fetchone()[0][0]["Plan"]))
                    for p in param_sets]
        finally:
            if not row:
                self.conn.execute(f"DEALLOCATE {name}")

    def _timed(self, cur, ds, queries, sql, params) -> tuple:
        """The timed part of a point: the query vectors as text (how every
        statement sends them), --warmup untimed queries with the vectors that
        follow the timed ones, then --repeat timed rounds of every query on
        cur as a server-side prepared statement. Returns (summary,
        results, texts) of the fastest round, with every round's QPS in the
        summary. params(i, text) gives query i's parameters."""
        args = self.args
        nq = len(queries)
        texts = [pgload.vector_text(q) for q in queries]
        warm = [pgload.vector_text(q) for q in ds.queries[nq:nq + args.warmup]] or texts
        for i in range(args.warmup):
            cur.execute(sql, params(i, warm[i % len(warm)]), prepare=True)
            cur.fetchall()
        # Other processes on the machine can only slow a round down, so with
        # --repeat the fastest round is the best estimate of the code's speed.
        rounds = [self._run_queries(cur, sql, params, texts) for _ in range(max(1, args.repeat))]
        summary, results = max(rounds, key=lambda r: r[0]["qps"])
        summary["rounds_qps"] = [r[0]["qps"] for r in rounds]
        return summary, results, texts

    def measure(self, t, ds, queries, gt, flt) -> dict:
        """flt: (row values of the filter column, filter value per query) or None."""
        args = self.args
        k, nq = args.k, len(queries)
        sql = t.query_sql(k)

        def params(i, text):
            return (int(flt[1][i % nq]), text) if t.filter else (text,)

        cur = self.conn.cursor()
        summary, results, texts = self._timed(cur, ds, queries, sql, params)
        summary.update(self._score(t, ds, queries, gt, flt, results, k))
        all_params = [params(i, texts[i]) for i in range(nq)]
        summary.update(plan_summary(self.executed_plans(sql, all_params), t.expect_node))
        summary["sql"] = sql
        if args.k2 and t.measures_k2:
            # One round with LIMIT k2 (the caches are warm from the rounds
            # above); its plan can differ (a larger LIMIT favours a seq scan).
            sql2 = t.query_sql(args.k2)
            s2, res2 = self._run_queries(cur, sql2, params, texts)
            sc2 = self._score(t, ds, queries, gt, flt, res2, args.k2)
            p2 = plan_summary(self.executed_plans(sql2, all_params), t.expect_node)
            summary.update({"k2": args.k2, "qps_k2": s2["qps"], "recall_k2": sc2["recall"],
                            "short_queries_k2": sc2["short_queries"], "plan_k2": p2["plan"],
                            "plan_ok_k2": p2["plan_ok"]})
        return summary

    def measure_floor(self, type_name: str, ds) -> dict:
        """The client floor of one vector type on this data set: a statement
        that only parses the query vector (FLOOR_SQL), on a fresh session
        like each point and timed by the points' code (_timed: the same
        queries as text, warm-up, rounds, fastest kept). Returns its "floor"
        record; a row other than
        the data set's dimension count is an error (the vector was not
        parsed as sent)."""
        self.conn.close()
        self.connect()
        sql = FLOOR_SQL[type_name]
        queries = ds.queries[:self.args.queries]
        summary, results, _ = self._timed(self.conn.cursor(), ds, queries, sql, lambda i, text: (text,))
        wrong = sum(1 for r in results if r != [ds.dims])
        if wrong:
            msg = f"client floor {type_name}: {wrong} of {len(results)} queries did not return {ds.dims}"
            log("  ERROR: " + msg)
            self.errors.append(msg)
        return {"type": "floor", "dataset": self.dataset, "rows": len(ds.base), "vector_type": type_name,
                "dims": ds.dims, "sql": sql, **summary}

    def run_floors(self, ds, sql_targets: list) -> None:
        """The client floor of every vector type the run's SQL targets use."""
        for type_name in floor_types(sql_targets):
            try:
                rec = self.measure_floor(type_name, ds)
            except psycopg.Error as e:
                self.reconnect_after_failure(f"client floor {type_name}", e)
                continue
            self.floors.append(rec)
            self.emit(rec)
            log(f"client floor ({type_name}, {shown_sql_text(rec['sql'])}): QPS {rec['qps']:.1f}, "
                f"p50 {rec['p50_ms']:.3f} ms, p95 {rec['p95_ms']:.3f} ms, p99 {rec['p99_ms']:.3f} ms")

    def run_clients(self, t, ds, build, bp, sp) -> None:
        """pgbench with each --clients count on the current point."""
        qtable = self.ensure_queries_table(t, ds)
        text = concurrency.script(t, self.args.k, qtable, self.args.queries)
        options = concurrency.pgoptions([s.format(**sp) for s in t.search_sql])
        sql = concurrency.script_sql(t, self.args.k, qtable).replace(":qid", "%s")
        ps = plan_summary(self.executed_plans(sql, [(i % self.args.queries,) * sql.count("%s")
                                                    for i in range(min(6, self.args.queries))]), t.expect_node)
        for c in self.args.client_counts:
            try:
                r = concurrency.run_pgbench(self.pgbench, text, c, self.args.clients_time, options)
            except (RuntimeError, ValueError, OSError) as e:
                msg = f"pgbench {t.name} {bp} {sp} clients={c} failed: {str(e).strip()[:500]}"
                log("  ERROR: " + msg)
                self.errors.append(msg)
                continue
            rec = {"type": "concurrency", "dataset": self.dataset, "target": t.name, "metric": t.metric,
                   "kind": t.kind, "filter": t.filter, "k": self.args.k, "build": bp, "search": sp,
                   "plan": ps["plan"], "plan_ok": ps["plan_ok"], **r}
            self.conc.append(rec)
            self.emit(rec)
            flag = "" if ps["plan_ok"] else f"  (plan lacks {t.expect_node}!)"
            log(f"  {c} client(s), {self.args.clients_time} s: TPS {r['tps']:.1f}, "
                f"latency avg {r['latency_avg_ms']:.2f} ms, {r['transactions']} transactions"
                + (f", {r['failed']} failed" if r.get("failed") else "") + flag)

    def run_point(self, t, ds, gt, flt, bp, build) -> None:
        for sp in t.search_params:
            try:
                # A fresh session per point: a generic plan cached by a prepared
                # statement survives SET (enable_seqscan = off would not reach
                # it), so statements must not outlive their settings.
                self.conn.close()
                self.connect()
                for s in t.search_sql:
                    self.conn.execute(s.format(**sp))
                m = self.measure(t, ds, ds.queries[:self.args.queries], gt, flt)
                # A misspelt or unloaded custom setting (libravdb.*, hnsw.*)
                # would be a silent placeholder, or dropped with a warning
                # when the library reserves its prefix: check what the
                # queries really ran with.
                m["set_statements"] = [s.format(**sp) for s in t.search_sql]
                m["settings_not_applied"] = settings_not_applied(self.conn, m["set_statements"])
                if m["settings_not_applied"]:
                    msg = (f"{t.name} {bp} {sp}: settings not in effect during the queries: "
                           + ", ".join(m["settings_not_applied"]))
                    log("  ERROR: " + msg)
                    self.errors.append(msg)
                point = {"type": "point", "dataset": self.dataset, "rows": len(ds.base),
                         "target": t.name, "table": t.spec.table, "table_key": t.table,
                         "metric": t.metric, "kind": t.kind, "filter": t.filter, "k": self.args.k,
                         "build": bp, "search": sp, **(build or {}), **m}
                self.points.append(point)
                self.emit(point)
                flag = "" if m["plan_ok"] else f"  (plan lacks {t.expect_node}!)"
                if m["short_queries"]:
                    flag += f"  ({m['short_queries']} queries returned fewer than {self.args.k} rows!)"
                if m.get("filter_violations"):
                    flag += f"  ({m['filter_violations']} rows break the filter!)"
                k2 = (f", recall@{m['k2']} {m['recall_k2']:.4f} ({m['qps_k2']:.1f} QPS"
                      + ("" if m["plan_ok_k2"] else f", plan: {m['plan_k2']}!") + ")" if "k2" in m else "")
                log(f"  {json.dumps(sp) + ' ' if sp else ''}QPS {m['qps']:.1f}, p50 {m['p50_ms']:.2f} ms, "
                    f"p95 {m['p95_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms, "
                    f"recall@{self.args.k} {m['recall']:.4f}{k2}, rows min {m['rows_min']}; "
                    f"plan: {m['plan']}{flag}")
                if self.args.client_counts and t.name in self.client_targets:
                    self.run_clients(t, ds, build, bp, sp)
            except psycopg.Error as e:
                self.reconnect_after_failure(f"target {t.name} {bp} {sp}", e)
            finally:
                for s in t.search_sql:   # back to the defaults for the next point
                    name = s.split()[1]
                    try:
                        self.conn.execute(f"RESET {name}")
                    except psycopg.Error:
                        pass

    def run_group(self, group: list, ds, gts: dict, cat, cat100) -> None:
        """Targets sharing a table and (for indexes) a CREATE INDEX: each build
        parameter set is built once, every target measured on it, then dropped."""
        first = group[0]
        for t in group:
            log(f"target {t.name}: {shown_sql(t, self.args.k)}")
        for bp in first.build_params:
            build = None
            try:
                if first.kind == "index":
                    rounds = []
                    for _ in range(self.args.build_repeat):
                        rounds.append(self.build_index(first, bp))
                        build = rounds[-1]   # the index that stays is the last one built
                    build = fastest_build(rounds)
                    if len(rounds) > 1:
                        log(f"  fastest of {len(rounds)} builds: {build['build_s']:.1f} s "
                            f"({', '.join(f'{b:.1f}' for b in build['build_rounds_s'])})")
                for t in group:
                    if bp not in t.build_params:
                        continue
                    if len(group) > 1:
                        log(f" {t.name} {bp}")
                    gt, flt = self.truth(t, ds, gts, cat, cat100)
                    self.run_point(t, ds, gt, flt, bp, build)
            except psycopg.Error as e:
                self.reconnect_after_failure(f"building for {first.name} {bp}", e)
            finally:
                if build:
                    try:
                        self.conn.execute(f"DROP INDEX IF EXISTS {build['index']}")
                    except psycopg.Error:
                        pass

    def truth(self, t, ds, gts, cat, cat100) -> tuple:
        """Ground truth for t (the filtered one for a filtered target) and the
        (row values, query values) of its filter."""
        nq = self.args.queries
        key = (t.metric, t.filter)
        flt = None
        if t.filter:
            rows = cat if t.filter == "category" else cat100
            flt = (rows, filtered_values(t.filter, nq))
        if key not in gts:
            if t.filter:
                gts[key] = datasets.filtered_ground_truth(ds, t.metric, nq, t.filter, flt[0], flt[1])
            else:
                gts[key] = datasets.ground_truth(ds, t.metric, nq)
        return gts[key], flt

    def run_inprocess(self, t, ds, gts) -> None:
        args = self.args
        queries = ds.queries[:args.queries]
        warm = ds.queries[args.queries:args.queries + args.warmup]
        gt, _ = self.truth(t, ds, gts, None, None)
        log(f"target {t.name}: in-process {t.engine}, one query at a time, 1 thread, no SQL")
        try:
            for bp, build, sp, summary, results in inprocess.run(t, ds.base, queries, warm, args.k,
                                                                  args.repeat, log):
                summary["recall"] = metrics.mean_recall(results, queries, ds.base, gt[1], t.metric, args.k)
                summary.update(metrics.rows_returned(results, args.k))
                point = {"type": "point", "dataset": self.dataset, "rows": len(ds.base), "target": t.name,
                         "table": "(in-process, no SQL)", "table_key": None, "metric": t.metric,
                         "kind": t.kind, "filter": None, "k": args.k, "build": bp, "search": sp,
                         **build, **summary, "plan": f"{t.engine} in-process", "plan_ok": True}
                self.points.append(point)
                self.emit(point)
                log(f"  {json.dumps(sp) + ' ' if sp else ''}QPS {summary['qps']:.1f}, "
                    f"p50 {summary['p50_ms']:.3f} ms, recall@{args.k} {summary['recall']:.4f}")
        except (ImportError, RuntimeError, ValueError, MemoryError) as e:
            msg = f"in-process target {t.name} failed: {type(e).__name__}: {e}"
            log("  ERROR: " + msg)
            self.errors.append(msg)

    def run_dataset(self, ds, chosen: list) -> None:
        """Every chosen target on one data set: exact targets first (an index
        built for a later target would change their plans), then index groups,
        then the in-process ceilings."""
        self.dataset = ds.name
        self.tables = {}
        cat, cat100 = ds.categories()
        log(f"data set {ds.name}: {len(ds.base)} rows x {ds.dims} dims, {self.args.queries} queries, "
            f"k = {self.args.k}")
        gts = {}
        failed_tables = set()
        sql_targets = [t for t in chosen if t.kind != "inprocess"]
        self.run_floors(ds, sql_targets)
        for group in group_targets(sql_targets):
            t = group[0]
            if t.table in failed_tables:
                continue
            try:
                self.ensure_table(t.spec, ds, cat, cat100)
            except psycopg.Error as e:
                self.reconnect_after_failure(f"loading {t.spec.table}", e)
                failed_tables.add(t.table)
                continue
            self.run_group(group, ds, gts, cat, cat100)
        for t in chosen:
            if t.kind == "inprocess":
                self.run_inprocess(t, ds, gts)

    def drop_tables(self) -> None:
        for key in list(self.tables):
            table = key.split(":", 1)[1] if key.startswith("queries:") else registry.TABLES[key].table
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")

    # --- comparisons -------------------------------------------------------------
    def comparisons(self, dataset: str) -> list:
        points = [p for p in self.points if p.get("dataset") == dataset]
        by_name = {}
        for p in points:
            by_name.setdefault(p["target"], []).append(p)
        out = []
        for p in points:
            t = registry.REGISTRY[p["target"]]
            for b in by_name.get(t.baseline, []):
                if p["kind"] == "exact" or not b["search"] or search_matches(p["search"], b["search"],
                                                                              t.baseline_search):
                    # Approximate or filtered points carry their recall, row
                    # count and plan: a QPS ratio alone hides a side that
                    # answered worse or ran another plan.
                    out.append({"type": "comparison", "dataset": dataset, "metric": p["metric"],
                                "target": point_label(p), "qps": p["qps"],
                                "baseline": point_label(b) if b["search"] or b["build"] else b["target"],
                                "baseline_qps": b["qps"], "ratio": p["qps"] / b["qps"],
                                "recall": p["recall"], "baseline_recall": b["recall"],
                                "short_queries": p.get("short_queries", 0),
                                "baseline_short_queries": b.get("short_queries", 0),
                                "plan_ok": p.get("plan_ok", True), "baseline_plan_ok": b.get("plan_ok", True)})
                    break
        # Best against best, per metric, among exact answers (seq scans, lflat).
        exact = [p for p in points
                 if p["kind"] != "inprocess" and registry.REGISTRY[p["target"]].exact_results and not p["filter"]]
        for metric in ("l2", "ip", "cosine"):
            lv = [p for p in exact if p["metric"] == metric and registry.TABLES[p["table_key"]].type_name == "lvector"]
            pv = [p for p in exact if p["metric"] == metric and registry.TABLES[p["table_key"]].type_name == "vector"]
            if lv and pv and (len(lv) > 1 or len(pv) > 1):
                a, b = max(lv, key=lambda p: p["qps"]), max(pv, key=lambda p: p["qps"])
                out.append({"type": "comparison", "dataset": dataset, "metric": metric,
                            "target": f"best: {point_label(a)}", "qps": a["qps"],
                            "baseline": f"best: {point_label(b)}", "baseline_qps": b["qps"],
                            "ratio": a["qps"] / b["qps"]})
        # pgbench: TPS against the baseline at the same client count.
        conc = [c for c in self.conc if c.get("dataset") == dataset]
        for c in conc:
            base = registry.REGISTRY[c["target"]].baseline
            for b in conc:
                if (b["target"] == base and b["clients"] == c["clients"]
                        and (b["search"] == c["search"] or c["kind"] == "exact" or not b["search"])):
                    out.append({"type": "comparison", "dataset": dataset, "metric": c["metric"],
                                "target": f"{point_label(c)}, {c['clients']} clients, TPS", "qps": c["tps"],
                                "baseline": f"{b['target']}, {b['clients']} clients", "baseline_qps": b["tps"],
                                "ratio": c["tps"] / b["tps"]})
                    break
        return out


def fastest_build(rounds: list) -> dict:
    """The figures of the last build (the index that stays) with the fastest
    build time of all rounds (other processes only slow a build down) and
    every round's time."""
    out = dict(rounds[-1])
    out["build_s"] = min(r["build_s"] for r in rounds)
    if len(rounds) > 1:
        out["build_rounds_s"] = [r["build_s"] for r in rounds]
    return out


def search_matches(search: dict, baseline_search: dict, wanted: dict) -> bool:
    """Whether a baseline point's search settings fit a point's: the
    settings both have are equal, and the baseline's other settings are the
    ones the target asks for (Target.baseline_search)."""
    for key, value in baseline_search.items():
        if key in search:
            if search[key] != value:
                return False
        elif key not in wanted or wanted[key] != value:
            return False
    return True


RECALL_LEVELS = (0.95, 0.99)


def _build_matches(build: dict, baseline_build: dict) -> bool:
    return all(build[k] == v for k, v in baseline_build.items() if k in build)


def curve_comparisons(points: list, levels=RECALL_LEVELS, floors=()) -> list:
    """For every approximate target with a baseline, a ceiling or a size
    reference, per build: its build time and index size against the
    baseline's build with the same shared parameters (m, ef_construction;
    lists), its QPS at each recall level (metrics.qps_at_recall over its
    search sweep) against the baseline's curve and the in-process ceiling's,
    its index size against the size reference's build (lhnsw with quantizer
    none for livfpq), and the target's goals (goal_checks, with the client
    floor records of the run: floors). Unfiltered points only."""
    curves = {}
    for p in points:
        # A point whose plan lacked the index measured something else.
        if p.get("filter") or registry.REGISTRY[p["target"]].exact_results or not p.get("plan_ok", True):
            continue
        key = (p["dataset"], p["target"], tuple(sorted(p["build"].items())))
        curves.setdefault(key, []).append(p)

    def pick(dataset, name, build):
        """The curve of target name whose build fits build: (points, build)."""
        for (ds, n, bkey), pts in curves.items():
            if ds == dataset and n == name and _build_matches(build, dict(bkey)):
                return pts
        return None

    out = []
    for (dataset, name, bkey), pts in curves.items():
        t = registry.REGISTRY[name]
        if not (t.baseline or t.ceiling or t.size_reference):
            continue
        build = dict(pts[0]["build"])   # in the order the target declares it
        base = pick(dataset, t.baseline, build) if t.baseline else None
        ceil = pick(dataset, t.ceiling, build) if t.ceiling else None
        if not base and not ceil and not t.size_reference:
            continue
        rec = {"type": "curve_comparison", "dataset": dataset, "metric": t.metric, "target": name,
               "build": build, "build_s": pts[0].get("build_s"), "index_bytes": pts[0].get("index_bytes"),
               "max_recall": max(p["recall"] for p in pts), "points": len(pts)}
        for role, other in (("baseline", base), ("ceiling", ceil)):
            if not other:
                continue
            o = other[0]
            rec[role] = o["target"]
            rec[f"{role}_build"] = o["build"]
            rec[f"{role}_build_s"] = o.get("build_s")
            rec[f"{role}_index_bytes"] = o.get("index_bytes")
            rec[f"{role}_max_recall"] = max(p["recall"] for p in other)
            if rec["build_s"] and o.get("build_s"):
                rec[f"{role}_build_ratio"] = rec["build_s"] / o["build_s"]
            if rec["index_bytes"] and o.get("index_bytes"):
                rec[f"{role}_size_ratio"] = rec["index_bytes"] / o["index_bytes"]
        if t.size_reference:
            # Any point measured on the reference's build will do (of a
            # target sharing that build, filtered or not, whatever its
            # plan): the size is the build's.
            rt = registry.REGISTRY[t.size_reference]

            def same_build(p):
                pt = registry.REGISTRY[p["target"]]
                return (pt.kind == rt.kind and pt.table == rt.table and pt.index_sql == rt.index_sql
                        and pt.metric == rt.metric and p.get("index_bytes")
                        and all(p["build"].get(k) == v for k, v in t.size_reference_build.items()))
            ref = next((p for p in points if p["dataset"] == dataset and same_build(p)), None)
            rec["size_reference"] = t.size_reference
            rec["size_reference_build"] = dict(ref["build"]) if ref else dict(t.size_reference_build)
            if ref:
                rec["size_reference_index_bytes"] = ref["index_bytes"]
                rec["size_reference_build_s"] = ref.get("build_s")
                if rec["index_bytes"]:
                    rec["size_reference_size_ratio"] = rec["index_bytes"] / ref["index_bytes"]
        rec["at"] = {}
        for level in levels:
            q, how = metrics.qps_at_recall([(p["recall"], p["qps"]) for p in pts], level)
            at = {"qps": q, "how": how}
            for role, other in (("baseline", base), ("ceiling", ceil)):
                if not other:
                    continue
                bq, bhow = metrics.qps_at_recall([(p["recall"], p["qps"]) for p in other], level)
                at[f"{role}_qps"], at[f"{role}_how"] = bq, bhow
                at[f"{role}_ratio"] = q / bq if q and bq else None
            rec["at"][f"{level:g}"] = at
        if t.goals:
            floor = next((f["qps"] for f in floors
                          if f["dataset"] == dataset and f["vector_type"] == t.spec.type_name), None)
            rec["goals"] = goal_checks(t, rec, pts, base, ceil, floor)
        out.append(rec)
    return out


def goal_checks(t, rec: dict, pts: list, base, ceil, floor_qps=None) -> list:
    """Target t's goals (Target.goals) against one curve comparison: one
    record per goal with what was measured (ours, theirs, ratio), the limit
    and whether it is met (None when a side is missing from the run, with
    a note saying which). QPS is read off both curves at the goal's recall
    level, as for the report's levels; 'approx' marks a ratio with a lower
    bound on one side (a curve whose fastest point is above the level). A
    QPS goal also says what QPS it needs (the limit times the baseline's)
    and, with the client floor of the target's vector type (floor_qps), what
    share of the floor that is: above 1, no search can meet it on this
    client path. The ceiling's ratio at that level is given as information."""
    g = t.goals
    source = g.get("source", "")
    level = g.get("recall", 0.95)
    out = []

    def missing(what):
        return f"{what} not in this run"

    if "qps_vs_baseline" in g:
        limit = g["qps_vs_baseline"]
        q, how = metrics.qps_at_recall([(p["recall"], p["qps"]) for p in pts], level)
        item = {"goal": f"QPS at recall {level:g} >= {limit:g}x {t.baseline}'s", "kind": "qps", "limit": limit,
                "op": ">=", "ours": q, "ours_how": how, "source": source, "level": level}
        if base:
            bq, bhow = metrics.qps_at_recall([(p["recall"], p["qps"]) for p in base], level)
            item.update({"theirs": bq, "theirs_how": bhow, "approx": "at least" in (how, bhow)})
            if bq:
                item["needs_qps"] = limit * bq
                if floor_qps:
                    item.update({"floor_qps": floor_qps, "needs_floor_share": item["needs_qps"] / floor_qps})
            if q and bq:
                item["ratio"] = q / bq
                item["met"] = item["ratio"] >= limit
            else:
                item["ratio"], item["met"] = None, (False if bq and not q else None)
                item["note"] = (f"{t.name} does not reach {level:g}" if not q else
                                f"{t.baseline} does not reach {level:g}")
        else:
            item.update({"theirs": None, "ratio": None, "met": None, "note": missing(t.baseline)})
        out.append(item)
    if "size_vs_reference" in g:
        limit = g["size_vs_reference"]
        ref_desc = t.size_reference + " (" + ", ".join(f"{k}={v}" for k, v in t.size_reference_build.items()) + ")"
        item = {"goal": f"index size <= {limit:g}x {ref_desc}'s", "kind": "size", "limit": limit, "op": "<=",
                "ours": rec.get("index_bytes"), "theirs": rec.get("size_reference_index_bytes"), "source": source}
        if rec.get("size_reference_size_ratio") is not None:
            item["ratio"] = rec["size_reference_size_ratio"]
            item["met"] = item["ratio"] <= limit
        else:
            item.update({"ratio": None, "met": None, "note": missing(ref_desc)})
        out.append(item)
    if "build_vs_baseline" in g:
        limit = g["build_vs_baseline"]
        item = {"goal": f"build time <= {limit:g}x {t.baseline}'s", "kind": "build", "limit": limit, "op": "<=",
                "ours": rec.get("build_s"), "theirs": rec.get("baseline_build_s"), "source": source}
        if rec.get("baseline_build_ratio") is not None:
            item["ratio"] = rec["baseline_build_ratio"]
            item["met"] = item["ratio"] <= limit
        else:
            item.update({"ratio": None, "met": None, "note": missing(t.baseline)})
        out.append(item)
    if t.ceiling:
        q, how = metrics.qps_at_recall([(p["recall"], p["qps"]) for p in pts], level)
        item = {"goal": f"QPS at recall {level:g} against {t.ceiling} (in-process ceiling, no SQL)",
                "kind": "ceiling", "limit": None, "op": None, "ours": q, "ours_how": how, "source": source,
                "level": level, "met": None}
        if ceil:
            cq, chow = metrics.qps_at_recall([(p["recall"], p["qps"]) for p in ceil], level)
            item.update({"theirs": cq, "theirs_how": chow, "ratio": q / cq if q and cq else None,
                         "approx": "at least" in (how, chow)})
        else:
            item.update({"theirs": None, "ratio": None, "note": missing(t.ceiling)})
        out.append(item)
    return out


def settings_not_applied(conn, statements: list) -> list:
    """The SET statements whose value the session does not hold, as
    'name=held (wanted value)'."""
    bad = []
    for st in statements:
        name, value = concurrency.parse_set(st)
        held = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()[0]
        if held is None or held.strip().lower() != value.strip().lower():
            bad.append(f"{name}={held} (wanted {value})")
    return bad


def group_targets(targets: list) -> list:
    """Exact targets one by one, first; then index targets grouped by table and
    CREATE INDEX statement (one build serves the group), in first-seen order."""
    exact = [[t] for t in targets if t.kind == "exact"]
    groups = {}
    for t in targets:
        if t.kind != "index":
            continue
        key = t.index_group(t.build_params[0])
        groups.setdefault(key, []).append(t)
    return exact + list(groups.values())


def shown_sql(t, k: int) -> str:
    return shown_sql_text(t.query_sql(k))


def shown_sql_text(sql: str) -> str:
    """A statement with psycopg's %s placeholders as the server sees them ($1, $2)."""
    for n in (1, 2):
        sql = sql.replace("%s", f"${n}", 1)
    return sql


# The client floor: a statement that takes the query vector exactly as a k-NN
# query does (a text parameter of a server-side prepared statement, parsed
# by the type's input function) and does nothing else, so its QPS bounds what
# any point on this client path can reach.
FLOOR_SQL = {"lvector": "SELECT lvector_dims(%s::lvector)", "vector": "SELECT vector_dims(%s::vector)"}


def floor_types(sql_targets: list) -> list:
    """The vector types of the SQL targets (lvector first), each once."""
    present = {t.spec.type_name for t in sql_targets if t.spec}
    return [name for name in FLOOR_SQL if name in present]


def point_label(p: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in {**p["build"], **p["search"]}.items())
    return f"{p['target']} ({params})" if params else p["target"]


def plan_nodes(node: dict) -> list:
    name = node["Node Type"]
    if "Relation Name" in node:
        name += f" on {node['Relation Name']}"
    if "Index Name" in node:
        name += f" using {node['Index Name']}"
    out = [name]
    for child in node.get("Plans", []):
        out += plan_nodes(child)
    return out


def plan_summary(chains: list, expect_node: str) -> dict:
    """One plan string for a point: the chain when every query ran the same
    plan, else each distinct chain with how many queries ran it (most first).
    plan_ok when every query's plan has the expected node."""
    counts = {}
    for c in chains:
        counts[c] = counts.get(c, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    if len(ranked) == 1:
        plan = ranked[0][0]
    else:
        plan = "; ".join(f"{c} ({n}/{len(chains)} queries)" for c, n in ranked)
    ok = sum(1 for c in chains if expect_node in c)
    return {"plan": plan, "plan_ok": bool(chains) and ok == len(chains), "plan_expected_share": ok / len(chains)
            if chains else 0.0}


def filtered_values(column: str, nq: int) -> np.ndarray:
    """The filter value of each query: a category that rotates through all
    classes, so filtered runs cover every class."""
    if column == "category":
        return np.arange(nq) % 10
    return (np.arange(nq) * 37) % 100


def check_availability(conn, chosen: list) -> tuple:
    """Drops targets this server or this Python cannot run, saying why.
    Returns (targets, pgvector available, {skipped target: reason})."""
    skipped = {}
    have_pgvector = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if have_pgvector:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    else:
        gone = [t.name for t in chosen if t.spec and t.spec.extension == "vector"]
        chosen = [t for t in chosen if not (t.spec and t.spec.extension == "vector")]
        skipped.update({n: "pgvector (extension vector) not available" for n in gone})
        log("pgvector (extension 'vector') is not available in this server: no pgvector targets"
            + (f" (skipped {', '.join(gone)})" if gone else "") + ", no ratios")

    ams = {r[0] for r in conn.execute("SELECT amname FROM pg_am")}
    missing = [t for t in chosen if t.requires_am and t.requires_am not in ams]
    if missing:
        log("no access method " + ", ".join(sorted({t.requires_am for t in missing}))
            + " in this server: skipped " + ", ".join(t.name for t in missing))
        skipped.update({t.name: f"no access method {t.requires_am}" for t in missing})
        chosen = [t for t in chosen if t not in missing]
    no_module = [t for t in chosen if t.requires_module and not inprocess.module_version(t.requires_module)]
    if no_module:
        log("Python module " + ", ".join(sorted({t.requires_module for t in no_module}))
            + " not importable (Debian: python3-hnswlib, python3-faiss): skipped "
            + ", ".join(t.name for t in no_module))
        skipped.update({t.name: f"Python module {t.requires_module} missing" for t in no_module})
        chosen = [t for t in chosen if t not in no_module]
    return chosen, bool(have_pgvector), skipped


def select_client_targets(patterns, chosen: list) -> set:
    sql = [t.name for t in chosen if t.kind != "inprocess"]
    if not patterns:
        return set(sql)
    out = set()
    for pat in (p.strip() for p in patterns.split(",") if p.strip()):
        out |= {n for n in sql if fnmatch.fnmatchcase(n, pat)}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list_targets:
        list_targets()
        return 0
    chosen = registry.select(args.targets)
    if args.with_baselines:
        chosen = registry.with_baselines(chosen)
    started = datetime.datetime.now()
    out_dir = args.out or os.path.join(HERE, "results", started.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)

    specs = [scaling_spec(args.dataset, n) for n in args.scaling_sizes] or [args.dataset]
    loaded = []
    for spec in specs:
        ds = datasets.load(spec).subset(args.rows)
        if len(ds.queries) < args.queries:
            sys.exit(f"{ds.name} has only {len(ds.queries)} queries")
        loaded.append(ds)

    bench = Bench(args)
    conn = bench.connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS libravdb")
    chosen, have_pgvector, skipped = check_availability(conn, chosen)
    if args.client_counts:
        bench.pgbench = concurrency.pgbench_path()
        bench.client_targets = select_client_targets(args.clients_targets, chosen)
        if not bench.pgbench:
            log("pgbench not found (Debian's postgresql-client-15 has it): no --clients runs")
            args.client_counts = []

    env = {"type": "env", "started": started.isoformat(timespec="seconds"),
           "dataset": ", ".join(ds.name for ds in loaded),
           "rows": " / ".join(str(len(ds.base)) for ds in loaded), "dims": loaded[0].dims,
           "queries": args.queries, "warmup": args.warmup, "repeat": args.repeat,
           "build_repeat": args.build_repeat,
           "loadavg_start": round(os.getloadavg()[0], 2), "k": args.k, "k2": args.k2,
           "clients": args.client_counts, "clients_time": args.clients_time,
           "targets": [t.name for t in chosen], "skipped": skipped, "cpu": report.cpu_info(),
           "server": report.server_info(conn), "psycopg": psycopg.__version__, "numpy": np.__version__,
           "hnswlib": inprocess.module_version("hnswlib"), "faiss": inprocess.module_version("faiss"),
           "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
           "recall_levels": args.recall_levels_list, "source": source_revision(),
           "extension_build": os.environ.get("LIBRAVDB_BENCH_BUILD"),
           "prewarm": bool(conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_prewarm'")
                           .fetchone()),
           "recall_rule": "tie-aware: a returned id is correct when its true distance <= the true k-th "
                          f"distance (relative tolerance {metrics.TIE_RTOL})"}
    bench.emit(env)
    header = report.header_markdown(env)
    print()
    print(header)

    md = [header]
    if not chosen:
        log("nothing to run: every selected target was skipped")
        loaded = []
    for ds in loaded:
        bench.run_dataset(ds, chosen)
        comps = bench.comparisons(ds.name)
        curves = curve_comparisons([p for p in bench.points if p["dataset"] == ds.name],
                                   args.recall_levels_list, bench.floors)
        for c in comps + curves:
            bench.emit(c)
        md += report.dataset_markdown(ds.name, len(ds.base), bench, comps, have_pgvector, args.scaling,
                                      curves)
        plot_name = f"recall_qps-{ds.name}.png" if args.scaling else "recall_qps.png"
        pts = [p for p in bench.points if p["dataset"] == ds.name]
        if pts and report.plot(pts, os.path.join(out_dir, plot_name), f"{ds.name}, {len(ds.base)} rows, k={args.k}"):
            log(f"plot: {os.path.join(out_dir, plot_name)}")
        elif pts:
            log("no plot: matplotlib is missing (Debian: python3-matplotlib)")
        if not args.keep_tables:
            bench.drop_tables()
    if args.scaling:
        md += ["## Scaling (same targets, growing N)\n", report.scaling_markdown(bench.points, bench.conc)]
    if bench.errors:
        md += ["## Errors\n"] + [f"- {e}" for e in bench.errors] + [""]
    text = "\n".join(md)
    print(text)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.jsonl"), "w") as f:
        for rec in bench.lines:
            f.write(json.dumps(rec, default=str) + "\n")
    log(f"report: {os.path.join(out_dir, 'report.md')}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
