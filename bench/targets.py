"""The registry of benchmark targets.

A table layout (TableSpec) says how the data is stored: which extension and
type, which table options and column storage. A target says what is measured
on one table: the metric, an optional index build (with a sweep of build
parameters), a sweep of search settings applied with SET before the queries,
and an optional filter. Runs with the same table share one load.

Adding an index target is a registry entry, e.g. (see _lhnsw_targets)

    Target("lvector-lhnsw-l2", table="lvector", metric="l2", kind="index",
           index_sql="CREATE INDEX {index} ON {table} USING lhnsw (embedding {opclass}) "
                     "WITH (m = {m}, ef_construction = {ef_construction})",
           build_params=[{"m": 16, "ef_construction": 64}],
           search_sql=["SET libravdb.hnsw_ef_search = {ef_search}"],
           search_params=[{"ef_search": e} for e in (10, 20, 40, 80, 160)],
           expect_node="Index Scan", baseline="pgvector-hnsw-l2", requires_am="lhnsw",
           exact_results=False, ceiling="inproc-hnswlib-l2")

and the harness measures build time, index size (pg_relation_size) and WAL
bytes (pg_current_wal_lsn before and after) for it. Targets on one table with
the same CREATE INDEX share each build: the index is built once per build
parameter set and every such target (unfiltered and filtered) is measured on
it before it is dropped.

In-process targets (kind "inprocess", no table) run hnswlib or FAISS inside
the harness's Python process on the same vectors and queries, with one thread:
ceilings without SQL, executor or buffer manager, for the plot and the report.
"""

import fnmatch
from dataclasses import dataclass, field
from typing import Optional

OPERATORS = {"l2": "<->", "ip": "<#>", "cosine": "<=>", "l1": "<+>"}
OPCLASS_SUFFIX = {"l2": "l2_ops", "ip": "ip_ops", "cosine": "cosine_ops", "l1": "l1_ops"}
EXTENSION_OF = {"lvector": "libravdb", "vector": "vector"}


@dataclass(frozen=True)
class TableSpec:
    key: str
    table: str
    type_name: str                    # lvector | vector
    options: str = ""                 # contents of WITH (...)
    storage: Optional[str] = None     # ALTER COLUMN embedding SET STORAGE ...
    description: str = ""
    counterpart: Optional[str] = None  # the pgvector layout an lvector layout is compared with

    @property
    def extension(self) -> str:
        return EXTENSION_OF[self.type_name]


# Rows of 784 floats (3 kB) pass Postgres's TOAST threshold (toast_tuple_target,
# 2032 bytes by default). Then lvector (STORAGE main) is compressed in the row
# when it compresses, and pgvector's vector (STORAGE external) is moved out of
# line. libravdb's event trigger gives new tables with an lvector column
# toast_tuple_target = 8160 unless one is set, so "lvector" is inline too; the
# tt2032 layout keeps Postgres's own threshold to show what that costs.
TABLES = {t.key: t for t in [
    TableSpec("lvector", "items", "lvector", counterpart="pgvector",
              description="lvector, CREATE TABLE as users write it (the extension's default)"),
    TableSpec("lvector-tt2032", "items_tt2032", "lvector", options="toast_tuple_target = 2032",
              counterpart="pgvector",
              description="lvector, WITH (toast_tuple_target = 2032), Postgres's threshold: "
                          "compressible vectors are pglz-compressed in the row"),
    TableSpec("lvector-tt8160", "items_tt8160", "lvector", options="toast_tuple_target = 8160",
              counterpart="pgvector-tt8160",
              description="lvector, WITH (toast_tuple_target = 8160): inline, uncompressed"),
    TableSpec("pgvector", "items_pgvector", "vector",
              description="pgvector, default (STORAGE external: vectors out of line in TOAST)"),
    TableSpec("pgvector-tt8160", "items_pgvector_tt8160", "vector", options="toast_tuple_target = 8160",
              description="pgvector, WITH (toast_tuple_target = 8160): inline, uncompressed"),
]}


@dataclass
class Target:
    name: str
    table: Optional[str]              # key into TABLES (None for in-process targets)
    metric: str                       # l2 | ip | cosine | l1
    kind: str = "exact"               # exact | index | inprocess
    index_sql: Optional[str] = None   # with {index}, {table}, {opclass} and build params
    build_params: list = field(default_factory=lambda: [{}])
    search_sql: list = field(default_factory=list)   # SET statements with search params
    search_params: list = field(default_factory=lambda: [{}])
    filter: Optional[str] = None      # category (10 % of rows) | category100 (1 %)
    expect_node: str = "Seq Scan"     # the plan must contain this node, or the point is flagged
    baseline: Optional[str] = None    # target whose QPS this one is compared with
    default: bool = True              # part of the run when --targets is not given
    requires_am: Optional[str] = None  # skipped when the server lacks this access method
    exact_results: bool = True        # the answer is exact (seq scan, lflat); False for ANN indexes
    engine: Optional[str] = None      # in-process: hnswlib | faiss-flat | faiss-ivfpq
    requires_module: Optional[str] = None  # in-process: skipped when this Python module is missing
    # A baseline point matches a point of this target when the search
    # parameters both have are equal and the baseline's other search
    # parameters equal baseline_search (e.g. pgvector's iterative_scan mode).
    baseline_search: dict = field(default_factory=dict)
    # Approximate targets: the in-process target whose recall/QPS curve is the
    # ceiling (report: QPS at recall 0.95 / 0.99 against it).
    ceiling: Optional[str] = None
    # A target whose index size this one's is compared with (the build of it
    # whose parameters include size_reference_build), e.g. livfpq against
    # lhnsw with quantizer = 'none'. --with-baselines adds it to the run
    # (without its own baselines).
    size_reference: Optional[str] = None
    size_reference_build: dict = field(default_factory=dict)
    # Figures an issue asks for, checked in the report (run.goal_checks):
    # "recall" (the level), "qps_vs_baseline" (at least this QPS ratio
    # against the baseline's curve at that level), "size_vs_reference" (at
    # most this size ratio against the size reference), "build_vs_baseline"
    # (at most this build-time ratio), "source" (where the goals come from).
    goals: dict = field(default_factory=dict)

    @property
    def spec(self) -> Optional[TableSpec]:
        return TABLES[self.table] if self.table else None

    @property
    def measures_k2(self) -> bool:
        """Whether the second LIMIT (recall@100) is measured: for index scans,
        where it checks that a scan keeps returning rows in order past the
        first k (and later the ANN recall). A sequential scan sorts every row,
        so its recall@100 is 1 by construction and not measured."""
        return self.kind == "index"

    def index_group(self, bp: dict):
        """Targets with the same group share one index build."""
        return (self.table, self.index_sql.format(index="{index}", table=self.spec.table,
                                                  opclass=self.opclass, **bp)) if self.kind == "index" else None

    @property
    def opclass(self) -> str:
        return f"{self.spec.type_name}_{OPCLASS_SUFFIX[self.metric]}"

    def query_sql(self, k: int) -> str:
        if self.kind == "inprocess":
            raise ValueError(f"{self.name} runs in-process: no SQL")
        where = f" WHERE {self.filter} = %s" if self.filter else ""
        return (f"SELECT id FROM {self.spec.table}{where} "
                f"ORDER BY embedding {OPERATORS[self.metric]} %s LIMIT {int(k)}")


def _exact_targets() -> list:
    out = []
    for key, spec in TABLES.items():
        counterpart = spec.counterpart
        for metric in ("l2", "ip", "cosine"):
            base = f"{counterpart}-exact-{metric}" if counterpart else None
            out.append(Target(f"{key}-exact-{metric}", key, metric, baseline=base))
        # Filtered exact scans: not in the default run; the seq scan applies the
        # filter before computing distances.
        for col, tag in (("category", "f10"), ("category100", "f1")):
            base = f"{counterpart}-exact-l2-{tag}" if counterpart else None
            out.append(Target(f"{key}-exact-l2-{tag}", key, "l2", filter=col, baseline=base, default=False))
    return out


FILTERS = (("category", "f10"), ("category100", "f1"))   # 10 % and 1 % of the rows
LFLAT_SQL = "CREATE INDEX {index} ON {table} USING lflat (embedding {opclass}) WITH (quantizer = '{quantizer}')"
HNSW_SQL = ("CREATE INDEX {index} ON {table} USING hnsw (embedding {opclass}) "
            "WITH (m = {m}, ef_construction = {ef_construction})")
HNSW_BUILD = [{"m": 16, "ef_construction": 64}]
# One ef_search sweep for every HNSW (lhnsw, pgvector, hnswlib), so the curves
# cover the same range and points with the same ef line up.
EF_SWEEP = (10, 20, 40, 80, 120, 200, 400)
# Filtered HNSW points: pgvector's default ef_search and a larger one.
EF_FILTERED = (40, 200)
ANN_METRICS = ("l2", "ip", "cosine")
QUANTIZERS = ("none", "fp16", "sq8")
# Filtered index targets are measured twice: with the plan the planner picks
# (its cost estimates decide whether users ever see the index scan) and with
# enable_seqscan = off, so the index's own filtered speed and row counts are
# known even where the planner prefers a sequential scan.
SEQSCAN_SQL = "SET enable_seqscan = {enable_seqscan}"
# Unfiltered ANN sweeps measure the index at every search setting: with a
# large ef_search the planner may prefer a sequential scan on a small table
# (pgvector's cost grows with ef_search), which would put an exact seq scan
# on the index's curve. The filtered targets measure the planner's choice.
FORCE_INDEX_SQL = "SET enable_seqscan = off"


def _lflat_targets() -> list:
    # lflat answers exactly (quantized codes only order candidates; the heap
    # row rechecks), so it is compared with pgvector's exact scan.
    out = [Target(f"lvector-lflat-{metric}", "lvector", metric, kind="index", index_sql=LFLAT_SQL,
                  build_params=[{"quantizer": q} for q in QUANTIZERS],
                  expect_node="Index Scan", baseline=f"pgvector-exact-{metric}", requires_am="lflat")
           for metric in ("l2", "ip", "cosine")]
    for col, tag in FILTERS:
        out.append(Target(f"lvector-lflat-l2-{tag}", "lvector", "l2", kind="index", index_sql=LFLAT_SQL,
                          build_params=[{"quantizer": q} for q in QUANTIZERS],
                          search_sql=[SEQSCAN_SQL],
                          search_params=[{"enable_seqscan": v} for v in ("on", "off")],
                          filter=col, expect_node="Index Scan", baseline=f"pgvector-exact-l2-{tag}",
                          requires_am="lflat", default=False))
    return out


# IVF indexes (pgvector IVFFlat, livfpq, FAISS IVFPQ) use one list count, the
# one issue 6 compares at: about the square root of Fashion-MNIST's rows.
IVF_LISTS = 245
IVF_BUILD = [{"lists": IVF_LISTS}]
IVFFLAT_SQL = "CREATE INDEX {index} ON {table} USING ivfflat (embedding {opclass}) WITH (lists = {lists})"
# livfpq's (probes, rerank) sweep, recall@10 from about 0.64 to 1.0 on
# Fashion-MNIST. Recall there is set by both: at a fixed rerank it levels off
# however many lists are probed (PQ scores misorder close neighbours: about
# 0.94 at rerank 20 with 4-bit codes, 0.976 with 8-bit), and with enough
# rerank by the lists probed (0.64 at 1, 0.83 at 2, 0.97 at 5, 0.998 at 12),
# while more re-ranking than that buys nothing and costs a heap fetch per
# candidate. So rerank grows with probes, min(100, max(30, 10 * probes)),
# which kept each point near the frontier of a 48-point (probes, rerank)
# grid for both code widths, and (10, 100) is livfpq's default. rerank stays
# at least 2k: a scan's first batch returns the closer half of what it
# re-ranked, and a LIMIT beyond that takes the slower careful refills.
# FAISS's IndexRefineFlat sweeps the same candidates: k_factor = rerank / 10
# at k = 10.
IVFPQ_SWEEP = tuple((p, min(100, max(30, 10 * p))) for p in (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30, 40))
# pgvector IVFFlat's probes sweep: 1 to 40 lists, livfpq's probes values,
# so points line up.
PROBES_SWEEP = tuple(p for p, _ in IVFPQ_SWEEP)
# Filtered IVF points: (probes, rerank), livfpq's defaults and half of them.
IVF_FILTERED = ((5, 50), (10, 100))


def _pgvector_index_targets() -> list:
    # Opt-in reference points for the index benchmarks. HNSW with pgvector's
    # defaults (m = 16, ef_construction = 64) on the inline table, for every
    # metric: the baseline of lhnsw.
    out = [Target(f"pgvector-hnsw-{metric}", "pgvector-tt8160", metric, kind="index", index_sql=HNSW_SQL,
                  build_params=HNSW_BUILD,
                  search_sql=["SET hnsw.ef_search = {ef_search}", FORCE_INDEX_SQL],
                  search_params=[{"ef_search": e} for e in EF_SWEEP],
                  expect_node="Index Scan", default=False, requires_am="hnsw", exact_results=False,
                  ceiling=f"inproc-hnswlib-{metric}")
           for metric in ANN_METRICS]
    # IVFFlat with lists = 245 (about the square root of Fashion-MNIST's 60000
    # rows, pgvector's advice): the baseline of livfpq, for every metric, a
    # probes sweep from 1 to 40 that holds every probes value of livfpq's.
    out += [Target(f"pgvector-ivfflat-{metric}", "pgvector-tt8160", metric, kind="index", index_sql=IVFFLAT_SQL,
                   build_params=IVF_BUILD,
                   search_sql=["SET ivfflat.probes = {probes}", FORCE_INDEX_SQL],
                   search_params=[{"probes": p} for p in PROBES_SWEEP],
                   expect_node="Index Scan", default=False, requires_am="ivfflat", exact_results=False)
            for metric in ANN_METRICS]
    # Filtered IVFFlat: without iterative scans (off) a scan stops after its
    # probes lists, so a selective filter returns fewer than k rows;
    # pgvector 0.8 offers relaxed_order for IVFFlat (no strict_order): it
    # probes further lists, up to ivfflat.max_probes.
    for col, tag in FILTERS:
        out.append(Target(f"pgvector-ivfflat-l2-{tag}", "pgvector-tt8160", "l2", kind="index", index_sql=IVFFLAT_SQL,
                          build_params=IVF_BUILD,
                          search_sql=["SET ivfflat.probes = {probes}", "SET ivfflat.iterative_scan = {iterative_scan}",
                                      SEQSCAN_SQL],
                          search_params=[{"probes": p, "iterative_scan": m, "enable_seqscan": s}
                                         for s in ("on", "off")
                                         for p, _ in IVF_FILTERED
                                         for m in ("off", "relaxed_order")],
                          filter=col, expect_node="Index Scan", default=False, requires_am="ivfflat",
                          exact_results=False))
    # pgvector 0.8's iterative index scans: without them (off) an HNSW scan
    # stops after ef_search candidates, so a selective filter returns fewer
    # than k rows; strict_order / relaxed_order keep scanning.
    for col, tag in FILTERS:
        out.append(Target(f"pgvector-hnsw-l2-{tag}", "pgvector-tt8160", "l2", kind="index", index_sql=HNSW_SQL,
                          build_params=HNSW_BUILD,
                          search_sql=["SET hnsw.ef_search = {ef_search}", "SET hnsw.iterative_scan = {iterative_scan}",
                                      SEQSCAN_SQL],
                          search_params=[{"ef_search": e, "iterative_scan": m, "enable_seqscan": s}
                                         for s in ("on", "off")
                                         for e in EF_FILTERED
                                         for m in ("off", "strict_order", "relaxed_order")],
                          filter=col, expect_node="Index Scan", default=False, requires_am="hnsw",
                          exact_results=False))
    return out


LHNSW_SQL = ("CREATE INDEX {index} ON {table} USING lhnsw (embedding {opclass}) "
             "WITH (m = {m}, ef_construction = {ef_construction}, quantizer = '{quantizer}')")
LHNSW_BUILD = [{"m": 16, "ef_construction": 64, "quantizer": q} for q in ("none", "sq8")]


def _lhnsw_targets() -> list:
    # lhnsw with pgvector's build defaults, without and with the sq8
    # quantizer (re-ranked exactly), compared with pgvector's HNSW on the
    # inline table: per point at the same ef_search, and curve against curve
    # (build time, size, QPS at recall 0.95 / 0.99; report.curve_comparisons).
    # Skipped while the server has no lhnsw access method.
    out = [Target(f"lvector-lhnsw-{metric}", "lvector", metric, kind="index", index_sql=LHNSW_SQL,
                  build_params=LHNSW_BUILD,
                  search_sql=["SET libravdb.hnsw_ef_search = {ef_search}", FORCE_INDEX_SQL],
                  search_params=[{"ef_search": e} for e in EF_SWEEP],
                  expect_node="Index Scan", baseline=f"pgvector-hnsw-{metric}", default=False,
                  requires_am="lhnsw", exact_results=False, ceiling=f"inproc-hnswlib-{metric}")
           for metric in ANN_METRICS]
    # Filtered: lhnsw scans keep returning rows in distance order while the
    # executor asks (DESIGN.md, Queries), which is what pgvector's
    # iterative_scan = strict_order promises, so that is the baseline point.
    for col, tag in FILTERS:
        out.append(Target(f"lvector-lhnsw-l2-{tag}", "lvector", "l2", kind="index", index_sql=LHNSW_SQL,
                          build_params=LHNSW_BUILD,
                          search_sql=["SET libravdb.hnsw_ef_search = {ef_search}", SEQSCAN_SQL],
                          search_params=[{"ef_search": e, "enable_seqscan": s}
                                         for s in ("on", "off") for e in EF_FILTERED],
                          filter=col, expect_node="Index Scan", baseline=f"pgvector-hnsw-l2-{tag}",
                          baseline_search={"iterative_scan": "strict_order"}, default=False,
                          requires_am="lhnsw", exact_results=False))
    return out


LIVFPQ_SQL = ("CREATE INDEX {index} ON {table} USING livfpq (embedding {opclass}) "
              "WITH (lists = {lists}, pq_bits = {pq_bits})")
# Both code widths with livfpq's default pq_m for each: 4-bit codes on
# dimensions / 4 sub-spaces (livfpq's default since 86c4482; 196 for 784)
# and 8-bit codes on dimensions / 8 (98 for 784, the code issue 6 names).
# Both codes take the same bytes.
LIVFPQ_BUILD = [{"lists": IVF_LISTS, "pq_bits": b} for b in (4, 8)]
# Issue 6's performance targets for livfpq on Fashion-MNIST: at recall@10 =
# 0.95, 2x pgvector IVFFlat's QPS, an index at most 0.15x the size of an
# lhnsw index with quantizer = 'none', built no slower than IVFFlat.
LIVFPQ_GOALS = {"source": "issue 6", "recall": 0.95, "qps_vs_baseline": 2.0, "size_vs_reference": 0.15,
                "build_vs_baseline": 1.0}


def _livfpq_targets() -> list:
    # livfpq with lists = 245, 4- and 8-bit codes (LIVFPQ_BUILD), a
    # (probes, rerank) sweep; compared with pgvector IVFFlat at the same
    # lists (per point at the same probes, and curve against curve), with
    # lhnsw (quantizer none) for the index size, and with FAISS IndexIVFPQ
    # inside IndexRefineFlat in-process as the ceiling.
    out = [Target(f"lvector-livfpq-{metric}", "lvector", metric, kind="index", index_sql=LIVFPQ_SQL,
                  build_params=LIVFPQ_BUILD,
                  search_sql=["SET libravdb.ivfpq_probes = {probes}", "SET libravdb.ivfpq_rerank = {rerank}",
                              FORCE_INDEX_SQL],
                  search_params=[{"probes": p, "rerank": r} for p, r in IVFPQ_SWEEP],
                  expect_node="Index Scan", baseline=f"pgvector-ivfflat-{metric}", default=False,
                  requires_am="livfpq", exact_results=False, ceiling=f"inproc-faiss-ivfpq-{metric}",
                  size_reference=f"lvector-lhnsw-{metric}", size_reference_build={"quantizer": "none"},
                  goals=LIVFPQ_GOALS)
           for metric in ANN_METRICS]
    # Filtered: a livfpq scan goes on to further candidates and lists while
    # the executor asks for rows (src/pg/livfpq_scan.cc), which is what
    # pgvector's ivfflat.iterative_scan = relaxed_order does, so that is the
    # baseline point (same probes and enable_seqscan).
    for col, tag in FILTERS:
        out.append(Target(f"lvector-livfpq-l2-{tag}", "lvector", "l2", kind="index", index_sql=LIVFPQ_SQL,
                          build_params=LIVFPQ_BUILD[:1],   # the default code (4-bit), on the shared build
                          search_sql=["SET libravdb.ivfpq_probes = {probes}", "SET libravdb.ivfpq_rerank = {rerank}",
                                      SEQSCAN_SQL],
                          search_params=[{"probes": p, "rerank": r, "enable_seqscan": s}
                                         for s in ("on", "off") for p, r in IVF_FILTERED],
                          filter=col, expect_node="Index Scan", baseline=f"pgvector-ivfflat-l2-{tag}",
                          baseline_search={"iterative_scan": "relaxed_order"}, default=False,
                          requires_am="livfpq", exact_results=False))
    return out


def _inprocess_targets() -> list:
    # Ceilings: the same vectors and queries searched inside this process, one
    # query at a time, one thread, no SQL. Opt-in ('inproc-*').
    out = [Target(f"inproc-hnswlib-{metric}", None, metric, kind="inprocess", engine="hnswlib",
                  build_params=HNSW_BUILD,
                  search_params=[{"ef": e} for e in EF_SWEEP],
                  expect_node="", default=False, exact_results=False, requires_module="hnswlib")
           for metric in ANN_METRICS]
    return out + [
        Target("inproc-faiss-flat-l2", None, "l2", kind="inprocess", engine="faiss-flat",
               expect_node="", default=False, requires_module="faiss"),
    ] + [
        # The ceiling of livfpq: IndexIVFPQ (8-bit) and IndexIVFPQFastScan
        # (4-bit) with livfpq's lists and default pq_m for the width
        # (inprocess.ivfpq_params) inside IndexRefineFlat, which re-ranks
        # k * k_factor candidates exactly; livfpq's (probes, rerank) sweep
        # as (nprobe, rerank / 10). pq_bits names the width as livfpq's
        # build does, so each livfpq build meets the ceiling of its width.
        Target(f"inproc-faiss-ivfpq-{metric}", None, metric, kind="inprocess", engine="faiss-ivfpq",
               build_params=[{"nlist": IVF_LISTS, "pq_bits": b} for b in (8, 4)],
               search_params=[{"nprobe": p, "k_factor": r / 10} for p, r in IVFPQ_SWEEP],
               expect_node="", default=False, exact_results=False, requires_module="faiss")
        for metric in ANN_METRICS
    ]


REGISTRY = {t.name: t for t in _exact_targets() + _lflat_targets() + _pgvector_index_targets()
            + _lhnsw_targets() + _livfpq_targets() + _inprocess_targets()}


def with_baselines(chosen: list) -> list:
    """chosen plus the baseline and ceiling targets of each (and theirs), so
    that every ratio has both sides measured in the same run; then the size
    references of all of them (without their own baselines: only their
    index size is needed)."""
    out = list(chosen)
    expand = list(chosen)
    i = 0
    while i < len(expand):
        for name in (expand[i].baseline, expand[i].ceiling):
            if name and REGISTRY[name] not in out:
                out.append(REGISTRY[name])
                expand.append(REGISTRY[name])
        i += 1
    for t in list(out):
        if t.size_reference and REGISTRY[t.size_reference] not in out:
            out.append(REGISTRY[t.size_reference])
    return out


def select(patterns: Optional[str]) -> list:
    """Targets named by a comma-separated list of names or shell patterns
    (lvector-*, *-exact-l2); the default set when patterns is empty."""
    if not patterns:
        return [t for t in REGISTRY.values() if t.default]
    chosen = []
    for pat in (p.strip() for p in patterns.split(",") if p.strip()):
        hits = [n for n in REGISTRY if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise ValueError(f"no target matches {pat!r}; targets are: {', '.join(REGISTRY)}")
        for n in hits:
            if REGISTRY[n] not in chosen:
                chosen.append(REGISTRY[n])
    return chosen
