"""The benchmark report: environment header, Markdown tables, the plot."""

import os
import platform
import re

SETTINGS = ("shared_buffers", "maintenance_work_mem", "work_mem", "max_parallel_workers_per_gather",
            "max_parallel_maintenance_workers", "max_parallel_workers", "jit", "max_wal_size")


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
    return info


def header_markdown(env: dict) -> str:
    s = env["server"]
    lines = [
        f"# LibraVDB benchmark, {env['started']}",
        "",
        f"- data set: **{env['dataset']}**, {env['rows']} rows x {env['dims']} dims, "
        f"{env['queries']} queries (+{env['warmup']} warm-up), k = {env['k']}"
        + (f", fastest of {env['repeat']} rounds" if env.get("repeat", 1) > 1 else ""),
        f"- PostgreSQL {s['postgres']}; libravdb {s['libravdb']} (kernels: {s['libravdb_simd_level']}); "
        f"pgvector {s['pgvector'] or 'not installed'}",
        "- settings: " + ", ".join(f"{k}={v}" for k, v in s["settings"].items()),
        f"- CPU: {env['cpu']['model']}, {env['cpu']['cores']} cores; "
        f"SIMD flags: {' '.join(env['cpu']['simd_flags']) or 'none'}",
        f"- 1-minute load average when the run started: {env.get('loadavg_start', '-')} "
        "(other processes slow rounds down; --repeat keeps the fastest round)",
        f"- client: one connection, server-side prepared statement, psycopg {env['psycopg']}, "
        f"numpy {env['numpy']}",
        f"- command: `{env['command']}`",
    ]
    return "\n".join(lines) + "\n"


def _fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def points_markdown(points: list) -> str:
    rows = ["| target | table | metric | params | QPS | p50 ms | p95 ms | p99 ms | recall@k | plan |",
            "|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    for p in points:
        params = ", ".join(f"{k}={v}" for k, v in {**p.get("build", {}), **p.get("search", {})}.items()) or "-"
        plan = p["plan"] + ("" if p["plan_ok"] else " (unexpected!)")
        rows.append(f"| {p['target']} | {p['table']} | {p['metric']} | {params} | {p['qps']:.1f} | "
                    f"{p['p50_ms']:.2f} | {p['p95_ms']:.2f} | {p['p99_ms']:.2f} | {p['recall']:.4f} | {plan} |")
    return "\n".join(rows) + "\n"


def storage_markdown(tables: dict) -> str:
    rows = ["| table | layout | options, storage | heap MB | TOAST MB | compressed vectors | "
            "avg stored vector B | load s | WAL MB |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for key, t in tables.items():
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
    rows = ["| metric | libravdb | QPS | pgvector | QPS | ratio |", "|---|---|---:|---|---:|---:|"]
    for c in comparisons:
        rows.append(f"| {c['metric']} | {c['target']} | {c['qps']:.1f} | {c['baseline']} | "
                    f"{c['baseline_qps']:.1f} | **{c['ratio']:.2f}x** |")
    return "\n".join(rows) + "\n"


def plot(points: list, path: str, title: str) -> bool:
    """Recall (x) against QPS (y, log scale), one line per target. Returns
    False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    by_target = {}
    for p in points:
        by_target.setdefault(p["target"], []).append(p)
    colors = plt.get_cmap("tab20").colors
    for n, (name, pts) in enumerate(sorted(by_target.items())):
        pts = sorted(pts, key=lambda p: p["recall"])
        pg = name.startswith("pgvector")
        ax.plot([p["recall"] for p in pts], [p["qps"] for p in pts], marker="s" if pg else "o",
                linestyle="--" if pg else "-", color=colors[n % len(colors)], label=name)
    lo = min(p["recall"] for p in points)
    ax.set_xlim(max(0.0, min(lo - 0.02, 0.9)), 1.005)
    ax.set_yscale("log")
    ax.set_xlabel("recall@k")
    ax.set_ylabel("queries per second (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
