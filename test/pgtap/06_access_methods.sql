-- pgTAP: the index access methods, their opclasses and the introspection
-- functions.
BEGIN;
SELECT plan(9);

SELECT results_eq(
  $$ SELECT amname::text COLLATE "default", amtype::text, amhandler::regproc::text
       FROM pg_am WHERE amname IN ('lflat') ORDER BY 1 $$,
  $$ VALUES ('lflat', 'i', 'lflat_handler') $$,
  'lflat is an index access method with its handler');

-- Each opclass: the ordering operator (strategy 1, FOR ORDER BY float_ops)
-- and its distance support function (1).
SELECT results_eq(
  $$ SELECT am.amname::text COLLATE "default", oc.opcname::text COLLATE "default", oc.opcdefault,
            o.oprname::text COLLATE "default", ao.amoppurpose::text, ao.amopsortfamily::regclass IS NULL,
            ap.amproc::regproc::text
       FROM pg_opclass oc
       JOIN pg_am am ON am.oid = oc.opcmethod
       JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amopstrategy = 1
       JOIN pg_operator o ON o.oid = ao.amopopr
       JOIN pg_amproc ap ON ap.amprocfamily = oc.opcfamily AND ap.amprocnum = 1
      WHERE am.amname = 'lflat' ORDER BY 1, 2 $$,
  $$ VALUES ('lflat', 'lvector_cosine_ops', false, '<=>', 'o', false, 'cosine_distance'),
            ('lflat', 'lvector_ip_ops',     false, '<#>', 'o', false, 'lvector_negative_inner_product'),
            ('lflat', 'lvector_l1_ops',     false, '<+>', 'o', false, 'l1_distance'),
            ('lflat', 'lvector_l2_ops',     false, '<->', 'o', false, 'l2_distance') $$,
  'lflat opclasses order by the four distance operators with matching support functions');

SELECT is((SELECT opf.opfname::text FROM pg_amop ao JOIN pg_opfamily opf ON opf.oid = ao.amopsortfamily
            JOIN pg_opfamily f ON f.oid = ao.amopfamily JOIN pg_am am ON am.oid = f.opfmethod
           WHERE am.amname = 'lflat' GROUP BY 1),
          'float_ops', 'ORDER BY values sort with float_ops');

SELECT function_returns('libravdb_index_info', ARRAY['regclass'], 'jsonb', 'libravdb_index_info returns jsonb');
SELECT function_returns('libravdb_index_check', ARRAY['regclass'], 'jsonb', 'libravdb_index_check returns jsonb');

-- Options are validated by the access method (reloption kind of our own).
SELECT throws_ok($$ CREATE TEMP TABLE t_opt (v lvector(2)); CREATE INDEX ON t_opt USING lflat (v lvector_l2_ops) WITH (quantizer = 'bogus') $$,
                 '22023', NULL, 'an unknown quantizer is rejected with 22023');

-- The event trigger keeping vectors inline is installed and enabled.
SELECT results_eq($$ SELECT evtevent::text COLLATE "default", evtenabled::text COLLATE "default", evtfoid::regproc::text FROM pg_event_trigger
                      WHERE evtname = 'libravdb_keep_vectors_inline' $$,
                  $$ VALUES ('ddl_command_end', 'O', 'libravdb_keep_vectors_inline') $$,
                  'the keep-vectors-inline event trigger fires on ddl_command_end');
-- (calling a function loads the library, which defines the setting)
SELECT ok(libravdb_simd_level() IN ('scalar', 'avx2', 'avx512'), 'the library loads and reports its SIMD level');
SELECT is((SELECT setting FROM pg_settings WHERE name = 'libravdb.keep_vectors_inline'), 'on',
          'libravdb.keep_vectors_inline defaults to on');

SELECT * FROM finish();
ROLLBACK;
