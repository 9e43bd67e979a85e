-- pgTAP: the lvector type and its support functions, read from the live catalog.
BEGIN;
SELECT plan(13);

SELECT has_type('lvector'::name, 'type lvector exists');

SELECT is(t.typinput,   'lvector_in'::regproc,        'input function is lvector_in') FROM pg_type t WHERE t.oid = 'lvector'::regtype;
SELECT is(t.typoutput,  'lvector_out'::regproc,       'output function is lvector_out') FROM pg_type t WHERE t.oid = 'lvector'::regtype;
SELECT is(t.typmodin,   'lvector_typmod_in'::regproc, 'typmod input function is lvector_typmod_in') FROM pg_type t WHERE t.oid = 'lvector'::regtype;
SELECT is(t.typmodout,  'lvector_typmod_out'::regproc, 'typmod output function is lvector_typmod_out') FROM pg_type t WHERE t.oid = 'lvector'::regtype;
SELECT is(t.typreceive, 'lvector_recv'::regproc,      'binary receive function is lvector_recv') FROM pg_type t WHERE t.oid = 'lvector'::regtype;
SELECT is(t.typsend,    'lvector_send'::regproc,      'binary send function is lvector_send') FROM pg_type t WHERE t.oid = 'lvector'::regtype;

-- STORAGE main keeps vectors inline in the heap row (DESIGN.md section 5).
SELECT is(t.typstorage::text, 'm', 'storage is main (inline, compressed only when it helps)') FROM pg_type t WHERE t.oid = 'lvector'::regtype;
SELECT is(t.typlen::int, -1, 'variable length (varlena)') FROM pg_type t WHERE t.oid = 'lvector'::regtype;
SELECT is(t.typalign::text, 'i', 'int4 alignment') FROM pg_type t WHERE t.oid = 'lvector'::regtype;

-- The typmod functions are wired up: lvector(n) round-trips through format_type.
CREATE TEMP TABLE lrv_typmod_probe (v lvector(3), w lvector);
SELECT is(format_type(atttypid, atttypmod), 'lvector(3)', 'lvector(3) keeps its typmod')
  FROM pg_attribute WHERE attrelid = 'lrv_typmod_probe'::regclass AND attname = 'v';
SELECT is(format_type(atttypid, atttypmod), 'lvector', 'bare lvector has no typmod')
  FROM pg_attribute WHERE attrelid = 'lrv_typmod_probe'::regclass AND attname = 'w';

SELECT is(obj_description('lvector'::regtype, 'pg_type') IS NOT NULL, true, 'type lvector has a comment');

SELECT * FROM finish();
ROLLBACK;
