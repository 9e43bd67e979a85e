-- lhnsw: on small tables the graph search finds the exact answer for every
-- opclass and quantizer, with and without filters; NULL and zero vectors;
-- writes after the build, VACUUM, maintenance, settings and errors.
--
-- One build thread, so the graph is the same on every run.
SET max_parallel_maintenance_workers = 0;
SET enable_seqscan = off;
SET enable_bitmapscan = off;

-- A 10x10x10 grid of points (the origin among them) and 1000 random 8-d rows.
CREATE TABLE hg (id int PRIMARY KEY, v lvector(3));
INSERT INTO hg SELECT x * 100 + y * 10 + z, ARRAY[x, y, z]::real[]
FROM generate_series(0, 9) x, generate_series(0, 9) y, generate_series(0, 9) z;
CREATE TABLE hr (id int PRIMARY KEY, cat int, v lvector(8));
SELECT setseed(0.5);
INSERT INTO hr SELECT i, i % 10, (SELECT array_agg(round((random() * 10 - 5)::numeric, 1)::real)
                                  FROM generate_series(1, 8) WHERE i > 0)
FROM generate_series(1, 1000) i;
CREATE TABLE hq AS SELECT i AS qid,
    (SELECT array_agg((random() * 10 - 5)::real) FROM generate_series(1, 8) WHERE i > 0)::lvector(8) AS q,
    (SELECT array_agg((random() * 11 - 1)::real) FROM generate_series(1, 3) WHERE i > 0)::lvector(3) AS q3
FROM generate_series(1, 10) i;

-- Distances of the k nearest rows of a table, in the order returned, through
-- the index or by a sequential scan and sort (fails unless the plan is the
-- one asked for). Distances rather than ids, so ties at the k-th place do
-- not matter.
CREATE FUNCTION knn(tab text, op text, q lvector, k int, filter text, use_index bool) RETURNS float8[]
LANGUAGE plpgsql AS $$
DECLARE r float8[]; sql text; plan text := ''; line text;
BEGIN
    EXECUTE format('SET LOCAL enable_indexscan = %s', use_index);
    EXECUTE format('SET LOCAL enable_seqscan = %s', NOT use_index);
    sql := format('SELECT array_agg(d) FROM (SELECT v %s $1 AS d FROM %I WHERE %s ORDER BY v %s $1 LIMIT %s) s',
                  op, tab, filter, op, k);
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || replace(sql, '$1', quote_literal(q::text) || '::lvector') LOOP
        plan := plan || line || E'\n';
    END LOOP;
    IF use_index <> (plan LIKE '%Index Scan using ' || tab || '_%') THEN
        RAISE EXCEPTION 'unexpected plan for %: %', sql, plan;
    END IF;
    EXECUTE sql INTO r USING q;
    IF coalesce(array_length(r, 1), 0) = 0 THEN
        RAISE EXCEPTION 'no rows for %', sql;
    END IF;
    RETURN r;
END $$;
-- Queries of hq whose index answer differs from the exact one.
CREATE FUNCTION mismatches(tab text, op text, k int, filter text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM hq
     WHERE knn(tab, op, CASE tab WHEN 'hg' THEN q3 ELSE q END, k, filter, true)
           IS DISTINCT FROM knn(tab, op, CASE tab WHEN 'hg' THEN q3 ELSE q END, k, filter, false)
$$;

-- "n rows, in order" for a query whose column d is a distance, in the order
-- the query returns its rows.
CREATE FUNCTION rows_in_order(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d float8; prev float8 := '-Infinity'; n int := 0; ordered bool := true;
BEGIN
    FOR d IN EXECUTE sql LOOP
        n := n + 1;
        IF d < prev THEN ordered := false; END IF;
        prev := d;
    END LOOP;
    RETURN n || ' rows, ' || CASE WHEN ordered THEN 'in order' ELSE 'OUT OF ORDER' END;
END $$;

-- The grid, L2: the plan, the answer, and the same rows as the exact search.
CREATE INDEX hg_l2 ON hg USING lhnsw (v lvector_l2_ops);
EXPLAIN (COSTS OFF) SELECT id FROM hg ORDER BY v <-> '[3.1,4.2,5.4]' LIMIT 5;
SELECT id, round((v <-> '[3.1,4.2,5.4]')::numeric, 4) AS d FROM hg ORDER BY v <-> '[3.1,4.2,5.4]' LIMIT 5;
-- ids, both ways: the index's top 10 and the exact top 10 hold the same rows
SET enable_indexscan = off;
SET enable_seqscan = on;
CREATE TEMP TABLE exact10 AS SELECT id FROM hg ORDER BY v <-> '[3.1,4.2,5.4]' LIMIT 10;
RESET enable_indexscan;
SET enable_seqscan = off;
SELECT count(*) AS differences FROM (
    (SELECT id FROM (SELECT id FROM hg ORDER BY v <-> '[3.1,4.2,5.4]' LIMIT 10) i EXCEPT SELECT id FROM exact10)
    UNION ALL
    (SELECT id FROM exact10 EXCEPT SELECT id FROM (SELECT id FROM hg ORDER BY v <-> '[3.1,4.2,5.4]' LIMIT 10) i)) s;
SELECT mismatches('hg', '<->', 10, 'true') AS l2, mismatches('hg', '<->', 30, 'true') AS l2_30,
       mismatches('hg', '<->', 1000, 'true') AS l2_all_rows;
SELECT j - 'average_degree' - 'bytes' - 'pages' AS info FROM libravdb_index_info('hg_l2') j;
SELECT libravdb_index_check('hg_l2');
DROP INDEX hg_l2;

-- Every opclass and quantizer: the exact distances in the exact order (with
-- fp16 and sq8 the executor rechecks them on the heap), with no filter, with
-- one that most rows pass and with one that passes one row in 7 (the scan
-- goes on searching). On the grid: L2, L1 and cosine (its many exact ties
-- at the k-th place make sq8's ranking there arbitrary); inner product has no
-- structure on a grid that a graph can follow.
-- With fp16 or sq8 a filter that throws rows away may lose some (a row found
-- in a later round below one already returned is skipped: recall, not
-- order), so "mod7" is compared on float32 vectors only. "sparse": a filter that 20 rows pass; LIMIT 10 gets
-- 10 rows, in order, for every query.
CREATE FUNCTION check_all() RETURNS TABLE (tab text, opclass text, quantizer text, plan_ok bool, plain bigint,
                                           filtered bigint, mod7 bigint, sparse text)
LANGUAGE plpgsql AS $$
DECLARE o record; qz text; t text; plan text; line text;
BEGIN
    FOREACH t IN ARRAY ARRAY['hg', 'hr'] LOOP
        FOR o IN SELECT * FROM (VALUES ('<->', 'lvector_l2_ops'), ('<#>', 'lvector_ip_ops'),
                                       ('<=>', 'lvector_cosine_ops'), ('<+>', 'lvector_l1_ops')) v(op, cls) LOOP
            CONTINUE WHEN t = 'hg' AND o.op = '<#>';
            FOREACH qz IN ARRAY ARRAY['none', 'fp16', 'sq8'] LOOP
                CONTINUE WHEN t = 'hg' AND o.op = '<=>' AND qz = 'sq8';
                EXECUTE format('DROP INDEX IF EXISTS %I', t || '_idx');
                EXECUTE format('CREATE INDEX %I ON %I USING lhnsw (v %s) WITH (quantizer = %L)',
                               t || '_idx', t, o.cls, qz);
                tab := t; opclass := o.cls; quantizer := qz;
                -- (knn's SET LOCALs last until the end of the transaction)
                SET LOCAL enable_indexscan = on;
                SET LOCAL enable_seqscan = off;
                plan := '';
                FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) SELECT id FROM %I ORDER BY v %s %L LIMIT 10',
                                           t, o.op, (SELECT CASE t WHEN 'hg' THEN q3::text ELSE q::text END FROM hq LIMIT 1)) LOOP
                    plan := plan || line || E'\n';
                END LOOP;
                plan_ok := plan LIKE format('%%Index Scan using %s_idx on %s%%', t, t);
                plain := mismatches(t, o.op, 10, 'true');
                filtered := mismatches(t, o.op, 10, 'id % 10 <> 3');
                mod7 := CASE WHEN qz = 'none' THEN mismatches(t, o.op, 10, 'id % 7 = 3') END;
                IF t = 'hr' THEN
                    SET LOCAL enable_indexscan = on;
                    SET LOCAL enable_seqscan = off;
                    SELECT string_agg(DISTINCT r, '; ') INTO sparse FROM (
                        SELECT rows_in_order(format('SELECT v %s %L::lvector FROM hr WHERE id %% 50 = 0 ORDER BY v %s %L::lvector LIMIT 10',
                                                    o.op, q, o.op, q)) AS r FROM hq) s;
                END IF;
                RETURN NEXT;
            END LOOP;
        END LOOP;
        EXECUTE format('DROP INDEX %I', t || '_idx');
    END LOOP;
END $$;
SET client_min_messages = warning;
SELECT * FROM check_all();
RESET client_min_messages;

-- A filter that throws most rows away, float32 L2: the exact answer.
CREATE INDEX hr_l2 ON hr USING lhnsw (v lvector_l2_ops);
EXPLAIN (COSTS OFF) SELECT id FROM hr WHERE id % 50 = 0 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10;
SELECT mismatches('hr', '<->', 10, 'id % 50 = 0') AS sparse_l2;
-- fewer matching rows than LIMIT: every one of them
SELECT count(*) FROM (SELECT id FROM hr WHERE id % 500 = 0 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
-- no LIMIT: every row once, in order
SELECT rows_in_order($$SELECT v <-> '[1,1,1,1,1,1,1,1]' FROM hr ORDER BY v <-> '[1,1,1,1,1,1,1,1]'$$);
SELECT count(DISTINCT id) FROM (SELECT id FROM hr ORDER BY v <-> '[1,1,1,1,1,1,1,1]') s;

-- NULL vectors and, under cosine, zero vectors are indexed outside the
-- graph: after every other row, zero vectors (distance NaN) first, then NULLs.
CREATE TABLE hz (id int PRIMARY KEY, v lvector(2));
INSERT INTO hz VALUES (1, '[1,0]'), (2, '[0,1]'), (3, '[0,0]'), (4, NULL), (5, '[1,1]'), (6, '[-1,0.5]');
CREATE INDEX hz_cos ON hz USING lhnsw (v lvector_cosine_ops);
INSERT INTO hz VALUES (7, NULL), (8, '[0,0]'), (9, '[2,0.1]');
EXPLAIN (COSTS OFF) SELECT id FROM hz ORDER BY v <=> '[1,0.2]';
SELECT id, round((v <=> '[1,0.2]')::numeric, 4) AS d FROM hz ORDER BY v <=> '[1,0.2]';
SELECT id FROM hz ORDER BY v <=> '[1,0.2]' LIMIT 7;
SELECT libravdb_index_check('hz_cos');
SELECT (j->'elements', j->'nulls') AS elements_nulls FROM libravdb_index_info('hz_cos') j;
-- a NULL or zero query returns every row (in slot order: not compared)
SELECT count(*) FROM (SELECT id FROM hz ORDER BY v <=> NULL) s;
SELECT count(*) FROM (SELECT id FROM hz ORDER BY v <=> '[0,0]') s;
-- under L2 a zero vector is an ordinary point; NULLs still come last
CREATE INDEX hz_l2 ON hz USING lhnsw (v lvector_l2_ops);
SELECT id, round((v <-> '[0.1,0.1]')::numeric, 4) AS d FROM hz ORDER BY v <-> '[0.1,0.1]';
SELECT libravdb_index_check('hz_l2');
DROP INDEX hz_l2;

-- Writes after the build: inserts, updates, DELETE + VACUUM, and inserts
-- that reuse the freed slots.
INSERT INTO hr SELECT i, i % 10, ARRAY[i % 7, 1, 2, 3, 4, 5, 6, i % 5]::real[] FROM generate_series(1001, 1500) i;
INSERT INTO hr VALUES (1501, 1, NULL), (1502, 2, NULL);
UPDATE hr SET v = '[9,9,9,9,9,9,9,9]' WHERE id = 10;
SELECT id FROM hr ORDER BY v <-> '[9,9,9,9,9,9,9,9]' LIMIT 1;
SELECT mismatches('hr', '<->', 10, 'true') AS after_inserts;
SELECT libravdb_index_check('hr_l2');
DELETE FROM hr WHERE id % 3 = 0;
VACUUM hr;
SELECT libravdb_index_check('hr_l2');
SELECT count(*) FILTER (WHERE v IS NOT NULL) AS rows_with_vectors, count(*) FILTER (WHERE v IS NULL) AS null_rows
FROM hr;
SELECT (j->>'free_slots')::int > 0 AS has_free_slots, j->'deleted' AS deleted FROM libravdb_index_info('hr_l2') j;
SELECT mismatches('hr', '<->', 10, 'true') AS after_vacuum, mismatches('hr', '<->', 10, 'id % 7 = 3') AS mod7;
SELECT (libravdb_index_info('hr_l2')->>'slots')::int AS slots_before \gset
INSERT INTO hr SELECT i, i % 10, ARRAY[1, i % 3, 2, 3, 4, 5, 6, i % 11]::real[] FROM generate_series(2001, 2200) i;
SELECT (libravdb_index_info('hr_l2')->>'slots')::int = :slots_before AS slots_reused;
SELECT mismatches('hr', '<->', 10, 'true') AS after_reuse;
SELECT libravdb_index_check('hr_l2');

-- REINDEX and REINDEX CONCURRENTLY: fresh builds with no free slots
REINDEX INDEX hr_l2;
SELECT libravdb_index_check('hr_l2');
SELECT libravdb_index_info('hr_l2')->'free_slots' AS free_slots;
SELECT mismatches('hr', '<->', 10, 'true') AS after_reindex;
REINDEX INDEX CONCURRENTLY hr_l2;
SELECT libravdb_index_check('hr_l2');
SELECT mismatches('hr', '<->', 10, 'true') AS after_reindex_concurrently;

-- TRUNCATE empties the index; it takes rows again
CREATE TABLE ht (id int, v lvector(2));
CREATE INDEX ht_l1 ON ht USING lhnsw (v lvector_l1_ops);
SELECT id FROM ht ORDER BY v <+> '[0,0]' LIMIT 5;
INSERT INTO ht VALUES (1, '[1,1]'), (2, '[2,2]');
TRUNCATE ht;
SELECT libravdb_index_check('ht_l1');
INSERT INTO ht VALUES (3, '[3,3]'), (4, '[-1,0]'), (5, NULL);
SELECT id FROM ht ORDER BY v <+> '[0,0]' LIMIT 5;
SELECT libravdb_index_check('ht_l1');

-- unlogged tables (the index's init fork)
CREATE UNLOGGED TABLE hu (id int, v lvector(2));
CREATE INDEX hu_ip ON hu USING lhnsw (v lvector_ip_ops) WITH (quantizer = 'fp16');
INSERT INTO hu SELECT i, ARRAY[i, 10 - i]::real[] FROM generate_series(0, 10) i;
INSERT INTO hu VALUES (11, NULL);
SELECT id, v <#> '[1,2]' AS d FROM hu ORDER BY v <#> '[1,2]' LIMIT 3;
SELECT libravdb_index_check('hu_ip');

-- libravdb.hnsw_ef_search: a value SET in the session beats the index's
-- ef_search option, which beats the setting's default. The scan's first
-- round (ef_search nodes) is the cost estimate's startup cost, so EXPLAIN
-- shows which value a scan of each index would use.
CREATE FUNCTION startup_cost(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
    RETURN (j->0->'Plan'->'Plans'->0->>'Startup Cost')::float8;
END $$;
SHOW libravdb.hnsw_ef_search;
SHOW libravdb.hnsw_max_scan_tuples;
CREATE INDEX hr_ef10 ON hr USING lhnsw (v lvector_ip_ops) WITH (m = 8, ef_search = 10);
CREATE INDEX hr_default ON hr USING lhnsw (v lvector_l1_ops) WITH (m = 8);
SELECT startup_cost($$SELECT id FROM hr ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) AS c_ef10 \gset
SELECT startup_cost($$SELECT id FROM hr ORDER BY v <+> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) AS c_default \gset
SELECT :c_ef10 < :c_default AS option_beats_default;
SET libravdb.hnsw_ef_search = 40;
SELECT startup_cost($$SELECT id FROM hr ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) = :c_default AS session_beats_option;
SET libravdb.hnsw_ef_search = 10;
SELECT startup_cost($$SELECT id FROM hr ORDER BY v <+> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) = :c_ef10 AS session_applies;
RESET libravdb.hnsw_ef_search;
SELECT startup_cost($$SELECT id FROM hr ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) = :c_ef10 AS option_again_after_reset;
BEGIN;
SET LOCAL libravdb.hnsw_ef_search = 40;
SELECT startup_cost($$SELECT id FROM hr ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) = :c_default AS set_local_beats_option;
COMMIT;
SELECT startup_cost($$SELECT id FROM hr ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) = :c_ef10 AS option_after_commit;
-- ef_search 1 still yields rows for as long as the executor asks; a large
-- one finds the exact answer
SET libravdb.hnsw_ef_search = 1;
SELECT rows_in_order($$SELECT v <#> '[1,2,3,4,5,6,7,8]' FROM hr ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) AS ef1;
SELECT rows_in_order($$SELECT v <#> '[1,2,3,4,5,6,7,8]' FROM hr WHERE id % 7 = 3 ORDER BY v <#> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) AS ef1_filtered;
SET libravdb.hnsw_ef_search = 1000;
SELECT mismatches('hr', '<#>', 10, 'true') AS ef1000_ip;
RESET libravdb.hnsw_ef_search;
-- libravdb.hnsw_max_scan_tuples bounds the graph search; LIMIT 10 still gets
-- 10 rows in order at the smallest bound, and 0 is no bound
SET libravdb.hnsw_max_scan_tuples = 1;
SELECT rows_in_order($$SELECT v <+> '[1,2,3,4,5,6,7,8]' FROM hr ORDER BY v <+> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) AS max1;
SET libravdb.hnsw_max_scan_tuples = 0;
SELECT rows_in_order($$SELECT v <+> '[1,2,3,4,5,6,7,8]' FROM hr WHERE id % 7 = 3 ORDER BY v <+> '[1,2,3,4,5,6,7,8]' LIMIT 10$$) AS unbounded;
SELECT rows_in_order($$SELECT v <+> '[1,2,3,4,5,6,7,8]' FROM hr WHERE v IS NOT NULL ORDER BY v <+> '[1,2,3,4,5,6,7,8]'$$) LIKE '% rows, in order' AS no_limit_in_order;
-- (without LIMIT the scan need not return every row: one found late, below
-- the last one returned, is skipped; but none comes twice)
SELECT count(*) <= (SELECT count(*) FROM hr) AS no_more, count(*) = count(DISTINCT id) AS each_once
FROM (SELECT id FROM hr ORDER BY v <+> '[1,2,3,4,5,6,7,8]') s;
RESET libravdb.hnsw_max_scan_tuples;
DROP INDEX hr_ef10, hr_default;

-- errors
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (m = 1)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (m = 101)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (ef_construction = 2)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (ef_construction = 1001)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (ef_search = -1)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (ef_search = 1001)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (quantizer = 'bogus')$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (lists = 10)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops) WITH (m = 'x')$$);
CREATE TABLE h_nodim (v lvector);
SELECT pg_temp.err($$CREATE INDEX ON h_nodim USING lhnsw (v lvector_l2_ops)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (id)$$);
SELECT pg_temp.err($$CREATE INDEX ON hg USING lhnsw (v lvector_l2_ops, v lvector_l1_ops)$$);
SELECT pg_temp.err($$CREATE UNIQUE INDEX ON hg USING lhnsw (v lvector_l2_ops)$$);
-- the smallest and largest options build
CREATE INDEX hg_small ON hg USING lhnsw (v lvector_l2_ops) WITH (m = 2, ef_construction = 4, ef_search = 1);
CREATE INDEX hg_large ON hg USING lhnsw (v lvector_l1_ops) WITH (m = 100, ef_construction = 1000, ef_search = 1000);
SELECT libravdb_index_check('hg_small')->'ok' AS small_ok, libravdb_index_check('hg_large')->'ok' AS large_ok;
SELECT mismatches('hg', '<+>', 10, 'true') AS m100;
-- wrong dimensions on insert and in queries, NaN
SELECT pg_temp.err($$INSERT INTO hg VALUES (5000, '[1,2]')$$);
SELECT pg_temp.err($$INSERT INTO hg VALUES (5000, '[1,2,NaN]')$$);
SELECT pg_temp.err($$SELECT id FROM hg ORDER BY v <-> '[1,2]' LIMIT 1$$);
SELECT pg_temp.err($$SELECT id FROM hg ORDER BY v <+> '[1,2,3,4]' LIMIT 1$$);
SELECT pg_temp.err($$SELECT id FROM hg ORDER BY v <-> '[1,2,NaN]' LIMIT 1$$);
-- settings
SELECT pg_temp.err($$SET libravdb.hnsw_ef_search = 0$$);
SELECT pg_temp.err($$SET libravdb.hnsw_ef_search = 1001$$);
SELECT pg_temp.err($$SET libravdb.hnsw_max_scan_tuples = -1$$);
SELECT name, setting, min_val, max_val, context FROM pg_settings WHERE name LIKE 'libravdb.hnsw%' ORDER BY name;

DROP TABLE hg, hr, hq, hz, ht, hu, h_nodim, exact10;
DROP FUNCTION knn, mismatches, rows_in_order, check_all, startup_cost;
