"""Data sets for the LibraVDB benchmarks and the demo.

A data set is a float32 base matrix (n x d), a float32 query matrix, and
optionally one integer label per base row. Three sources:

  fashion-mnist      Debian's dataset-fashion-mnist: the 60000 training images
                     are the base, the first N test images the queries, the
                     class labels (10 classes) the base labels.
  PATH               a .fvecs/.bvecs/.npy file of base vectors. Queries come
                     from a sibling file (texmex naming: *_base.* -> *_query.*)
                     or, when there is none, the last rows of the file are held
                     out as queries.
  clustered:N:D      a generated set of N points in D dimensions around
                     Gaussian cluster centres, with a fixed seed.

Everything converted or generated is cached as .npy under
${LIBRAVDB_CACHE:-$HOME/.cache/libravdb}, and so is the exact ground truth
(top-100 ids and distances per query and metric) that ground_truth() computes
with numpy in memory-bounded blocks.
"""

import gzip
import hashlib
import os
import struct
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

import progress

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"   # Debian's dataset-fashion-mnist
FASHION_MNIST_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
GT_K = 100
METRICS = ("l2", "ip", "cosine")
CLUSTERED_SEED = 20240607


def cache_root() -> str:
    root = os.environ.get("LIBRAVDB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "libravdb")
    os.makedirs(root, exist_ok=True)
    return root


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _save_atomic(path: str, array: np.ndarray) -> None:
    # Write beside the target and rename, so an interrupted run never leaves a
    # truncated file that a later run would trust.
    tmp = path + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


# --- file formats ---------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (the MNIST format), gzip-compressed when it ends in .gz."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX file with no dimensions")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    offset = 4 + 4 * ndim
    count = int(np.prod(shape))
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: IDX payload has {len(data) - offset} bytes, "
                         f"shape {shape} needs {count * dtype.itemsize}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)


_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}


def write_idx(path: str, array: np.ndarray) -> None:
    """Writes an IDX file (used by the tests to make tiny synthetic inputs)."""
    code = _IDX_CODES[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(_IDX_DTYPES[code]).tobytes())


def _read_xvecs(path: str, elem: np.dtype) -> np.ndarray:
    # texmex format: every row is an int32 dimension count followed by that
    # many elements, all little-endian.
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=elem)
    d = int(raw[:4].view("<i4")[0])
    if d <= 0:
        raise ValueError(f"{path}: bad dimension count {d}")
    row_bytes = 4 + d * elem.itemsize
    if raw.size % row_bytes:
        raise ValueError(f"{path}: size {raw.size} is not a multiple of the row size {row_bytes}")
    rows = raw.reshape(-1, row_bytes)
    dims = rows[:, :4].copy().view("<i4").ravel()
    if np.any(dims != d):
        raise ValueError(f"{path}: rows have differing dimension counts")
    return rows[:, 4:].copy().view(elem).reshape(-1, d)


def _write_xvecs(path: str, array: np.ndarray, elem: np.dtype) -> None:
    array = np.ascontiguousarray(array, dtype=elem)
    n, d = array.shape
    rows = np.empty((n, 4 + d * elem.itemsize), dtype=np.uint8)
    rows[:, :4] = np.full((n, 1), d, dtype="<i4").view(np.uint8)
    rows[:, 4:] = array.view(np.uint8).reshape(n, -1)
    rows.tofile(path)


def read_fvecs(path: str) -> np.ndarray:
    return _read_xvecs(path, np.dtype("<f4"))


def read_ivecs(path: str) -> np.ndarray:
    return _read_xvecs(path, np.dtype("<i4"))


def read_bvecs(path: str) -> np.ndarray:
    return _read_xvecs(path, np.dtype(np.uint8))


def write_fvecs(path: str, array: np.ndarray) -> None:
    _write_xvecs(path, array, np.dtype("<f4"))


def write_ivecs(path: str, array: np.ndarray) -> None:
    _write_xvecs(path, array, np.dtype("<i4"))


def write_bvecs(path: str, array: np.ndarray) -> None:
    _write_xvecs(path, array, np.dtype(np.uint8))


def read_vectors(path: str) -> np.ndarray:
    """Any supported vector file as a float32 matrix."""
    if path.endswith(".fvecs"):
        a = read_fvecs(path)
    elif path.endswith(".bvecs"):
        a = read_bvecs(path)
    elif path.endswith(".ivecs"):
        a = read_ivecs(path)
    elif path.endswith(".npy"):
        a = np.load(path, mmap_mode="r")
        if a.ndim != 2:
            raise ValueError(f"{path}: expected a 2-D array, got shape {a.shape}")
    else:
        raise ValueError(f"{path}: unknown vector file type (want .fvecs, .bvecs, .ivecs or .npy)")
    return np.ascontiguousarray(a, dtype=np.float32)


# --- data sets ------------------------------------------------------------------

@dataclass
class Dataset:
    name: str                      # short name for reports: fashion-mnist, clustered-10000x128, ...
    key: str                       # cache folder name
    base: np.ndarray               # float32, n x d
    queries: np.ndarray            # float32, q x d (all available; callers take a prefix)
    labels: Optional[np.ndarray] = None   # int per base row, or None
    label_names: list = field(default_factory=list)
    query_labels: Optional[np.ndarray] = None

    @property
    def dims(self) -> int:
        return int(self.base.shape[1])

    @property
    def cache_dir(self) -> str:
        d = os.path.join(cache_root(), self.key)
        os.makedirs(d, exist_ok=True)
        return d

    def subset(self, n: Optional[int]) -> "Dataset":
        """The first n base rows (same queries); ground truth is cached per n."""
        if n is None or n >= len(self.base):
            return self
        labels = None if self.labels is None else self.labels[:n]
        return Dataset(self.name, self.key, self.base[:n], self.queries, labels, self.label_names,
                       self.query_labels)

    def categories(self) -> tuple:
        """(category, category100) per base row: 10 classes (about 10 % each) and
        100 classes (about 1 % each), nested so category100 // 10 == category.
        Labelled sets use their labels when there are exactly 10 classes;
        others get a fixed pseudo-random assignment."""
        n = len(self.base)
        if self.labels is not None and len(np.unique(self.labels)) == 10:
            cat = self.labels.astype(np.int32)
        else:
            cat = np.random.default_rng(7).integers(0, 10, n).astype(np.int32)
        sub = np.random.default_rng(11).integers(0, 10, n).astype(np.int32)
        return cat, cat * 10 + sub


def fashion_mnist() -> Dataset:
    d = os.path.join(cache_root(), "fashion-mnist")
    os.makedirs(d, exist_ok=True)
    files = {"base": "train-images-idx3-ubyte.gz", "queries": "t10k-images-idx3-ubyte.gz",
             "labels": "train-labels-idx1-ubyte.gz", "query_labels": "t10k-labels-idx1-ubyte.gz"}
    out = {}
    for name, src in files.items():
        cached = os.path.join(d, name + ".npy")
        if not os.path.exists(cached):
            path = os.path.join(os.environ.get("LIBRAVDB_FASHION_MNIST", FASHION_MNIST_DIR), src)
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path} not found: install Debian's dataset-fashion-mnist "
                                        "(scripts/install-deps.sh does) or set LIBRAVDB_FASHION_MNIST")
            log(f"converting {path} -> {cached}")
            raw = read_idx(path)
            arr = raw.reshape(raw.shape[0], -1).astype(np.float32) if raw.ndim == 3 else raw.astype(np.int32)
            _save_atomic(cached, arr)
        out[name] = np.load(cached)
    return Dataset("fashion-mnist", "fashion-mnist", out["base"], out["queries"], out["labels"],
                   FASHION_MNIST_LABELS, out["query_labels"])


def clustered(n: int, dims: int, n_queries: int = 10000) -> Dataset:
    """n points in dims dimensions around sqrt(n)/2 Gaussian centres (fixed seed).
    Queries are drawn from the same mixture with another seed; labels are the
    cluster ids."""
    key = f"clustered-{n}x{dims}"
    d = os.path.join(cache_root(), key)
    os.makedirs(d, exist_ok=True)
    paths = [os.path.join(d, f + ".npy") for f in ("base", "queries", "labels")]
    if not all(os.path.exists(p) for p in paths):
        log(f"generating {key} (seed {CLUSTERED_SEED})")
        rng = np.random.default_rng(CLUSTERED_SEED)
        n_clusters = max(8, int(np.sqrt(n) / 2))
        centres = rng.normal(0.0, 1.0, (n_clusters, dims)).astype(np.float32)
        spread = rng.uniform(0.15, 0.45, n_clusters).astype(np.float32)

        def draw(count: int, gen: np.random.Generator) -> tuple:
            labels = gen.integers(0, n_clusters, count)
            out = np.empty((count, dims), dtype=np.float32)
            for lo in range(0, count, 65536):   # bounded temporaries for 1M rows
                hi = min(count, lo + 65536)
                lab = labels[lo:hi]
                noise = gen.standard_normal((hi - lo, dims), dtype=np.float32)
                out[lo:hi] = centres[lab] + noise * spread[lab, None]
            return out, labels.astype(np.int32)

        base, labels = draw(n, rng)
        queries, _ = draw(n_queries, np.random.default_rng(CLUSTERED_SEED + 1))
        for p, a in zip(paths, (base, queries, labels)):
            _save_atomic(p, a)
    base, queries, labels = (np.load(p) for p in paths)
    return Dataset(f"clustered-{n}x{dims}", key, base, queries, labels)


def from_path(path: str, n_holdout: int = 1000) -> Dataset:
    path = os.path.abspath(path)
    st = os.stat(path)
    digest = hashlib.sha1(f"{path}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:10]
    stem = os.path.splitext(os.path.basename(path))[0]
    base = read_vectors(path)
    qpath = None
    for a, b in (("_base.", "_query."), ("base.", "query."), ("base.", "queries.")):
        cand = os.path.join(os.path.dirname(path), os.path.basename(path).replace(a, b, 1))
        if a in os.path.basename(path) and os.path.exists(cand):
            qpath = cand
            break
    if qpath:
        queries = read_vectors(qpath)
        if queries.shape[1] != base.shape[1]:
            raise ValueError(f"{qpath} has {queries.shape[1]} dimensions, {path} has {base.shape[1]}")
    else:
        # No query file: hold out the last rows, so queries are not in the base.
        n_holdout = min(n_holdout, max(1, len(base) // 10))
        base, queries = base[:-n_holdout], base[-n_holdout:]
        log(f"{path}: no query file beside it; holding out the last {n_holdout} rows as queries")
    return Dataset(stem, f"file-{stem}-{digest}", base, queries)


def load(spec: str) -> Dataset:
    """fashion-mnist | clustered:N:D | PATH."""
    if spec == "fashion-mnist":
        return fashion_mnist()
    if spec.startswith("clustered:"):
        parts = spec.split(":")
        if len(parts) != 3:
            raise ValueError("clustered data sets are written clustered:N:D, e.g. clustered:100000:128")
        return clustered(parse_count(parts[1]), int(parts[2]))
    if os.path.exists(spec):
        return from_path(spec)
    raise ValueError(f"unknown data set {spec!r}: want fashion-mnist, clustered:N:D or a file path")


def parse_count(s: str) -> int:
    s = s.lower()
    mult = {"k": 1000, "m": 1000000}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


# --- exact ground truth -------------------------------------------------------------

def _prepare(x: np.ndarray, metric: str) -> np.ndarray:
    x = x.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(norms > 0, x / np.where(norms > 0, norms, 1), np.nan)
    return x


def pairwise_distances(queries: np.ndarray, base: np.ndarray, metric: str) -> np.ndarray:
    """Distances as the server defines them, in float64: L2 (not squared), the
    negative inner product, 1 - cosine similarity. A zero vector has no cosine
    distance; it is +inf here, so it sorts last as NaN does in SQL."""
    q, b = _prepare(queries, metric), _prepare(base, metric)
    if metric == "l2":
        d2 = (q * q).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (q @ b.T)
        return np.sqrt(np.maximum(d2, 0.0))
    if metric == "ip":
        return -(q @ b.T)
    if metric == "cosine":
        d = 1.0 - q @ b.T
        return np.where(np.isnan(d), np.inf, d)
    raise ValueError(f"unknown metric {metric!r}")


def distances_to(query: np.ndarray, rows: np.ndarray, metric: str) -> np.ndarray:
    """Distances from one query to a few rows, computed directly (no expansion),
    for checking returned results."""
    q = query.astype(np.float64)
    r = rows.astype(np.float64)
    if metric == "l2":
        return np.sqrt(((r - q) ** 2).sum(1))
    if metric == "ip":
        return -(r @ q)
    if metric == "cosine":
        qn, rn = np.linalg.norm(q), np.linalg.norm(r, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 1.0 - (r @ q) / (rn * qn)
        return np.where(np.isfinite(d), d, np.inf)
    raise ValueError(f"unknown metric {metric!r}")


def brute_force_topk(queries: np.ndarray, base: np.ndarray, metric: str, k: int = GT_K,
                     budget_bytes: int = 256 << 20, progress_log=None) -> tuple:
    """Exact top-k (ids, distances), sorted by distance then id. Works in blocks
    of queries x base rows so the float64 distance block stays under
    budget_bytes whatever the data set size. With progress_log, a long
    computation reports the blocks done every few seconds."""
    nq, n = len(queries), len(base)
    k = min(k, n)
    # A float64 copy of a base block and the queries x base distance block
    # each stay within the budget.
    dims = base.shape[1] if base.ndim == 2 else 1
    base_block = max(1, min(n, budget_bytes // (8 * max(dims, 64))))
    query_block = max(1, min(nq, budget_bytes // (8 * base_block)))
    ids = np.empty((nq, k), dtype=np.int64)
    dists = np.empty((nq, k), dtype=np.float64)
    steps = -(-nq // query_block) * -(-n // base_block)
    prog = progress.LoopProgress(steps, progress_log, what="ground truth blocks") if progress_log else None
    step = 0
    for q0 in range(0, nq, query_block):
        q1 = min(nq, q0 + query_block)
        best_d = np.full((q1 - q0, 0), np.inf)
        best_i = np.zeros((q1 - q0, 0), dtype=np.int64)
        for b0 in range(0, n, base_block):
            b1 = min(n, b0 + base_block)
            d = pairwise_distances(queries[q0:q1], base[b0:b1], metric)
            cand_d = np.concatenate([best_d, d], axis=1)
            cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(b0, b1), d.shape)], axis=1)
            if cand_d.shape[1] > k:
                part = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
                cand_d = np.take_along_axis(cand_d, part, 1)
                cand_i = np.take_along_axis(cand_i, part, 1)
            best_d, best_i = cand_d, cand_i
            step += 1
            if prog:
                prog.tick(step)
        # Sort by distance, ties by id, so the output does not depend on blocking.
        order = np.lexsort((best_i, best_d), axis=1)
        ids[q0:q1] = np.take_along_axis(best_i, order, 1)
        dists[q0:q1] = np.take_along_axis(best_d, order, 1)
    return ids, dists


def ground_truth(ds: Dataset, metric: str, n_queries: int, k: int = GT_K) -> tuple:
    """Exact top-k ids and distances for the first n_queries queries, cached.
    A cached result for more queries (same base size) serves a smaller request."""
    n = len(ds.base)
    gt_dir = os.path.join(ds.cache_dir, "gt")
    os.makedirs(gt_dir, exist_ok=True)
    prefix = f"n{n}-{metric}-k{k}-q"
    best = None
    for f in os.listdir(gt_dir):
        # Filtered ground truth shares the folder (n...-q100-category-<digest>).
        if f.startswith(prefix) and f.endswith("-ids.npy") and f[len(prefix):-len("-ids.npy")].isdigit():
            q = int(f[len(prefix):-len("-ids.npy")])
            if q >= n_queries and (best is None or q < best):
                best = q
    if best is not None:
        stem = os.path.join(gt_dir, f"{prefix}{best}")
        return np.load(stem + "-ids.npy")[:n_queries], np.load(stem + "-dist.npy")[:n_queries]
    log(f"computing exact ground truth: {metric}, {n_queries} queries x {n} rows")
    ids, dists = brute_force_topk(ds.queries[:n_queries], ds.base, metric, k, progress_log=log)
    stem = os.path.join(gt_dir, f"{prefix}{n_queries}")
    _save_atomic(stem + "-dist.npy", dists)
    _save_atomic(stem + "-ids.npy", ids)
    return ids, dists


def filtered_ground_truth(ds: Dataset, metric: str, n_queries: int, column: str,
                          row_values: np.ndarray, query_values: np.ndarray, k: int = GT_K) -> tuple:
    """Exact top-k among the rows whose row_values equal the query's value
    (WHERE column = value), cached like ground_truth(). Missing places (fewer
    than k matching rows) hold id -1 and distance +inf."""
    n = len(ds.base)
    digest = hashlib.sha1(np.ascontiguousarray(query_values[:n_queries]).tobytes()
                          + np.ascontiguousarray(row_values).tobytes()).hexdigest()[:10]
    stem = os.path.join(ds.cache_dir, "gt", f"n{n}-{metric}-k{k}-q{n_queries}-{column}-{digest}")
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    if os.path.exists(stem + "-ids.npy"):
        return np.load(stem + "-ids.npy"), np.load(stem + "-dist.npy")
    log(f"computing exact ground truth: {metric} with WHERE {column} = ..., {n_queries} queries")
    ids = np.full((n_queries, k), -1, dtype=np.int64)
    dists = np.full((n_queries, k), np.inf)
    qv = np.asarray(query_values[:n_queries])
    for value in np.unique(qv):
        qs = np.nonzero(qv == value)[0]
        rows = np.nonzero(row_values == value)[0]
        if len(rows) == 0:
            continue
        i, d = brute_force_topk(ds.queries[qs], ds.base[rows], metric, k)
        ids[qs, :i.shape[1]] = rows[i]
        dists[qs, :d.shape[1]] = d
    _save_atomic(stem + "-dist.npy", dists)
    _save_atomic(stem + "-ids.npy", ids)
    return ids, dists
