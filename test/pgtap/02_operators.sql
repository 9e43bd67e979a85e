-- pgTAP: operators on (lvector, lvector) and the default btree opclass.
-- Catalog name columns have collation "C"; they are compared under "default"
-- so that results_eq can compare them with literals.
BEGIN;
SELECT plan(22);

-- Each operator exists with the right result type.
SELECT has_operator('lvector'::name, op::name, 'lvector'::name, res::name,
                    format('operator %s(lvector, lvector) returns %s', op, res)::text)
  FROM (VALUES ('<->', 'double precision'), ('<#>', 'double precision'),
               ('<=>', 'double precision'), ('<+>', 'double precision'),
               ('+', 'lvector'), ('-', 'lvector'), ('*', 'lvector'), ('||', 'lvector'),
               ('<', 'boolean'), ('<=', 'boolean'), ('=', 'boolean'),
               ('<>', 'boolean'), ('>=', 'boolean'), ('>', 'boolean')) AS t(op, res);

-- ... and calls the right function, with the right commutator and negator.
SELECT results_eq(
  $$ SELECT o.oprname::text COLLATE "default", o.oprcode::regproc::text, format_type(o.oprresult, NULL),
            coalesce(c.oprname::text, '') COLLATE "default", coalesce(n.oprname::text, '') COLLATE "default"
       FROM pg_operator o
       LEFT JOIN pg_operator c ON c.oid = o.oprcom
       LEFT JOIN pg_operator n ON n.oid = o.oprnegate
      WHERE o.oprleft = 'lvector'::regtype AND o.oprright = 'lvector'::regtype
        AND o.oprname IN ('<->','<#>','<=>','<+>','+','-','*','||','<','<=','=','<>','>=','>')
      ORDER BY 1 $$,
  $$ VALUES ('*',   'lvector_mul',                    'lvector',          '*',   ''),
            ('+',   'lvector_add',                    'lvector',          '+',   ''),
            ('-',   'lvector_sub',                    'lvector',          '',    ''),
            ('<',   'lvector_lt',                     'boolean',          '>',   '>='),
            ('<#>', 'lvector_negative_inner_product', 'double precision', '<#>', ''),
            ('<+>', 'l1_distance',                    'double precision', '<+>', ''),
            ('<->', 'l2_distance',                    'double precision', '<->', ''),
            ('<=',  'lvector_le',                     'boolean',          '>=',  '>'),
            ('<=>', 'cosine_distance',                'double precision', '<=>', ''),
            ('<>',  'lvector_ne',                     'boolean',          '<>',  '='),
            ('=',   'lvector_eq',                     'boolean',          '=',   '<>'),
            ('>',   'lvector_gt',                     'boolean',          '<',   '<='),
            ('>=',  'lvector_ge',                     'boolean',          '<=',  '<'),
            ('||',  'lvector_concat',                 'lvector',          '',    '') $$,
  'operators call the right functions, with the right commutators and negators');

SELECT is(o.oprcanmerge, true, 'operator = (lvector, lvector) supports merge joins')
  FROM pg_operator o
 WHERE o.oprname = '=' AND o.oprleft = 'lvector'::regtype AND o.oprright = 'lvector'::regtype;

SELECT is_empty(
  $$ SELECT o.oid::regoperator::text FROM pg_operator o
      WHERE o.oprleft = 'lvector'::regtype AND o.oprright = 'lvector'::regtype
        AND o.oprname IN ('<->','<#>','<=>','<+>')
        AND obj_description(o.oid, 'pg_operator') IS NULL $$,
  'distance operators have comments');

-- The default btree opclass.
SELECT has_opclass('lvector_ops'::name, 'opclass lvector_ops exists');
SELECT results_eq(
  $$ SELECT am.amname::text COLLATE "default", format_type(c.opcintype, NULL), c.opcdefault
       FROM pg_opclass c JOIN pg_am am ON am.oid = c.opcmethod
      WHERE c.opcname = 'lvector_ops' $$,
  $$ VALUES ('btree', 'lvector', true) $$,
  'lvector_ops is the default btree opclass for lvector');
SELECT results_eq(
  $$ SELECT a.amopstrategy::int, a.amopopr::regoperator::text
       FROM pg_amop a JOIN pg_opclass c ON c.opcfamily = a.amopfamily
      WHERE c.opcname = 'lvector_ops' AND a.amoplefttype = 'lvector'::regtype
        AND a.amoprighttype = 'lvector'::regtype
      ORDER BY 1 $$,
  $$ VALUES (1, '<(lvector,lvector)'), (2, '<=(lvector,lvector)'), (3, '=(lvector,lvector)'),
            (4, '>=(lvector,lvector)'), (5, '>(lvector,lvector)') $$,
  'lvector_ops strategies 1..5 are < <= = >= >');
SELECT results_eq(
  $$ SELECT p.amprocnum::int, p.amproc::regprocedure::text
       FROM pg_amproc p JOIN pg_opclass c ON c.opcfamily = p.amprocfamily
      WHERE c.opcname = 'lvector_ops' ORDER BY 1 $$,
  $$ VALUES (1, 'lvector_cmp(lvector,lvector)') $$,
  'lvector_ops support function 1 is lvector_cmp');

-- An ORDER BY / DISTINCT on lvector finds the opclass (a catalog lookup, no data).
SELECT lives_ok($$ SELECT DISTINCT v FROM (VALUES ('[1,2]'::lvector), ('[1,2]')) AS t(v) ORDER BY v $$,
                'DISTINCT and ORDER BY on lvector resolve through lvector_ops');

SELECT * FROM finish();
ROLLBACK;
