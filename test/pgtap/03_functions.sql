-- pgTAP: every function of the extension: signature, result type, volatility,
-- strictness, parallel safety and a comment. The generic checks at the end read
-- every function the extension owns (pg_depend), so a function added later is
-- held to the same rules without editing this file.
BEGIN;
SELECT plan(170);

CREATE TEMP TABLE lrv_expected_funcs (fname name, args name[], rettype text, vol text);
INSERT INTO lrv_expected_funcs VALUES
  ('lvector_in',                     '{cstring,oid,integer}',              'lvector',            'immutable'),
  ('lvector_out',                    '{lvector}',                          'cstring',            'immutable'),
  ('lvector_typmod_in',              '{cstring[]}',                        'integer',            'immutable'),
  ('lvector_typmod_out',             '{integer}',                          'cstring',            'immutable'),
  ('lvector_recv',                   '{internal,oid,integer}',             'lvector',            'immutable'),
  ('lvector_send',                   '{lvector}',                          'bytea',              'immutable'),
  ('l2_distance',                    '{lvector,lvector}',                  'double precision',   'immutable'),
  ('lvector_l2_squared_distance',    '{lvector,lvector}',                  'double precision',   'immutable'),
  ('inner_product',                  '{lvector,lvector}',                  'double precision',   'immutable'),
  ('lvector_negative_inner_product', '{lvector,lvector}',                  'double precision',   'immutable'),
  ('cosine_distance',                '{lvector,lvector}',                  'double precision',   'immutable'),
  ('l1_distance',                    '{lvector,lvector}',                  'double precision',   'immutable'),
  ('lvector_dims',                   '{lvector}',                          'integer',            'immutable'),
  ('lvector_norm',                   '{lvector}',                          'double precision',   'immutable'),
  ('l2_normalize',                   '{lvector}',                          'lvector',            'immutable'),
  ('subvector',                      '{lvector,integer,integer}',          'lvector',            'immutable'),
  ('lvector_add',                    '{lvector,lvector}',                  'lvector',            'immutable'),
  ('lvector_sub',                    '{lvector,lvector}',                  'lvector',            'immutable'),
  ('lvector_mul',                    '{lvector,lvector}',                  'lvector',            'immutable'),
  ('lvector_concat',                 '{lvector,lvector}',                  'lvector',            'immutable'),
  ('libravdb_simd_level',            '{}',                                 'text',               'stable'),
  ('lvector_lt',                     '{lvector,lvector}',                  'boolean',            'immutable'),
  ('lvector_le',                     '{lvector,lvector}',                  'boolean',            'immutable'),
  ('lvector_eq',                     '{lvector,lvector}',                  'boolean',            'immutable'),
  ('lvector_ne',                     '{lvector,lvector}',                  'boolean',            'immutable'),
  ('lvector_ge',                     '{lvector,lvector}',                  'boolean',            'immutable'),
  ('lvector_gt',                     '{lvector,lvector}',                  'boolean',            'immutable'),
  ('lvector_cmp',                    '{lvector,lvector}',                  'integer',            'immutable'),
  ('lvector',                        '{lvector,integer,boolean}',          'lvector',            'immutable'),
  ('array_to_lvector',               '{real[],integer,boolean}',           'lvector',            'immutable'),
  ('array_to_lvector',               '{"double precision[]",integer,boolean}', 'lvector',        'immutable'),
  ('array_to_lvector',               '{integer[],integer,boolean}',        'lvector',            'immutable'),
  ('array_to_lvector',               '{numeric[],integer,boolean}',        'lvector',            'immutable'),
  ('lvector_to_float4',              '{lvector,integer,boolean}',          'real[]',             'immutable'),
  ('lvector_to_float8',              '{lvector,integer,boolean}',          'double precision[]', 'immutable'),
  ('lvector_to_int4',                '{lvector,integer,boolean}',          'integer[]',          'immutable'),
  ('lvector_to_numeric',             '{lvector,integer,boolean}',          'numeric[]',          'immutable'),
  ('lvector_accum',                  '{"double precision[]",lvector}',     'double precision[]', 'immutable'),
  ('lvector_combine',                '{"double precision[]","double precision[]"}', 'double precision[]', 'immutable'),
  ('lvector_avg',                    '{"double precision[]"}',             'lvector',            'immutable'),
  ('lvector_sum',                    '{"double precision[]"}',             'lvector',            'immutable');

-- 41 functions x 4 checks = 164 tests.
SELECT has_function(fname, args, format('function %s(%s) exists', fname, array_to_string(args, ', '))::text)
  FROM lrv_expected_funcs;
SELECT function_returns(fname, args, rettype,
                        format('function %s(%s) returns %s', fname, array_to_string(args, ', '), rettype)::text)
  FROM lrv_expected_funcs;
SELECT volatility_is(fname, args, vol,
                     format('function %s(%s) is %s', fname, array_to_string(args, ', '), upper(vol))::text)
  FROM lrv_expected_funcs;
SELECT is_strict(fname, args, format('function %s(%s) is STRICT', fname, array_to_string(args, ', '))::text)
  FROM lrv_expected_funcs;

-- Every function the extension owns, found through pg_depend rather than a list.
CREATE TEMP VIEW lrv_ext_funcs AS
  SELECT p.oid, p.oid::regprocedure::text AS signature, p.prokind, p.provolatile,
         p.proisstrict, p.proparallel, p.prorettype
    FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
   WHERE e.extname = 'libravdb';

-- Guard against a broken view making the checks below pass vacuously.
SELECT cmp_ok((SELECT count(*) FROM lrv_ext_funcs WHERE prokind = 'f')::int, '>=', 41,
              'the extension owns at least the 41 functions listed above');
SELECT is_empty($$ SELECT signature FROM lrv_ext_funcs e
                    WHERE e.oid NOT IN (SELECT p.oid FROM pg_proc p
                                         WHERE p.pronamespace = (SELECT extnamespace FROM pg_extension
                                                                  WHERE extname = 'libravdb')) $$,
                'every extension function lives in the extension''s schema');

-- The rules for every function the extension owns. Two kinds are exempt from
-- the volatility, strictness and parallel-safety rules, because only the
-- server calls them and it ignores those markings: index access method
-- handlers and event-trigger functions. The COMMENT rule has no exception.
CREATE TEMP VIEW lrv_ext_user_funcs AS
  SELECT * FROM lrv_ext_funcs
   WHERE prorettype NOT IN ('index_am_handler'::regtype, 'event_trigger'::regtype, 'trigger'::regtype);

-- Functions that are STABLE on purpose; every other one is IMMUTABLE.
SELECT is_empty($$ SELECT signature || ' is ' || provolatile::text FROM lrv_ext_user_funcs
                    WHERE provolatile <> CASE WHEN signature IN ('libravdb_simd_level()',
                                                                 'libravdb_index_info(regclass)',
                                                                 'libravdb_index_check(regclass)')
                                              THEN 's' ELSE 'i' END $$,
                'every extension function is IMMUTABLE, except the listed STABLE ones');
SELECT is_empty($$ SELECT signature FROM lrv_ext_user_funcs WHERE prokind = 'f' AND NOT proisstrict $$,
                'every extension function is STRICT');
SELECT is_empty($$ SELECT signature || ' is ' || proparallel::text FROM lrv_ext_user_funcs WHERE proparallel <> 's' $$,
                'every extension function and aggregate is PARALLEL SAFE');
SELECT is_empty($$ SELECT signature FROM lrv_ext_funcs WHERE obj_description(oid, 'pg_proc') IS NULL $$,
                'every extension function and aggregate has a COMMENT');

SELECT * FROM finish();
ROLLBACK;
