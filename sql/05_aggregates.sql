-- avg and sum, serial and parallel.
SELECT avg(v), sum(v) FROM (VALUES ('[1,2,3]'::lvector), ('[3,4,5]'), (NULL)) t(v);
SELECT avg(v), sum(v) FROM (VALUES (NULL::lvector)) t(v);
SELECT avg(v) FROM (SELECT NULL::lvector v WHERE false) t;
CREATE TABLE agg_t (g int, v lvector(3));
INSERT INTO agg_t SELECT i % 3, ARRAY[i, i * 2, -i]::real[] FROM generate_series(1, 30000) i;
SELECT g, avg(v), sum(v) FROM agg_t GROUP BY g ORDER BY g;
-- parallel plan with partial aggregation must give the same answer
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM agg_t;
SELECT avg(v), sum(v) FROM agg_t;
RESET ALL;
DROP TABLE agg_t;
