-- pgTAP: avg(lvector) and sum(lvector): state, combine function, parallel safety.
BEGIN;
SELECT plan(11);

SELECT is_aggregate('avg'::name, ARRAY['lvector']::name[], 'avg(lvector) is an aggregate');
SELECT is_aggregate('sum'::name, ARRAY['lvector']::name[], 'sum(lvector) is an aggregate');
SELECT function_returns('avg'::name, ARRAY['lvector']::name[], 'lvector'::text, 'avg(lvector) returns lvector');
SELECT function_returns('sum'::name, ARRAY['lvector']::name[], 'lvector'::text, 'sum(lvector) returns lvector');

SELECT results_eq(
  $$ SELECT a.aggfnoid::regprocedure::text, a.aggtransfn::regproc::text, a.aggfinalfn::regproc::text,
            a.aggcombinefn::regproc::text, format_type(a.aggtranstype, NULL), a.agginitval COLLATE "default"
       FROM pg_aggregate a
      WHERE a.aggfnoid IN ('avg(lvector)'::regprocedure, 'sum(lvector)'::regprocedure)
      ORDER BY 1 $$,
  $$ VALUES ('avg(lvector)', 'lvector_accum', 'lvector_avg', 'lvector_combine', 'double precision[]', '{0}'),
            ('sum(lvector)', 'lvector_accum', 'lvector_sum', 'lvector_combine', 'double precision[]', '{0}') $$,
  'avg and sum share lvector_accum and lvector_combine, with their own final functions');

SELECT is(p.proparallel::text, 's', format('%s is PARALLEL SAFE', p.oid::regprocedure))
  FROM pg_proc p WHERE p.oid IN ('avg(lvector)'::regprocedure, 'sum(lvector)'::regprocedure) ORDER BY 1;
SELECT is(p.proparallel::text, 's', format('%s is PARALLEL SAFE', p.oid::regprocedure))
  FROM pg_proc p WHERE p.oid IN ('lvector_accum(double precision[], lvector)'::regprocedure,
                                  'lvector_combine(double precision[], double precision[])'::regprocedure)
 ORDER BY 1;
SELECT isnt(obj_description(p.oid, 'pg_proc'), NULL, format('%s has a comment', p.oid::regprocedure))
  FROM pg_proc p WHERE p.oid IN ('avg(lvector)'::regprocedure, 'sum(lvector)'::regprocedure) ORDER BY 1;

SELECT * FROM finish();
ROLLBACK;
