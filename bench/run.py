#!/usr/bin/python3
"""LibraVDB benchmark harness.

Usually started by bench/run.sh, which builds and installs the extension and
runs this against a throwaway server with recorded settings. It can also run
against any server the PG* environment variables point at:

    /usr/bin/python3 bench/run.py --dataset fashion-mnist --queries 100
    /usr/bin/python3 bench/run.py --quick --targets 'lvector-*'
    /usr/bin/python3 bench/run.py --list-targets

For every target it loads (once per table layout) the data set with binary
COPY, runs warm-up queries, then N timed queries one after another as a
server-side prepared statement, and reports QPS, p50/p95/p99 latency and
recall@k against exact ground truth computed here with numpy. When pgvector's
extension is available in the server it measures the same queries on vector
columns and reports lvector / pgvector QPS ratios from the same run.
"""

import argparse
import datetime
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import datasets  # noqa: E402
import metrics  # noqa: E402
import pgload  # noqa: E402
import report  # noqa: E402
import targets as registry  # noqa: E402

try:
    import psycopg
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
    ap.add_argument("--rows", type=int, default=None, help="load only the first N base rows")
    ap.add_argument("--k", type=int, default=10, help="LIMIT k and recall@k (default 10)")
    ap.add_argument("--targets", default=None,
                    help="comma-separated target names or patterns (default: every exact-scan target)")
    ap.add_argument("--quick", action="store_true", help="10000 rows and 50 queries")
    ap.add_argument("--out", default=None, help="output folder (default bench/results/<timestamp>/)")
    ap.add_argument("--reload", action="store_true", help="reload tables even when they hold this data set")
    ap.add_argument("--keep-tables", action="store_true", help="do not drop the tables at the end")
    ap.add_argument("--list-targets", action="store_true", help="list the registered targets and exit")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows = args.rows or 10000
        args.queries = args.queries or 50
    args.queries = args.queries or 100
    if args.k < 1 or args.k > datasets.GT_K:
        ap.error(f"--k must be between 1 and {datasets.GT_K}")
    return args


def list_targets() -> None:
    for t in registry.REGISTRY.values():
        extra = f", filter {t.filter}" if t.filter else ""
        log(f"{t.name:32s} {'default' if t.default else 'opt-in ':7s} {t.kind:5s} {t.metric:6s} "
            f"on {t.spec.table}{extra}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.conn = None
        self.lines = []            # every JSON record, in order
        self.tables = {}           # table key -> load and storage figures
        self.points = []
        self.errors = []

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
    def ensure_table(self, spec, ds, cat, cat100) -> None:
        if spec.key in self.tables:
            return
        tag = f"libravdb-bench {ds.key} rows={len(ds.base)} dims={ds.dims}"
        existing = self.conn.execute(
            "SELECT obj_description(to_regclass(%s), 'pg_class')", (spec.table,)).fetchone()[0]
        load = None
        if existing == tag and not self.args.reload:
            log(f"table {spec.table}: already holds {tag}, reusing it (--reload to load again)")
        else:
            log(f"loading {len(ds.base)} rows into {spec.table} ({spec.description})")
            pgload.create_items_table(self.conn, spec.table, spec.type_name, ds.dims, spec.options, spec.storage)
            ids = np.arange(len(ds.base), dtype=np.int32)
            load = pgload.copy_items(self.conn, spec.table, ids, cat, cat100, ds.base, progress=log)
            self.conn.execute(f"COMMENT ON TABLE {spec.table} IS '{tag}'")
            log(f"  loaded in {load['load_s']:.1f} s ({load['rows_per_s']:.0f} rows/s in COPY), "
                f"WAL {load['wal_bytes'] / 2**20:.0f} MB")
        st = pgload.storage_stats(self.conn, spec.table)
        log(f"  {spec.table}: heap {st['heap_bytes'] / 2**20:.1f} MB, TOAST {st['toast_bytes'] / 2**20:.1f} MB, "
            f"{st['compressed_rows']}/{st['rows']} vectors compressed, "
            f"avg stored vector {st['avg_stored_vector_bytes']:.0f} B")
        self.tables[spec.key] = {"table": spec.table, "description": spec.description,
                                 "load": load, "storage": st}
        self.emit({"type": "table", "key": spec.key, **self.tables[spec.key]})

    # --- one target -------------------------------------------------------------
    def build_index(self, t, bp: dict) -> dict:
        name = re.sub(r"[^a-z0-9_]", "_", f"bench_{t.name}".lower())[:60]
        sql = t.index_sql.format(index=name, table=t.spec.table, opclass=t.opclass, **bp)
        self.conn.execute(f"DROP INDEX IF EXISTS {name}")
        lsn0 = self.conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        log(f"  building: {sql}")
        t0 = time.perf_counter()
        self.conn.execute(sql)
        build_s = time.perf_counter() - t0
        size, wal = self.conn.execute(
            "SELECT pg_relation_size(%s::regclass), pg_wal_lsn_diff(pg_current_wal_lsn(), %s)",
            (name, lsn0)).fetchone()
        self.conn.execute(f"ANALYZE {t.spec.table}")
        log(f"  built in {build_s:.1f} s, index {size / 2**20:.1f} MB, WAL {float(wal) / 2**20:.1f} MB")
        return {"index": name, "build_s": build_s, "index_bytes": int(size), "wal_bytes": int(wal)}

    def measure(self, t, ds, queries, gt, filter_values) -> dict:
        args = self.args
        k, nq = args.k, len(queries)
        sql = t.query_sql(k)
        texts = [pgload.vector_text(q) for q in queries]
        warm = [pgload.vector_text(q) for q in ds.queries[nq:nq + args.warmup]] or texts

        def params(i, text):
            return (int(filter_values[i % nq]), text) if t.filter else (text,)

        plan = self.conn.execute("EXPLAIN (FORMAT JSON) " + sql, params(0, texts[0])).fetchone()[0]
        nodes = plan_nodes(plan[0]["Plan"])
        cur = self.conn.cursor()
        for i in range(args.warmup):
            cur.execute(sql, params(i, warm[i % len(warm)]), prepare=True)
            cur.fetchall()
        # Other processes on the machine can only slow a round down, so with
        # --repeat the fastest round is the best estimate of the code's speed.
        rounds = []
        for _ in range(max(1, args.repeat)):
            lat, results = [], []
            t0 = time.perf_counter()
            for i in range(nq):
                s = time.perf_counter()
                cur.execute(sql, params(i, texts[i]), prepare=True)
                rows = cur.fetchall()
                lat.append(time.perf_counter() - s)
                results.append([r[0] for r in rows])
            rounds.append((metrics.latency_summary(lat, time.perf_counter() - t0), results))
        summary, results = max(rounds, key=lambda r: r[0]["qps"])
        summary["rounds_qps"] = [r[0]["qps"] for r in rounds]
        summary["recall"] = metrics.mean_recall(results, queries, ds.base, gt[1], t.metric, k)
        summary["plan"] = " > ".join(nodes)
        summary["plan_ok"] = any(t.expect_node in n for n in nodes)
        summary["sql"] = sql
        return summary

    def run_target(self, t, ds, gt, filter_values) -> None:
        queries = ds.queries[:self.args.queries]
        shown = t.query_sql(self.args.k)
        for n in (1, 2):
            shown = shown.replace("%s", f"${n}", 1)
        log(f"target {t.name}: {shown}")
        for bp in t.build_params:
            build = None
            try:
                if t.kind == "index":
                    build = self.build_index(t, bp)
                for sp in t.search_params:
                    for s in t.search_sql:
                        self.conn.execute(s.format(**sp))
                    m = self.measure(t, ds, queries, gt, filter_values)
                    point = {"type": "point", "target": t.name, "table": t.spec.table, "table_key": t.table,
                             "metric": t.metric, "kind": t.kind, "filter": t.filter, "k": self.args.k,
                             "build": bp, "search": sp, **(build or {}), **m}
                    self.points.append(point)
                    self.emit(point)
                    flag = "" if m["plan_ok"] else f"  (plan lacks {t.expect_node}!)"
                    log(f"  {json.dumps(sp) if sp else ''}QPS {m['qps']:.1f}, p50 {m['p50_ms']:.2f} ms, "
                        f"p95 {m['p95_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms, "
                        f"recall@{self.args.k} {m['recall']:.4f}; plan: {m['plan']}{flag}")
            except psycopg.Error as e:
                self.reconnect_after_failure(f"target {t.name} {bp}", e)
            finally:
                if build:
                    try:
                        self.conn.execute(f"DROP INDEX IF EXISTS {build['index']}")
                    except psycopg.Error:
                        pass
                for s in t.search_sql:   # back to the defaults for the next target
                    name = s.split()[1]
                    try:
                        self.conn.execute(f"RESET {name}")
                    except psycopg.Error:
                        pass

    # --- comparisons -------------------------------------------------------------
    def comparisons(self) -> list:
        by_name = {}
        for p in self.points:
            by_name.setdefault(p["target"], []).append(p)
        out = []
        for p in self.points:
            base = registry.REGISTRY[p["target"]].baseline
            for b in by_name.get(base, []):
                if b["search"] == p["search"] or p["kind"] == "exact":
                    out.append({"type": "comparison", "metric": p["metric"], "target": point_label(p),
                                "qps": p["qps"], "baseline": b["target"], "baseline_qps": b["qps"],
                                "ratio": p["qps"] / b["qps"]})
                    break
        # Best against best, per metric, among exact answers (seq scans, lflat).
        exact = [p for p in self.points
                 if registry.REGISTRY[p["target"]].exact_results and not p["filter"]]
        for metric in ("l2", "ip", "cosine"):
            lv = [p for p in exact if p["metric"] == metric and registry.TABLES[p["table_key"]].type_name == "lvector"]
            pv = [p for p in exact if p["metric"] == metric and registry.TABLES[p["table_key"]].type_name == "vector"]
            if lv and pv and (len(lv) > 1 or len(pv) > 1):
                a, b = max(lv, key=lambda p: p["qps"]), max(pv, key=lambda p: p["qps"])
                out.append({"type": "comparison", "metric": metric, "target": f"best: {point_label(a)}",
                            "qps": a["qps"], "baseline": f"best: {point_label(b)}", "baseline_qps": b["qps"],
                            "ratio": a["qps"] / b["qps"]})
        return out


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


def filtered_values(t, ds, nq) -> np.ndarray:
    """The filter value of each query: a category that rotates through all
    classes, so filtered runs cover every class."""
    if t.filter == "category":
        return np.arange(nq) % 10
    return (np.arange(nq) * 37) % 100


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list_targets:
        list_targets()
        return 0
    chosen = registry.select(args.targets)
    started = datetime.datetime.now()
    out_dir = args.out or os.path.join(HERE, "results", started.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)

    ds = datasets.load(args.dataset).subset(args.rows)
    if len(ds.queries) < args.queries:
        sys.exit(f"{ds.name} has only {len(ds.queries)} queries")
    cat, cat100 = ds.categories()
    log(f"data set {ds.name}: {len(ds.base)} rows x {ds.dims} dims, {args.queries} queries, k = {args.k}")

    bench = Bench(args)
    conn = bench.connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS libravdb")
    have_pgvector = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if have_pgvector:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    else:
        skipped = [t.name for t in chosen if t.spec.extension == "vector"]
        chosen = [t for t in chosen if t.spec.extension != "vector"]
        log("pgvector (extension 'vector') is not available in this server: no pgvector targets"
            + (f" (skipped {', '.join(skipped)})" if skipped else "") + ", no ratios")

    ams = {r[0] for r in conn.execute("SELECT amname FROM pg_am")}
    missing = [t for t in chosen if t.requires_am and t.requires_am not in ams]
    if missing:
        log("no access method " + ", ".join(sorted({t.requires_am for t in missing}))
            + " in this server: skipped " + ", ".join(t.name for t in missing))
        chosen = [t for t in chosen if t not in missing]

    env = {"type": "env", "started": started.isoformat(timespec="seconds"), "dataset": ds.name,
           "rows": len(ds.base), "dims": ds.dims, "queries": args.queries, "warmup": args.warmup, "repeat": args.repeat,
           "loadavg_start": round(os.getloadavg()[0], 2),
           "k": args.k, "targets": [t.name for t in chosen], "cpu": report.cpu_info(),
           "server": report.server_info(conn), "psycopg": psycopg.__version__, "numpy": np.__version__,
           "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
           "recall_rule": "tie-aware: a returned id is correct when its true distance <= the true k-th "
                          f"distance (relative tolerance {metrics.TIE_RTOL})"}
    bench.emit(env)
    header = report.header_markdown(env)
    print()
    print(header)

    gts = {}
    # Exact targets first: an index built for a later target would change their plans.
    failed_tables = set()
    for t in sorted(chosen, key=lambda t: t.kind != "exact"):
        if t.table in failed_tables:
            continue
        try:
            bench.ensure_table(t.spec, ds, cat, cat100)
        except psycopg.Error as e:
            bench.reconnect_after_failure(f"loading {t.spec.table}", e)
            failed_tables.add(t.table)
            continue
        fv = filtered_values(t, ds, args.queries) if t.filter else None
        key = (t.metric, t.filter)
        if key not in gts:
            if t.filter:
                col = cat if t.filter == "category" else cat100
                gts[key] = datasets.filtered_ground_truth(ds, t.metric, args.queries, t.filter, col, fv)
            else:
                gts[key] = datasets.ground_truth(ds, t.metric, args.queries)
        bench.run_target(t, ds, gts[key], fv)

    comps = bench.comparisons()
    for c in comps:
        bench.emit(c)

    md = [header, "## Storage\n", report.storage_markdown(bench.tables),
          "## Results\n", report.points_markdown(bench.points)]
    if comps:
        md += ["## libravdb / pgvector (same run, same queries)\n", report.comparisons_markdown(comps)]
    elif not have_pgvector:
        md += ["pgvector was not available in this server, so there are no ratios.\n"]
    if bench.errors:
        md += ["## Errors\n"] + [f"- {e}" for e in bench.errors] + [""]
    text = "\n".join(md)
    print(text)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.jsonl"), "w") as f:
        for rec in bench.lines:
            f.write(json.dumps(rec, default=str) + "\n")
    if bench.points and report.plot(bench.points, os.path.join(out_dir, "recall_qps.png"),
                                    f"{ds.name}, {len(ds.base)} rows, k={args.k}"):
        log(f"plot: {os.path.join(out_dir, 'recall_qps.png')}")
    else:
        log("no plot (matplotlib missing or no points)")
    log(f"report: {os.path.join(out_dir, 'report.md')}")

    if not args.keep_tables:
        for key in bench.tables:
            conn.execute(f"DROP TABLE IF EXISTS {registry.TABLES[key].table}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
