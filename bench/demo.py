#!/usr/bin/python3
"""The LibraVDB demo, run by scripts/demo.sh against a throwaway server (or any
server the PG* environment variables point at).

Loads Fashion-MNIST (60000 images of 28x28 pixels, one 784-dimension vector
each) into a table with an lvector column, then runs k-nearest-neighbour
queries with test images the table has never seen: L2, cosine, inner product,
one with a WHERE filter, an EXPLAIN ANALYZE, and the same query through an
lflat index, through an lhnsw (HNSW) index and through a livfpq (IVF-PQ) index
when the server has them.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
import psycopg.sql  # noqa: E402

import datasets  # noqa: E402
import pgload  # noqa: E402

SHADES = " .:-=+*#%@"


def say(msg: str = "") -> None:
    print(msg, flush=True)


def thumbnail(v: np.ndarray) -> list:
    """A 14x14 text picture of a 28x28 image (2x2 pixels per character)."""
    img = v.reshape(28, 28).reshape(14, 2, 14, 2).mean(axis=(1, 3))
    return ["".join(SHADES[min(9, int(p / 25.6))] * 2 for p in row) for row in img]


def show_side_by_side(pictures: list, captions: list) -> None:
    width = 28
    say("   ".join(c[:width].ljust(width) for c in captions))
    for rows in zip(*pictures):
        say("   ".join(rows))


def timed(conn, sql: str, params: tuple) -> tuple:
    t0 = time.perf_counter()
    rows = conn.execute(sql, params, prepare=True).fetchall()
    return rows, (time.perf_counter() - t0) * 1e3


def explain_sql(template: str, vector: str):
    # EXECUTE's arguments under EXPLAIN take no bind parameters: quote a literal.
    return psycopg.sql.SQL(template.replace("%s", "{}")).format(psycopg.sql.Literal(vector))


def knn(conn, ds, title: str, sql: str, params: tuple, qlabel: int) -> list:
    say(f"-- {title}")
    say("   " + sql.replace("%s", "$1", 1).replace("%s", "$2", 1).replace("%s", "$3", 1))
    timed(conn, sql, params)                       # first run warms the cache
    rows, ms = timed(conn, sql, params)
    say(f"   {'id':>6}  {'category':<12} distance")
    for r in rows:
        say(f"   {r[0]:>6}  {ds.label_names[r[1]]:<12} {r[2]:.4f}" if abs(r[2]) < 1e4 else
            f"   {r[0]:>6}  {ds.label_names[r[1]]:<12} {r[2]:.0f}")
    same = sum(1 for r in rows if r[1] == qlabel)
    say(f"   {len(rows)} rows in {ms:.1f} ms; {same} of {len(rows)} share the query's category "
        f"({ds.label_names[qlabel]})")
    say()
    return rows


def main() -> int:
    say("== loading Fashion-MNIST")
    ds = datasets.fashion_mnist()
    n, d = ds.base.shape
    say(f"   {n} training images of {d} pixels as the table, {len(ds.queries)} test images as queries")

    conn = psycopg.connect("", autocommit=True)
    conn.execute("SET client_min_messages = warning")
    conn.execute("CREATE EXTENSION IF NOT EXISTS libravdb")
    version, simd = conn.execute("SELECT extversion, libravdb_simd_level() FROM pg_extension "
                                 "WHERE extname = 'libravdb'").fetchone()
    say(f"   {conn.execute('SHOW server_version').fetchone()[0].split()[0]} with libravdb {version} "
        f"(distance kernels: {simd})")

    say("\n== CREATE TABLE items (id int PRIMARY KEY, category int, category100 int, embedding lvector(784))")
    pgload.create_items_table(conn, "items", "lvector", d)
    cat, cat100 = ds.categories()
    conn.execute("CREATE TABLE categories (id int PRIMARY KEY, name text)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO categories VALUES (%s, %s)", list(enumerate(ds.label_names)))
    say("   COPY items FROM STDIN (FORMAT BINARY)")
    load = pgload.copy_items(conn, "items", np.arange(n, dtype=np.int32), cat, cat100, ds.base,
                             progress=lambda m: say("   " + m.strip()))
    st = pgload.storage_stats(conn, "items")
    say(f"   {n} rows in {load['copy_s']:.1f} s ({load['rows_per_s']:.0f} rows/s), primary key and "
        f"VACUUM ANALYZE included {load['load_s']:.1f} s; table {st['heap_bytes'] / 2**20:.0f} MB, "
        f"{st['avg_stored_vector_bytes']:.0f} bytes a vector, "
        f"{st['compressed_rows']} compressed ({st['reloptions'] or 'no table options'})")

    # Queries are test images, never in the table: the first boot, bag and shirt.
    ql = ds.query_labels
    q_boot, q_bag, q_shirt = (int(np.nonzero(ql == ds.label_names.index(name))[0][0])
                              for name in ("Ankle boot", "Bag", "Shirt"))
    q = {i: pgload.vector_text(ds.queries[i]) for i in (q_boot, q_bag, q_shirt)}

    say("\n== k-nearest neighbours of test images (not in the table)\n")
    rows = knn(conn, ds, f"L2 (<->): the 5 nearest images to test image {q_boot} ({ds.label_names[ql[q_boot]]})",
               "SELECT id, category, embedding <-> %s AS distance FROM items ORDER BY embedding <-> %s LIMIT 5",
               (q[q_boot], q[q_boot]), ql[q_boot])
    show_side_by_side([thumbnail(ds.queries[q_boot])] + [thumbnail(ds.base[r[0]]) for r in rows[:3]],
                      ["query"] + [f"id {r[0]}" for r in rows[:3]])
    say()
    knn(conn, ds, f"cosine (<=>): test image {q_shirt} ({ds.label_names[ql[q_shirt]]})",
        "SELECT id, category, embedding <=> %s AS distance FROM items ORDER BY embedding <=> %s LIMIT 5",
        (q[q_shirt], q[q_shirt]), ql[q_shirt])
    knn(conn, ds, f"inner product (<#>, negated so smaller is closer): test image {q_bag} "
                  f"({ds.label_names[ql[q_bag]]})",
        "SELECT id, category, embedding <#> %s AS distance FROM items ORDER BY embedding <#> %s LIMIT 5",
        (q[q_bag], q[q_bag]), ql[q_bag])
    bag = ds.label_names.index("Bag")
    knn(conn, ds, f"filtered: the bags most like test image {q_boot} ({ds.label_names[ql[q_boot]]})",
        "SELECT id, category, embedding <-> %s AS distance FROM items WHERE category = %s "
        "ORDER BY embedding <-> %s LIMIT 5", (q[q_boot], bag, q[q_boot]), ql[q_boot])

    say("-- with names, from a join:")
    sql = ("SELECT c.name, count(*) FROM (SELECT category FROM items ORDER BY embedding <-> %s LIMIT 50) nn "
           "JOIN categories c ON c.id = nn.category GROUP BY c.name ORDER BY count(*) DESC")
    say("   " + sql.replace("%s", "$1"))
    for name, count in conn.execute(sql, (q[q_shirt],)).fetchall():
        say(f"   {name:<12} {count}")
    say()

    # A generic plan shows $1 instead of 784 numbers.
    conn.execute("PREPARE knn(lvector) AS SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 10")
    conn.execute("SET plan_cache_mode = force_generic_plan")
    explain = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE knn(%s)"
    say("== PREPARE knn(lvector) AS SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 10;")
    say("   " + explain.replace("%s", "'[...]'") + "   -- exact search: a sequential scan")
    for (line,) in conn.execute(explain_sql(explain, q[q_boot])).fetchall():
        say("   " + line)

    if conn.execute("SELECT 1 FROM pg_am WHERE amname = 'lflat'").fetchone():
        say("\n== CREATE INDEX ON items USING lflat (embedding lvector_l2_ops)   -- exact, vectors packed in pages")
        t0 = time.perf_counter()
        conn.execute("CREATE INDEX items_embedding_lflat ON items USING lflat (embedding lvector_l2_ops)")
        say(f"   built in {time.perf_counter() - t0:.1f} s, "
            f"{conn.execute('SELECT pg_relation_size(%s::regclass)', ('items_embedding_lflat',)).fetchone()[0] / 2**20:.0f} MB")
        conn.execute("ANALYZE items")
        knn(conn, ds, "the same L2 query, now through the index (same answer)",
            "SELECT id, category, embedding <-> %s AS distance FROM items ORDER BY embedding <-> %s LIMIT 5",
            (q[q_boot], q[q_boot]), ql[q_boot])
        say("   " + explain.replace("%s", "'[...]'"))
        for (line,) in conn.execute(explain_sql(explain, q[q_boot])).fetchall():
            say("   " + line)

    if conn.execute("SELECT 1 FROM pg_am WHERE amname = 'lhnsw'").fetchone():
        conn.execute("DROP INDEX IF EXISTS items_embedding_lflat")
        say("\n== CREATE INDEX ON items USING lhnsw (embedding lvector_l2_ops)   -- HNSW graph, approximate")
        t0 = time.perf_counter()
        conn.execute("CREATE INDEX items_embedding_lhnsw ON items USING lhnsw (embedding lvector_l2_ops)")
        say(f"   built in {time.perf_counter() - t0:.1f} s, "
            f"{conn.execute('SELECT pg_relation_size(%s::regclass)', ('items_embedding_lhnsw',)).fetchone()[0] / 2**20:.0f} MB; "
            f"{conn.execute('SELECT libravdb_index_info(%s::regclass)', ('items_embedding_lhnsw',)).fetchone()[0]}")
        conn.execute("ANALYZE items")
        knn(conn, ds, "the same L2 query through the graph (libravdb.hnsw_ef_search = 40)",
            "SELECT id, category, embedding <-> %s AS distance FROM items ORDER BY embedding <-> %s LIMIT 5",
            (q[q_boot], q[q_boot]), ql[q_boot])
        other = (int(ql[q_boot]) + 3) % 10
        knn(conn, ds, f"through the graph with a filter far from the query: WHERE category = {other} "
            f"({ds.label_names[other]}; the scan goes on until 5 rows match)",
            "SELECT id, category, embedding <-> %s AS distance FROM items WHERE category = %s "
            "ORDER BY embedding <-> %s LIMIT 5",
            (q[q_boot], other, q[q_boot]), ql[q_boot])
        conn.execute("DEALLOCATE ALL")
        conn.execute("PREPARE knn(lvector) AS SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 10")
        say("   " + explain.replace("%s", "'[...]'"))
        for (line,) in conn.execute(explain_sql(explain, q[q_boot])).fetchall():
            say("   " + line)

    if conn.execute("SELECT 1 FROM pg_am WHERE amname = 'livfpq'").fetchone():
        conn.execute("DROP INDEX IF EXISTS items_embedding_lflat")
        conn.execute("DROP INDEX IF EXISTS items_embedding_lhnsw")
        say("\n== CREATE INDEX ON items USING livfpq (embedding lvector_l2_ops)   -- IVF-PQ, small, re-ranked exactly")
        t0 = time.perf_counter()
        conn.execute("CREATE INDEX items_embedding_livfpq ON items USING livfpq (embedding lvector_l2_ops)")
        say(f"   built in {time.perf_counter() - t0:.1f} s, "
            f"{conn.execute('SELECT pg_relation_size(%s::regclass)', ('items_embedding_livfpq',)).fetchone()[0] / 2**20:.1f} MB; "
            f"{conn.execute('SELECT libravdb_index_info(%s::regclass)', ('items_embedding_livfpq',)).fetchone()[0]}")
        conn.execute("ANALYZE items")
        knn(conn, ds, "the same L2 query through the inverted lists (libravdb.ivfpq_probes = 10, ivfpq_rerank = 100)",
            "SELECT id, category, embedding <-> %s AS distance FROM items ORDER BY embedding <-> %s LIMIT 5",
            (q[q_boot], q[q_boot]), ql[q_boot])
        other = (int(ql[q_boot]) + 3) % 10
        knn(conn, ds, f"through the lists with a filter far from the query: WHERE category = {other} "
            f"({ds.label_names[other]}; the scan probes further lists until 5 rows match)",
            "SELECT id, category, embedding <-> %s AS distance FROM items WHERE category = %s "
            "ORDER BY embedding <-> %s LIMIT 5",
            (q[q_boot], other, q[q_boot]), ql[q_boot])
        conn.execute("DEALLOCATE ALL")
        conn.execute("PREPARE knn(lvector) AS SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 10")
        say("   " + explain.replace("%s", "'[...]'"))
        for (line,) in conn.execute(explain_sql(explain, q[q_boot])).fetchall():
            say("   " + line)

    conn.execute("DROP TABLE items, categories")
    return 0


if __name__ == "__main__":
    sys.exit(main())
