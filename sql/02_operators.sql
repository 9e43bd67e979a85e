-- Distance operators and functions on exact small cases.
SELECT '[1,2,3]'::lvector <-> '[4,6,3]' AS l2,
       '[1,2,3]'::lvector <#> '[4,5,6]' AS neg_ip,
       '[1,0]'::lvector <=> '[0,1]' AS cos_orth,
       '[1,2,3]'::lvector <+> '[4,6,3]' AS l1;
SELECT l2_distance('[0,0]', '[3,4]'), lvector_l2_squared_distance('[0,0]', '[3,4]'),
       inner_product('[1,2]', '[3,4]'), lvector_negative_inner_product('[1,2]', '[3,4]'),
       cosine_distance('[1,1]', '[2,2]'), cosine_distance('[1,1]', '[-1,-1]'), l1_distance('[1,-1]', '[-1,1]');
-- cosine of a zero vector is undefined
SELECT cosine_distance('[0,0]', '[1,1]');
-- identical vectors
SELECT '[1.5,2.5,3.5]'::lvector <-> '[1.5,2.5,3.5]', '[3,4]'::lvector <=> '[3,4]';
-- many dimensions: compare against a plain SQL computation in double precision
WITH v AS (SELECT array_agg((i % 7)::real - 3) a, array_agg((i % 5)::real * 0.5) b FROM generate_series(1, 1537) i)
SELECT abs((a::lvector <-> b::lvector) - sqrt((SELECT sum((x - y)^2) FROM unnest(a, b) u(x, y)))) < 1e-3 AS l2_ok,
       abs(inner_product(a::lvector, b::lvector) - (SELECT sum(x * y) FROM unnest(a, b) u(x, y))) < 1e-2 AS ip_ok,
       abs((a::lvector <+> b::lvector) - (SELECT sum(abs(x - y)) FROM unnest(a, b) u(x, y))) < 1e-2 AS l1_ok
FROM v;
-- element-wise arithmetic and concatenation
SELECT '[1,2,3]'::lvector + '[4,5,6]', '[1,2,3]'::lvector - '[4,5,6]', '[1,2,3]'::lvector * '[4,5,6]',
       '[1,2]'::lvector || '[3]';
-- comparisons and the btree opclass
SELECT '[1,2]'::lvector < '[1,3]', '[1,2]'::lvector < '[1,2,0]', '[2]'::lvector > '[1,9]',
       '[1,2]'::lvector = '[1,2]', '[1,2]'::lvector <> '[1,2]', '[1,2]'::lvector <= '[1,2]', '[1,2]'::lvector >= '[1,3]';
SELECT lvector_cmp('[1,2]', '[1,3]'), lvector_cmp('[1,3]', '[1,2]'), lvector_cmp('[1,2]', '[1,2]');
CREATE TABLE cmp_t (v lvector);
INSERT INTO cmp_t VALUES ('[3,1]'), ('[1,2]'), ('[1,2]'), ('[1,2,0]'), ('[2]'), (NULL);
SELECT v FROM cmp_t ORDER BY v;
SELECT DISTINCT v FROM cmp_t ORDER BY v;
SELECT v, count(*) FROM cmp_t GROUP BY v ORDER BY v;
CREATE UNIQUE INDEX cmp_t_u ON cmp_t (v) WHERE v <> '[1,2]';
SET enable_seqscan = off;
SELECT v FROM cmp_t WHERE v = '[3,1]';
RESET enable_seqscan;
INSERT INTO cmp_t VALUES ('[3,1]');
DROP TABLE cmp_t;
-- NULLs: every function is strict
SELECT NULL::lvector <-> '[1]', l2_normalize(NULL), lvector_dims(NULL);
