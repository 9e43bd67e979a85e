"""In-process ceilings: hnswlib and FAISS on the same vectors, without SQL.

These show what the algorithms reach inside one process, with no parser,
planner, executor, buffer manager or client round trip: an upper bound for
what an index inside PostgreSQL can approach, not a competitor on the same
terms. Debian's python3-hnswlib and python3-faiss provide them; a target is
skipped when its module is missing.

Every library runs with one thread (builds too), and queries go one at a
time (batch size 1) like the SQL client's, timed the same way: warm-up
queries, then N queries, the fastest of --repeat rounds.

  hnswlib      HNSW, M = 16, ef_construction = 64 (pgvector's defaults),
               an ef sweep; l2, ip and cosine (hnswlib's spaces l2, ip and
               cosine order neighbours as <->, <#> and <=> do)
  faiss-flat   IndexFlatL2: exact brute force with FAISS's kernels
  faiss-ivfpq  IndexIVFPQ (nlist from the build parameters, else sqrt(n);
               8-bit PQ, or 4-bit with IndexIVFPQFastScan, with livfpq's
               default sub-vector count for that width: the smallest
               divisor of d that is at least d / 8, or d / 4; trained on a
               random sample as large as livfpq's, 50 rows a list) inside
               IndexRefineFlat, which re-ranks k * k_factor candidates with
               exact distances; an (nprobe, k_factor) sweep; l2, ip (FAISS's
               inner-product metric, largest first, as <#> orders; its
               coarse quantizer IndexFlatIP, which k-means trains and
               assigns by inner product too) and cosine (L2 on normalised
               base and query vectors)
"""

import math
import os
import tempfile
import time
from typing import Callable

import numpy as np

import metrics


# hnswlib's spaces: l2 is the squared distance, ip is 1 - <a, b> and cosine
# 1 - cos(a, b), so each orders neighbours like the SQL operator.
HNSWLIB_SPACES = {"l2": "l2", "ip": "ip", "cosine": "cosine"}


def module_version(name: str):
    """The module's version string, or None when it cannot be imported."""
    try:
        mod = __import__(name)
    except ImportError:
        return None
    version = getattr(mod, "__version__", None)
    if not version:   # hnswlib has no __version__; its package metadata does
        try:
            import importlib.metadata
            version = importlib.metadata.version(name)
        except Exception:   # noqa: BLE001 - any failure means "unknown"
            version = None
    return version or "installed"


def ivfpq_params(n: int, dims: int, nlist=None, pq_bits: int = 8) -> dict:
    """nlist (given, else about sqrt(n); at least 1, at most n / 39 so that
    k-means has 39 training points per list, FAISS's minimum without a
    warning) and the number of PQ sub-quantizers as livfpq picks it by
    default (default_pq_m in src/pg/livfpq_build.cc): the smallest divisor
    of dims that leaves at most 8 dimensions a sub-space with 8-bit codes
    (98 for 784, 16 for 128), at most 4 with 4-bit codes (196 for 784)."""
    want = int(nlist) if nlist else int(round(math.sqrt(n)))
    nlist = max(1, min(want, n // 39 or 1))
    dsub = 4 if int(pq_bits) == 4 else 8
    m = next(d for d in range(max(1, -(-dims // dsub)), dims + 1) if dims % d == 0)
    return {"nlist": nlist, "pq_m": m, "pq_bits": int(pq_bits)}


def livfpq_train_rows(n: int, nlist: int) -> int:
    """How many rows livfpq trains its centroids and codebooks on (its
    reservoir sample, src/pg/livfpq_build.cc): 50 per list, at least 10240
    (40 per 8-bit codeword), at most 2^17, at most n."""
    return min(n, 1 << 17, max(256 * 40, 50 * nlist))


def train_sample(base: np.ndarray, rows: int, seed: int = 1234) -> np.ndarray:
    """rows rows of base, drawn at random with a fixed seed (in base order);
    base itself when rows covers it."""
    if rows >= len(base):
        return base
    idx = np.sort(np.random.default_rng(seed).choice(len(base), size=rows, replace=False))
    return np.ascontiguousarray(base[idx])


def normalized(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(np.where(norms > 0, x / np.where(norms > 0, norms, 1), 0), dtype=np.float32)


def timed_queries(search: Callable, queries: np.ndarray, warmup: np.ndarray, repeat: int) -> tuple:
    """Runs search(q) for each query one at a time; the fastest of repeat
    rounds. Returns (latency summary, result ids of that round)."""
    for q in warmup:
        search(q)
    rounds = []
    for _ in range(max(1, repeat)):
        lat, results = [], []
        t0 = time.perf_counter()
        for q in queries:
            s = time.perf_counter()
            ids = search(q)
            lat.append(time.perf_counter() - s)
            results.append([int(x) for x in ids if x >= 0])
        rounds.append((metrics.latency_summary(lat, time.perf_counter() - t0), results))
    summary, results = max(rounds, key=lambda r: r[0]["qps"])
    summary["rounds_qps"] = [r[0]["qps"] for r in rounds]
    return summary, results


class Engine:
    """One in-process index: build() once, then search settings and queries."""

    def __init__(self, engine: str, metric: str, base: np.ndarray, build_params: dict):
        multi = engine in ("hnswlib", "faiss-ivfpq")
        if metric not in HNSWLIB_SPACES or (not multi and metric != "l2"):
            raise ValueError(f"in-process {engine} is measured for "
                             + ("l2, ip and cosine" if multi else "l2") + f" only, not {metric}")
        self.metric = metric
        self.engine = engine
        self.base = np.ascontiguousarray(base, dtype=np.float32)
        self.build_params = dict(build_params)
        self.index = None
        self._keep = []   # FAISS sub-objects the Python side must keep alive

    def build(self) -> dict:
        n, d = self.base.shape
        t0 = time.perf_counter()
        if self.engine == "hnswlib":
            import hnswlib
            idx = hnswlib.Index(space=HNSWLIB_SPACES[self.metric], dim=d)
            idx.init_index(max_elements=n, M=self.build_params["m"],
                           ef_construction=self.build_params["ef_construction"], random_seed=100)
            idx.set_num_threads(1)
            idx.add_items(self.base, np.arange(n), num_threads=1)
            self.index = idx
        elif self.engine.startswith("faiss"):
            import faiss
            faiss.omp_set_num_threads(1)
            if self.engine == "faiss-flat":
                self.index = faiss.IndexFlatL2(d)
                self.index.add(self.base)
            elif self.engine == "faiss-ivfpq":
                p = ivfpq_params(n, d, self.build_params.get("nlist"), self.build_params.get("pq_bits", 8))
                # Trained on as many rows as livfpq samples (FAISS would take
                # every row: 5x the training time for the same code).
                p["train_rows"] = livfpq_train_rows(n, p["nlist"])
                # 4-bit codes: FAISS's fast-scan IVFPQ (SIMD look-ups in
                # registers, as livfpq's 4-bit kernels), which wants an even
                # number of sub-quantizers; else the plain IVFPQ.
                p["fast_scan"] = p["pq_bits"] == 4 and p["pq_m"] % 2 == 0
                self.build_params.update(p)
                # Cosine: unit vectors, ordered as <=> orders them.
                base = normalized(self.base) if self.metric == "cosine" else self.base
                cls = faiss.IndexIVFPQFastScan if p["fast_scan"] else faiss.IndexIVFPQ
                # Cosine runs as L2 on unit vectors (|a - b|^2 = 2 - 2 cos):
                # FAISS's inner-product k-means would put every vector on
                # the centroids of largest norm.
                if self.metric in ("l2", "cosine"):
                    quantizer = faiss.IndexFlatL2(d)
                    ivf = cls(quantizer, d, p["nlist"], p["pq_m"], p["pq_bits"])
                else:
                    quantizer = faiss.IndexFlatIP(d)
                    ivf = cls(quantizer, d, p["nlist"], p["pq_m"], p["pq_bits"], faiss.METRIC_INNER_PRODUCT)
                ivf.cp.seed = 1234
                ivf.train(train_sample(base, p["train_rows"]))
                # The refine index keeps the full vectors beside the codes
                # (with the base index's metric); adding through it fills both.
                refine = faiss.IndexRefineFlat(ivf)
                refine.k_factor = float(self.build_params.get("k_factor", 4))
                refine.add(base)
                self.index = refine
                self._keep = [quantizer, ivf]
            else:
                raise ValueError(f"unknown engine {self.engine!r}")
        else:
            raise ValueError(f"unknown engine {self.engine!r}")
        build_s = time.perf_counter() - t0
        return {"build_s": build_s, "index_bytes": self.size_bytes(), "build_threads": 1}

    def size_bytes(self) -> int:
        if self.engine == "hnswlib":
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "index.bin")
                self.index.save_index(path)
                return os.path.getsize(path)
        import faiss
        return int(faiss.serialize_index(self.index).size)

    def configure(self, search_params: dict) -> None:
        if "ef" in search_params:
            self.index.set_ef(int(search_params["ef"]))
        if "nprobe" in search_params:
            self._keep[1].nprobe = int(search_params["nprobe"])
        if "k_factor" in search_params:   # IndexRefineFlat reads it at every search
            self.index.k_factor = float(search_params["k_factor"])

    def searcher(self, k: int) -> Callable:
        if self.engine == "hnswlib":
            idx = self.index

            def search(q):
                labels, _ = idx.knn_query(q.reshape(1, -1), k=k, num_threads=1)
                return labels[0]
            return search
        idx = self.index
        if self.metric == "cosine":
            def search(q):
                _, labels = idx.search(normalized(q.reshape(1, -1)), k)
                return labels[0]
            return search

        def search(q):
            _, labels = idx.search(q.reshape(1, -1), k)
            return labels[0]
        return search

    def close(self) -> None:
        self.index = None
        self._keep = []


def run(t, base: np.ndarray, queries: np.ndarray, warmup: np.ndarray, k: int, repeat: int,
        log: Callable = print):
    """Builds target t's index for each build parameter set and yields
    (build params, build figures, search params, latency summary, results)
    for every search point."""
    for bp in t.build_params:
        eng = Engine(t.engine, t.metric, base, bp)
        log(f"  building {t.engine} {bp or ''} in-process (1 thread)")
        build = eng.build()
        log(f"  built in {build['build_s']:.1f} s, {build['index_bytes'] / 2**20:.1f} MB "
            f"({', '.join(f'{a}={b}' for a, b in eng.build_params.items()) or 'no parameters'})")
        try:
            search = eng.searcher(k)
            for sp in t.search_params:
                if "ef" in sp and sp["ef"] < k:
                    continue   # hnswlib needs ef >= k
                eng.configure(sp)
                summary, results = timed_queries(search, queries, warmup, repeat)
                yield dict(eng.build_params), build, sp, summary, results
        finally:
            eng.close()
