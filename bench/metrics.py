"""Recall, latency percentiles and throughput.

Recall@k with ties
------------------
The exact top-k is not unique when several rows lie at the k-th distance
(Fashion-MNIST pixels are integers, so equal distances happen). Comparing id
sets would then punish a correct answer that picked other, equally near rows.
So a returned id counts as correct when its true distance (recomputed here in
float64 from the vectors, not taken from the server) is at most the true k-th
distance, with a relative tolerance of TIE_RTOL for float rounding. Each
distinct id counts once, and recall is correct / k: returning fewer than k rows
costs recall, returning the same row twice gains nothing.
"""

import math
from typing import Iterable, Optional, Sequence

import numpy as np

from datasets import distances_to

TIE_RTOL = 1e-6


def recall_with_ties(result_ids: Sequence[int], result_true_dists: Sequence[float],
                     kth_true_dist: float, k: int, rtol: float = TIE_RTOL) -> float:
    """Recall@k of one result list; see the module comment for the rule."""
    if k <= 0:
        raise ValueError("k must be positive")
    limit = kth_true_dist + rtol * max(abs(kth_true_dist), 1e-12)
    seen = set()
    correct = 0
    for i, d in zip(list(result_ids)[:k], list(result_true_dists)[:k]):
        if i in seen:
            continue
        seen.add(i)
        if d <= limit:   # NaN and +inf never count
            correct += 1
    return correct / k


def recall_by_ids(result_ids: Sequence[int], true_ids: Sequence[int], k: int) -> float:
    """Plain set recall, for when the vectors are not at hand (no tie rule)."""
    return len(set(list(result_ids)[:k]) & set(list(true_ids)[:k])) / k


def mean_recall(results: Iterable[Sequence[int]], queries: np.ndarray, base: np.ndarray,
                gt_dists: np.ndarray, metric: str, k: int, gt_ids: Optional[np.ndarray] = None) -> float:
    """Mean tie-aware recall@k over queries; results[i] are the ids (row
    numbers in base) returned for queries[i].

    With gt_ids (filtered ground truth, where id -1 marks a missing place
    because fewer than k rows match the filter), a query with m < k matching
    rows is scored out of m, not k, and a query with no matching row is left
    out of the mean. Callers replace ids that break the filter by -1 first,
    so they count as wrong."""
    total, count = 0.0, 0
    for i, ids in enumerate(results):
        expected = k
        if gt_ids is not None:
            expected = int(np.count_nonzero(np.asarray(gt_ids[i, :k]) >= 0))
            if expected == 0:
                continue
        ids = [int(x) for x in ids]
        valid = [x for x in ids if 0 <= x < len(base)]
        d = distances_to(queries[i], base[valid], metric) if valid else np.array([])
        dist_of = dict(zip(valid, d))
        dists = [dist_of.get(x, math.inf) for x in ids]
        total += recall_with_ties(ids, dists, float(gt_dists[i, expected - 1]), expected)
        count += 1
    return total / count if count else float("nan")


def rows_returned(results: Sequence[Sequence[int]], k: int, matching: Optional[Sequence[int]] = None) -> dict:
    """How many rows each query returned. A correct k-NN query returns
    min(k, rows matching its filter) rows (matching[i]; every row when there is
    no filter); 'short' counts the queries that returned fewer, which a
    filtered index scan does when it stops before enough rows pass the
    filter."""
    counts = np.array([len(r) for r in results], dtype=np.int64)
    want = np.full(len(counts), k) if matching is None else np.minimum(k, np.asarray(matching)[:len(counts)])
    return {"rows_min": int(counts.min()) if counts.size else 0,
            "rows_mean": float(counts.mean()) if counts.size else 0.0,
            "short_queries": int(np.count_nonzero(counts < want))}


def drop_filter_violations(results: Sequence[Sequence[int]], row_values: np.ndarray,
                           query_values: Sequence[int]) -> tuple:
    """Replaces returned ids whose row does not satisfy WHERE column = value by
    -1 (so recall counts them as wrong) and counts them."""
    out, bad = [], 0
    for ids, v in zip(results, query_values):
        fixed = []
        for x in ids:
            x = int(x)
            ok = 0 <= x < len(row_values) and row_values[x] == v
            bad += not ok
            fixed.append(x if ok else -1)
        out.append(fixed)
    return out, bad


def latency_summary(latencies_s: Sequence[float], wall_s: Optional[float] = None) -> dict:
    """Percentiles in milliseconds (linear interpolation) and queries per second.
    With one client, QPS is the count over the wall time of the timed loop
    (wall_s; the sum of latencies when not given)."""
    lat = np.asarray(latencies_s, dtype=np.float64)
    if lat.size == 0:
        raise ValueError("no latencies")
    wall = float(wall_s) if wall_s is not None else float(lat.sum())
    p50, p95, p99 = np.percentile(lat, [50, 95, 99]) * 1e3
    return {
        "queries": int(lat.size),
        "qps": lat.size / wall if wall > 0 else float("inf"),
        "mean_ms": float(lat.mean() * 1e3),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "min_ms": float(lat.min() * 1e3),
        "max_ms": float(lat.max() * 1e3),
    }


def pareto_frontier(curve: Iterable[tuple]) -> list:
    """The (recall, qps) points no other point beats on both, by recall
    ascending (so QPS descending), as ann-benchmarks draws its curves."""
    best = -math.inf
    out = []
    for r, q in sorted(((float(r), float(q)) for r, q in curve if not math.isnan(r)),
                       key=lambda x: (-x[0], -x[1])):
        if q > best:
            out.append((r, q))
            best = q
    return out[::-1]


def qps_at_recall(curve: Iterable[tuple], recall: float) -> tuple:
    """QPS of a recall/QPS curve at a recall level, as (qps, how):

      interpolated  between the two frontier points around the level, linear
                    in recall and log QPS (the plot's axes)
      point         a point lies exactly at the level: its QPS
      at least      no point lies below the level: the fastest point above
                    it (a lower bound of the QPS at the level)
      not reached   no point reaches the level: qps is None
    """
    front = pareto_frontier(curve)
    above = [(r, q) for r, q in front if r >= recall]
    if not above:
        return None, "not reached"
    below = [(r, q) for r, q in front if r < recall]
    b = above[0]
    if b[0] == recall:
        return b[1], "point"
    if not below:
        return b[1], "at least"
    a = below[-1]
    t = (recall - a[0]) / (b[0] - a[0])
    return math.exp(math.log(a[1]) + t * (math.log(b[1]) - math.log(a[1]))), "interpolated"
