"""The benchmark report: environment header, Markdown tables, the plot."""

import os
import platform
import re

SETTINGS = ("shared_buffers", "maintenance_work_mem", "work_mem", "max_parallel_workers_per_gather",
            "max_parallel_maintenance_workers", "max_parallel_workers", "jit", "max_wal_size")


# Search settings of the indexes measured (those a server lacks are left out).
SEARCH_SETTINGS = ("libravdb.hnsw_ef_search", "libravdb.hnsw_max_scan_tuples", "libravdb.ivfpq_probes",
                   "libravdb.ivfpq_rerank", "hnsw.ef_search",
                   "hnsw.iterative_scan", "hnsw.max_scan_tuples", "hnsw.scan_mem_multiplier",
                   "ivfflat.probes", "ivfflat.iterative_scan", "ivfflat.max_probes")


def cpu_info() -> dict:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if m:
            model = m.group(1).strip()
        m = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        if m:
            flags = set(m.group(1).split())
    except OSError:
        pass
    simd = sorted(f for f in flags if f in ("sse4_2", "avx", "avx2", "fma") or f.startswith("avx512"))
    return {"model": model, "cores": os.cpu_count(), "simd_flags": simd}


def server_info(conn) -> dict:
    def one(sql, *args):
        row = conn.execute(sql, args).fetchone()
        return row[0] if row else None

    info = {
        "postgres": one("SHOW server_version"),
        "postgres_full": one("SELECT version()"),
        "libravdb": one("SELECT extversion FROM pg_extension WHERE extname = 'libravdb'"),
        "libravdb_simd_level": None,
        "pgvector": one("SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
        "settings": {s: one(f"SHOW {s}") for s in SETTINGS},
    }
    if info["libravdb"]:
        info["libravdb_simd_level"] = one("SELECT libravdb_simd_level()")
    # The search settings' defaults, which every point not sweeping them runs
    # with. Custom settings exist once their library is loaded: a cast
    # through the type's input function loads it.
    if info["libravdb"]:
        one("SELECT '[1]'::lvector::text")
    if info["pgvector"]:
        one("SELECT '[1]'::vector::text")
    info["search_defaults"] = {g: one("SELECT current_setting(%s, true)", g) for g in SEARCH_SETTINGS}
    info["search_defaults"] = {g: v for g, v in info["search_defaults"].items() if v is not None}
    return info


def header_markdown(env: dict) -> str:
    s = env["server"]
    lines = [
        f"# LibraVDB benchmark, {env['started']}",
        "",
        f"- data set: **{env['dataset']}**, {env['rows']} rows x {env['dims']} dims, "
        f"{env['queries']} queries (+{env['warmup']} warm-up), k = {env['k']}"
        + (f", fastest of {env['repeat']} rounds" if env.get("repeat", 1) > 1 else "")
        + (f"; build times: fastest of {env['build_repeat']} builds" if env.get("build_repeat", 1) > 1 else ""),
        f"- PostgreSQL {s['postgres']}; libravdb {s['libravdb']} (kernels: {s['libravdb_simd_level']}"
        + (f"; harness from commit {env['source']}" if env.get("source") else "")
        + (f"; extension {env['extension_build']}" if env.get("extension_build") else "") + "); "
        f"pgvector {s['pgvector'] or 'not installed'}",
        "- settings: " + ", ".join(f"{k}={v}" for k, v in s["settings"].items()),
        "- search defaults (points set their own sweep on top): "
        + (", ".join(f"{k}={v}" for k, v in s.get("search_defaults", {}).items()) or "none"),
        f"- CPU: {env['cpu']['model']}, {env['cpu']['cores']} cores; "
        f"SIMD flags: {' '.join(env['cpu']['simd_flags']) or 'none'}",
        f"- 1-minute load average when the run started: {env.get('loadavg_start', '-')} "
        "(other processes slow rounds down; --repeat keeps the fastest round)",
        f"- client: one connection, server-side prepared statement, psycopg {env['psycopg']}, "
        f"numpy {env['numpy']}"
        + (f"; recall@{env['k2']} (LIMIT {env['k2']}, one round) for index scans" if env.get("k2") else ""),
    ]
    if "prewarm" in env:
        lines.append("- tables and indexes read into shared buffers (pg_prewarm) after each load and build"
                     if env["prewarm"] else "- pg_prewarm not available: the first point on a table or index "
                     "may include cold reads")
    if env.get("clients"):
        lines.append(f"- concurrency: pgbench -M prepared, {', '.join(map(str, env['clients']))} clients "
                     f"(one thread each), {env['clients_time']} s per run, random query id per transaction")
    if env.get("hnswlib") or env.get("faiss"):
        lines.append(f"- in-process ceilings (no SQL, 1 thread): hnswlib {env.get('hnswlib') or 'missing'}, "
                     f"faiss {env.get('faiss') or 'missing'}")
    if env.get("skipped"):
        by_reason = {}
        for name, reason in env["skipped"].items():
            by_reason.setdefault(reason, []).append(name)
        lines += [f"- skipped ({reason}): {', '.join(names)}" for reason, names in by_reason.items()]
    if not env.get("targets"):
        lines.append("- nothing was measured: every selected target was skipped")
    lines += [
        f"- command: `{env['command']}`",
    ]
    return "\n".join(lines) + "\n"


def _fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _params(p: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in {**p.get("build", {}), **p.get("search", {})}.items()) or "-"


def _sort_key(params: dict) -> tuple:
    """Parameters in numeric order where they are numbers (ef_search=80
    before 400), else as text."""
    return tuple((k, (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))) for k, v in params.items())


def _rows_cell(p: dict) -> str:
    """Rows returned: the minimum over the queries, flagged when some query
    returned fewer than min(k, matching rows) or rows that break the filter."""
    cell = f"{p.get('rows_min', '-')}"
    if p.get("short_queries"):
        cell += f" ({p['short_queries']} short!)"
    if p.get("filter_violations"):
        cell += f" ({p['filter_violations']} break the filter!)"
    return cell


def _k2_flags(p: dict) -> str:
    out = ""
    if p.get("short_queries_k2"):
        out += f" ({p['short_queries_k2']} short!)"
    if not p.get("plan_ok_k2", True):
        out += f" (plan: {p['plan_k2']}!)"
    return out


def points_markdown(points: list) -> str:
    k2 = next((p["k2"] for p in points if "k2" in p), None)
    rows = ["| target | table | metric | params | QPS | p50 ms | p95 ms | p99 ms | recall@k | "
            + (f"recall@{k2} | QPS@{k2} | " if k2 else "") + "rows | build s | index MB | plan |",
            "|---|---|---|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if k2 else "") + "---:|---:|---:|---|"]
    for p in points:
        plan = p["plan"] + ("" if p["plan_ok"] else " (unexpected!)")
        extra = ""
        if k2:
            extra = (f"{p['recall_k2']:.4f}{_k2_flags(p)} | {p['qps_k2']:.1f} | " if "k2" in p
                     else ("1 (exact scan) | - | " if p["kind"] == "exact" else "- | - | "))
        rows.append(f"| {p['target']} | {p['table']} | {p['metric']} | {_params(p)} | {p['qps']:.1f} | "
                    f"{p['p50_ms']:.2f} | {p['p95_ms']:.2f} | {p['p99_ms']:.2f} | {p['recall']:.4f} | {extra}"
                    f"{_rows_cell(p)} | {_fmt(p.get('build_s'))} | "
                    f"{_fmt(p['index_bytes'] / 2**20 if p.get('index_bytes') else None)} | {plan} |")
    return "\n".join(rows) + "\n"


def concurrency_markdown(records: list) -> str:
    """pgbench results: TPS and average latency per client count, and the
    speed-up over one client of the same point."""
    if not records:
        return ""
    one = {}
    for r in records:
        if r["clients"] == 1:
            one[(r["target"], _params(r))] = r["tps"]
    rows = ["| target | metric | params | clients | TPS | latency avg ms | transactions | failed | "
            "TPS / 1 client | plan |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in records:
        base = one.get((r["target"], _params(r)))
        plan = r["plan"] + ("" if r["plan_ok"] else " (unexpected!)")
        speedup = f"{r['tps'] / base:.2f}x" if base else "-"
        rows.append(f"| {r['target']} | {r['metric']} | {_params(r)} | {r['clients']} | {r['tps']:.1f} | "
                    f"{_fmt(r['latency_avg_ms'], 2)} | {r['transactions']} | {_fmt(r.get('failed'))} | "
                    f"{speedup} | {plan} |")
    return "\n".join(rows) + "\n"


def inprocess_markdown(points: list) -> str:
    """The in-process ceilings: build once, a search sweep."""
    if not points:
        return ""
    rows = ["| library (in-process, no SQL, 1 thread) | build params | search | QPS | p50 ms | p99 ms | "
            "recall@k | build s | index MB |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for p in points:
        b = ", ".join(f"{k}={v}" for k, v in p["build"].items()) or "-"
        s = ", ".join(f"{k}={v}" for k, v in p["search"].items()) or "-"
        rows.append(f"| {p['target']} | {b} | {s} | {p['qps']:.1f} | {p['p50_ms']:.3f} | {p['p99_ms']:.3f} | "
                    f"{p['recall']:.4f} | {p['build_s']:.1f} | {p['index_bytes'] / 2**20:.1f} |")
    return "\n".join(rows) + "\n"


def scaling_markdown(points: list, conc: list = ()) -> str:
    """Build time, index size, QPS and recall against N, one row per target,
    parameters and N, sorted by target then N."""
    rows = ["| target | params | N | build s | index MB | build WAL MB | QPS | recall@k |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for p in sorted(points, key=lambda p: (p["target"], _sort_key(p.get("build", {})),
                                            _sort_key(p.get("search", {})), p["rows"])):
        mb = p["index_bytes"] / 2**20 if p.get("index_bytes") else None
        wal = p["wal_bytes"] / 2**20 if p.get("wal_bytes") else None
        rows.append(f"| {p['target']} | {_params(p)} | {p['rows']} | {_fmt(p.get('build_s'))} | {_fmt(mb)} | "
                    f"{_fmt(wal)} | {p['qps']:.1f} | {p['recall']:.4f} |")
    out = "\n".join(rows) + "\n"
    if conc:
        best = {}
        for r in conc:
            key = (r["target"], _params(r), r["dataset"])
            if key not in best or r["tps"] > best[key]["tps"]:
                best[key] = r
        rows = ["| target | params | data set | best TPS | at clients |", "|---|---|---|---:|---:|"]
        for (target, params, dsname), r in sorted(best.items()):
            rows.append(f"| {target} | {params} | {dsname} | {r['tps']:.1f} | {r['clients']} |")
        out += "\n" + "\n".join(rows) + "\n"
    return out


def _qps_cell(qps, how) -> str:
    if qps is None:
        return "not reached"
    return ("≥" if how == "at least" else "") + f"{qps:.1f}"


def _ratio_cell(at: dict, role: str) -> str:
    r = at.get(f"{role}_ratio")
    if r is None:
        return "-"
    # A lower bound on either side makes the ratio approximate.
    approx = "at least" in (at.get("how"), at.get(f"{role}_how"))
    return f"{'~' if approx else ''}**{r:.2f}x**"


def curves_markdown(curves: list) -> str:
    """Approximate indexes against their baseline (pgvector HNSW with the same
    m and ef_construction, pgvector IVFFlat with the same lists) and the
    in-process ceiling (hnswlib, FAISS IVFPQ): build time, size, and QPS at
    fixed recall levels taken from each recall/QPS curve."""
    if not curves:
        return ""
    levels = list(curves[0]["at"])
    head = ("| target | build | baseline | build s | ratio | index MB | ratio | "
            + " | ".join(f"QPS@{lv} | baseline | ratio | ceiling | ratio" for lv in levels) + " |")
    rows = [head, "|---|---|---|---:|---:|---:|---:|" + "---:|---:|---:|---:|---:|" * len(levels)]
    for c in curves:
        build = ", ".join(f"{k}={v}" for k, v in c["build"].items()) or "-"
        base = c.get("baseline")
        mb = c["index_bytes"] / 2**20 if c.get("index_bytes") else None
        bmb = c["baseline_index_bytes"] / 2**20 if c.get("baseline_index_bytes") else None
        cells = [c["target"], build, base or "-",
                 f"{_fmt(c.get('build_s'))} / {_fmt(c.get('baseline_build_s'))}" if base else _fmt(c.get("build_s")),
                 f"**{c['baseline_build_ratio']:.2f}x**" if c.get("baseline_build_ratio") else "-",
                 f"{_fmt(mb)} / {_fmt(bmb)}" if base else _fmt(mb),
                 f"**{c['baseline_size_ratio']:.2f}x**" if c.get("baseline_size_ratio") else "-"]
        for lv in levels:
            at = c["at"][lv]
            cells += [_qps_cell(at["qps"], at["how"]),
                      _qps_cell(at["baseline_qps"], at["baseline_how"]) if "baseline_qps" in at or
                      "baseline_how" in at else "-", _ratio_cell(at, "baseline"),
                      _qps_cell(at["ceiling_qps"], at["ceiling_how"]) if "ceiling_how" in at else "-",
                      _ratio_cell(at, "ceiling")]
        rows.append("| " + " | ".join(cells) + " |")
    note = ("\nQPS at a recall level is read off each recall/QPS curve (its Pareto frontier), "
            "interpolated between the points around the level (linear in recall and log QPS); "
            "≥ marks a curve whose fastest (least accurate) point is already above the level (a lower bound, ratio ~), "
            "'not reached' a curve that never gets there. Ratios are ours / theirs from this run; "
            "the ceiling is the in-process library (no SQL, one thread).\n")
    return "\n".join(rows) + "\n" + note


def _goal_value(item: dict, side: str) -> str:
    v = item.get(side)
    if v is None:
        return "not reached" if item["kind"] in ("qps", "ceiling") and side == "ours" else "-"
    if item["kind"] in ("qps", "ceiling"):
        return _qps_cell(v, item.get(f"{side}_how"))
    if item["kind"] == "size":
        return f"{v / 2**20:.1f} MB"
    return f"{v:.1f} s"


def _needs_cell(item: dict) -> str:
    """What a QPS goal needs: the limit times the baseline's QPS, and that as
    a share of the client floor when the run measured it, flagged when it is
    above the floor."""
    at_least = "≥ " if item.get("theirs_how") == "at least" else ""
    cell = f"needs {at_least}{item['needs_qps']:.0f} QPS"
    share = item.get("needs_floor_share")
    if share is None:
        return cell
    cell += f" = {at_least}{share:.2f}x the floor"
    if share >= 1:
        cell += " (above the floor: out of reach on this client path!)"
    return cell


def goals_markdown(curves: list) -> str:
    """The goals targets carry (Target.goals, e.g. issue 6's for livfpq),
    checked against this run: what was measured on both sides, the ratio,
    and whether the goal is met. A goal whose other side is not in the run
    says so."""
    rows = []
    for c in curves:
        for g in c.get("goals", []):
            ratio = g.get("ratio")
            cell = "-" if ratio is None else f"{'~' if g.get('approx') else ''}{ratio:.2f}x"
            met = {True: "**yes**", False: "**no**", None: "-"}[g.get("met")]
            if g.get("note"):
                met += f" ({g['note']})"
            if g.get("needs_qps"):
                met += "; " + _needs_cell(g)
            build = ", ".join(f"{k}={v}" for k, v in c["build"].items()) or "-"
            rows.append(f"| {c['target']} | {build} | {g['goal']} | {_goal_value(g, 'ours')} | "
                        f"{_goal_value(g, 'theirs')} | {cell} | {met} |")
    if not rows:
        return ""
    sources = sorted({g.get("source") for c in curves for g in c.get("goals", []) if g.get("source")})
    head = ["| target | build | goal" + (f" ({', '.join(sources)})" if sources else "")
            + " | ours | theirs | ratio | met |", "|---|---|---|---:|---:|---:|---|"]
    note = ("\nQPS is read off both recall/QPS curves at the goal's recall level, as in the table above "
            "(≥ and ~: a lower bound); the ceiling row is information, not a goal.\n")
    if any(g.get("needs_floor_share") is not None for c in curves for g in c.get("goals", [])):
        note += ("'needs': the QPS the goal asks for (its ratio times the baseline's QPS) and its share of "
                 "the client floor of the target's vector type (section Client floor).\n")
    return "\n".join(head + rows) + "\n" + note


def floor_markdown(floors: list) -> str:
    """The client floor of each vector type: QPS and latencies of a
    statement that only parses the query vector."""
    if not floors:
        return ""
    rows = ["| vector type | statement | QPS | p50 ms | p95 ms | p99 ms |", "|---|---|---:|---:|---:|---:|"]
    for f in floors:
        sql = f["sql"].replace("%s", "$1")
        rows.append(f"| {f['vector_type']} | `{sql}` | {f['qps']:.1f} | {f['p50_ms']:.3f} | "
                    f"{f['p95_ms']:.3f} | {f['p99_ms']:.3f} |")
    note = ("\nA statement that only parses the query vector, sent as every k-NN query here is (one "
            "connection, prepared, the vector as text; the same queries, warm-up and rounds): no point can run "
            "faster, so a QPS goal close to this floor is out of reach whatever the index does.\n")
    return "\n".join(rows) + "\n" + note


def dataset_markdown(name: str, rows: int, bench, comps: list, have_pgvector: bool, titled: bool,
                     curves: list = ()) -> list:
    """The report sections of one data set."""
    pts = [p for p in bench.points if p.get("dataset") == name]
    sql_pts = [p for p in pts if p["kind"] != "inprocess"]
    inproc = [p for p in pts if p["kind"] == "inprocess"]
    conc = [c for c in bench.conc if c.get("dataset") == name]
    floors = [f for f in bench.floors if f.get("dataset") == name]
    md = [f"# {name}, {rows} rows\n"] if titled else []
    md += ["## Storage\n", storage_markdown(bench.tables), "## Results\n", points_markdown(sql_pts)]
    if floors:
        md += ["## Client floor\n", floor_markdown(floors)]
    if conc:
        md += ["## Concurrent clients (pgbench)\n", concurrency_markdown(conc)]
    if inproc:
        md += ["## In-process ceilings (hnswlib / FAISS inside Python, no SQL)\n", inprocess_markdown(inproc)]
    if curves:
        md += ["## Recall/QPS curves against the baselines (pgvector) and the in-process ceilings\n",
               curves_markdown(list(curves))]
        goals = goals_markdown(list(curves))
        if goals:
            md += ["## Goals\n", goals]
    if comps:
        md += ["## libravdb / pgvector (same run, same queries)\n", comparisons_markdown(comps)]
    elif not have_pgvector:
        md += ["pgvector was not available in this server, so there are no ratios.\n"]
    return md


def storage_markdown(tables: dict) -> str:
    rows = ["| table | layout | options, storage | heap MB | TOAST MB | compressed vectors | "
            "avg stored vector B | load s | WAL MB |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for key, t in tables.items():
        if t is None:       # the pgbench queries tables
            continue
        st, ld = t["storage"], t.get("load") or {}
        opts = ", ".join(x for x in (st.get("reloptions"), f"STORAGE {st.get('attstorage')}") if x)
        rows.append(f"| {t['table']} | {t['description']} | {opts} | {st['heap_bytes'] / 2**20:.1f} | "
                    f"{st['toast_bytes'] / 2**20:.1f} | {st['compressed_rows']}/{st['rows']} "
                    f"({st['compression']}) | {st['avg_stored_vector_bytes']:.0f} | "
                    f"{_fmt(ld.get('load_s'))} | {_fmt(ld.get('wal_bytes', 0) / 2**20 if ld else None)} |")
    return "\n".join(rows) + "\n"


def comparisons_markdown(comparisons: list) -> str:
    if not comparisons:
        return ""
    rows = ["| metric | libravdb | QPS | recall | pgvector | QPS | recall | ratio |",
            "|---|---|---:|---:|---|---:|---:|---:|"]

    def rec(c, prefix):
        r = c.get(prefix + "recall")
        cell = "-" if r is None else f"{r:.4f}"
        if c.get(prefix + "short_queries"):
            cell += f" ({c[prefix + 'short_queries']} short!)"
        if not c.get(prefix + "plan_ok", True):
            cell += " (plan!)"
        return cell
    for c in comparisons:
        rows.append(f"| {c['metric']} | {c['target']} | {c['qps']:.1f} | {rec(c, '')} | {c['baseline']} | "
                    f"{c['baseline_qps']:.1f} | {rec(c, 'baseline_')} | **{c['ratio']:.2f}x** |")
    return "\n".join(rows) + ("\n\n(n short!): queries that returned fewer rows than a correct answer has; "
                              "(plan!): some queries ran without the target's index node.\n"
                              if any(c.get("short_queries") or c.get("baseline_short_queries")
                                     or not c.get("plan_ok", True) or not c.get("baseline_plan_ok", True)
                                     for c in comparisons) else "\n")


def plot_lines(points: list) -> dict:
    """The plot's lines: one per target, or per target and build when a
    target was built more than once (lhnsw with quantizer none and sq8), so a
    line is one search sweep on one index, like an ann-benchmarks curve."""
    builds = {}
    for p in points:
        builds.setdefault(p["target"], set()).add(tuple(sorted(p.get("build", {}).items())))
    lines = {}
    for p in points:
        name = p["target"]
        if len(builds[name]) > 1:
            varying = [k for k in p["build"] if len({dict(b).get(k) for b in builds[name]}) > 1]
            name += " (" + ", ".join(f"{k}={p['build'][k]}" for k in varying) + ")"
        lines.setdefault(name, []).append(p)
    return lines


def plot_panels(points: list) -> list:
    """One panel per metric and filter, like ann-benchmarks' one plot per
    data set and distance: [(title, points)], unfiltered panels first."""
    keys = sorted({(p["metric"], p.get("filter") or "") for p in points},
                  key=lambda k: (k[1] != "", ["l2", "ip", "cosine", "l1"].index(k[0])
                                 if k[0] in ("l2", "ip", "cosine", "l1") else 9, k[1]))
    return [(metric + (f", WHERE {flt} = c" if flt else ""),
             [p for p in points if p["metric"] == metric and (p.get("filter") or "") == flt])
            for metric, flt in keys]


def _frontier(pts: list) -> list:
    """The points on the recall/QPS Pareto frontier, by recall."""
    best, out = -1.0, []
    for p in sorted(pts, key=lambda p: (-p["recall"], -p["qps"])):
        if p["qps"] > best:
            out.append(p)
            best = p["qps"]
    return out[::-1]


def plot(points: list, path: str, title: str) -> bool:
    """Recall (x) against QPS (y, log scale) in the style of ann-benchmarks:
    one panel per metric (and filter), one line per target and build through
    its Pareto frontier, dominated points as faint markers, points whose
    plan lacked the expected node hollow. In-process ceilings are grey and
    dotted. Returns False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = plot_panels(points)
    cols = min(3, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(7.5 * cols, 5.5 * nrows), squeeze=False)
    for ax, (panel, pts_all) in zip(axes.flat, panels):
        lines = plot_lines(pts_all)
        sql_names = sorted(n for n in lines if not n.startswith("inproc"))
        colors = plt.get_cmap("tab10" if len(sql_names) <= 10 else "tab20").colors
        color_of = {n: colors[i % len(colors)] for i, n in enumerate(sql_names)}
        ceiling_markers = iter("xv^<>dP*")
        marker_of = {n: next(ceiling_markers, "x") for n in sorted(lines) if n.startswith("inproc")}
        for name, pts in sorted(lines.items()):
            # A point whose plan lacked the target's node (the planner chose
            # a sequential scan) is drawn hollow and stays off the line.
            good = [p for p in pts if p.get("plan_ok", True)]
            off_plan = [p for p in pts if not p.get("plan_ok", True)]
            front = _frontier(good)
            rest = [p for p in good if p not in front]
            if pts[0]["kind"] == "inprocess":
                style = dict(marker=marker_of[name], linestyle=":", color="0.45")
                label = f"{name} (ceiling: in-process, no SQL)"
            else:
                pg = name.startswith("pgvector")
                style = dict(marker="s" if pg else "o", linestyle="--" if pg else "-", color=color_of[name])
                label = name
            if front:
                ax.plot([p["recall"] for p in front], [p["qps"] for p in front], label=label, **style)
            if off_plan:
                ax.scatter([p["recall"] for p in off_plan], [p["qps"] for p in off_plan], s=40,
                           facecolors="none", edgecolors=style["color"], marker=style["marker"],
                           label=f"{name}: planner chose another plan" if not front else None)
            if rest:
                ax.scatter([p["recall"] for p in rest], [p["qps"] for p in rest], s=12, alpha=0.35,
                           color=style["color"], marker=style["marker"])
        lo = min(p["recall"] for p in pts_all)
        ax.set_xlim(max(0.0, min(lo - 0.02, 0.9)), 1.005)
        ax.set_yscale("log")
        ax.set_xlabel("recall@k")
        ax.set_ylabel("queries per second (log scale)")
        ax.set_title(f"{title}: {panel}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
