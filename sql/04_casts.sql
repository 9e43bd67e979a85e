-- Casts between lvector and arrays.
SELECT ARRAY[1,2,3]::lvector, ARRAY[1.5,2.5]::real[]::lvector, ARRAY[1.5,2.5]::double precision[]::lvector,
       ARRAY[1.25,2]::numeric[]::lvector;
SELECT '[1,2.5]'::lvector::real[], '[1,2.5]'::lvector::double precision[], '[1.4,2.5,-2.5,3.6]'::lvector::integer[],
       '[1,2.5]'::lvector::numeric[];
SELECT ARRAY[1,2,3]::lvector(3);
-- assignment casts into lvector columns, implicit cast to real[]
CREATE TABLE cast_t (v lvector(2));
INSERT INTO cast_t VALUES (ARRAY[1,2]), (ARRAY[3.5,4.5]::real[]), (ARRAY[5,6]::float8[]), (ARRAY[7,8]::numeric[]);
SELECT v, array_length(v::real[], 1) FROM cast_t;
SELECT array_length('[1,2,3]'::lvector::real[], 1);
DROP TABLE cast_t;
-- the typmod cast
SELECT '[1,2]'::lvector::lvector(2);
SELECT NULL::real[]::lvector;
