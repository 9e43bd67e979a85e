"""Loading vectors into Postgres with binary COPY, shared by the benchmark
harness and the demo.

Binary COPY sends every value in its type's binary receive format. For
lvector (and pgvector's vector, which uses the same layout) that is an int16
dimension count, an int16 that must be zero, then the float4 elements, all
big-endian. Rows are packed with one numpy structured array per chunk, so
loading 60000 x 784 takes seconds, not minutes.
"""

import struct
import sys
import time
from typing import Callable, Optional, Sequence

import numpy as np

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)


def encode_vector(v: Sequence[float]) -> bytes:
    """One vector in lvector's binary format (what lvector_send writes and
    lvector_recv reads)."""
    v = np.asarray(v, dtype=">f4")
    return struct.pack(">hh", len(v), 0) + v.tobytes()


def copy_row_dtype(n_int_columns: int, dims: int) -> np.dtype:
    fields = [("nfields", ">i2")]
    for c in range(n_int_columns):
        fields += [(f"len{c}", ">i4"), (f"int{c}", ">i4")]
    fields += [("veclen", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dims,))]
    return np.dtype(fields)   # packed: no alignment padding, as COPY wants


def encode_copy_rows(int_columns: Sequence[np.ndarray], vectors: np.ndarray) -> bytes:
    """Binary COPY tuples (no file header or trailer) for rows made of int4
    columns followed by one vector column."""
    n, dims = vectors.shape
    rows = np.empty(n, dtype=copy_row_dtype(len(int_columns), dims))
    rows["nfields"] = len(int_columns) + 1
    for c, col in enumerate(int_columns):
        if len(col) != n:
            raise ValueError("every column needs one value per vector")
        rows[f"len{c}"] = 4
        rows[f"int{c}"] = col
    rows["veclen"] = 4 + 4 * dims
    rows["dim"] = dims
    rows["unused"] = 0
    rows["vec"] = vectors
    return rows.tobytes()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def create_items_table(conn, table: str, type_name: str, dims: int, options: str = "",
                       storage: Optional[str] = None) -> None:
    """items-shaped table: id, category (10 classes), category100 (100 classes)
    and the vector. The primary key is added after loading (faster)."""
    with_clause = f" WITH ({options})" if options else ""
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int NOT NULL, category int, category100 int, "
                 f"embedding {type_name}({dims})){with_clause}")
    if storage:
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN embedding SET STORAGE {storage}")


def copy_items(conn, table: str, ids: np.ndarray, category: np.ndarray, category100: np.ndarray,
               vectors: np.ndarray, chunk_rows: int = 4096,
               progress: Callable[[str], None] = _log) -> dict:
    """Binary COPY of all rows, with a progress line about every 10 %, then the
    primary key, VACUUM (FREEZE, ANALYZE) so scans do not pay for hint bits.
    Returns timing and WAL figures."""
    n = len(vectors)
    lsn0 = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    t0 = time.perf_counter()
    next_report = max(1, n // 10)
    sent = 0
    with conn.cursor().copy(f"COPY {table} (id, category, category100, embedding) FROM STDIN "
                            "(FORMAT BINARY)") as cp:
        cp.write(COPY_HEADER)
        for lo in range(0, n, chunk_rows):
            hi = min(n, lo + chunk_rows)
            payload = encode_copy_rows([ids[lo:hi], category[lo:hi], category100[lo:hi]], vectors[lo:hi])
            cp.write(payload)
            sent += len(payload)
            if hi >= next_report or hi == n:
                el = time.perf_counter() - t0
                progress(f"  {table}: {hi}/{n} rows ({100 * hi // n} %), "
                         f"{sent / 1e6 / max(el, 1e-9):.0f} MB/s")
                next_report = hi + max(1, n // 10)
        cp.write(COPY_TRAILER)
    t_copy = time.perf_counter() - t0
    conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
    conn.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
    t_total = time.perf_counter() - t0
    wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (lsn0,)).fetchone()[0]
    return {"rows": n, "copy_s": t_copy, "load_s": t_total, "copy_bytes": sent,
            "rows_per_s": n / t_copy if t_copy > 0 else float("inf"), "wal_bytes": int(wal)}


def storage_stats(conn, table: str) -> dict:
    """Where the vectors ended up: heap and TOAST sizes, how many values are
    compressed (pglz/lz4) and their average stored size."""
    row = conn.execute(
        f"""SELECT pg_relation_size(c.oid),
                   coalesce(pg_relation_size(c.reltoastrelid), 0),
                   pg_total_relation_size(c.oid),
                   (SELECT count(*) FROM {table}),
                   (SELECT count(*) FROM {table} WHERE pg_column_compression(embedding) IS NOT NULL),
                   (SELECT avg(pg_column_size(embedding)) FROM {table}),
                   (SELECT string_agg(DISTINCT pg_column_compression(embedding), ',') FROM {table}),
                   array_to_string(c.reloptions, ', '),
                   (SELECT attstorage FROM pg_attribute WHERE attrelid = c.oid AND attname = 'embedding')
            FROM pg_class c WHERE c.oid = %s::regclass""", (table,)).fetchone()
    heap, toast, total, rows, compressed, avg_size, methods, reloptions, attstorage = row
    return {"heap_bytes": int(heap), "toast_bytes": int(toast), "total_bytes": int(total),
            "rows": int(rows), "compressed_rows": int(compressed),
            "compression": methods or "none",
            "avg_stored_vector_bytes": float(avg_size or 0),
            "heap_bytes_per_row": heap / rows if rows else 0.0,
            "reloptions": reloptions or "", "attstorage": {"p": "plain", "e": "external", "m": "main",
                                                           "x": "extended"}.get(attstorage, attstorage)}


def vector_text(v: np.ndarray) -> str:
    """Text form '[1,2.5,-3]' with 9 significant digits, which round-trips float4."""
    return "[" + ",".join(f"{float(x):.9g}" for x in v) + "]"
