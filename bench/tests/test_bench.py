"""Unit tests of the benchmark logic on tiny data. No server needed."""

import contextlib
import gzip
import io
import math
import os
import struct
import sys
import tempfile
import unittest
import unittest.mock

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import concurrency  # noqa: E402
import datasets  # noqa: E402
import inprocess  # noqa: E402
import metrics  # noqa: E402
import pgload  # noqa: E402
import progress  # noqa: E402
import report  # noqa: E402
import targets  # noqa: E402

try:
    import run as runner   # imports psycopg; the helpers tested here need no server
except SystemExit:          # pragma: no cover - psycopg missing
    runner = None


class TempCache(unittest.TestCase):
    """Points LIBRAVDB_CACHE at a temporary folder for the test."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name
        self._old = os.environ.get("LIBRAVDB_CACHE")
        os.environ["LIBRAVDB_CACHE"] = os.path.join(self.tmp, "cache")

    def tearDown(self):
        if self._old is None:
            os.environ.pop("LIBRAVDB_CACHE", None)
        else:
            os.environ["LIBRAVDB_CACHE"] = self._old
        self._tmp.cleanup()


def naive_topk(queries, base, metric, k):
    """The obvious double loop, as the reference."""
    ids, dists = [], []
    for q in queries.astype(np.float64):
        d = []
        for j, x in enumerate(base.astype(np.float64)):
            if metric == "l2":
                v = math.sqrt(((x - q) ** 2).sum())
            elif metric == "ip":
                v = -float(x @ q)
            else:
                nx, nq = np.linalg.norm(x), np.linalg.norm(q)
                v = 1.0 - float(x @ q) / (nx * nq) if nx > 0 and nq > 0 else math.inf
            d.append((v, j))
        d.sort()
        ids.append([j for _, j in d[:k]])
        dists.append([v for v, _ in d[:k]])
    return np.array(ids), np.array(dists)


class RecallTest(unittest.TestCase):
    def test_exact_match_is_one(self):
        self.assertEqual(metrics.recall_with_ties([1, 2, 3], [0.1, 0.2, 0.3], 0.3, 3), 1.0)

    def test_tie_at_kth_distance_counts(self):
        # True top-2 is {1, 2} with the 2nd at 0.5; row 7 also lies at 0.5.
        self.assertEqual(metrics.recall_with_ties([1, 7], [0.1, 0.5], 0.5, 2), 1.0)
        # Rounding noise at the tie still counts; a clearly farther row does not.
        self.assertEqual(metrics.recall_with_ties([1, 7], [0.1, 0.5 * (1 + 1e-9)], 0.5, 2), 1.0)
        self.assertEqual(metrics.recall_with_ties([1, 8], [0.1, 0.51], 0.5, 2), 0.5)

    def test_duplicates_short_lists_and_nan(self):
        self.assertEqual(metrics.recall_with_ties([1, 1], [0.1, 0.1], 0.5, 2), 0.5)
        self.assertEqual(metrics.recall_with_ties([1], [0.1], 0.5, 4), 0.25)
        self.assertEqual(metrics.recall_with_ties([1, 2], [math.nan, math.inf], 0.5, 2), 0.0)
        self.assertEqual(metrics.recall_with_ties([1, 2, 3], [0.1, 0.2, 0.3], 0.3, 2), 1.0)

    def test_zero_kth_distance(self):
        # A query equal to a base row: k-th distance 0; another copy of it ties.
        self.assertEqual(metrics.recall_with_ties([4], [0.0], 0.0, 1), 1.0)
        self.assertEqual(metrics.recall_with_ties([4], [1e-3], 0.0, 1), 0.0)

    def test_by_ids(self):
        self.assertEqual(metrics.recall_by_ids([1, 2, 9], [1, 2, 3], 3), 2 / 3)

    def test_mean_recall_with_duplicate_rows(self):
        base = np.array([[0, 0], [1, 0], [1, 0], [5, 5], [9, 9]], dtype=np.float32)
        queries = np.array([[0.1, 0]], dtype=np.float32)
        ids, dists = datasets.brute_force_topk(queries, base, "l2", 3)
        self.assertEqual(list(ids[0]), [0, 1, 2])
        # k = 2: the true 2nd is row 1 at the same distance as row 2.
        self.assertEqual(metrics.mean_recall([[0, 2]], queries, base, dists, "l2", 2), 1.0)
        self.assertEqual(metrics.mean_recall([[0, 3]], queries, base, dists, "l2", 2), 0.5)
        # Ids outside the table count as wrong, not as a crash.
        self.assertEqual(metrics.mean_recall([[0, 99]], queries, base, dists, "l2", 2), 0.5)

    def test_latency_summary(self):
        s = metrics.latency_summary([0.001 * i for i in range(1, 101)], wall_s=10.0)
        self.assertAlmostEqual(s["qps"], 10.0)
        self.assertAlmostEqual(s["p50_ms"], 50.5)
        self.assertAlmostEqual(s["p95_ms"], 95.05)
        self.assertAlmostEqual(s["p99_ms"], 99.01)
        self.assertEqual(s["queries"], 100)
        self.assertAlmostEqual(metrics.latency_summary([0.5, 0.5])["qps"], 2.0)
        with self.assertRaises(ValueError):
            metrics.latency_summary([])


class RecallAt100Test(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(21)
        self.base = rng.normal(size=(400, 6)).astype(np.float32)
        self.queries = rng.normal(size=(5, 6)).astype(np.float32)
        self.ids, self.d = datasets.brute_force_topk(self.queries, self.base, "l2", 100)

    def test_exact_top100_in_any_order_is_one(self):
        shuffled = [list(np.random.default_rng(i).permutation(r)) for i, r in enumerate(self.ids)]
        self.assertEqual(metrics.mean_recall(shuffled, self.queries, self.base, self.d, "l2", 100), 1.0)
        # The top 10 of an exact top 100 is the exact top 10.
        self.assertEqual(metrics.mean_recall(self.ids[:, :10], self.queries, self.base, self.d, "l2", 10), 1.0)

    def test_partial_and_short(self):
        # Ranks 1-90 plus 10 rows from far away: 0.9. Only 50 rows: 0.5.
        far = np.argsort(-np.linalg.norm(self.base - self.queries[0], axis=1))[:10]
        got = [list(self.ids[0, :90]) + list(far)]
        self.assertAlmostEqual(metrics.mean_recall(got, self.queries[:1], self.base, self.d[:1], "l2", 100), 0.9)
        self.assertAlmostEqual(
            metrics.mean_recall([self.ids[0, :50]], self.queries[:1], self.base, self.d[:1], "l2", 100), 0.5)

    def test_k2_needs_ground_truth_that_deep(self):
        self.assertEqual(self.d.shape[1], datasets.GT_K)
        self.assertGreaterEqual(datasets.GT_K, 100)


class FilteredRecallTest(TempCache):
    def test_short_filtered_lists_are_scored_out_of_the_matching_rows(self):
        rng = np.random.default_rng(8)
        ds = datasets.Dataset("t", "tinyfr", rng.normal(size=(60, 4)).astype(np.float32),
                              rng.normal(size=(4, 4)).astype(np.float32))
        rows = np.array([0] * 50 + [1] * 7 + [2] * 3)           # value 3 matches nothing
        qv = np.array([0, 1, 2, 3])
        ids, d = datasets.filtered_ground_truth(ds, "l2", 4, "c", rows, qv, k=10)
        self.assertEqual([int(np.count_nonzero(r >= 0)) for r in ids], [10, 7, 3, 0])
        perfect = [[int(x) for x in r if x >= 0] for r in ids]
        self.assertEqual(metrics.mean_recall(perfect, ds.queries, ds.base, d, "l2", 10, ids), 1.0)
        # Without gt_ids the old rule would score the 7-row answer 0.7.
        self.assertAlmostEqual(metrics.mean_recall(perfect[1:2], ds.queries[1:2], ds.base, d[1:2], "l2", 10), 0.7)
        # Missing one of the 3 matching rows: 2/3 for that query.
        got = [perfect[0], perfect[1], perfect[2][:2], []]
        self.assertAlmostEqual(metrics.mean_recall(got, ds.queries, ds.base, d, "l2", 10, ids), (1 + 1 + 2 / 3) / 3)
        st = metrics.rows_returned(got, 10, np.bincount(rows, minlength=4)[qv])
        self.assertEqual(st, {"rows_min": 0, "rows_mean": 19 / 4, "short_queries": 1})

    def test_rows_breaking_the_filter_count_as_wrong(self):
        rng = np.random.default_rng(9)
        base = rng.normal(size=(200, 3)).astype(np.float32)
        queries = rng.normal(size=(3, 3)).astype(np.float32)
        ds = datasets.Dataset("t", "tinyfv", base, queries)
        rows = np.arange(200) % 10
        qv = runner.filtered_values("category", 3) if runner else np.arange(3) % 10
        ids, d = datasets.filtered_ground_truth(ds, "l2", 3, "category", rows, qv, k=10)
        # The unfiltered top 10 is closer than the filtered one, but most of
        # it breaks the filter: after dropping those ids, recall is the share
        # that matches (each such id is among the filtered top 10 too).
        top, _ = datasets.brute_force_topk(queries, base, "l2", 10)
        fixed, bad = metrics.drop_filter_violations(top, rows, qv)
        want_bad = sum(int(np.count_nonzero(rows[t] != v)) for t, v in zip(top, qv))
        self.assertEqual(bad, want_bad)
        self.assertTrue(all(x == -1 or rows[x] == v for r, v in zip(fixed, qv) for x in r))
        r = metrics.mean_recall(fixed, queries, base, d, "l2", 10, ids)
        self.assertAlmostEqual(r, (30 - want_bad) / 30)
        exact = [list(x) for x in ids]
        self.assertEqual(metrics.drop_filter_violations(exact, rows, qv)[1], 0)
        self.assertEqual(metrics.mean_recall(exact, queries, base, d, "l2", 10, ids), 1.0)

    def test_filtered_and_plain_ground_truth_share_the_cache(self):
        rng = np.random.default_rng(10)
        ds = datasets.Dataset("t", "tinyfc", rng.normal(size=(40, 3)).astype(np.float32),
                              rng.normal(size=(5, 3)).astype(np.float32))
        datasets.filtered_ground_truth(ds, "l2", 5, "category", np.arange(40) % 2, np.arange(5) % 2)
        ids, _ = datasets.ground_truth(ds, "l2", 5)          # must not trip over the filtered files
        want, _ = naive_topk(ds.queries, ds.base, "l2", 40)
        np.testing.assert_array_equal(ids, want)


PGBENCH_15 = """pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: /tmp/libravdb-bench-x.sql
scaling factor: 1
query mode: prepared
number of clients: 2
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 812
number of failed transactions: 0 (0.000%)
latency average = 24.633 ms
initial connection time = 3.456 ms
tps = 81.190123 (without initial connection time)
"""

PGBENCH_13 = """transaction type: script.sql
scaling factor: 1
query mode: prepared
number of clients: 4
number of threads: 4
duration: 5 s
number of transactions actually processed: 400
latency average = 50.000 ms
latency stddev = 2.500 ms
tps = 79.500000 (including connections establishing)
tps = 80.000000 (excluding connections establishing)
"""


class ConcurrencyTest(unittest.TestCase):
    def test_parse_pg15(self):
        r = concurrency.parse_pgbench(PGBENCH_15)
        self.assertAlmostEqual(r["tps"], 81.190123)
        self.assertAlmostEqual(r["latency_avg_ms"], 24.633)
        self.assertEqual((r["transactions"], r["failed"], r["clients"], r["threads"], r["duration_s"]),
                         (812, 0, 2, 2, 10))
        self.assertAlmostEqual(r["connection_ms"], 3.456)
        self.assertIsNone(r["latency_stddev_ms"])

    def test_parse_older_wording(self):
        r = concurrency.parse_pgbench(PGBENCH_13)
        self.assertEqual(r["tps"], 80.0)                     # excluding connections, not including
        self.assertEqual(r["latency_stddev_ms"], 2.5)
        self.assertIsNone(r["failed"])

    def test_parse_rejects_output_without_summary(self):
        with self.assertRaises(ValueError):
            concurrency.parse_pgbench("pgbench: error: connection to server failed\n")

    def test_script(self):
        t = targets.REGISTRY["lvector-lflat-l2"]
        self.assertEqual(concurrency.script(t, 10, "bench_queries_lvector", 100),
                         "\\set qid random(0, 99)\n"
                         "SELECT id FROM items ORDER BY embedding <-> "
                         "(SELECT embedding FROM bench_queries_lvector WHERE id = :qid) LIMIT 10;\n")
        t = targets.REGISTRY["pgvector-exact-l2-f1"]
        self.assertEqual(concurrency.queries_table(t), "bench_queries_vector")
        self.assertEqual(concurrency.script_sql(t, 5, "q"),
                         "SELECT id FROM items_pgvector WHERE category100 = (SELECT category100 FROM q WHERE "
                         "id = :qid) ORDER BY embedding <-> (SELECT embedding FROM q WHERE id = :qid) LIMIT 5")
        with self.assertRaises(ValueError):
            concurrency.script(t, 10, "q", 0)

    def test_pgoptions(self):
        self.assertEqual(concurrency.pgoptions(["SET hnsw.ef_search = 40", "SET hnsw.iterative_scan = strict_order",
                                                "set enable_seqscan to off", "SET a.b = 'x y'"]),
                         "-c hnsw.ef_search=40 -c hnsw.iterative_scan=strict_order -c enable_seqscan=off "
                         "-c a.b=x\\ y")
        self.assertEqual(concurrency.pgoptions([]), "")
        with self.assertRaises(ValueError):
            concurrency.pgoptions(["RESET hnsw.ef_search"])

    def test_filter_values_match_the_queries_table(self):
        if runner is None:
            self.skipTest("psycopg missing")
        # The queries table stores filtered_values() per query id, so pgbench
        # filters each query as the single-client run does.
        np.testing.assert_array_equal(runner.filtered_values("category", 12), np.arange(12) % 10)
        self.assertEqual(len(set(runner.filtered_values("category100", 100))), 100)


@unittest.skipIf(runner is None, "psycopg missing")
class RunnerHelpersTest(unittest.TestCase):
    def test_clients_and_scaling_options(self):
        self.assertEqual(runner.parse_clients("1,2,4"), [1, 2, 4])
        self.assertEqual(runner.parse_clients("2, 2,1"), [2, 1])
        self.assertEqual(runner.parse_clients(None), [])
        for bad in ("0", "a", "-1"):
            with self.assertRaises(ValueError):
                runner.parse_clients(bad)
        self.assertEqual(runner.scaling_sizes("100k"), [10000, 100000])
        self.assertEqual(runner.scaling_sizes("1M"), [10000, 100000, 1000000])
        with self.assertRaises(ValueError):
            runner.scaling_sizes("5k")
        self.assertEqual(runner.scaling_spec("fashion-mnist", 10000), "clustered:10000:128")
        self.assertEqual(runner.scaling_spec("clustered:1M:96", 100000), "clustered:100000:96")
        args = runner.parse_args(["--scaling", "--scaling-max", "1M", "--clients", "1,2"])
        self.assertEqual((args.scaling_sizes, args.client_counts, args.k2), ([10000, 100000, 1000000], [1, 2], 100))
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            runner.parse_args(["--k2", "5"])            # must exceed --k

    def test_build_repeat(self):
        self.assertEqual(runner.parse_args([]).build_repeat, 1)
        self.assertEqual(runner.parse_args(["--build-repeat", "3"]).build_repeat, 3)
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit):
            runner.parse_args(["--build-repeat", "0"])
        rounds = [{"index": "i", "build_s": s, "index_bytes": 10, "wal_bytes": w} for s, w in ((3.2, 1), (2.9, 2), (3.5, 3))]
        b = runner.fastest_build(rounds)
        self.assertEqual((b["build_s"], b["build_rounds_s"], b["wal_bytes"]), (2.9, [3.2, 2.9, 3.5], 3))
        self.assertNotIn("build_rounds_s", runner.fastest_build(rounds[:1]))

    def test_recall_levels_option(self):
        self.assertEqual(runner.parse_recall_levels("0.99, 0.95,0.99"), [0.95, 0.99])
        self.assertEqual(runner.parse_args([]).recall_levels_list, [0.95, 0.99])
        for bad in ("", "1.5", "0", "x"):
            with self.assertRaises(ValueError):
                runner.parse_recall_levels(bad)
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit):
            runner.parse_args(["--recall-levels", "2"])

    def test_plan_summary(self):
        one = runner.plan_summary(["Limit > Index Scan on items"] * 3, "Index Scan")
        self.assertEqual((one["plan"], one["plan_ok"]), ("Limit > Index Scan on items", True))
        mixed = runner.plan_summary(["Limit > Seq Scan", "Limit > Index Scan", "Limit > Seq Scan"], "Index Scan")
        self.assertEqual(mixed["plan"], "Limit > Seq Scan (2/3 queries); Limit > Index Scan (1/3 queries)")
        self.assertFalse(mixed["plan_ok"])
        self.assertAlmostEqual(mixed["plan_expected_share"], 1 / 3)

    def test_index_targets_share_builds(self):
        chosen = targets.select("lvector-lflat-l2*,lvector-exact-l2,pgvector-hnsw-l2*,lvector-lflat-ip")
        groups = runner.group_targets(chosen)
        names = [[t.name for t in g] for g in groups]
        self.assertEqual(names[0], ["lvector-exact-l2"])                 # exact targets first
        self.assertIn(["lvector-lflat-l2", "lvector-lflat-l2-f10", "lvector-lflat-l2-f1"], names)
        self.assertIn(["lvector-lflat-ip"], names)
        self.assertIn(["pgvector-hnsw-l2", "pgvector-hnsw-l2-f10", "pgvector-hnsw-l2-f1"], names)
        self.assertEqual(runner.select_client_targets(None, chosen), {t.name for t in chosen})
        self.assertEqual(runner.select_client_targets("lvector-lflat-*", chosen),
                         {"lvector-lflat-l2", "lvector-lflat-l2-f10", "lvector-lflat-l2-f1", "lvector-lflat-ip"})


class ReportTest(unittest.TestCase):
    def point(self, **kw):
        p = {"target": "lvector-lflat-l2", "table": "items", "metric": "l2", "kind": "index", "build": {},
             "search": {}, "qps": 100.0, "p50_ms": 1, "p95_ms": 2, "p99_ms": 3, "recall": 1.0, "rows_min": 10,
             "short_queries": 0, "plan": "Limit > Index Scan", "plan_ok": True, "rows": 1000, "dataset": "d",
             "build_s": 0.5, "index_bytes": 2**20}
        p.update(kw)
        return p

    def test_points_flags_short_results_and_k2(self):
        md = report.points_markdown([
            self.point(k2=100, recall_k2=0.5, qps_k2=50.0, short_queries_k2=3, plan_k2="Limit > Seq Scan",
                       plan_ok_k2=False, rows_min=4, short_queries=7, filter_violations=1),
            self.point(target="lvector-exact-l2", kind="exact", plan="Limit > Sort > Seq Scan")])
        self.assertIn("recall@100 | QPS@100", md)
        self.assertIn("0.5000 (3 short!) (plan: Limit > Seq Scan!) | 50.0", md)
        self.assertIn("| 4 (7 short!) (1 break the filter!) |", md)
        self.assertIn("1 (exact scan)", md)

    def test_concurrency_and_scaling_tables(self):
        recs = [dict(self.point(), clients=c, tps=t, latency_avg_ms=1000 * c / t, transactions=10, failed=0)
                for c, t in ((1, 100.0), (2, 190.0))]
        md = report.concurrency_markdown(recs)
        self.assertIn("| 2 | 190.0 | 10.53 | 10 | 0 | 1.90x |", md)
        pts = [self.point(rows=100000, qps=10.0), self.point(rows=10000, qps=90.0)]
        sc = report.scaling_markdown(pts, recs)
        self.assertLess(sc.index("| 10000 |"), sc.index("| 100000 |"))  # sorted by N
        self.assertIn("| 190.0 | 2 |", sc)                                 # best TPS and its client count
        self.assertIn("| lvector-lflat-l2 | - | 10000 | 0.5 | 1.0 | 3.0 | 90.0 | 1.0000 |",
                      report.scaling_markdown([self.point(rows=10000, qps=90.0, wal_bytes=3 * 2**20)]))
        # Sweeps in numeric order: ef_search=80 before 400.
        sweep = report.scaling_markdown([self.point(search={"ef_search": e}) for e in (400, 80)])
        self.assertLess(sweep.index("ef_search=80"), sweep.index("ef_search=400"))


class InProcessTest(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(12)
        self.base = rng.normal(size=(600, 16)).astype(np.float32)
        self.queries = rng.normal(size=(20, 16)).astype(np.float32)
        self.ids, self.d = datasets.brute_force_topk(self.queries, self.base, "l2", 10)

    def test_ivfpq_params(self):
        self.assertEqual(inprocess.ivfpq_params(60000, 784), {"nlist": 245, "pq_m": 98, "pq_bits": 8})
        self.assertEqual(inprocess.ivfpq_params(60000, 784, pq_bits=4), {"nlist": 245, "pq_m": 196, "pq_bits": 4})
        self.assertEqual(inprocess.ivfpq_params(1000000, 128)["pq_m"], 16)
        self.assertEqual(inprocess.ivfpq_params(1000000, 128, pq_bits=4)["pq_m"], 32)
        self.assertEqual(inprocess.ivfpq_params(1000, 100, pq_bits=4)["pq_m"], 25)
        self.assertEqual(inprocess.ivfpq_params(100, 7)["pq_m"], 1)      # 7 / 8 rounds up to 1 sub-vector
        self.assertEqual(inprocess.ivfpq_params(100, 16)["nlist"], 2)  # 39 training points per list
        # livfpq's default pq_m: the smallest divisor of d that is >= d / 8.
        self.assertEqual(inprocess.ivfpq_params(1000, 100)["pq_m"], 20)   # 12.5 -> 20 (not 10)
        self.assertEqual(inprocess.ivfpq_params(1000, 97)["pq_m"], 97)    # a prime: one dimension a sub-vector
        self.assertEqual(inprocess.ivfpq_params(100000, 784, nlist=245)["nlist"], 245)
        self.assertEqual(inprocess.ivfpq_params(600, 16, nlist=245)["nlist"], 15)   # capped by n / 39
        self.assertEqual(inprocess.livfpq_train_rows(60000, 245), 12250)     # 50 a list
        self.assertEqual(inprocess.livfpq_train_rows(60000, 10), 10240)      # at least 40 per 8-bit codeword
        self.assertEqual(inprocess.livfpq_train_rows(600, 15), 600)
        self.assertEqual(inprocess.livfpq_train_rows(10**7, 4000), 1 << 17)
        x = np.arange(20, dtype=np.float32).reshape(10, 2)
        s = inprocess.train_sample(x, 4)
        self.assertEqual(s.shape, (4, 2))
        self.assertTrue(np.array_equal(s, inprocess.train_sample(x, 4)))   # fixed seed
        self.assertTrue(np.all(np.diff(s[:, 0]) > 0))                      # distinct rows, in base order
        self.assertIs(inprocess.train_sample(x, 10), x)
        z = inprocess.normalized(np.array([[3, 4], [0, 0]], dtype=np.float32))
        self.assertTrue(np.allclose(z, [[0.6, 0.8], [0, 0]]))

    def test_timed_queries_keeps_the_fastest_round(self):
        calls = []

        def search(q):
            calls.append(1)
            return np.array([3, -1, 4])
        summary, results = inprocess.timed_queries(search, self.queries[:5], self.queries[5:7], 3)
        self.assertEqual(len(calls), 2 + 15)
        self.assertEqual(results[0], [3, 4])                  # FAISS pads with -1
        self.assertEqual(len(summary["rounds_qps"]), 3)
        self.assertEqual(summary["qps"], max(summary["rounds_qps"]))

    def _check(self, target, min_recall):
        t = targets.REGISTRY[target]
        if not inprocess.module_version(t.requires_module):
            self.skipTest(f"{t.requires_module} not importable")
        t = targets.Target(t.name, None, "l2", kind="inprocess", engine=t.engine, build_params=t.build_params,
                           search_params=t.search_params[-1:], requires_module=t.requires_module)
        out = list(inprocess.run(t, self.base, self.queries, self.queries[:2], 10, 1, log=lambda m: None))
        self.assertEqual(len(out), len(t.build_params))      # one search point per build
        for bp, build, sp, summary, results in out:
            self.assertGreater(build["index_bytes"], 0)
            self.assertEqual(build["build_threads"], 1)
            self.assertGreaterEqual(metrics.mean_recall(results, self.queries, self.base, self.d, "l2", 10),
                                    min_recall, bp)
        return [o[0] for o in out]

    def test_hnswlib(self):
        self._check("inproc-hnswlib-l2", 0.95)

    def test_faiss_flat_is_exact(self):
        self._check("inproc-faiss-flat-l2", 1.0)

    def test_faiss_ivfpq_with_refine(self):
        eight, four = self._check("inproc-faiss-ivfpq-l2", 0.9)
        self.assertEqual((eight["nlist"], eight["pq_m"], eight["pq_bits"], eight["train_rows"], eight["fast_scan"]),
                         (15, 2, 8, 600, False))
        # 4-bit codes on d / 4 sub-spaces, with FAISS's fast scan (pq_m even).
        self.assertEqual((four["pq_m"], four["pq_bits"], four["fast_scan"]), (4, 4, True))

    def test_faiss_ivfpq_ip_cosine_and_k_factor(self):
        if not inprocess.module_version("faiss"):
            self.skipTest("faiss not importable")
        for metric in ("l2", "ip", "cosine"):
            ids, d = datasets.brute_force_topk(self.queries, self.base, metric, 10)
            t = targets.REGISTRY[f"inproc-faiss-ivfpq-{metric}"]
            t = targets.Target(t.name, None, metric, kind="inprocess", engine=t.engine, build_params=t.build_params,
                               search_params=[{"nprobe": 1, "k_factor": 1}, {"nprobe": 15, "k_factor": 30}],
                               requires_module="faiss")
            out = list(inprocess.run(t, self.base, self.queries, self.queries[:2], 10, 1, log=lambda m: None))
            self.assertEqual([o[2] for o in out], t.search_params * 2)        # both code widths
            for i in (0, 2):
                low, high = (metrics.mean_recall(o[4], self.queries, self.base, d, metric, 10) for o in out[i:i + 2])
                # Every list probed and 300 of 600 rows re-ranked exactly: (nearly) exact.
                self.assertGreaterEqual(high, 0.95, (metric, out[i][0]))
                self.assertLess(low, high, (metric, out[i][0]))

    def test_metric_other_than_l2_is_refused_by_faiss(self):
        with self.assertRaises(ValueError):
            inprocess.Engine("faiss-flat", "ip", self.base, {})
        inprocess.Engine("faiss-ivfpq", "cosine", self.base, {})       # IVFPQ: every ANN metric
        with self.assertRaises(ValueError):
            inprocess.Engine("hnswlib", "l1", self.base, {})

    def test_hnswlib_ip_and_cosine(self):
        if not inprocess.module_version("hnswlib"):
            self.skipTest("hnswlib not importable")
        for metric in ("ip", "cosine"):
            ids, d = datasets.brute_force_topk(self.queries, self.base, metric, 10)
            t = targets.REGISTRY[f"inproc-hnswlib-{metric}"]
            t = targets.Target(t.name, None, metric, kind="inprocess", engine="hnswlib", build_params=t.build_params,
                               search_params=[{"ef": 200}], requires_module="hnswlib")
            (_, _, _, _, results), = inprocess.run(t, self.base, self.queries, self.queries[:2], 10, 1,
                                                   log=lambda m: None)
            self.assertGreaterEqual(metrics.mean_recall(results, self.queries, self.base, d, metric, 10), 0.95,
                                    metric)


class GroundTruthTest(TempCache):
    def test_matches_naive_for_every_metric(self):
        rng = np.random.default_rng(3)
        base = rng.normal(size=(300, 7)).astype(np.float32)
        base[5] = 0.0                                          # a zero vector for cosine
        base[17] = base[16]                                    # an exact duplicate: a tie
        queries = rng.normal(size=(13, 7)).astype(np.float32)
        for metric in datasets.METRICS:
            want_ids, want_d = naive_topk(queries, base, metric, 20)
            # A tiny budget forces many query and base blocks.
            got_ids, got_d = datasets.brute_force_topk(queries, base, metric, 20, budget_bytes=4096)
            np.testing.assert_allclose(got_d, want_d, rtol=1e-9, atol=1e-9, err_msg=metric)
            np.testing.assert_array_equal(got_ids, want_ids, err_msg=metric)
        _, d = datasets.brute_force_topk(queries, base, "cosine", 300)
        self.assertTrue(np.all(np.isinf(d[:, -1])))            # the zero vector sorts last

    def test_progress_of_a_long_computation(self):
        lines = []
        rng = np.random.default_rng(8)
        q, b = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(50, 4)).astype(np.float32)
        with unittest.mock.patch.object(progress, "INTERVAL_S", 0.0):   # a line per block
            ids, _ = datasets.brute_force_topk(q, b, "l2", 5, budget_bytes=4096, progress_log=lines.append)
        np.testing.assert_array_equal(ids, naive_topk(q, b, "l2", 5)[0])
        self.assertTrue(lines and lines[0].startswith("  ground truth blocks: 1/"))

    def test_k_larger_than_base(self):
        ids, d = datasets.brute_force_topk(np.ones((2, 3), np.float32), np.eye(3, dtype=np.float32), "ip", 100)
        self.assertEqual(ids.shape, (2, 3))

    def test_cached_and_prefix_reused(self):
        rng = np.random.default_rng(4)
        ds = datasets.Dataset("t", "tiny", rng.normal(size=(50, 4)).astype(np.float32),
                              rng.normal(size=(20, 4)).astype(np.float32))
        ids20, d20 = datasets.ground_truth(ds, "l2", 20)
        files = os.listdir(os.path.join(ds.cache_dir, "gt"))
        self.assertEqual(sorted(files), ["n50-l2-k100-q20-dist.npy", "n50-l2-k100-q20-ids.npy"])
        ids5, d5 = datasets.ground_truth(ds, "l2", 5)          # served from the 20-query file
        self.assertEqual(len(os.listdir(os.path.join(ds.cache_dir, "gt"))), 2)
        np.testing.assert_array_equal(ids5, ids20[:5])
        want, _ = naive_topk(ds.queries[:5], ds.base, "l2", 50)
        np.testing.assert_array_equal(ids5, want)
        sub = ds.subset(30)                                    # another base size: its own file
        ids_sub, _ = datasets.ground_truth(sub, "l2", 5)
        self.assertTrue(np.all(ids_sub < 30))

    def test_filtered(self):
        rng = np.random.default_rng(5)
        ds = datasets.Dataset("t", "tinyf", rng.normal(size=(80, 3)).astype(np.float32),
                              rng.normal(size=(6, 3)).astype(np.float32))
        rows = np.arange(80) % 4
        qv = np.array([0, 1, 2, 3, 0, 1])
        ids, d = datasets.filtered_ground_truth(ds, "l2", 6, "category", rows, qv, k=30)
        for i in range(6):
            match = np.nonzero(rows == qv[i])[0]
            want, wd = naive_topk(ds.queries[i:i + 1], ds.base[match], "l2", 30)
            np.testing.assert_array_equal(ids[i, :20], match[want[0]])
            self.assertTrue(np.all(ids[i, 20:] == -1) and np.all(np.isinf(d[i, 20:])))


class FileFormatTest(TempCache):
    def test_xvecs_round_trips(self):
        rng = np.random.default_rng(6)
        f = rng.normal(size=(9, 5)).astype(np.float32)
        i = rng.integers(-1000, 1000, size=(4, 100)).astype(np.int32)
        b = rng.integers(0, 256, size=(7, 3)).astype(np.uint8)
        for ext, arr, w, r in (("fvecs", f, datasets.write_fvecs, datasets.read_fvecs),
                               ("ivecs", i, datasets.write_ivecs, datasets.read_ivecs),
                               ("bvecs", b, datasets.write_bvecs, datasets.read_bvecs)):
            path = os.path.join(self.tmp, "a." + ext)
            w(path, arr)
            np.testing.assert_array_equal(r(path), arr)
            got = datasets.read_vectors(path)
            self.assertEqual(got.dtype, np.float32)
            np.testing.assert_array_equal(got, arr.astype(np.float32))
        # The layout itself: int32 dimension count, then the elements, little-endian.
        path = os.path.join(self.tmp, "one.fvecs")
        datasets.write_fvecs(path, np.array([[1.5, -2.0]], dtype=np.float32))
        self.assertEqual(open(path, "rb").read(), struct.pack("<iff", 2, 1.5, -2.0))
        path = os.path.join(self.tmp, "one.bvecs")
        datasets.write_bvecs(path, np.array([[7, 255, 0]], dtype=np.uint8))
        self.assertEqual(open(path, "rb").read(), struct.pack("<i", 3) + bytes([7, 255, 0]))

    def test_npy(self):
        arr = np.arange(12, dtype=np.float64).reshape(3, 4)
        path = os.path.join(self.tmp, "a.npy")
        np.save(path, arr)
        got = datasets.read_vectors(path)
        self.assertEqual(got.dtype, np.float32)
        np.testing.assert_array_equal(got, arr)
        np.save(path, np.arange(3))
        with self.assertRaises(ValueError):
            datasets.read_vectors(path)

    def test_bad_files(self):
        path = os.path.join(self.tmp, "bad.fvecs")
        with open(path, "wb") as f:
            f.write(struct.pack("<iff", 2, 1.0, 2.0) + b"\x01")
        with self.assertRaises(ValueError):
            datasets.read_fvecs(path)
        with open(path, "wb") as f:
            f.write(struct.pack("<iff", 2, 1.0, 2.0) + struct.pack("<iff", 3, 1.0, 2.0)[:12])
        with self.assertRaises(ValueError):
            datasets.read_fvecs(path)
        with self.assertRaises(ValueError):
            datasets.read_vectors(os.path.join(self.tmp, "x.csv"))

    def test_idx_parsing(self):
        images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
        labels = np.array([9, 0], dtype=np.uint8)
        for name in ("img.idx", "img.idx.gz"):
            path = os.path.join(self.tmp, name)
            datasets.write_idx(path, images)
            np.testing.assert_array_equal(datasets.read_idx(path), images)
        # Byte layout written by hand: magic 0x00000803 and big-endian sizes.
        raw = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + images.tobytes()
        path = os.path.join(self.tmp, "hand-idx3-ubyte.gz")
        with gzip.open(path, "wb") as f:
            f.write(raw)
        np.testing.assert_array_equal(datasets.read_idx(path), images)
        path = os.path.join(self.tmp, "labels.idx")
        with open(path, "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + labels.tobytes())
        np.testing.assert_array_equal(datasets.read_idx(path), labels)
        f32 = np.array([[1.5, -2.0]], dtype=np.float32)
        path = os.path.join(self.tmp, "f.idx")
        datasets.write_idx(path, f32)
        np.testing.assert_array_equal(datasets.read_idx(path), f32)
        with open(path, "wb") as f:
            f.write(bytes([1, 0, 8, 1]) + struct.pack(">I", 2) + labels.tobytes())
        with self.assertRaises(ValueError):
            datasets.read_idx(path)
        with open(path, "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + labels.tobytes())
        with self.assertRaises(ValueError):
            datasets.read_idx(path)

    def test_fashion_mnist_conversion_and_cache(self):
        src = os.path.join(self.tmp, "fm")
        os.makedirs(src)
        rng = np.random.default_rng(8)
        train, test = (rng.integers(0, 256, (n, 28, 28)).astype(np.uint8) for n in (6, 3))
        datasets.write_idx(os.path.join(src, "train-images-idx3-ubyte.gz"), train)
        datasets.write_idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"), test)
        datasets.write_idx(os.path.join(src, "train-labels-idx1-ubyte.gz"), np.arange(6, dtype=np.uint8))
        datasets.write_idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"), np.arange(3, dtype=np.uint8))
        old = os.environ.get("LIBRAVDB_FASHION_MNIST")
        os.environ["LIBRAVDB_FASHION_MNIST"] = src
        try:
            ds = datasets.load("fashion-mnist")
        finally:
            if old is None:
                os.environ.pop("LIBRAVDB_FASHION_MNIST")
            else:
                os.environ["LIBRAVDB_FASHION_MNIST"] = old
        self.assertEqual(ds.base.shape, (6, 784))
        self.assertEqual(ds.base.dtype, np.float32)
        np.testing.assert_array_equal(ds.base, train.reshape(6, 784))
        np.testing.assert_array_equal(ds.queries, test.reshape(3, 784))
        np.testing.assert_array_equal(ds.labels, np.arange(6))
        self.assertTrue(os.path.exists(os.path.join(ds.cache_dir, "base.npy")))
        self.assertEqual(datasets.load("fashion-mnist").base.shape, (6, 784))   # from the cache now

    def test_clustered_is_deterministic(self):
        a = datasets.load("clustered:500:8")
        self.assertEqual(a.base.shape, (500, 8))
        self.assertEqual(a.base.dtype, np.float32)
        b = datasets.clustered(500, 8)
        np.testing.assert_array_equal(a.base, b.base)
        import shutil
        shutil.rmtree(a.cache_dir)
        c = datasets.clustered(500, 8)                          # regenerated from the seed
        np.testing.assert_array_equal(a.base, c.base)
        np.testing.assert_array_equal(a.queries, c.queries)
        self.assertEqual(datasets.load("clustered:1k:4").base.shape, (1000, 4))
        cat, cat100 = a.categories()
        self.assertTrue(np.all(cat100 // 10 == cat))
        self.assertEqual(set(np.unique(cat100)) <= set(range(100)), True)

    def test_path_dataset(self):
        rng = np.random.default_rng(9)
        base = rng.normal(size=(40, 3)).astype(np.float32)
        q = rng.normal(size=(5, 3)).astype(np.float32)
        datasets.write_fvecs(os.path.join(self.tmp, "toy_base.fvecs"), base)
        datasets.write_fvecs(os.path.join(self.tmp, "toy_query.fvecs"), q)
        ds = datasets.load(os.path.join(self.tmp, "toy_base.fvecs"))
        np.testing.assert_array_equal(ds.base, base)
        np.testing.assert_array_equal(ds.queries, q)
        np.save(os.path.join(self.tmp, "alone.npy"), base)
        ds = datasets.load(os.path.join(self.tmp, "alone.npy"))
        self.assertEqual((len(ds.base), len(ds.queries)), (36, 4))   # held-out queries
        np.testing.assert_array_equal(ds.queries, base[36:])
        with self.assertRaises(ValueError):
            datasets.load("nonsense")


class CopyEncoderTest(unittest.TestCase):
    def test_vector_bytes_match_lvector_recv(self):
        # int16 dim, int16 zero, float4 elements, all big-endian.
        want = struct.pack(">hh", 3, 0) + struct.pack(">fff", 1.0, -2.5, 3.25)
        self.assertEqual(pgload.encode_vector([1.0, -2.5, 3.25]), want)

    def test_copy_rows(self):
        vecs = np.array([[1.0, 2.0], [-0.5, 1e-3]], dtype=np.float32)
        got = pgload.encode_copy_rows([np.array([7, 8]), np.array([3, 4]), np.array([30, 41])], vecs)
        want = b""
        for i in range(2):
            want += struct.pack(">h", 4)
            for v in ([7, 8][i], [3, 4][i], [30, 41][i]):
                want += struct.pack(">ii", 4, v)
            vec = pgload.encode_vector(vecs[i])
            want += struct.pack(">i", len(vec)) + vec
        self.assertEqual(got, want)
        self.assertEqual(pgload.COPY_HEADER, b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
        self.assertEqual(pgload.COPY_TRAILER, b"\xff\xff")
        with self.assertRaises(ValueError):
            pgload.encode_copy_rows([np.array([1])], vecs)

    def test_vector_text_round_trips_float4(self):
        v = np.array([0.1, -3.0, 1e-7, 123456.78], dtype=np.float32)
        text = pgload.vector_text(v)
        self.assertTrue(text.startswith("[") and text.endswith("]"))
        back = np.array([float(x) for x in text[1:-1].split(",")], dtype=np.float32)
        np.testing.assert_array_equal(back, v)
        self.assertEqual(pgload.vector_text(np.array([1, 0, 255], np.float32)), "[1,0,255]")


class CurveTest(unittest.TestCase):
    def test_pareto_frontier(self):
        c = [(0.8, 1000), (0.9, 500), (0.97, 200), (0.99, 100), (0.96, 150), (0.9, 400), (float("nan"), 5)]
        self.assertEqual(metrics.pareto_frontier(c), [(0.8, 1000), (0.9, 500), (0.97, 200), (0.99, 100)])

    def test_qps_at_recall(self):
        c = [(0.8, 1000), (0.9, 400), (1.0, 100)]
        q, how = metrics.qps_at_recall(c, 0.95)
        self.assertEqual(how, "interpolated")
        self.assertAlmostEqual(q, 200.0)                     # halfway in log QPS: sqrt(400 * 100)
        self.assertEqual(metrics.qps_at_recall(c, 0.9), (400.0, "point"))
        self.assertEqual(metrics.qps_at_recall(c, 0.5), (1000.0, "at least"))
        self.assertEqual(metrics.qps_at_recall([(0.9, 10)], 0.99), (None, "not reached"))
        self.assertEqual(metrics.qps_at_recall([], 0.9), (None, "not reached"))
        # A slower point with less recall is off the frontier and ignored.
        self.assertEqual(metrics.qps_at_recall([(0.99, 50), (0.98, 20), (0.9, 100)], 0.99), (50.0, "point"))


@unittest.skipIf(runner is None, "psycopg missing")
class LhnswTargetsTest(unittest.TestCase):
    def pt(self, target, recall, qps, build=None, search=None, **kw):
        p = {"dataset": "d", "target": target, "recall": recall, "qps": qps, "filter": None, "kind": "index",
             "build": build if build is not None else {"m": 16, "ef_construction": 64},
             "search": search or {}, "build_s": 10.0, "index_bytes": 100 * 2**20}
        p.update(kw)
        return p

    def test_registry(self):
        for metric in ("l2", "ip", "cosine"):
            t = targets.REGISTRY[f"lvector-lhnsw-{metric}"]
            self.assertEqual((t.requires_am, t.baseline, t.ceiling, t.exact_results, t.default),
                             ("lhnsw", f"pgvector-hnsw-{metric}", f"inproc-hnswlib-{metric}", False, False))
            self.assertEqual({b["quantizer"] for b in t.build_params}, {"none", "sq8"})
            self.assertEqual([p["ef_search"] for p in t.search_params], [10, 20, 40, 80, 120, 200, 400])
            self.assertEqual(t.opclass, f"lvector_{metric}_ops")
            sql = t.index_sql.format(index="i", table="items", opclass=t.opclass, **t.build_params[1])
            self.assertEqual(sql, f"CREATE INDEX i ON items USING lhnsw (embedding lvector_{metric}_ops) "
                                  "WITH (m = 16, ef_construction = 64, quantizer = 'sq8')")
            self.assertEqual(t.search_sql[0].format(**t.search_params[0]), "SET libravdb.hnsw_ef_search = 10")
            b = targets.REGISTRY[t.baseline]
            self.assertEqual(b.build_params, [{"m": 16, "ef_construction": 64}])
            self.assertEqual(b.search_params, [{"ef_search": e} for e in (10, 20, 40, 80, 120, 200, 400)])
        for tag, col in (("f10", "category"), ("f1", "category100")):
            t = targets.REGISTRY[f"lvector-lhnsw-l2-{tag}"]
            self.assertEqual((t.filter, t.baseline, t.baseline_search), (col, f"pgvector-hnsw-l2-{tag}",
                                                                         {"iterative_scan": "strict_order"}))
        # Filtered and unfiltered lhnsw share each build.
        names = [[t.name for t in g] for g in runner.group_targets(targets.select("lvector-lhnsw-l2*"))]
        self.assertEqual(names, [["lvector-lhnsw-l2", "lvector-lhnsw-l2-f10", "lvector-lhnsw-l2-f1"]])
        chosen = [t.name for t in targets.with_baselines(targets.select("lvector-lhnsw-ip,lvector-lhnsw-l2-f1"))]
        self.assertEqual(chosen, ["lvector-lhnsw-ip", "lvector-lhnsw-l2-f1", "pgvector-hnsw-ip",
                                  "inproc-hnswlib-ip", "pgvector-hnsw-l2-f1"])

    def test_skipped_without_the_access_method(self):
        class Conn:
            def __init__(self, ams):
                self.ams, self.sql = ams, []

            def execute(self, sql, *a):
                self.sql.append(sql)
                rows = [(a,) for a in self.ams] if "pg_am" in sql else [(1,)]
                cur = unittest.mock.Mock()
                cur.fetchone.return_value = rows[0] if rows else None
                cur.__iter__ = lambda _self: iter(rows)
                return cur
        chosen = targets.with_baselines(targets.select("lvector-lhnsw-*,lvector-exact-l2"))
        # Whether hnswlib is installed here must not change the counts: the
        # in-process targets see it present, then absent.
        have_modules = unittest.mock.patch.object(runner.inprocess, "module_version", return_value="1.0")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), have_modules:
            kept, have_pgvector, skipped = runner.check_availability(Conn(["heap", "btree", "hnsw", "ivfflat", "lflat"]),
                                                            chosen)
        names = [t.name for t in kept]
        self.assertTrue(have_pgvector)
        self.assertFalse([n for n in names if "lhnsw" in n])
        self.assertIn("lvector-exact-l2", names)
        self.assertIn("pgvector-hnsw-l2", names)
        self.assertIn("no access method lhnsw in this server: skipped lvector-lhnsw-l2", out.getvalue())
        self.assertEqual(skipped["lvector-lhnsw-cosine"], "no access method lhnsw")
        self.assertEqual(len(skipped), 5)
        with contextlib.redirect_stdout(io.StringIO()), have_modules:
            kept, _, skipped = runner.check_availability(Conn(["hnsw", "lhnsw"]), chosen)
        self.assertIn("lvector-lhnsw-l2-f1", [t.name for t in kept])
        self.assertFalse(skipped)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), \
                unittest.mock.patch.object(runner.inprocess, "module_version", return_value=None):
            kept, _, skipped = runner.check_availability(Conn(["hnsw", "lhnsw"]), chosen)
        inproc = [t.name for t in chosen if t.kind == "inprocess"]
        self.assertTrue(inproc)
        self.assertEqual(sorted(skipped), sorted(inproc))
        self.assertEqual(skipped[inproc[0]], "Python module hnswlib missing")
        self.assertFalse([t for t in kept if t.kind == "inprocess"])
        self.assertIn("not importable (Debian: python3-hnswlib, python3-faiss)", out.getvalue())
        env = {"started": "t", "dataset": "d", "rows": 1, "dims": 2, "queries": 3, "warmup": 0, "k": 10,
               "server": {"postgres": "15", "libravdb": "0.1.0", "libravdb_simd_level": "avx2", "pgvector": None,
                          "settings": {}}, "cpu": {"model": "x", "cores": 1, "simd_flags": []},
               "psycopg": "3", "numpy": "1", "command": "run.py", "targets": [],
               "skipped": {"lvector-lhnsw-l2": "no access method lhnsw", "lvector-lhnsw-ip": "no access method lhnsw"}}
        md = report.header_markdown(env)
        self.assertIn("- skipped (no access method lhnsw): lvector-lhnsw-l2, lvector-lhnsw-ip", md)
        self.assertIn("nothing was measured", md)
        self.assertIn("fastest of 2 rounds; build times: fastest of 3 builds",
                      report.header_markdown({**env, "repeat": 2, "build_repeat": 3}))
        md = report.header_markdown({**env, "source": "abc1234; uncommitted changes outside bench/: src/pg",
                                      "extension_build": "installed before the run (LIBRAVDB_BENCH_SKIP_BUILD=1)"})
        self.assertIn("harness from commit abc1234; uncommitted changes outside bench/: src/pg; "
                      "extension installed before the run (LIBRAVDB_BENCH_SKIP_BUILD=1)); pgvector", md)

    def test_describe_revision(self):
        self.assertEqual(runner.describe_revision("abc1234", ""), "abc1234")
        self.assertEqual(runner.describe_revision("abc1234", " M bench/run.py\n"), "abc1234+changes")
        self.assertEqual(runner.describe_revision("abc1234", " M src/pg/a.cc\nM  src/pg/b.h\n M README.md\n"
                                                             " M bench/report.py\nR  x/y/z.c -> src/core/z.c\n"),
                         "abc1234+changes; uncommitted changes outside bench/: README.md, src/core, src/pg")

    def test_search_matches(self):
        self.assertTrue(runner.search_matches({"ef_search": 40}, {"ef_search": 40}, {}))
        self.assertFalse(runner.search_matches({"ef_search": 40}, {"ef_search": 80}, {}))
        want = {"iterative_scan": "strict_order"}
        ours = {"ef_search": 40, "enable_seqscan": "on"}
        self.assertTrue(runner.search_matches(ours, {**ours, "iterative_scan": "strict_order"}, want))
        self.assertFalse(runner.search_matches(ours, {**ours, "iterative_scan": "relaxed_order"}, want))
        self.assertFalse(runner.search_matches(ours, {**ours, "iterative_scan": "strict_order"}, {}))

    def test_curve_comparisons(self):
        pts = [self.pt("lvector-lhnsw-l2", r, q, {"m": 16, "ef_construction": 64, "quantizer": qz},
                       {"ef_search": e}, build_s=bs, index_bytes=ib)
               for qz, bs, ib in (("none", 5.0, 50 * 2**20), ("sq8", 4.0, 25 * 2**20))
               for e, r, q in ((10, 0.9, 2000), (40, 0.97, 1000), (200, 1.0, 400))]
        pts += [self.pt("pgvector-hnsw-l2", r, q, search={"ef_search": e})
                for e, r, q in ((10, 0.8, 1000), (40, 0.9, 500), (200, 0.99, 100))]
        pts += [self.pt("inproc-hnswlib-l2", r, q, search={"ef": e}, kind="inprocess", index_bytes=200 * 2**20)
                for e, r, q in ((10, 0.96, 20000), (40, 0.999, 8000))]
        pts.append(self.pt("lvector-lhnsw-l2-f10", 0.5, 10, filter="category"))   # filtered: no curve
        curves = runner.curve_comparisons(pts)
        by = {(c["target"], c["build"].get("quantizer")): c for c in curves}
        self.assertEqual(set(by), {("lvector-lhnsw-l2", "none"), ("lvector-lhnsw-l2", "sq8"),
                                   ("pgvector-hnsw-l2", None)})
        c = by[("lvector-lhnsw-l2", "none")]
        self.assertEqual((c["baseline"], c["ceiling"]), ("pgvector-hnsw-l2", "inproc-hnswlib-l2"))
        self.assertAlmostEqual(c["baseline_build_ratio"], 0.5)
        self.assertAlmostEqual(c["baseline_size_ratio"], 0.5)
        self.assertAlmostEqual(by[("lvector-lhnsw-l2", "sq8")]["baseline_size_ratio"], 0.25)
        at95, at99 = c["at"]["0.95"], c["at"]["0.99"]
        q95 = math.exp(math.log(2000) + (0.05 / 0.07) * (math.log(1000) - math.log(2000)))
        self.assertAlmostEqual(at95["qps"], q95)
        b95 = math.exp(math.log(500) + (0.05 / 0.09) * (math.log(100) - math.log(500)))
        self.assertAlmostEqual(at95["baseline_qps"], b95)
        self.assertAlmostEqual(at95["baseline_ratio"], q95 / b95)
        self.assertEqual((at95["ceiling_qps"], at95["ceiling_how"]), (20000.0, "at least"))
        self.assertEqual((at99["baseline_qps"], at99["baseline_how"]), (100.0, "point"))
        c99 = math.exp(math.log(20000) + (0.03 / 0.039) * (math.log(8000) - math.log(20000)))
        self.assertEqual(at99["ceiling_how"], "interpolated")
        self.assertAlmostEqual(at99["ceiling_ratio"], at99["qps"] / c99)
        md = report.curves_markdown(curves)
        self.assertIn("| lvector-lhnsw-l2 | m=16, ef_construction=64, quantizer=none | pgvector-hnsw-l2 | "
                      "5.0 / 10.0 | **0.50x** | 50.0 / 100.0 | **0.50x** |", md)
        self.assertIn("≥20000.0 | ~**", md)
        self.assertIn("| pgvector-hnsw-l2 | m=16, ef_construction=64 | - |", md)

    def test_plot_lines_split_builds(self):
        pts = [self.pt("lvector-lhnsw-l2", 0.9, 1, {"m": 16, "quantizer": q}) for q in ("none", "sq8")]
        pts.append(self.pt("pgvector-hnsw-l2", 0.9, 1))
        self.assertEqual(sorted(report.plot_lines(pts)), ["lvector-lhnsw-l2 (quantizer=none)",
                                                          "lvector-lhnsw-l2 (quantizer=sq8)", "pgvector-hnsw-l2"])

    def test_point_comparisons_match_filtered_baselines(self):
        bench = runner.Bench(runner.parse_args([]))
        bp = {"m": 16, "ef_construction": 64}
        ours = {"ef_search": 40, "enable_seqscan": "on"}
        bench.points = [
            self.pt("lvector-lhnsw-l2-f10", 0.99, 100.0, {**bp, "quantizer": "none"}, ours, filter="category",
                    metric="l2", table_key="lvector")]
        bench.points += [self.pt("pgvector-hnsw-l2-f10", r, q, bp, {**ours, "iterative_scan": m}, filter="category",
                                 metric="l2", table_key="pgvector-tt8160", short_queries=sq, plan_ok=ok)
                         for m, r, q, sq, ok in (("off", 0.2, 900.0, 40, True), ("strict_order", 0.8, 50.0, 3, False),
                                                 ("relaxed_order", 0.85, 40.0, 0, True))]
        comps = [c for c in bench.comparisons("d") if c["target"].startswith("lvector-lhnsw")]
        self.assertEqual(len(comps), 1)
        c = comps[0]
        self.assertIn("iterative_scan=strict_order", c["baseline"])
        self.assertEqual((c["ratio"], c["recall"], c["baseline_recall"], c["baseline_short_queries"]),
                         (2.0, 0.99, 0.8, 3))
        md = report.comparisons_markdown(comps)
        self.assertIn("| 50.0 | 0.8000 (3 short!) (plan!) | **2.00x** |", md)
        self.assertIn("(n short!): queries that returned fewer rows", md)

    def test_plot_panels_and_file(self):
        pts = [self.pt("lvector-lhnsw-l2", r, q, search={"ef_search": e}, metric="l2")
               for e, r, q in ((10, 0.9, 900), (40, 0.99, 500))]
        pts.append(self.pt("lvector-lflat-l2-f1", 1.0, 80, metric="l2", filter="category100", plan_ok=False))
        pts.append(self.pt("lvector-lhnsw-ip", 0.8, 700, metric="ip"))
        self.assertEqual([t for t, _ in report.plot_panels(pts)], ["l2", "ip", "l2, WHERE category100 = c"])
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.skipTest("matplotlib missing")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "p.png")
            self.assertTrue(report.plot(pts, path, "t"))
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_settings_not_applied(self):
        held = {"libravdb.hnsw_ef_search": "40", "enable_seqscan": "off", "hnsw.iterative_scan": "strict_order"}

        class Conn:
            def execute(self, sql, args):
                cur = unittest.mock.Mock()
                cur.fetchone.return_value = (held.get(args[0]),)
                return cur
        self.assertEqual(runner.settings_not_applied(Conn(), ["SET libravdb.hnsw_ef_search = 40",
                                                              "SET enable_seqscan = off",
                                                              "SET hnsw.iterative_scan = strict_order"]), [])
        self.assertEqual(runner.settings_not_applied(Conn(), ["SET libravdb.hnsw_ef_search = 80",
                                                              "SET libravdb.no_such = 1"]),
                         ["libravdb.hnsw_ef_search=40 (wanted 80)", "libravdb.no_such=None (wanted 1)"])
        self.assertEqual(concurrency.parse_set("SET hnsw.iterative_scan TO 'relaxed_order';"),
                         ("hnsw.iterative_scan", "relaxed_order"))


@unittest.skipIf(runner is None, "psycopg missing")
class LivfpqTargetsTest(unittest.TestCase):
    def pt(self, target, recall, qps, build=None, search=None, **kw):
        p = {"dataset": "d", "target": target, "recall": recall, "qps": qps, "filter": None, "kind": "index",
             "build": build if build is not None else {"lists": 245}, "search": search or {},
             "build_s": 10.0, "index_bytes": 100 * 2**20}
        p.update(kw)
        return p

    def test_registry(self):
        for metric in ("l2", "ip", "cosine"):
            t = targets.REGISTRY[f"lvector-livfpq-{metric}"]
            self.assertEqual((t.requires_am, t.baseline, t.ceiling, t.exact_results, t.default, t.size_reference),
                             ("livfpq", f"pgvector-ivfflat-{metric}", f"inproc-faiss-ivfpq-{metric}", False, False,
                              f"lvector-lhnsw-{metric}"))
            self.assertEqual(t.size_reference_build, {"quantizer": "none"})
            self.assertEqual((t.goals["recall"], t.goals["qps_vs_baseline"], t.goals["size_vs_reference"],
                              t.goals["build_vs_baseline"]), (0.95, 2.0, 0.15, 1.0))
            self.assertEqual(t.build_params, [{"lists": 245, "pq_bits": 4}, {"lists": 245, "pq_bits": 8}])
            sql = t.index_sql.format(index="i", table="items", opclass=t.opclass, **t.build_params[1])
            self.assertEqual(sql, f"CREATE INDEX i ON items USING livfpq (embedding lvector_{metric}_ops) "
                                  "WITH (lists = 245, pq_bits = 8)")
            self.assertIn({"probes": 10, "rerank": 100}, t.search_params)     # livfpq's defaults
            self.assertEqual([st.format(probes=10, rerank=100) for st in t.search_sql],
                             ["SET libravdb.ivfpq_probes = 10", "SET libravdb.ivfpq_rerank = 100",
                              "SET enable_seqscan = off"])
            probes = [p["probes"] for p in t.search_params]
            self.assertEqual(probes, sorted(probes))
            self.assertTrue(all(p["rerank"] >= 20 and p["rerank"] >= p["probes"] for p in t.search_params))
            # Every livfpq point has an IVFFlat point at the same probes.
            b = targets.REGISTRY[t.baseline]
            self.assertEqual((b.build_params, b.requires_am), ([{"lists": 245}], "ivfflat"))
            self.assertEqual(b.index_sql.format(index="i", table="t", opclass=b.opclass, lists=245),
                             f"CREATE INDEX i ON t USING ivfflat (embedding vector_{metric}_ops) WITH (lists = 245)")
            bprobes = [p["probes"] for p in b.search_params]
            self.assertEqual((bprobes[0], bprobes[-1]), (1, 40))
            self.assertTrue(set(probes) <= set(bprobes))
            # The ceiling sweeps the same candidates: nprobe = probes, k_factor = rerank / 10.
            c = targets.REGISTRY[t.ceiling]
            self.assertEqual((c.engine, c.metric, c.build_params),
                             ("faiss-ivfpq", metric, [{"nlist": 245, "pq_bits": 8}, {"nlist": 245, "pq_bits": 4}]))
            self.assertEqual([(p["nprobe"], p["k_factor"] * 10) for p in c.search_params],
                             [(p["probes"], p["rerank"]) for p in t.search_params])
        for tag, col in (("f10", "category"), ("f1", "category100")):
            t = targets.REGISTRY[f"lvector-livfpq-l2-{tag}"]
            self.assertEqual((t.filter, t.baseline, t.baseline_search),
                             (col, f"pgvector-ivfflat-l2-{tag}", {"iterative_scan": "relaxed_order"}))
            b = targets.REGISTRY[t.baseline]
            self.assertEqual({p["iterative_scan"] for p in b.search_params}, {"off", "relaxed_order"})
            self.assertEqual(b.search_sql[1].format(**b.search_params[1]), "SET ivfflat.iterative_scan = relaxed_order")
            for sp in t.search_params:   # each point has its baseline point
                self.assertTrue(any(runner.search_matches(sp, bs, t.baseline_search) for bs in b.search_params), sp)

    def test_shared_builds_and_baselines(self):
        names = [[t.name for t in g] for g in runner.group_targets(
            targets.select("lvector-livfpq-l2*,pgvector-ivfflat-l2*"))]
        self.assertEqual(names, [["lvector-livfpq-l2", "lvector-livfpq-l2-f10", "lvector-livfpq-l2-f1"],
                                 ["pgvector-ivfflat-l2", "pgvector-ivfflat-l2-f10", "pgvector-ivfflat-l2-f1"]])
        chosen = [t.name for t in targets.with_baselines(targets.select("lvector-livfpq-l2,lvector-livfpq-l2-f1"))]
        # The size reference comes without its own baseline and ceiling.
        self.assertEqual(chosen, ["lvector-livfpq-l2", "lvector-livfpq-l2-f1", "pgvector-ivfflat-l2",
                                  "inproc-faiss-ivfpq-l2", "pgvector-ivfflat-l2-f1", "lvector-lhnsw-l2"])
        # Asked for explicitly, lhnsw keeps its baselines.
        chosen = [t.name for t in targets.with_baselines(targets.select("lvector-livfpq-ip,lvector-lhnsw-ip"))]
        self.assertEqual(chosen, ["lvector-livfpq-ip", "lvector-lhnsw-ip", "pgvector-ivfflat-ip",
                                  "inproc-faiss-ivfpq-ip", "pgvector-hnsw-ip", "inproc-hnswlib-ip"])

    def test_skipped_without_the_access_method(self):
        class Conn:
            def execute(self, sql, *a):
                rows = [(x,) for x in ("hnsw", "ivfflat", "lhnsw")] if "pg_am" in sql else [(1,)]
                cur = unittest.mock.Mock()
                cur.fetchone.return_value = rows[0]
                cur.__iter__ = lambda _self: iter(rows)
                return cur
        chosen = targets.with_baselines(targets.select("lvector-livfpq-*"))
        with contextlib.redirect_stdout(io.StringIO()) as out:
            kept, _, skipped = runner.check_availability(Conn(), chosen)
        self.assertFalse([t.name for t in kept if "livfpq" in t.name])
        self.assertIn("pgvector-ivfflat-l2-f1", [t.name for t in kept])
        self.assertEqual(skipped["lvector-livfpq-l2-f10"], "no access method livfpq")
        self.assertIn("no access method livfpq in this server", out.getvalue())

    def sweep(self):
        pts = [self.pt("lvector-livfpq-l2", r, q, search={"probes": p, "rerank": 10 * p}, build_s=3.0,
                       index_bytes=10 * 2**20)
               for p, r, q in ((1, 0.8, 4000), (5, 0.97, 1300), (10, 0.996, 1000))]
        pts += [self.pt("pgvector-ivfflat-l2", r, q, search={"probes": p}, build_s=4.0, index_bytes=240 * 2**20)
                for p, r, q in ((1, 0.7, 2000), (5, 0.93, 600), (10, 0.97, 400), (40, 0.999, 100))]
        pts += [self.pt("inproc-faiss-ivfpq-l2", r, q, {"nlist": 245, "pq_m": 98, "pq_bits": 8},
                        {"nprobe": p, "k_factor": p}, kind="inprocess")
                for p, r, q in ((1, 0.8, 20000), (10, 0.996, 5000))]
        return pts

    def test_curve_comparisons_size_reference_and_goals(self):
        lhnsw = [self.pt("lvector-lhnsw-l2", 0.99, 2000, {"m": 16, "ef_construction": 64, "quantizer": q},
                         {"ef_search": 40}, index_bytes=ib)
                 for q, ib in (("sq8", 59 * 2**20), ("none", 200 * 2**20))]
        curves = runner.curve_comparisons(self.sweep() + lhnsw)
        # lhnsw is only the size reference here: no curve of its own without pgvector HNSW or hnswlib.
        self.assertEqual([c["target"] for c in curves], ["lvector-livfpq-l2"])
        c = curves[0]
        self.assertEqual((c["baseline"], c["ceiling"], c["size_reference"]),
                         ("pgvector-ivfflat-l2", "inproc-faiss-ivfpq-l2", "lvector-lhnsw-l2"))
        self.assertEqual(c["size_reference_build"]["quantizer"], "none")
        self.assertAlmostEqual(c["size_reference_size_ratio"], 0.05)          # 10 MB / 200 MB, not / 59 MB
        self.assertAlmostEqual(c["baseline_build_ratio"], 0.75)
        goals = {g["kind"]: g for g in c["goals"]}
        q = math.exp(math.log(4000) + (0.15 / 0.17) * (math.log(1300) - math.log(4000)))
        b = math.sqrt(600 * 400)                      # halfway between probes 5 (0.93) and 10 (0.97)
        self.assertAlmostEqual(goals["qps"]["ours"], q)
        self.assertAlmostEqual(goals["qps"]["theirs"], b)
        self.assertAlmostEqual(goals["qps"]["ratio"], q / b)
        self.assertTrue(goals["qps"]["met"])
        self.assertEqual((goals["size"]["met"], goals["build"]["met"]), (True, True))
        self.assertIsNone(goals["ceiling"]["met"])
        self.assertAlmostEqual(goals["ceiling"]["ratio"], q / 20000 / (
            math.exp((0.15 / 0.196) * (math.log(5000) - math.log(20000)))))
        md = report.goals_markdown(curves)
        self.assertIn("| target | build | goal (issue 6) | ours | theirs | ratio | met |", md)
        self.assertIn("| index size <= 0.15x lvector-lhnsw-l2 (quantizer=none)'s | 10.0 MB | 200.0 MB | 0.05x | "
                      "**yes** |", md)
        self.assertIn("| build time <= 1x pgvector-ivfflat-l2's | 3.0 s | 4.0 s | 0.75x | **yes** |", md)
        self.assertIn("| lvector-livfpq-l2 | lists=245 | QPS at recall 0.95 >= 2x pgvector-ivfflat-l2's | ", md)
        self.assertIn("## Goals", "\n".join(report.dataset_markdown(
            "d", 10, unittest.mock.Mock(points=[], conc=[], tables={}, floors=[]), [], True, False, curves)))

    def test_goals_missing_sides_and_misses(self):
        pts = [p for p in self.sweep() if p["target"] == "lvector-livfpq-l2"]
        c, = runner.curve_comparisons(pts)      # only the size reference makes a record
        goals = {g["kind"]: g for g in c["goals"]}
        self.assertEqual({k: g["met"] for k, g in goals.items()}, {"qps": None, "size": None, "build": None,
                                                                    "ceiling": None})
        self.assertEqual(goals["size"]["note"], "lvector-lhnsw-l2 (quantizer=none) not in this run")
        self.assertEqual(goals["qps"]["note"], "pgvector-ivfflat-l2 not in this run")
        md = report.goals_markdown([c])
        self.assertIn("| - | - | - (lvector-lhnsw-l2 (quantizer=none) not in this run) |", md)
        # Slower than 2x, bigger than 0.15x, built slower: each goal missed.
        slow = [dict(p, qps=p["qps"] / 4, build_s=9.0, index_bytes=50 * 2**20) for p in pts]
        ref = self.pt("lvector-lhnsw-l2-f10", 0.9, 10, {"m": 16, "ef_construction": 64, "quantizer": "none"},
                      filter="category", index_bytes=200 * 2**20)    # a filtered point holds the size too
        base = [p for p in self.sweep() if p["target"] == "pgvector-ivfflat-l2"]
        c, = [c for c in runner.curve_comparisons(slow + base + [ref]) if c["target"] == "lvector-livfpq-l2"]
        goals = {g["kind"]: g for g in c["goals"]}
        self.assertEqual({k: g["met"] for k, g in goals.items() if k != "ceiling"},
                         {"qps": False, "size": False, "build": False})
        self.assertAlmostEqual(goals["size"]["ratio"], 0.25)
        self.assertIn("**no**", report.goals_markdown([c]))
        # A curve that never reaches the level misses the QPS goal.
        low = [dict(p, recall=p["recall"] * 0.9) for p in pts]
        c, = [c for c in runner.curve_comparisons(low + base) if c["target"] == "lvector-livfpq-l2"]
        g = c["goals"][0]
        self.assertEqual((g["ours"], g["met"], g["note"]), (None, False, "lvector-livfpq-l2 does not reach 0.95"))
        self.assertIn("| not reached |", report.goals_markdown([c]))

    def test_goals_need_qps_as_a_share_of_the_floor(self):
        floors = [{"dataset": "d", "vector_type": "lvector", "qps": 5000.0},
                  {"dataset": "d", "vector_type": "vector", "qps": 100.0},      # pgvector's: not livfpq's floor
                  {"dataset": "other", "vector_type": "lvector", "qps": 10.0}]  # another data set's
        c, = [c for c in runner.curve_comparisons(self.sweep(), floors=floors) if c["target"] == "lvector-livfpq-l2"]
        g = {g["kind"]: g for g in c["goals"]}["qps"]
        needs = 2 * math.sqrt(600 * 400)        # 2x IVFFlat's QPS at 0.95
        self.assertAlmostEqual(g["needs_qps"], needs)
        self.assertEqual(g["floor_qps"], 5000.0)
        self.assertAlmostEqual(g["needs_floor_share"], needs / 5000)
        md = report.goals_markdown([c])
        self.assertIn("| **yes**; needs 980 QPS = 0.20x the floor |", md)
        self.assertIn("share of the client floor", md)
        self.assertNotIn("out of reach", md)
        # A floor below what the goal needs: flagged.
        c, = [c for c in runner.curve_comparisons(self.sweep(), floors=[dict(floors[0], qps=800.0)])
              if c["target"] == "lvector-livfpq-l2"]
        self.assertIn("needs 980 QPS = 1.22x the floor (above the floor: out of reach on this client path!) |",
                      report.goals_markdown([c]))
        # No floor in the run: the QPS needed alone; the other goals' rows unchanged.
        c, = [c for c in runner.curve_comparisons(self.sweep(), floors=floors[1:])
              if c["target"] == "lvector-livfpq-l2"]
        goals = {g["kind"]: g for g in c["goals"]}
        self.assertNotIn("needs_floor_share", goals["qps"])
        md = report.goals_markdown([c])
        self.assertIn("| **yes**; needs 980 QPS |", md)
        self.assertNotIn("share of the client floor", md)
        self.assertFalse([k for k in ("needs_qps", "floor_qps") for g in c["goals"] if g["kind"] != "qps" and k in g])
        # A baseline whose fastest point is above the level: the need is a lower bound.
        base = [dict(p, recall=min(1.0, p["recall"] + 0.3)) if p["target"] == "pgvector-ivfflat-l2" else p
                for p in self.sweep()]
        c, = [c for c in runner.curve_comparisons(base, floors=floors) if c["target"] == "lvector-livfpq-l2"]
        self.assertIn("needs ≥ 4000 QPS = ≥ 0.80x the floor", report.goals_markdown([c]))

    def test_each_code_width_meets_its_ceiling(self):
        pts = [self.pt("lvector-livfpq-l2", 0.96, 1000 * b, {"lists": 245, "pq_bits": b}, {"probes": 5, "rerank": 20},
                       index_bytes=b * 2**20) for b in (4, 8)]
        pts += [self.pt("inproc-faiss-ivfpq-l2", 0.96, 100 * b, {"nlist": 245, "pq_m": 784 // b, "pq_bits": b},
                        {"nprobe": 5, "k_factor": 2}, kind="inprocess") for b in (8, 4)]
        pts.append(self.pt("pgvector-ivfflat-l2", 0.96, 100, {"lists": 245}, {"probes": 5}))
        by = {c["build"]["pq_bits"]: c for c in runner.curve_comparisons(pts) if c["target"] == "lvector-livfpq-l2"}
        self.assertEqual({b: c["ceiling_build"]["pq_bits"] for b, c in by.items()}, {4: 4, 8: 8})
        self.assertEqual({b: c["baseline"] for b, c in by.items()}, {4: "pgvector-ivfflat-l2", 8: "pgvector-ivfflat-l2"})
        self.assertEqual({b: c["at"]["0.95"]["ceiling_ratio"] for b, c in by.items()}, {4: 10.0, 8: 10.0})
        # Filtered livfpq runs on the default (4-bit) build only, shared with the unfiltered target.
        for tag in ("f10", "f1"):
            self.assertEqual(targets.REGISTRY[f"lvector-livfpq-l2-{tag}"].build_params, [{"lists": 245, "pq_bits": 4}])

    def test_point_comparisons_same_probes(self):
        bench = runner.Bench(runner.parse_args([]))
        bench.points = [dict(p, metric="l2", table_key="lvector" if "livfpq" in p["target"] else "pgvector-tt8160")
                        for p in self.sweep() if p["kind"] == "index"]
        ours = {"probes": 5, "rerank": 50, "enable_seqscan": "on"}
        bench.points.append(self.pt("lvector-livfpq-l2-f1", 0.99, 90.0, search=ours, filter="category100",
                                    metric="l2", table_key="lvector"))
        bench.points += [self.pt("pgvector-ivfflat-l2-f1", r, q, search={"probes": 5, "iterative_scan": m,
                                                                       "enable_seqscan": "on"},
                                 filter="category100", metric="l2", table_key="pgvector-tt8160", short_queries=sq)
                         for m, r, q, sq in (("off", 0.1, 900.0, 950), ("relaxed_order", 0.9, 45.0, 0))]
        comps = {c["target"]: c for c in bench.comparisons("d") if c["target"].startswith("lvector-livfpq")}
        c = comps["lvector-livfpq-l2 (lists=245, probes=5, rerank=50)"]
        self.assertEqual((c["baseline"], c["ratio"]), ("pgvector-ivfflat-l2 (lists=245, probes=5)", 1300 / 600))
        c = comps["lvector-livfpq-l2-f1 (lists=245, probes=5, rerank=50, enable_seqscan=on)"]
        self.assertIn("iterative_scan=relaxed_order", c["baseline"])
        self.assertEqual((c["ratio"], c["baseline_short_queries"]), (2.0, 0))
        self.assertEqual(len(comps), 4)     # probes 1, 5, 10 and the filtered point


@unittest.skipIf(runner is None, "psycopg missing")
class ClientFloorTest(unittest.TestCase):
    """The floor point: SELECT lvector_dims($1::lvector) / vector_dims on the
    k-NN points' client path, against a fake connection."""

    class Cursor:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, params=None, prepare=None):
            self.conn.calls.append((sql, params, prepare))
            self.last = params

        def fetchall(self):
            text = self.last[0]
            dims = text.count(",") + 1
            return [(dims if text not in self.conn.bad else dims + 1,)]

    class Conn:
        def __init__(self, log, bad):
            self.calls, self.bad, self.closed = log, bad, False

        def execute(self, sql, *a):
            return unittest.mock.Mock()

        def cursor(self):
            return ClientFloorTest.Cursor(self)

        def close(self):
            self.closed = True

    def bench(self, *argv):
        bench = runner.Bench(runner.parse_args(list(argv)))
        self.calls, self.conns, self.bad = [], [], set()   # every session's statements; texts parsed wrong

        def connect(*a, **kw):
            self.conns.append(self.Conn(self.calls, self.bad))
            return self.conns[-1]
        patcher = unittest.mock.patch.object(runner.psycopg, "connect", side_effect=connect)
        patcher.start()
        self.addCleanup(patcher.stop)
        bench.connect()
        bench.dataset = "d"
        rng = np.random.default_rng(5)
        self.ds = datasets.Dataset("d", "d", rng.normal(size=(20, 4)).astype(np.float32),
                                   rng.normal(size=(8, 4)).astype(np.float32))
        return bench

    def test_floor_types(self):
        self.assertEqual(runner.floor_types(targets.select("lvector-exact-l2,lvector-lflat-ip")), ["lvector"])
        self.assertEqual(runner.floor_types(targets.select("pgvector-hnsw-l2,lvector-lhnsw-l2")),
                         ["lvector", "vector"])
        self.assertEqual(runner.floor_types(targets.select("pgvector-exact-l2")), ["vector"])
        self.assertEqual(runner.floor_types([]), [])
        self.assertEqual(runner.FLOOR_SQL, {"lvector": "SELECT lvector_dims(%s::lvector)",
                                            "vector": "SELECT vector_dims(%s::vector)"})

    def test_floor_record_runs_the_points_loop(self):
        bench = self.bench("--queries", "3", "--warmup", "2", "--repeat", "2")
        with contextlib.redirect_stdout(io.StringIO()) as out:
            bench.run_floors(self.ds, targets.select("lvector-exact-l2,pgvector-exact-l2"))
        self.assertEqual([f["vector_type"] for f in bench.floors], ["lvector", "vector"])
        self.assertEqual(bench.lines, bench.floors)
        f = bench.floors[0]
        self.assertEqual((f["type"], f["dataset"], f["rows"], f["dims"], f["sql"], f["queries"]),
                         ("floor", "d", 20, 4, "SELECT lvector_dims(%s::lvector)", 3))
        self.assertEqual(len(f["rounds_qps"]), 2)
        self.assertEqual(f["qps"], max(f["rounds_qps"]))
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            self.assertGreaterEqual(f[key], 0)
        # Each floor on a fresh session, like each point; warm-up with the
        # vectors after the timed ones, then every round of the timed
        # queries, all as the prepared statement with the vector as text.
        self.assertEqual(len(self.conns), 3)
        self.assertTrue(all(c.closed for c in self.conns[:2]))
        texts = [pgload.vector_text(q) for q in self.ds.queries]
        lv = [c for c in self.calls if c[0] == runner.FLOOR_SQL["lvector"]]
        self.assertEqual([c[1] for c in lv], [(texts[3],), (texts[4],)] + [(t,) for t in texts[:3]] * 2)
        self.assertTrue(all(c[2] is True for c in self.calls))
        self.assertEqual(len([c for c in self.calls if c[0] == runner.FLOOR_SQL["vector"]]), 8)
        self.assertIn("client floor (lvector, SELECT lvector_dims($1::lvector)): QPS ", out.getvalue())
        self.assertFalse(bench.errors)

    def test_a_vector_parsed_wrong_is_an_error(self):
        bench = self.bench("--queries", "3", "--warmup", "0")
        self.bad.add(pgload.vector_text(self.ds.queries[1]))
        with contextlib.redirect_stdout(io.StringIO()):
            rec = bench.measure_floor("lvector", self.ds)
        self.assertEqual(rec["queries"], 3)
        self.assertEqual(bench.errors, ["client floor lvector: 1 of 3 queries did not return 4"])

    def test_report_section(self):
        floors = [{"type": "floor", "dataset": "d", "vector_type": "lvector", "sql": runner.FLOOR_SQL["lvector"],
                   "qps": 5512.34, "p50_ms": 0.1789, "p95_ms": 0.2011, "p99_ms": 0.25},
                  {"type": "floor", "dataset": "other", "vector_type": "vector", "sql": runner.FLOOR_SQL["vector"],
                   "qps": 1.0, "p50_ms": 1, "p95_ms": 1, "p99_ms": 1}]
        md = "\n".join(report.dataset_markdown(
            "d", 10, unittest.mock.Mock(points=[], conc=[], tables={}, floors=floors), [], True, False))
        self.assertIn("## Client floor\n", md)
        self.assertIn("| lvector | `SELECT lvector_dims($1::lvector)` | 5512.3 | 0.179 | 0.201 | 0.250 |", md)
        self.assertIn("no point can run faster", md)
        self.assertNotIn("`SELECT vector_dims", md)              # another data set's floor
        self.assertLess(md.index("## Results"), md.index("## Client floor"))
        md = "\n".join(report.dataset_markdown(
            "d", 10, unittest.mock.Mock(points=[], conc=[], tables={}, floors=[]), [], True, False))
        self.assertNotIn("Client floor", md)
        self.assertEqual(report.floor_markdown([]), "")


class ProgressTest(unittest.TestCase):
    def test_build_line(self):
        self.assertEqual(progress.build_line(("building index: loading tuples", 0, 0, 2500, 10000), 12.3),
                         "  build: 12 s, building index: loading tuples, tuples 2500/10000 (25 %)")
        self.assertEqual(progress.build_line(("building index", 5, 20, 7, 0), 3),
                         "  build: 3 s, building index, tuples 7, blocks 5/20 (25 %)")
        self.assertEqual(progress.build_line(None, 40), "  build: 40 s")

    def test_loop_progress(self):
        now = [0.0]
        lines = []
        p = progress.LoopProgress(100, lines.append, interval_s=10, clock=lambda: now[0])
        for i in range(1, 101):
            now[0] += 0.5                         # 2 queries a second: a line every 20 queries
            p.tick(i)
        self.assertEqual(lines[0], "  queries: 20/100 in 10 s (2.0/s)")
        self.assertEqual(len(lines), 4)           # 20, 40, 60, 80; nothing at 100 (the point line follows)


class RegistryTest(unittest.TestCase):
    def test_defaults_and_patterns(self):
        default = targets.select(None)
        self.assertTrue(default and all(t.default and t.exact_results for t in default))
        self.assertIn("lvector-lflat-l2", [t.name for t in default])
        self.assertEqual({t.metric for t in default}, {"l2", "ip", "cosine"})
        names = [t.name for t in targets.select("lvector-exact-*")]
        self.assertIn("lvector-exact-l2", names)
        self.assertNotIn("lvector-tt8160-exact-l2", names)
        with self.assertRaises(ValueError):
            targets.select("no-such-target")

    def test_baselines_exist_and_sql(self):
        for t in targets.REGISTRY.values():
            if t.baseline:
                self.assertIn(t.baseline, targets.REGISTRY, t.name)
                self.assertEqual(targets.REGISTRY[t.baseline].metric, t.metric)
            if t.kind == "inprocess":
                self.assertIsNone(t.table)
                self.assertTrue(t.engine and t.requires_module and not t.default)
            else:
                self.assertIn(t.table, targets.TABLES)
        t = targets.REGISTRY["lvector-exact-ip"]
        self.assertEqual(t.query_sql(10), "SELECT id FROM items ORDER BY embedding <#> %s LIMIT 10")
        t = targets.REGISTRY["pgvector-exact-l2-f10"]
        self.assertEqual(t.query_sql(5), "SELECT id FROM items_pgvector WHERE category = %s "
                                         "ORDER BY embedding <-> %s LIMIT 5")
        self.assertEqual(targets.REGISTRY["pgvector-hnsw-l2"].opclass, "vector_l2_ops")


if __name__ == "__main__":
    unittest.main()
