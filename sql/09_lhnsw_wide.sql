-- lhnsw on wide vectors: 3,072 dimensions (slots span pages; pgvector's HNSW
-- stops at 2,000) with recall against exact search for every quantizer, and
-- the 16,000-dimension limit.
SET max_parallel_maintenance_workers = 0;  -- one build thread: the same graph every run
CREATE TABLE wide (id int PRIMARY KEY, v lvector(3072));
-- 40 directions, 25 rows around each.
INSERT INTO wide
SELECT i, (SELECT array_agg((sin((i % 40) * 1.7 + j * 0.013 * (1 + (i % 40) % 5)) + 0.15 * sin(i * 7.1 + j * 0.9))::real)
           FROM generate_series(1, 3072) j)::lvector(3072)
FROM generate_series(1, 1000) i;
CREATE TABLE wide_q AS
SELECT k, (SELECT array_agg((sin((k % 40) * 1.7 + j * 0.013 * (1 + (k % 40) % 5)) + 0.15 * sin(k * 3.3 + j * 0.5))::real)
           FROM generate_series(1, 3072) j)::lvector(3072) AS v
FROM generate_series(1, 12) k;
SET enable_indexscan = off;
CREATE TABLE wide_exact AS
SELECT q.k, w.id FROM wide_q q, LATERAL (SELECT id FROM wide ORDER BY v <-> q.v LIMIT 10) w;
RESET enable_indexscan;
SET enable_seqscan = off;

CREATE INDEX wide_none ON wide USING lhnsw (v lvector_l2_ops);
SELECT (libravdb_index_info('wide_none')->>'slot_bytes')::int > 8160 AS slot_spans_pages,
       libravdb_index_check('wide_none')->>'ok' AS ok;
EXPLAIN (COSTS OFF) SELECT id FROM wide ORDER BY v <-> (SELECT v FROM wide_q WHERE k = 1) LIMIT 10;
-- recall@10 over 12 queries
SELECT count(*) >= 0.9 * 120 AS recall_ok
FROM (SELECT q.k, w.id FROM wide_q q, LATERAL (SELECT id FROM wide ORDER BY v <-> q.v LIMIT 10) w) r
JOIN wide_exact e USING (k, id);
-- distances come back in exact order, equal to the operator's
SELECT bool_and(d_ok) AS exact_distances FROM (
  SELECT w.d = (SELECT x.v <-> q.v FROM wide x WHERE x.id = w.id) AS d_ok
  FROM wide_q q, LATERAL (SELECT id, v <-> q.v AS d FROM wide ORDER BY v <-> q.v LIMIT 10) w) s;
DROP INDEX wide_none;

CREATE INDEX wide_fp16 ON wide USING lhnsw (v lvector_l2_ops) WITH (quantizer = 'fp16');
SELECT count(*) >= 0.9 * 120 AS recall_ok
FROM (SELECT q.k, w.id FROM wide_q q, LATERAL (SELECT id FROM wide ORDER BY v <-> q.v LIMIT 10) w) r
JOIN wide_exact e USING (k, id);
DROP INDEX wide_fp16;

CREATE INDEX wide_sq8 ON wide USING lhnsw (v lvector_l2_ops) WITH (quantizer = 'sq8');
SELECT (libravdb_index_info('wide_sq8')->>'slot_bytes')::int AS sq8_slot_bytes;
SELECT count(*) >= 0.9 * 120 AS recall_ok
FROM (SELECT q.k, w.id FROM wide_q q, LATERAL (SELECT id FROM wide ORDER BY v <-> q.v LIMIT 10) w) r
JOIN wide_exact e USING (k, id);
-- inserts after the build find their own vectors
INSERT INTO wide SELECT 1000 + k, v FROM wide_q WHERE k <= 3;
SELECT k, (SELECT id FROM wide ORDER BY v <-> q.v LIMIT 1) = 1000 + k AS found_itself FROM wide_q q WHERE k <= 3 ORDER BY k;
SELECT libravdb_index_check('wide_sq8')->>'ok' AS ok;
DROP TABLE wide, wide_q, wide_exact;

-- 16,000 dimensions, the lvector limit.
CREATE TABLE widest (id int PRIMARY KEY, v lvector(16000));
INSERT INTO widest SELECT i, (SELECT array_agg(sin(i * 0.5 + j * 0.001)::real) FROM generate_series(1, 16000) j) FROM generate_series(1, 60) i;
CREATE INDEX widest_idx ON widest USING lhnsw (v lvector_cosine_ops);
INSERT INTO widest SELECT 61, (SELECT array_agg(sin(61 * 0.5 + j * 0.001)::real) FROM generate_series(1, 16000) j);
SELECT id FROM widest ORDER BY v <=> (SELECT v FROM widest WHERE id = 61) LIMIT 3;
SET enable_indexscan = off;
SELECT id FROM widest ORDER BY v <=> (SELECT v FROM widest WHERE id = 61) LIMIT 3;
RESET enable_indexscan;
SELECT libravdb_index_check('widest_idx')->>'ok' AS ok, libravdb_index_info('widest_idx')->>'elements' AS elements;
DROP TABLE widest;
