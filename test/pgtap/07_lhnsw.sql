-- pgTAP: the lhnsw access method, its opclasses, options and settings.
BEGIN;
SELECT plan(16);

SELECT results_eq(
  $$ SELECT amname::text COLLATE "default", amtype::text, amhandler::regproc::text
       FROM pg_am WHERE amname = 'lhnsw' $$,
  $$ VALUES ('lhnsw', 'i', 'lhnsw_handler') $$,
  'lhnsw is an index access method with its handler');
SELECT function_returns('lhnsw_handler', ARRAY['internal'], 'index_am_handler', 'lhnsw_handler returns index_am_handler');

-- Each opclass: the ordering operator (strategy 1, FOR ORDER BY float_ops)
-- and its distance support function (1), the same four as lflat's.
SELECT results_eq(
  $$ SELECT am.amname::text COLLATE "default", oc.opcname::text COLLATE "default", oc.opcdefault,
            o.oprname::text COLLATE "default", ao.amoppurpose::text, ao.amopsortfamily::regclass IS NULL,
            ap.amproc::regproc::text
       FROM pg_opclass oc
       JOIN pg_am am ON am.oid = oc.opcmethod
       JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amopstrategy = 1
       JOIN pg_operator o ON o.oid = ao.amopopr
       JOIN pg_amproc ap ON ap.amprocfamily = oc.opcfamily AND ap.amprocnum = 1
      WHERE am.amname = 'lhnsw' ORDER BY 1, 2 $$,
  $$ VALUES ('lhnsw', 'lvector_cosine_ops', false, '<=>', 'o', false, 'cosine_distance'),
            ('lhnsw', 'lvector_ip_ops',     false, '<#>', 'o', false, 'lvector_negative_inner_product'),
            ('lhnsw', 'lvector_l1_ops',     false, '<+>', 'o', false, 'l1_distance'),
            ('lhnsw', 'lvector_l2_ops',     false, '<->', 'o', false, 'l2_distance') $$,
  'lhnsw opclasses order by the four distance operators with matching support functions');

SELECT is((SELECT opf.opfname::text FROM pg_amop ao JOIN pg_opfamily opf ON opf.oid = ao.amopsortfamily
            JOIN pg_opfamily f ON f.oid = ao.amopfamily JOIN pg_am am ON am.oid = f.opfmethod
           WHERE am.amname = 'lhnsw' GROUP BY 1),
          'float_ops', 'lhnsw ORDER BY values sort with float_ops');
SELECT is((SELECT count(*)::int FROM pg_amop ao JOIN pg_opfamily f ON f.oid = ao.amopfamily
            JOIN pg_am am ON am.oid = f.opfmethod WHERE am.amname = 'lhnsw'),
          4, 'lhnsw opfamilies hold one operator each (ordering only, no search operators)');

-- What the access method says about itself.
SELECT results_eq(
  $$ SELECT p.name, pg_indexam_has_property(a.oid, p.name)
       FROM pg_am a, unnest(ARRAY['can_order', 'can_unique', 'can_multi_col', 'can_include']) p(name)
      WHERE a.amname = 'lhnsw' ORDER BY 1 $$,
  $$ VALUES ('can_include', false), ('can_multi_col', false), ('can_order', false),
            ('can_unique', false) $$,
  'lhnsw: no btree ordering, no unique, multicolumn or INCLUDE indexes');

-- Options are validated by the access method (its own reloption kind).
CREATE TEMP TABLE t_opt (v lvector(2));
SELECT throws_ok($$ CREATE INDEX ON t_opt USING lhnsw (v lvector_l2_ops) WITH (quantizer = 'bogus') $$,
                 '22023', NULL, 'an unknown quantizer is rejected with 22023');
SELECT throws_ok($$ CREATE INDEX ON t_opt USING lhnsw (v lvector_l2_ops) WITH (m = 1) $$,
                 '22023', NULL, 'm below 2 is rejected with 22023');
SELECT throws_ok($$ CREATE INDEX ON t_opt USING lhnsw (v lvector_l2_ops) WITH (ef_construction = 1001) $$,
                 '22023', NULL, 'ef_construction above 1000 is rejected with 22023');
SELECT throws_ok($$ CREATE INDEX ON t_opt USING lhnsw (v lvector_l2_ops) WITH (lists = 4) $$,
                 '22023', NULL, 'an option of another access method is rejected with 22023');
SELECT lives_ok($$ CREATE INDEX t_opt_idx ON t_opt USING lhnsw (v lvector_cosine_ops)
                   WITH (m = 8, ef_construction = 32, ef_search = 20, quantizer = 'fp16') $$,
                'every option together builds an index');
SELECT is((SELECT reloptions FROM pg_class WHERE relname = 't_opt_idx'),
          ARRAY['m=8', 'ef_construction=32', 'ef_search=20', 'quantizer=fp16'], 'the options are stored as given');
SELECT is(libravdb_index_info('t_opt_idx')->>'am', 'lhnsw', 'libravdb_index_info knows lhnsw indexes');
SELECT is(libravdb_index_check('t_opt_idx')->>'ok', 'true', 'libravdb_index_check knows lhnsw indexes');

-- Settings (the library is loaded by now).
SELECT results_eq(
  $$ SELECT name, setting, min_val, max_val, context, vartype FROM pg_settings
      WHERE name IN ('libravdb.hnsw_ef_search', 'libravdb.hnsw_max_scan_tuples') ORDER BY name $$,
  $$ VALUES ('libravdb.hnsw_ef_search'::text, '40'::text, '1'::text, '1000'::text, 'user'::text, 'integer'::text),
            ('libravdb.hnsw_max_scan_tuples', '20000', '0', '2147483647', 'user', 'integer') $$,
  'libravdb.hnsw_ef_search and libravdb.hnsw_max_scan_tuples: defaults, ranges, settable by any user');
SELECT throws_ok($$ SET libravdb.hnsw_ef_search = 0 $$, '22023', NULL, 'libravdb.hnsw_ef_search = 0 is rejected with 22023');

SELECT * FROM finish();
ROLLBACK;
