-- Every rejected input, with its SQLSTATE and message.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- malformed text (22P02)
SELECT pg_temp.err($$SELECT '[1,,2]'::lvector$$);
SELECT pg_temp.err($$SELECT '[1,2'::lvector$$);
SELECT pg_temp.err($$SELECT 'abc'::lvector$$);
SELECT pg_temp.err($$SELECT '1,2'::lvector$$);
SELECT pg_temp.err($$SELECT '[1,2]x'::lvector$$);
SELECT pg_temp.err($$SELECT '[1 2]'::lvector$$);
SELECT pg_temp.err($$SELECT '[1,]'::lvector$$);
SELECT pg_temp.err($$SELECT '[,1]'::lvector$$);
SELECT pg_temp.err($$SELECT '[1a]'::lvector$$);
SELECT pg_temp.err($$SELECT ''::lvector$$);
-- empty, NaN, infinity (22000) and out of range (22003)
SELECT pg_temp.err($$SELECT '[]'::lvector$$);
SELECT pg_temp.err($$SELECT '[NaN]'::lvector$$);
SELECT pg_temp.err($$SELECT '[1,Infinity]'::lvector$$);
SELECT pg_temp.err($$SELECT '[-inf]'::lvector$$);
SELECT pg_temp.err($$SELECT '[1e39]'::lvector$$);
SELECT pg_temp.err($$SELECT '[-1e39]'::lvector$$);
-- too many dimensions (54000)
SELECT pg_temp.err($$SELECT array_fill(1::real, ARRAY[16001])::lvector$$);
SELECT pg_temp.err($$SELECT ('[' || repeat('1,', 16000) || '1]')::lvector$$);
SELECT pg_temp.err($$SELECT array_fill(1::real, ARRAY[9000])::lvector || array_fill(1::real, ARRAY[9000])::lvector$$);
-- type modifiers (22023) and typmod mismatch (22000)
SELECT pg_temp.err($$CREATE TABLE bad_t (v lvector(0))$$);
SELECT pg_temp.err($$CREATE TABLE bad_t (v lvector(16001))$$);
SELECT pg_temp.err($$CREATE TABLE bad_t (v lvector(2, 3))$$);
SELECT pg_temp.err($$SELECT '[1,2,3]'::lvector(2)$$);
SELECT pg_temp.err($$SELECT ARRAY[1,2,3]::lvector(2)$$);
CREATE TABLE err_t (v lvector(2));
SELECT pg_temp.err($$INSERT INTO err_t VALUES ('[1,2,3]')$$);
SELECT pg_temp.err($$INSERT INTO err_t VALUES (ARRAY[1,2,3])$$);
-- dimension mismatch between operands (22000)
SELECT pg_temp.err($$SELECT '[1,2]'::lvector <-> '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::lvector <#> '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::lvector <=> '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::lvector <+> '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::lvector + '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT avg(v) FROM (VALUES ('[1,2]'::lvector), ('[1,2,3]')) t(v)$$);
SELECT pg_temp.err($$SELECT sum(v) FROM (VALUES ('[1,2]'::lvector), ('[1,2,3]')) t(v)$$);
-- overflow to infinity in arithmetic (22003)
SELECT pg_temp.err($$SELECT '[3e38]'::lvector + '[3e38]'$$);
SELECT pg_temp.err($$SELECT '[-3e38]'::lvector - '[3e38]'$$);
SELECT pg_temp.err($$SELECT '[1e20]'::lvector * '[1e20]'$$);
SELECT pg_temp.err($$SELECT sum(v) FROM (VALUES ('[3e38]'::lvector), ('[3e38]')) t(v)$$);
-- casts from arrays
SELECT pg_temp.err($$SELECT ARRAY[[1,2],[3,4]]::lvector$$);
SELECT pg_temp.err($$SELECT ARRAY[1,NULL]::lvector$$);
SELECT pg_temp.err($$SELECT '{}'::real[]::lvector$$);
SELECT pg_temp.err($$SELECT ARRAY['NaN']::real[]::lvector$$);
SELECT pg_temp.err($$SELECT ARRAY['Infinity']::float8[]::lvector$$);
SELECT pg_temp.err($$SELECT ARRAY[1e300]::float8[]::lvector$$);
SELECT pg_temp.err($$SELECT ARRAY[1e39]::numeric[]::lvector$$);
SELECT pg_temp.err($$SELECT '[3e38]'::lvector::integer[]$$);
-- subvector
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', 4, 1)$$);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', 1, 0)$$);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', 1, -1)$$);
-- malformed binary input (22P03) and NaN in binary input (22000)
-- A bytea column written with binary COPY has exactly the field bytes we
-- choose; reading that file into an lvector column feeds them to lvector_recv.
CREATE TABLE bin_src (id int, b bytea);
INSERT INTO bin_src VALUES
    (1, '\x0001'),                      -- header truncated
    (2, '\x000200003f800000'),          -- 2 dimensions but 4 bytes of data
    (3, '\x000100073f800000'),          -- reserved field not zero
    (4, '\x000100007fc00000'),          -- NaN
    (5, '\x000100007f800000'),          -- infinity
    (6, '\x00000000'),                  -- zero dimensions
    (7, '\x3e810000'),                  -- 16001 dimensions
    (8, '\x000200003f80000040000000');  -- valid: [1,2]
CREATE TABLE bin_dst (id int, v lvector);
CREATE TABLE bin_dst2 (id int, v lvector(3));
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT id FROM bin_src ORDER BY id LOOP
        EXECUTE format('COPY (SELECT id, b FROM bin_src WHERE id = %s) TO %L WITH (FORMAT binary)', r.id, current_setting('data_directory') || '/lrv_bin_' || r.id);
    END LOOP;
END $$;
SELECT id, pg_temp.err(format('COPY bin_dst FROM %L WITH (FORMAT binary)', current_setting('data_directory') || '/lrv_bin_' || id)) FROM bin_src ORDER BY id;
SELECT * FROM bin_dst;
SELECT pg_temp.err(format('COPY bin_dst2 FROM %L WITH (FORMAT binary)', current_setting('data_directory') || '/lrv_bin_8'));
DROP TABLE bin_src, bin_dst, bin_dst2;
DROP TABLE err_t;
