-- LibraVDB 0.1.0: the lvector type, its operators, functions, casts and aggregates.

\echo Use "CREATE EXTENSION libravdb" to load this file. \quit

-- Type --------------------------------------------------------------------

CREATE TYPE lvector;

CREATE FUNCTION lvector_in(cstring, oid, integer) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_out(lvector) RETURNS cstring
    AS 'MODULE_PATHNAME', 'lrv_lvector_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME', 'lrv_lvector_typmod_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_typmod_out(integer) RETURNS cstring
    AS 'MODULE_PATHNAME', 'lrv_lvector_typmod_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_recv(internal, oid, integer) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_send(lvector) RETURNS bytea
    AS 'MODULE_PATHNAME', 'lrv_lvector_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- STORAGE main: keep vectors in the heap row (compressed only when it saves
-- space) so scans do not chase TOAST pointers. See README, "Storage".
CREATE TYPE lvector (
    INPUT          = lvector_in,
    OUTPUT         = lvector_out,
    TYPMOD_IN      = lvector_typmod_in,
    TYPMOD_OUT     = lvector_typmod_out,
    RECEIVE        = lvector_recv,
    SEND           = lvector_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT      = int4,
    STORAGE        = main
);
COMMENT ON FUNCTION lvector_in(cstring, oid, integer) IS 'lvector text input: [1,2.5,-3]';
COMMENT ON FUNCTION lvector_out(lvector) IS 'lvector text output, shortest round-trip floats';
COMMENT ON FUNCTION lvector_typmod_in(cstring[]) IS 'lvector(n) type modifier input: 1 to 16000 dimensions';
COMMENT ON FUNCTION lvector_typmod_out(integer) IS 'lvector(n) type modifier output';
COMMENT ON FUNCTION lvector_recv(internal, oid, integer) IS 'lvector binary input: int16 dimensions, int16 zero, float4 values';
COMMENT ON FUNCTION lvector_send(lvector) IS 'lvector binary output: int16 dimensions, int16 zero, float4 values';
COMMENT ON TYPE lvector IS 'vector of float4 values; lvector(n) fixes the number of dimensions (1 to 16000)';

-- Distances -----------------------------------------------------------------

CREATE FUNCTION l2_distance(lvector, lvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'lrv_l2_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_l2_squared_distance(lvector, lvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'lrv_l2_squared_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION inner_product(lvector, lvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'lrv_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_negative_inner_product(lvector, lvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'lrv_negative_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cosine_distance(lvector, lvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'lrv_cosine_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l1_distance(lvector, lvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'lrv_l1_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION l2_distance(lvector, lvector) IS 'Euclidean (L2) distance';
COMMENT ON FUNCTION lvector_l2_squared_distance(lvector, lvector) IS 'squared Euclidean distance';
COMMENT ON FUNCTION inner_product(lvector, lvector) IS 'inner (dot) product';
COMMENT ON FUNCTION lvector_negative_inner_product(lvector, lvector) IS 'negated inner product, so that smaller means more similar';
COMMENT ON FUNCTION cosine_distance(lvector, lvector) IS '1 - cosine similarity, from 0 to 2; NaN when either vector is zero';
COMMENT ON FUNCTION l1_distance(lvector, lvector) IS 'taxicab (L1) distance';

-- Other functions -------------------------------------------------------------

CREATE FUNCTION lvector_dims(lvector) RETURNS integer
    AS 'MODULE_PATHNAME', 'lrv_lvector_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_norm(lvector) RETURNS float8
    AS 'MODULE_PATHNAME', 'lrv_lvector_norm' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l2_normalize(lvector) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_l2_normalize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION subvector(lvector, integer, integer) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_subvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_add(lvector, lvector) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_add' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_sub(lvector, lvector) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_sub' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_mul(lvector, lvector) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_mul' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_concat(lvector, lvector) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_concat' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION libravdb_simd_level() RETURNS text
    AS 'MODULE_PATHNAME', 'lrv_simd_level' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION lvector_dims(lvector) IS 'number of dimensions';
COMMENT ON FUNCTION lvector_norm(lvector) IS 'Euclidean norm';
COMMENT ON FUNCTION l2_normalize(lvector) IS 'the vector scaled to unit Euclidean norm; a zero vector is returned unchanged';
COMMENT ON FUNCTION subvector(lvector, integer, integer) IS 'subvector(v, start, count): count elements from 1-based position start';
COMMENT ON FUNCTION lvector_add(lvector, lvector) IS 'element-wise sum';
COMMENT ON FUNCTION lvector_sub(lvector, lvector) IS 'element-wise difference';
COMMENT ON FUNCTION lvector_mul(lvector, lvector) IS 'element-wise product';
COMMENT ON FUNCTION lvector_concat(lvector, lvector) IS 'concatenation';
COMMENT ON FUNCTION libravdb_simd_level() IS 'the distance kernels chosen for this CPU: scalar, avx2 or avx512';

-- Comparison (btree) ------------------------------------------------------------

CREATE FUNCTION lvector_lt(lvector, lvector) RETURNS bool
    AS 'MODULE_PATHNAME', 'lrv_lvector_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_le(lvector, lvector) RETURNS bool
    AS 'MODULE_PATHNAME', 'lrv_lvector_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_eq(lvector, lvector) RETURNS bool
    AS 'MODULE_PATHNAME', 'lrv_lvector_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_ne(lvector, lvector) RETURNS bool
    AS 'MODULE_PATHNAME', 'lrv_lvector_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_ge(lvector, lvector) RETURNS bool
    AS 'MODULE_PATHNAME', 'lrv_lvector_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_gt(lvector, lvector) RETURNS bool
    AS 'MODULE_PATHNAME', 'lrv_lvector_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_cmp(lvector, lvector) RETURNS integer
    AS 'MODULE_PATHNAME', 'lrv_lvector_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION lvector_lt(lvector, lvector) IS 'less than, element by element then by length';
COMMENT ON FUNCTION lvector_le(lvector, lvector) IS 'less than or equal, element by element then by length';
COMMENT ON FUNCTION lvector_eq(lvector, lvector) IS 'equal';
COMMENT ON FUNCTION lvector_ne(lvector, lvector) IS 'not equal';
COMMENT ON FUNCTION lvector_ge(lvector, lvector) IS 'greater than or equal, element by element then by length';
COMMENT ON FUNCTION lvector_gt(lvector, lvector) IS 'greater than, element by element then by length';
COMMENT ON FUNCTION lvector_cmp(lvector, lvector) IS 'btree comparison: -1, 0 or 1';

-- Operators ------------------------------------------------------------------------

CREATE OPERATOR <-> (LEFTARG = lvector, RIGHTARG = lvector, FUNCTION = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = lvector, RIGHTARG = lvector, FUNCTION = lvector_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = lvector, RIGHTARG = lvector, FUNCTION = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = lvector, RIGHTARG = lvector, FUNCTION = l1_distance, COMMUTATOR = '<+>');
CREATE OPERATOR + (LEFTARG = lvector, RIGHTARG = lvector, FUNCTION = lvector_add, COMMUTATOR = +);
CREATE OPERATOR - (LEFTARG = lvector, RIGHTARG = lvector, FUNCTION = lvector_sub);
CREATE OPERATOR * (LEFTARG = lvector, RIGHTARG = lvector, FUNCTION = lvector_mul, COMMUTATOR = *);
CREATE OPERATOR || (LEFTARG = lvector, RIGHTARG = lvector, FUNCTION = lvector_concat);

CREATE OPERATOR < (LEFTARG = lvector, RIGHTARG = lvector, PROCEDURE = lvector_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = lvector, RIGHTARG = lvector, PROCEDURE = lvector_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR = (LEFTARG = lvector, RIGHTARG = lvector, PROCEDURE = lvector_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel, MERGES);
CREATE OPERATOR <> (LEFTARG = lvector, RIGHTARG = lvector, PROCEDURE = lvector_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR >= (LEFTARG = lvector, RIGHTARG = lvector, PROCEDURE = lvector_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR > (LEFTARG = lvector, RIGHTARG = lvector, PROCEDURE = lvector_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

COMMENT ON OPERATOR <->(lvector, lvector) IS 'L2 (Euclidean) distance';
COMMENT ON OPERATOR <#>(lvector, lvector) IS 'negative inner product';
COMMENT ON OPERATOR <=>(lvector, lvector) IS 'cosine distance';
COMMENT ON OPERATOR <+>(lvector, lvector) IS 'L1 (taxicab) distance';

CREATE OPERATOR CLASS lvector_ops DEFAULT FOR TYPE lvector USING btree AS
    OPERATOR 1 <,
    OPERATOR 2 <=,
    OPERATOR 3 =,
    OPERATOR 4 >=,
    OPERATOR 5 >,
    FUNCTION 1 lvector_cmp(lvector, lvector);

-- Casts -----------------------------------------------------------------------------

CREATE FUNCTION lvector(lvector, integer, boolean) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_typmod_cast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_lvector(real[], integer, boolean) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_array_to_lvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_lvector(double precision[], integer, boolean) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_array_to_lvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_lvector(integer[], integer, boolean) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_array_to_lvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_lvector(numeric[], integer, boolean) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_array_to_lvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_to_float4(lvector, integer, boolean) RETURNS real[]
    AS 'MODULE_PATHNAME', 'lrv_lvector_to_float4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_to_float8(lvector, integer, boolean) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'lrv_lvector_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_to_int4(lvector, integer, boolean) RETURNS integer[]
    AS 'MODULE_PATHNAME', 'lrv_lvector_to_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_to_numeric(lvector, integer, boolean) RETURNS numeric[]
    AS 'MODULE_PATHNAME', 'lrv_lvector_to_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION lvector(lvector, integer, boolean) IS 'checks a value against lvector(n)';
COMMENT ON FUNCTION array_to_lvector(real[], integer, boolean) IS 'cast from real[]';
COMMENT ON FUNCTION array_to_lvector(double precision[], integer, boolean) IS 'cast from double precision[]';
COMMENT ON FUNCTION array_to_lvector(integer[], integer, boolean) IS 'cast from integer[]';
COMMENT ON FUNCTION array_to_lvector(numeric[], integer, boolean) IS 'cast from numeric[]';
COMMENT ON FUNCTION lvector_to_float4(lvector, integer, boolean) IS 'cast to real[]';
COMMENT ON FUNCTION lvector_to_float8(lvector, integer, boolean) IS 'cast to double precision[]';
COMMENT ON FUNCTION lvector_to_int4(lvector, integer, boolean) IS 'cast to integer[], rounding to nearest';
COMMENT ON FUNCTION lvector_to_numeric(lvector, integer, boolean) IS 'cast to numeric[]';

CREATE CAST (lvector AS lvector) WITH FUNCTION lvector(lvector, integer, boolean) AS IMPLICIT;
CREATE CAST (real[] AS lvector) WITH FUNCTION array_to_lvector(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS lvector) WITH FUNCTION array_to_lvector(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (integer[] AS lvector) WITH FUNCTION array_to_lvector(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (numeric[] AS lvector) WITH FUNCTION array_to_lvector(numeric[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (lvector AS real[]) WITH FUNCTION lvector_to_float4(lvector, integer, boolean) AS IMPLICIT;
CREATE CAST (lvector AS double precision[]) WITH FUNCTION lvector_to_float8(lvector, integer, boolean);
CREATE CAST (lvector AS integer[]) WITH FUNCTION lvector_to_int4(lvector, integer, boolean);
CREATE CAST (lvector AS numeric[]) WITH FUNCTION lvector_to_numeric(lvector, integer, boolean);

-- Aggregates ------------------------------------------------------------------------

CREATE FUNCTION lvector_accum(double precision[], lvector) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'lrv_lvector_accum' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_combine(double precision[], double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'lrv_lvector_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_avg(double precision[]) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_avg' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lvector_sum(double precision[]) RETURNS lvector
    AS 'MODULE_PATHNAME', 'lrv_lvector_sum' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION lvector_accum(double precision[], lvector) IS 'avg(lvector) and sum(lvector) transition: {count, sums...}';
COMMENT ON FUNCTION lvector_combine(double precision[], double precision[]) IS 'avg(lvector) and sum(lvector) combine function for parallel aggregation';
COMMENT ON FUNCTION lvector_avg(double precision[]) IS 'avg(lvector) final function';
COMMENT ON FUNCTION lvector_sum(double precision[]) IS 'sum(lvector) final function';

CREATE AGGREGATE avg(lvector) (
    SFUNC = lvector_accum,
    STYPE = double precision[],
    FINALFUNC = lvector_avg,
    COMBINEFUNC = lvector_combine,
    INITCOND = '{0}',
    PARALLEL = SAFE
);
CREATE AGGREGATE sum(lvector) (
    SFUNC = lvector_accum,
    STYPE = double precision[],
    FINALFUNC = lvector_sum,
    COMBINEFUNC = lvector_combine,
    INITCOND = '{0}',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE avg(lvector) IS 'element-wise mean, summed in double precision';
COMMENT ON AGGREGATE sum(lvector) IS 'element-wise sum, accumulated in double precision';

-- lflat: exact search over vectors packed in index pages ------------------------------

CREATE FUNCTION lflat_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'lrv_lflat_handler' LANGUAGE C;
COMMENT ON FUNCTION lflat_handler(internal) IS 'index access method handler for lflat';
CREATE ACCESS METHOD lflat TYPE INDEX HANDLER lflat_handler;
COMMENT ON ACCESS METHOD lflat IS 'exact k-NN search over vectors packed in index pages, optionally quantized (fp16, sq8) with exact re-ranking';

CREATE OPERATOR CLASS lvector_l2_ops FOR TYPE lvector USING lflat AS
    OPERATOR 1 <-> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 l2_distance(lvector, lvector);
CREATE OPERATOR CLASS lvector_ip_ops FOR TYPE lvector USING lflat AS
    OPERATOR 1 <#> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 lvector_negative_inner_product(lvector, lvector);
CREATE OPERATOR CLASS lvector_cosine_ops FOR TYPE lvector USING lflat AS
    OPERATOR 1 <=> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(lvector, lvector);
CREATE OPERATOR CLASS lvector_l1_ops FOR TYPE lvector USING lflat AS
    OPERATOR 1 <+> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 l1_distance(lvector, lvector);

-- lhnsw: approximate search on an HNSW graph in index pages ----------------------------

CREATE FUNCTION lhnsw_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'lrv_lhnsw_handler' LANGUAGE C;
COMMENT ON FUNCTION lhnsw_handler(internal) IS 'index access method handler for lhnsw';
CREATE ACCESS METHOD lhnsw TYPE INDEX HANDLER lhnsw_handler;
COMMENT ON ACCESS METHOD lhnsw IS 'approximate k-NN search on an HNSW graph, optionally on fp16/sq8 codes with exact re-ranking';

CREATE OPERATOR CLASS lvector_l2_ops FOR TYPE lvector USING lhnsw AS
    OPERATOR 1 <-> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 l2_distance(lvector, lvector);
CREATE OPERATOR CLASS lvector_ip_ops FOR TYPE lvector USING lhnsw AS
    OPERATOR 1 <#> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 lvector_negative_inner_product(lvector, lvector);
CREATE OPERATOR CLASS lvector_cosine_ops FOR TYPE lvector USING lhnsw AS
    OPERATOR 1 <=> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(lvector, lvector);
CREATE OPERATOR CLASS lvector_l1_ops FOR TYPE lvector USING lhnsw AS
    OPERATOR 1 <+> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 l1_distance(lvector, lvector);

-- livfpq: inverted lists of product-quantized codes, re-ranked exactly ---------------------

CREATE FUNCTION livfpq_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'lrv_livfpq_handler' LANGUAGE C;
COMMENT ON FUNCTION livfpq_handler(internal) IS 'index access method handler for livfpq';
CREATE ACCESS METHOD livfpq TYPE INDEX HANDLER livfpq_handler;
COMMENT ON ACCESS METHOD livfpq IS 'approximate k-NN search over inverted lists of product-quantized codes, re-ranked with exact distances from the table';

CREATE OPERATOR CLASS lvector_l2_ops FOR TYPE lvector USING livfpq AS
    OPERATOR 1 <-> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 l2_distance(lvector, lvector);
CREATE OPERATOR CLASS lvector_ip_ops FOR TYPE lvector USING livfpq AS
    OPERATOR 1 <#> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 lvector_negative_inner_product(lvector, lvector);
CREATE OPERATOR CLASS lvector_cosine_ops FOR TYPE lvector USING livfpq AS
    OPERATOR 1 <=> (lvector, lvector) FOR ORDER BY float_ops,
    FUNCTION 1 cosine_distance(lvector, lvector);

-- Introspection -------------------------------------------------------------------------

CREATE FUNCTION libravdb_index_info(regclass) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'lrv_index_info' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION libravdb_index_check(regclass) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'lrv_index_check' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION libravdb_index_check(regclass) IS 'verifies a LibraVDB index page by page; raises XX002 with block and offset at the first problem';
COMMENT ON FUNCTION libravdb_index_info(regclass) IS 'what a LibraVDB index holds: access method, dimensions, metric, quantizer, tuples, pages, bytes';

-- Keeping vectors inline ------------------------------------------------------------------
--
-- A heap row is TOASTed once it passes ~2 kB, and lvector's storage (main)
-- then lets Postgres compress it in place. Vectors that compress (integer
-- pixels, sparse features) must then be decompressed on every read: on
-- Fashion-MNIST a sequential k-NN scan runs ~5x slower that way. Tables that
-- get an lvector column therefore get toast_tuple_target = 8160, so rows up to
-- a page stay inline and uncompressed; larger rows are still compressed and
-- moved out of line as usual. Set libravdb.keep_vectors_inline = off to opt
-- out, or set toast_tuple_target yourself (an explicit value is kept).

CREATE FUNCTION libravdb_keep_vectors_inline() RETURNS event_trigger LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
DECLARE
    cmd record;
BEGIN
    IF coalesce(current_setting('libravdb.keep_vectors_inline', true), 'on') NOT IN ('on', 'true', '1', 'yes') THEN
        RETURN;
    END IF;
    FOR cmd IN
        SELECT DISTINCT c.oid::regclass AS rel
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.oid = d.objid
        WHERE d.classid = 'pg_class'::regclass
          AND c.relkind IN ('r', 'm')
          AND NOT EXISTS (SELECT 1 FROM unnest(c.reloptions) o WHERE o LIKE 'toast_tuple_target=%')
          AND EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                        AND EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = a.atttypid AND t.typname = 'lvector'))
    LOOP
        EXECUTE format('ALTER TABLE %s SET (toast_tuple_target = 8160)', cmd.rel);
    END LOOP;
END $$;
COMMENT ON FUNCTION libravdb_keep_vectors_inline() IS 'event trigger: new tables with lvector columns keep rows up to a page inline and uncompressed';

CREATE EVENT TRIGGER libravdb_keep_vectors_inline ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE MATERIALIZED VIEW')
    EXECUTE FUNCTION libravdb_keep_vectors_inline();
