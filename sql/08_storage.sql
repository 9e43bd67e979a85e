-- Tables that get an lvector column keep rows up to a page inline and
-- uncompressed (toast_tuple_target = 8160), unless told otherwise.
CREATE TABLE st_a (id int, v lvector(784));
CREATE TABLE st_b (id int);
ALTER TABLE st_b ADD COLUMN v lvector;
CREATE TABLE st_c (v lvector) WITH (toast_tuple_target = 4000);
CREATE TABLE st_d AS SELECT * FROM st_a;
CREATE TABLE st_e (id int, t text);
CREATE TABLE st_p (id int, v lvector) PARTITION BY RANGE (id);
CREATE TABLE st_p1 PARTITION OF st_p FOR VALUES FROM (0) TO (100);
CREATE MATERIALIZED VIEW st_m AS SELECT * FROM st_a;
SET libravdb.keep_vectors_inline = off;
CREATE TABLE st_f (v lvector);
RESET libravdb.keep_vectors_inline;
SELECT relname, relkind, reloptions FROM pg_class WHERE relname LIKE 'st\_%' AND relkind IN ('r', 'p', 'm') ORDER BY relname;
-- the effect: a compressible 784-dimension vector is stored uncompressed
INSERT INTO st_a SELECT i, array_fill(0::real, ARRAY[784]) FROM generate_series(1, 10) i;
SET libravdb.keep_vectors_inline = off;
CREATE TABLE st_g (id int, v lvector(784));
RESET libravdb.keep_vectors_inline;
INSERT INTO st_g SELECT * FROM st_a;
SELECT (SELECT max(pg_column_size(v)) FROM st_a) AS inline_bytes, (SELECT max(pg_column_size(v)) FROM st_g) < 3144 AS default_compressed;
DROP TABLE st_a, st_b, st_c, st_d, st_e, st_p, st_f, st_g CASCADE;
