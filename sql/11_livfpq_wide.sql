-- livfpq on wide vectors: 3,072 dimensions (codes of 384 bytes: 768 4-bit or
-- 384 8-bit sub-spaces) with recall against exact search, and the
-- 16,000-dimension limit.
SET max_parallel_maintenance_workers = 0;  -- one build thread: the same training every run
CREATE TABLE lw (id int PRIMARY KEY, v lvector(3072));
-- 40 directions, 25 rows around each.
INSERT INTO lw
SELECT i, (SELECT array_agg((sin((i % 40) * 1.7 + j * 0.013 * (1 + (i % 40) % 5)) + 0.15 * sin(i * 7.1 + j * 0.9))::real)
           FROM generate_series(1, 3072) j)::lvector(3072)
FROM generate_series(1, 1000) i;
CREATE TABLE lw_q AS
SELECT k, (SELECT array_agg((sin((k % 40) * 1.7 + j * 0.013 * (1 + (k % 40) % 5)) + 0.15 * sin(k * 3.3 + j * 0.5))::real)
           FROM generate_series(1, 3072) j)::lvector(3072) AS v
FROM generate_series(1, 12) k;
SET enable_indexscan = off;
CREATE TABLE lw_exact AS
SELECT q.k, w.id FROM lw_q q, LATERAL (SELECT id FROM lw ORDER BY v <-> q.v LIMIT 10) w;
RESET enable_indexscan;
SET enable_seqscan = off;

CREATE INDEX lw_4 ON lw USING livfpq (v lvector_l2_ops) WITH (lists = 20);
SELECT libravdb_index_info('lw_4')->>'code_bytes' AS code_bytes, libravdb_index_check('lw_4')->>'ok' AS ok;
EXPLAIN (COSTS OFF) SELECT id FROM lw ORDER BY v <-> (SELECT v FROM lw_q WHERE k = 1) LIMIT 10;
-- recall@10 over 12 queries at the defaults
SELECT count(*) >= 0.9 * 120 AS recall_ok
FROM (SELECT q.k, w.id FROM lw_q q, LATERAL (SELECT id FROM lw ORDER BY v <-> q.v LIMIT 10) w) r
JOIN lw_exact e USING (k, id);
-- distances are exact, in order
SELECT bool_and(d_ok) AS exact_distances FROM (
  SELECT w.d = (SELECT x.v <-> q.v FROM lw x WHERE x.id = w.id) AS d_ok
  FROM lw_q q, LATERAL (SELECT id, v <-> q.v AS d FROM lw ORDER BY v <-> q.v LIMIT 10) w) s;
DROP INDEX lw_4;

CREATE INDEX lw_8 ON lw USING livfpq (v lvector_cosine_ops) WITH (lists = 20, pq_bits = 8);
SELECT libravdb_index_info('lw_8')->>'code_bytes' AS code_bytes;
SET enable_seqscan = on;
SET enable_indexscan = off;
CREATE TABLE lw_exact_cos AS
SELECT q.k, w.id FROM lw_q q, LATERAL (SELECT id FROM lw ORDER BY v <=> q.v LIMIT 10) w;
RESET enable_indexscan;
SET enable_seqscan = off;
SELECT count(*) >= 0.9 * 120 AS recall_ok
FROM (SELECT q.k, w.id FROM lw_q q, LATERAL (SELECT id FROM lw ORDER BY v <=> q.v LIMIT 10) w) r
JOIN lw_exact_cos e USING (k, id);
-- inserts after the build find their own vectors
INSERT INTO lw SELECT 1000 + k, v FROM lw_q WHERE k <= 3;
SELECT k, (SELECT id FROM lw ORDER BY v <=> q.v LIMIT 1) = 1000 + k AS found_itself FROM lw_q q WHERE k <= 3 ORDER BY k;
SELECT libravdb_index_check('lw_8')->>'ok' AS ok;
DROP TABLE lw, lw_q, lw_exact, lw_exact_cos;

-- 16,000 dimensions: a code of 2,000 bytes, four entries a page.
CREATE TABLE lx (id int, v lvector(16000));
INSERT INTO lx SELECT i, (SELECT array_agg(sin(i * 0.37 + j * 0.011)::real) FROM generate_series(1, 16000) j)
FROM generate_series(1, 60) i;
CREATE INDEX lx_l2 ON lx USING livfpq (v lvector_l2_ops) WITH (lists = 4);
SELECT libravdb_index_info('lx_l2')->>'code_bytes' AS code_bytes, libravdb_index_check('lx_l2')->>'tuples' AS tuples;
SELECT array_agg(id) AS through_index FROM (SELECT id FROM lx ORDER BY v <-> (SELECT v FROM lx WHERE id = 17) LIMIT 3) s;
SET enable_seqscan = on;
SET enable_indexscan = off;
SELECT array_agg(id) AS exact FROM (SELECT id FROM lx ORDER BY v <-> (SELECT v FROM lx WHERE id = 17) LIMIT 3) s;
DROP TABLE lx;
