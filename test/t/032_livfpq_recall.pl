# livfpq on real data: the first 10000 Fashion-MNIST training images
# (Debian's dataset-fashion-mnist, read through LibraVDB::Test as 022 does)
# as lvector(784), with their class (category, 10 % of the rows each) and
# id % 100 (cat100, 1 % each), queried with 50 test images.
#   - Every k-NN query is an Index Scan on the livfpq index; mean recall@10
#     against the exact answer is held to floors at the default settings
#     (probes 10, rerank 100), at a high setting, and shown to drop at a low
#     one (so the floors measure the index, not an exact scan in disguise);
#     for L2 on the whole set and for cosine on a 5000-row subset.
#   - Filtered queries (WHERE category = c, WHERE cat100 = c) always return
#     10 rows, in order, near the exact filtered answer.
#   - The build reports its phases in pg_stat_progress_create_index, seen
#     from a second session.
#   - A build squeezed into maintenance_work_mem = 1MB trains on a smaller
#     sample, says so in a NOTICE, and the index still works.
#   - statement_timeout cancels a build and a scan (SQLSTATE 57014),
#     promptly, leaving nothing behind and the session usable.
# The index checks clean after every build.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use LibraVDB::Test qw(new_node log_has_no_crash fashion_mnist_dir fashion_mnist_images fashion_mnist_labels);

plan skip_all => 'Fashion-MNIST not installed (Debian package dataset-fashion-mnist)'
  unless fashion_mnist_dir();

my ($nbase, $nq) = (10000, 50);
my @base = fashion_mnist_images('train-images-idx3-ubyte.gz', $nbase);
my @labels = fashion_mnist_labels('train-labels-idx1-ubyte.gz', $nbase);
my @queries = fashion_mnist_images('t10k-images-idx3-ubyte.gz', $nq);
my @qlabels = fashion_mnist_labels('t10k-labels-idx1-ubyte.gz', $nq);

my $node = new_node('recall', conf => "shared_buffers = 64MB\nmax_parallel_maintenance_workers = 1\n");
my $tsv = $node->basedir . '/base.tsv';
open my $fh, '>', $tsv or die "$tsv: $!";
print $fh ($_ + 1) . "\t$labels[$_]\t" . (($_ + 1) % 100) . "\t$base[$_]\n" for 0 .. $#base;
close $fh;
$node->safe_psql('postgres', qq{
	CREATE TABLE fm (id int PRIMARY KEY, category int, cat100 int, v lvector(784));
	COPY fm FROM '$tsv';
	CREATE TABLE fq (qid int PRIMARY KEY, category int, q lvector(784));
	CREATE TABLE fc AS SELECT * FROM fm WHERE id <= 5000;
});
$node->safe_psql('postgres',
	'INSERT INTO fq VALUES ' . join(',', map { '(' . ($_ + 1) . ", $qlabels[$_], '$queries[$_]')" } 0 .. $#queries));
$node->safe_psql('postgres', 'VACUUM ANALYZE fm; VACUUM ANALYZE fc; VACUUM ANALYZE fq');
is($node->safe_psql('postgres', 'SELECT count(*), count(DISTINCT category), min(category), max(category) FROM fm'),
	"$nbase|10|0|9", "$nbase images with their 10 classes loaded");

# The exact answers, once: top-10 ids per query and, for the filtered
# queries, per (query, filter).
$node->safe_psql('postgres', q{
	SET enable_indexscan = off; SET enable_bitmapscan = off;
	CREATE TABLE exact_l2 AS SELECT qid, array(SELECT id FROM fm ORDER BY v <-> q LIMIT 10) AS ids FROM fq;
	CREATE TABLE exact_cos AS SELECT qid, array(SELECT id FROM fc ORDER BY v <=> q LIMIT 10) AS ids FROM fq;
	-- Filters: the query's own class, another class (its nearest rows lie in
	-- lists far from the query), and two 1 % slices; 20 queries each.
	CREATE TABLE filters AS
	  SELECT qid, f, c FROM fq, LATERAL (VALUES ('category', category), ('category', (category + 3) % 10),
	                                            ('cat100', qid % 100), ('cat100', (qid * 7 + 11) % 100)) x(f, c)
	   WHERE qid <= 20;
	CREATE TABLE exact_filtered AS
	  SELECT qid, f, c, array(SELECT id || '=' || (v <-> q) FROM fm
	                          WHERE CASE f WHEN 'category' THEN category ELSE cat100 END = c
	                          ORDER BY v <-> q LIMIT 10) AS ids
	    FROM filters JOIN fq USING (qid);
});

# Mean recall@10 of index scans through $index under $settings.
sub recall
{
	my ($table, $op, $exact, $settings) = @_;
	my $r = $node->safe_psql('postgres', qq{
		SET enable_seqscan = off; SET enable_bitmapscan = off; $settings
		SELECT avg((SELECT count(*) FROM unnest(g.ids) x WHERE x = ANY (e.ids)) / 10.0)
		  FROM (SELECT qid, array(SELECT id FROM $table ORDER BY v $op q LIMIT 10) AS ids FROM fq) g
		  JOIN $exact e USING (qid);
	});
	return $r;
}

sub plan_uses
{
	my ($index, $table, $op) = @_;
	like($node->safe_psql('postgres',
			"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM $table ORDER BY v $op (SELECT q FROM fq WHERE qid = 1) LIMIT 10"),
		qr/Index Scan using $index on $table/, "$index: k-NN queries are index scans");
}

sub check_ok
{
	my ($index, $tuples) = @_;
	my $c = $node->safe_psql('postgres', "SELECT libravdb_index_check('$index')");
	like($c, qr/"ok": true/, "$index: libravdb_index_check is clean");
	like($c, qr/"tuples": $tuples\b/, "$index: holds every row");
}

my $defaults = 'RESET libravdb.ivfpq_probes; RESET libravdb.ivfpq_rerank;';
my $high = 'SET libravdb.ivfpq_probes = 40; SET libravdb.ivfpq_rerank = 1000;';
my $low = 'SET libravdb.ivfpq_probes = 1; SET libravdb.ivfpq_rerank = 10;';

# ---------------------------------------------------------------------------
# L2, default options (lists = sqrt(rows) = 100, pq_m = 98), with the
# build's progress sampled from a second session.
my $bg = $node->background_psql('postgres');
my @phases;
my $build = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c',
		'CREATE INDEX fm_l2 ON fm USING livfpq (v lvector_l2_ops)' ], '<', \undef, '>', \my $out, '2>', \my $err);
for (1 .. 20000)
{
	my $p = $bg->query_safe(q{SELECT coalesce(string_agg(phase, ','), '') FROM pg_stat_progress_create_index});
	push @phases, $p if $p ne '' && (!@phases || $phases[-1] ne $p);
	last unless $build->pumpable;
	$build->pump_nb;
	select(undef, undef, undef, 0.002);
}
$build->finish;
$bg->quit;
is($err, '', 'the build of fm_l2 succeeded');
note('phases seen, in order: ' . join(', ', @phases));
my @livfpq_phases = ('sampling rows', 'training centroids', 'training codebooks', 'assigning rows', 'writing pages');
my %rank = ('initializing' => 0, map { ("building index: $livfpq_phases[$_]" => $_ + 1) } 0 .. $#livfpq_phases);
is(join(',', grep { !exists $rank{$_} } @phases), '', 'every phase reported is one of livfpq\'s');
my @ranks = map { $rank{$_} // -1 } @phases;
is(join(',', @ranks), join(',', sort { $a <=> $b } @ranks), 'the phases come in the order the build runs them');
my $distinct = grep { $_ > 0 } @ranks;
cmp_ok($distinct, '>=', 3, 'at least three of the five livfpq build phases were seen');
check_ok('fm_l2', $nbase);
is($node->safe_psql('postgres', q{SELECT (libravdb_index_info('fm_l2') - 'bytes' - 'pages' - 'list_size')::text}),
	'{"am": "livfpq", "dims": 784, "pq_m": 196, "lists": 100, "metric": "l2", "probes": 10, "rerank": 100, "tuples": 10000, '
	  . '"pq_bits": 4, "code_bytes": 98, "entry_bytes": 112, "null_tuples": 0, "zero_tuples": 0, "trained_rows": 10000}',
	'fm_l2: default lists and pq_m, trained on every row');
plan_uses('fm_l2', 'fm', '<->');

# Measured: 1.00 at the defaults, 1.00 at probes 40 / rerank 1000, 0.72 at
# probes 1 / rerank 10 (PQ with 196 4-bit sub-quantizers is precise on this
# data, and rerank 100 is 1 % of the rows).
my $r = recall('fm', '<->', 'exact_l2', $defaults);
note(sprintf('fm_l2: mean recall@10 at the defaults %.4f', $r));
cmp_ok($r, '>=', 0.95, 'fm_l2: mean recall@10 at the defaults >= 0.95');
$r = recall('fm', '<->', 'exact_l2', $high);
note(sprintf('fm_l2: mean recall@10 at probes 40, rerank 1000 %.4f', $r));
cmp_ok($r, '>=', 0.98, 'fm_l2: mean recall@10 at probes 40, rerank 1000 >= 0.98');
$r = recall('fm', '<->', 'exact_l2', $low);
note(sprintf('fm_l2: mean recall@10 at probes 1, rerank 10 %.4f', $r));
ok($r >= 0.45 && $r <= 0.85, 'fm_l2: at probes 1, rerank 10 mean recall@10 drops (to between 0.45 and 0.85)');

# ---------------------------------------------------------------------------
# Filtered queries at the defaults: 10 rows every time, in order. Measured
# mean recall@10 against the exact filtered answers: own class 0.995,
# another class 0.995, 1 % slices 0.94.
my $filtered = $node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET enable_bitmapscan = off;
	CREATE TEMP TABLE got AS
	  SELECT qid, f, c, array(SELECT id || '=' || (v <-> q) FROM fm
	                          WHERE CASE f WHEN 'category' THEN category ELSE cat100 END = c
	                          ORDER BY v <-> q LIMIT 10) AS ids
	    FROM filters JOIN fq USING (qid);
	SELECT kind || ': ' || count(*) || ' queries, ' || min(cardinality(ids)) || '-' || max(cardinality(ids)) || ' rows, '
	       || count(*) FILTER (WHERE NOT (SELECT coalesce(bool_and(split_part(a, '=', 2)::float8 <= split_part(b, '=', 2)::float8), true)
	                                      FROM unnest(ids[1:9], ids[2:10]) p(a, b))) || ' out of order, recall '
	       || round(avg((SELECT count(*) FROM unnest(ids) x WHERE x = ANY (exact)) / 10.0), 4)
	  FROM (SELECT f || ' ' || CASE WHEN f = 'cat100' THEN '1%' WHEN c = fq.category THEN 'own class' ELSE 'other class' END AS kind,
	               g.ids, e.ids AS exact
	          FROM got g JOIN exact_filtered e USING (qid, f, c) JOIN fq USING (qid)) s
	 GROUP BY kind ORDER BY kind;
});
note("filtered queries through fm_l2 at the defaults:\n$filtered");
my @fl = split /\n/, $filtered;
is(scalar(@fl), 3, 'three kinds of filtered queries');
for my $line (@fl)
{
	my ($kind, $n, $rows, $disorder, $rec) = $line =~ /^(.*?): (\d+) queries, (\S+) rows, (\d+) out of order, recall (\S+)$/
	  or die "unexpected line: $line";
	is($rows, '10-10', "filtered, $kind: every query returns 10 rows");
	is($disorder, 0, "filtered, $kind: every answer is in order");
	cmp_ok($rec, '>=', 0.85, "filtered, $kind: mean recall\@10 >= 0.85");
}
like($node->safe_psql('postgres', q{SET enable_seqscan = off;
		EXPLAIN (COSTS OFF) SELECT id FROM fm WHERE cat100 = 7 ORDER BY v <-> (SELECT q FROM fq WHERE qid = 1) LIMIT 10}),
	qr/Index Scan using fm_l2 on fm\n\s+Order By: .*\n\s+Filter: \(cat100 = 7\)/, 'filtered queries are index scans with a Filter');

# ---------------------------------------------------------------------------
# More rows than rerank / 2 (at the defaults, 50): later refills re-rank in
# growing batches and keep returning the closer half, so LIMIT 100 and 500
# stay near the exact answer and read a few hundred buffers, not the table
# (about 5,000 heap pages). Measured: recall 0.97 / 0.99, 400-2,000 buffers.
my $deep = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT string_agg(k || ':' || r, ' ' ORDER BY k) FROM (SELECT k, round(avg(r)::numeric, 4) AS r FROM (
	  SELECT k, (SELECT count(*) FROM (SELECT id FROM fm ORDER BY v <-> q LIMIT k) a
	              WHERE id IN (SELECT id FROM (SELECT id, v <-> q AS d FROM fm) e ORDER BY d LIMIT k))::float8 / k AS r
	    FROM fq, (VALUES (100), (500)) x(k) WHERE qid <= 10) s GROUP BY k) t;
});
note("recall at LIMIT k beyond rerank / 2: $deep");
my %deep = map { split /:/ } split / /, $deep;
cmp_ok($deep{100}, '>=', 0.9, 'LIMIT 100 at the defaults: mean recall@100 >= 0.9');
cmp_ok($deep{500}, '>=', 0.9, 'LIMIT 500 at the defaults: mean recall@500 >= 0.9');
my $plan = $node->safe_psql('postgres', q{SET enable_seqscan = off;
	EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
	SELECT id FROM fm ORDER BY v <-> (SELECT q FROM fq WHERE qid = 3) LIMIT 100});
my ($hits) = $plan =~ /Index Scan using fm_l2.*?Buffers: shared hit=(\d+)/s or die "no buffer counts in:\n$plan";
note("LIMIT 100 read $hits buffers");
cmp_ok($hits, '<', 2500, 'LIMIT 100 reads a few hundred buffers, not the table');

# ---------------------------------------------------------------------------
# statement_timeout cancels a scan: 50 unlimited scans, each re-ranking the
# whole table (about 2 s, nearly all of it inside the index scans), against
# 300 ms. The session goes on and answers through the index.
my $t0 = time;
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET enable_seqscan = off;\nSET statement_timeout = '300ms';\n"
	  . "SELECT count(*) FROM fq, LATERAL (SELECT count(*) FROM (SELECT id FROM fm ORDER BY v <-> fq.q) s) x;\n"
	  . "RESET statement_timeout;\n"
	  . "SELECT 'after: ' || (SELECT id FROM fm ORDER BY v <-> (SELECT v FROM fm WHERE id = 4321) LIMIT 1);\n",
	on_error_stop => 0);
my $took = time - $t0;
like($stderr, qr/ERROR:  57014: canceling statement due to statement timeout/, 'a scan past statement_timeout is cancelled, SQLSTATE 57014');
cmp_ok($took, '<', 5, 'promptly');
like($stdout, qr/^after: 4321$/m, 'the session goes on and scans the index');

# statement_timeout cancels a build (training takes seconds; the timeout is
# 300 ms): the error is the timeout's, nothing is left behind, the server
# goes on.
$t0 = time;
($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\n"
	  . q{SET statement_timeout = '300ms'; CREATE INDEX fm_slow ON fm USING livfpq (v lvector_cosine_ops) WITH (lists = 200)});
$took = time - $t0;
isnt($ret, 0, 'a build past statement_timeout fails');
like($stderr, qr/ERROR:  57014: canceling statement due to statement timeout/, 'with the timeout error, SQLSTATE 57014');
cmp_ok($took, '<', 5, 'and promptly');
note(sprintf('the cancelled build returned after %.2f s', $took));
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 'fm_slow'}), '0', 'no index is left behind');
check_ok('fm_l2', $nbase);

# ---------------------------------------------------------------------------
# maintenance_work_mem = 1MB: the sample (10000 rows of 3 kB) does not fit,
# so training takes 1024 rows; every row is still in the index, and it
# answers well. Measured mean recall@10: 1.00 at the defaults.
$node->safe_psql('postgres', 'DROP INDEX fm_l2');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET maintenance_work_mem = '1MB'; CREATE INDEX fm_small ON fm USING livfpq (v lvector_l2_ops)});
is($ret, 0, 'the build in 1MB of maintenance_work_mem succeeded');
like($stderr, qr/NOTICE:  livfpq trains on 1024 sampled rows instead of 10000 to stay within maintenance_work_mem \(1 MB\)/,
	'it says it trains on fewer sampled rows');
is($node->safe_psql('postgres', q{SELECT libravdb_index_info('fm_small')->>'trained_rows'}), '1024', 'and it did');
check_ok('fm_small', $nbase);
plan_uses('fm_small', 'fm', '<->');
$r = recall('fm', '<->', 'exact_l2', $defaults);
note(sprintf('fm_small: mean recall@10 at the defaults %.4f', $r));
cmp_ok($r, '>=', 0.9, 'fm_small: mean recall@10 at the defaults >= 0.90');

# ---------------------------------------------------------------------------
# Cosine, on the first 5000 images (lists = 71), 8-bit and 4-bit codes.
# Measured mean recall@10: fc_cos 1.00 at the defaults, 1.00 high, 0.83 low (4-bit codes, the default);
# fc_cos8 (pq_bits = 8) 1.00 at the defaults, 1.00 high.
$node->safe_psql('postgres', 'CREATE INDEX fc_cos ON fc USING livfpq (v lvector_cosine_ops)');
check_ok('fc_cos', 5000);
plan_uses('fc_cos', 'fc', '<=>');
$r = recall('fc', '<=>', 'exact_cos', $defaults);
note(sprintf('fc_cos: mean recall@10 at the defaults %.4f', $r));
cmp_ok($r, '>=', 0.95, 'fc_cos: mean recall@10 at the defaults >= 0.95');
$r = recall('fc', '<=>', 'exact_cos', $high);
note(sprintf('fc_cos: mean recall@10 at probes 40, rerank 1000 %.4f', $r));
cmp_ok($r, '>=', 0.98, 'fc_cos: mean recall@10 at probes 40, rerank 1000 >= 0.98');
$r = recall('fc', '<=>', 'exact_cos', $low);
note(sprintf('fc_cos: mean recall@10 at probes 1, rerank 10 %.4f', $r));
ok($r >= 0.5 && $r <= 0.9, 'fc_cos: at probes 1, rerank 10 mean recall@10 drops (to between 0.50 and 0.90)');
$node->safe_psql('postgres', 'DROP INDEX fc_cos');
$node->safe_psql('postgres', 'CREATE INDEX fc_cos8 ON fc USING livfpq (v lvector_cosine_ops) WITH (pq_bits = 8)');
check_ok('fc_cos8', 5000);
plan_uses('fc_cos8', 'fc', '<=>');
$r = recall('fc', '<=>', 'exact_cos', $defaults);
note(sprintf('fc_cos8: mean recall@10 at the defaults %.4f', $r));
cmp_ok($r, '>=', 0.9, 'fc_cos8: mean recall@10 at the defaults >= 0.90');
$r = recall('fc', '<=>', 'exact_cos', $high);
note(sprintf('fc_cos8: mean recall@10 at probes 40, rerank 1000 %.4f', $r));
cmp_ok($r, '>=', 0.98, 'fc_cos8: mean recall@10 at probes 40, rerank 1000 >= 0.98');

$node->stop;
log_has_no_crash($node);
unlike(slurp_file($node->logfile), qr/WARNING:  .*leak|resource was not closed/,
	'no resource leak reported (after the cancelled scan and build among others)');

done_testing();
