-- pgTAP: casts to and from lvector, with their contexts and functions.
BEGIN;
SELECT plan(27);

CREATE TEMP TABLE lrv_expected_casts (src name, tgt name, func name, ctx text);
INSERT INTO lrv_expected_casts VALUES
  ('real[]',             'lvector',            'array_to_lvector',   'assignment'),
  ('double precision[]', 'lvector',            'array_to_lvector',   'assignment'),
  ('integer[]',          'lvector',            'array_to_lvector',   'assignment'),
  ('numeric[]',          'lvector',            'array_to_lvector',   'assignment'),
  ('lvector',            'real[]',             'lvector_to_float4',  'implicit'),
  ('lvector',            'double precision[]', 'lvector_to_float8',  'explicit'),
  ('lvector',            'integer[]',          'lvector_to_int4',    'explicit'),
  ('lvector',            'numeric[]',          'lvector_to_numeric', 'explicit'),
  ('lvector',            'lvector',            'lvector',            'implicit');

SELECT has_cast(src, tgt, func, format('cast (%s AS %s) WITH FUNCTION %s exists', src, tgt, func)::text)
  FROM lrv_expected_casts;
SELECT cast_context_is(src, tgt, ctx, format('cast (%s AS %s) is %s', src, tgt, upper(ctx))::text)
  FROM lrv_expected_casts;

-- Each cast function takes (source, typmod integer, explicit boolean), so
-- lvector(n) typmods are enforced on every path into the type.
SELECT is(format('%s(%s)', p.proname,
                 array_to_string(ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) AS t), ',')),
          format('%s(%s,integer,boolean)', e.func, e.src),
          format('cast (%s AS %s) passes typmod and explicitness', e.src, e.tgt))
  FROM lrv_expected_casts e
  JOIN pg_cast c ON c.castsource = e.src::regtype AND c.casttarget = e.tgt::regtype
  JOIN pg_proc p ON p.oid = c.castfunc
 ORDER BY e.src, e.tgt;

SELECT * FROM finish();
ROLLBACK;
