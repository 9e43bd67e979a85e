-- lflat: exact results for every opclass and quantizer, filters, writes,
-- maintenance and errors.
SET enable_seqscan = off;
SET enable_bitmapscan = off;

CREATE TABLE fl (id int PRIMARY KEY, cat int, v lvector(8));
SELECT setseed(0.5);
INSERT INTO fl SELECT i, i % 10, (SELECT array_agg(round((random() * 10 - 5)::numeric, 1)::real)
                                  FROM generate_series(1, 8) WHERE i > 0)
FROM generate_series(1, 2000) i;
INSERT INTO fl VALUES (2001, 1, '[0,0,0,0,0,0,0,0]'), (2002, 2, NULL);
CREATE TABLE flq AS SELECT i AS qid, (SELECT array_agg((random() * 10 - 5)::real) FROM generate_series(1, 8) WHERE i > 0)::lvector(8) AS q
FROM generate_series(1, 10) i;

-- distances of the k nearest rows in the order returned, with or without the
-- index (fails unless the plan is the one asked for). Comparing distances
-- rather than ids keeps ties at the k-th place from mattering.
CREATE FUNCTION knn(op text, q lvector, k int, filter text, use_index bool) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE r float8[]; sql text; plan text := ''; line text;
BEGIN
    EXECUTE format('SET LOCAL enable_indexscan = %s', use_index);
    EXECUTE format('SET LOCAL enable_seqscan = %s', NOT use_index);
    sql := format('SELECT array_agg(d) FROM (SELECT v %s $1 AS d FROM fl WHERE %s ORDER BY v %s $1 LIMIT %s) s',
                  op, filter, op, k);
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || replace(sql, '$1', quote_literal(q::text) || '::lvector') LOOP
        plan := plan || line || E'\n';
    END LOOP;
    IF use_index <> (plan LIKE '%Index Scan using fl_%') THEN
        RAISE EXCEPTION 'unexpected plan for %: %', sql, plan;
    END IF;
    EXECUTE sql INTO r USING q;
    RETURN r;
END $$;
-- counts queries whose index answer differs from the sequential answer
CREATE FUNCTION mismatches(op text, k int, filter text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM flq WHERE knn(op, q, k, filter, true) IS DISTINCT FROM knn(op, q, k, filter, false)
$$;

CREATE INDEX fl_l2 ON fl USING lflat (v lvector_l2_ops);
EXPLAIN (COSTS OFF) SELECT id FROM fl ORDER BY v <-> '[1,2,3,4,5,6,7,8]' LIMIT 5;
SELECT id, round((v <-> '[1,2,3,4,5,6,7,8]')::numeric, 4) FROM fl ORDER BY v <-> '[1,2,3,4,5,6,7,8]' LIMIT 5;
SELECT mismatches('<->', 10, 'true') AS l2, mismatches('<->', 50, 'cat = 3') AS l2_filtered,
       mismatches('<->', 2100, 'true') AS l2_all_rows;
SELECT libravdb_index_info('fl_l2');

-- every opclass and quantizer: the same rows as a sequential scan, filtered or not
CREATE FUNCTION check_all() RETURNS TABLE (opclass text, quantizer text, plain bigint, filtered bigint, selective bigint)
LANGUAGE plpgsql AS $$
DECLARE o record; qz text;
BEGIN
    FOR o IN SELECT * FROM (VALUES ('<->', 'lvector_l2_ops'), ('<#>', 'lvector_ip_ops'),
                                   ('<=>', 'lvector_cosine_ops'), ('<+>', 'lvector_l1_ops')) t(op, cls) LOOP
        FOREACH qz IN ARRAY ARRAY['none', 'fp16', 'sq8'] LOOP
            EXECUTE 'DROP INDEX IF EXISTS fl_idx';
            EXECUTE format('CREATE INDEX fl_idx ON fl USING lflat (v %s) WITH (quantizer = %L)', o.cls, qz);
            opclass := o.cls; quantizer := qz;
            plain := mismatches(o.op, 10, 'true');
            filtered := mismatches(o.op, 10, 'cat <> 3');
            selective := mismatches(o.op, 10, 'id % 97 = 0');
            RETURN NEXT;
        END LOOP;
    END LOOP;
    EXECUTE 'DROP INDEX fl_idx';
END $$;
DROP INDEX fl_l2;
SELECT * FROM check_all();

-- a filter that leaves few rows still yields every matching row, in order
CREATE INDEX fl_sq8 ON fl USING lflat (v lvector_l2_ops) WITH (quantizer = sq8);
EXPLAIN (COSTS OFF) SELECT id FROM fl WHERE id % 500 = 0 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10;
SELECT count(*) FROM (SELECT id FROM fl WHERE id % 500 = 0 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
SELECT mismatches('<->', 10, 'id % 500 = 0') AS sparse_filter;

-- NULL query: every row comes back
SELECT count(*) FROM (SELECT id FROM fl ORDER BY v <-> NULL) s;

-- writes after build: insert, update, delete + vacuum (space is reused)
INSERT INTO fl SELECT i, i % 10, ARRAY[i % 7, 1, 2, 3, 4, 5, 6, i % 5]::real[] FROM generate_series(2003, 2500) i;
UPDATE fl SET v = '[9,9,9,9,9,9,9,9]' WHERE id = 10;
SELECT id FROM fl ORDER BY v <-> '[9,9,9,9,9,9,9,9]' LIMIT 1;
SELECT mismatches('<->', 10, 'true') AS after_inserts;
SELECT (libravdb_index_info('fl_sq8')->>'tuples')::int AS tuples_before_vacuum;
DELETE FROM fl WHERE id % 3 = 0;
VACUUM fl;
SELECT (libravdb_index_info('fl_sq8')->>'tuples')::int AS tuples, (libravdb_index_info('fl_sq8')->>'free_slots')::int > 0 AS has_free_slots;
SELECT mismatches('<->', 10, 'true') AS after_vacuum;
SELECT pg_relation_size('fl_sq8') AS size_before \gset
INSERT INTO fl SELECT i, i % 10, ARRAY[1, i % 3, 2, 3, 4, 5, 6, 7]::real[] FROM generate_series(3001, 3500) i;
SELECT pg_relation_size('fl_sq8') = :size_before AS space_reused;
SELECT mismatches('<->', 10, 'true') AS after_reuse;
SELECT libravdb_index_check('fl_sq8');

-- REINDEX and TRUNCATE
REINDEX INDEX fl_sq8;
SELECT mismatches('<->', 10, 'true') AS after_reindex;
CREATE TABLE fl_t (id int, v lvector(2));
CREATE INDEX ON fl_t USING lflat (v lvector_l2_ops);
INSERT INTO fl_t VALUES (1, '[1,1]'), (2, '[2,2]');
TRUNCATE fl_t;
INSERT INTO fl_t VALUES (3, '[3,3]');
SELECT id FROM fl_t ORDER BY v <-> '[0,0]' LIMIT 5;

-- unlogged tables
CREATE UNLOGGED TABLE fl_u (id int, v lvector(2));
CREATE INDEX fl_u_idx ON fl_u USING lflat (v lvector_l1_ops);
INSERT INTO fl_u VALUES (1, '[1,1]'), (2, '[5,5]'), (3, NULL);
SELECT id FROM fl_u ORDER BY v <+> '[4,4]' LIMIT 2;

-- 16,000 dimensions: entries span several pages
CREATE TABLE fl_big (id int, v lvector(16000));
INSERT INTO fl_big SELECT i, array_fill(i::real, ARRAY[16000]) FROM generate_series(1, 5) i;
CREATE INDEX fl_big_idx ON fl_big USING lflat (v lvector_l2_ops);
INSERT INTO fl_big SELECT i, array_fill(i::real, ARRAY[16000]) FROM generate_series(6, 8) i;
SELECT id FROM fl_big ORDER BY v <-> array_fill(6.2::real, ARRAY[16000])::lvector LIMIT 3;
DELETE FROM fl_big WHERE id = 6;
VACUUM fl_big;
INSERT INTO fl_big VALUES (9, array_fill(6.1::real, ARRAY[16000]));
SELECT id FROM fl_big ORDER BY v <-> array_fill(6.2::real, ARRAY[16000])::lvector LIMIT 3;
SELECT libravdb_index_info('fl_big_idx')->>'entry_bytes' AS entry_bytes;
SELECT libravdb_index_check('fl_big_idx');

-- errors
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.err($$CREATE INDEX ON fl USING lflat (v lvector_l2_ops) WITH (quantizer = 'pq')$$);
SELECT pg_temp.err($$CREATE INDEX ON fl USING lflat (v lvector_l2_ops) WITH (lists = 10)$$);
CREATE TABLE fl_nodim (v lvector);
SELECT pg_temp.err($$CREATE INDEX ON fl_nodim USING lflat (v lvector_l2_ops)$$);
SELECT pg_temp.err($$SELECT id FROM fl ORDER BY v <-> '[1,2]' LIMIT 1$$);
SELECT pg_temp.err($$SELECT libravdb_index_info('fl')$$);
SELECT pg_temp.err($$SELECT libravdb_index_info('fl_pkey')$$);
SELECT pg_temp.err($$SELECT libravdb_index_check('fl_pkey')$$);

DROP TABLE fl, flq, fl_t, fl_u, fl_big, fl_nodim;
DROP FUNCTION knn, mismatches, check_all;
