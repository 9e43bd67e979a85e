-- Text and binary input/output of lvector.
SELECT '[1,2,3]'::lvector;
SELECT '[1.5, -2.25 ,3e2]'::lvector;
SELECT ' [ 1 , 2 ] '::lvector;
SELECT E'[\t1,\n2]'::lvector;
SELECT '[-0]'::lvector, '[0.1]'::lvector, '[1e-7]'::lvector, '[3.4028235e38]'::lvector;
SELECT '[1.0000001, 0.33333334, 100, 1000000, 1e-45]'::lvector;
SELECT '[+1, .5, 5., 1E3]'::lvector;
-- shortest round trip: text -> lvector -> text -> lvector is stable
SELECT v::text::lvector = v AS round_trip
FROM (VALUES ('[0.1,0.2,0.3]'::lvector), ('[1e-38,3.14159265,2.7182817]'), ('[123456789]')) t(v);
-- typmod
SELECT '[1,2,3]'::lvector(3);
CREATE TABLE io_t (id int, v lvector(3));
INSERT INTO io_t VALUES (1, '[1,2,3]'), (2, '[4,5,6]'), (3, NULL);
SELECT * FROM io_t ORDER BY id;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'io_t'::regclass AND attname = 'v';
-- binary send/recv through COPY
SELECT current_setting('data_directory') || '/lrv_io_t.bin' AS copy_file \gset
COPY io_t TO :'copy_file' WITH (FORMAT binary);
CREATE TABLE io_t2 (LIKE io_t);
COPY io_t2 FROM :'copy_file' WITH (FORMAT binary);
SELECT * FROM io_t2 ORDER BY id;
SELECT lvector_send('[1,-2]'::lvector);
-- storage strategy keeps vectors inline
SELECT typstorage FROM pg_type WHERE typname = 'lvector';
-- large vectors
SELECT lvector_dims(array_fill(1.5::real, ARRAY[16000])::lvector);
SELECT (array_fill(0.25::real, ARRAY[16000])::lvector)::text::lvector = array_fill(0.25::real, ARRAY[16000])::lvector AS big_round_trip;
DROP TABLE io_t, io_t2;
