# lhnsw recall on real data: the first 3000 Fashion-MNIST training images
# (Debian's dataset-fashion-mnist, read here from its gzipped idx files) as
# lvector(784), queried with 30 test images. For quantizer none and sq8, and
# for a build squeezed into maintenance_work_mem = 1MB (it says so in a
# NOTICE and builds on sq8 codes), every query is an index scan and mean
# recall@10 against the exact answer is at least a floor: measured, minus a
# margin. The index checks clean, and the build reports its phases in
# pg_stat_progress_create_index.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash fashion_mnist_dir fashion_mnist_images);

plan skip_all => 'Fashion-MNIST not installed (Debian package dataset-fashion-mnist)'
  unless fashion_mnist_dir();

my @base = fashion_mnist_images('train-images-idx3-ubyte.gz', 3000);
my @queries = fashion_mnist_images('t10k-images-idx3-ubyte.gz', 30);

my $node = new_node('recall', conf => "shared_buffers = 64MB\nmax_parallel_maintenance_workers = 1\n");
my $tsv = $node->basedir . '/base.tsv';
open my $fh, '>', $tsv or die "$tsv: $!";
print $fh ($_ + 1) . "\t$base[$_]\n" for 0 .. $#base;
close $fh;
$node->safe_psql('postgres', qq{
	CREATE TABLE fm (id int PRIMARY KEY, v lvector(784));
	COPY fm FROM '$tsv';
	CREATE TABLE fq (qid int PRIMARY KEY, q lvector(784));
});
$node->safe_psql('postgres', 'INSERT INTO fq VALUES ' . join(',', map { '(' . ($_ + 1) . ", '$queries[$_]')" } 0 .. $#queries));
is($node->safe_psql('postgres', 'SELECT count(*) FROM fm'), 3000, '3000 images loaded');

# Mean recall@10 of index scans through the index named, over every query.
sub recall
{
	my ($index, $op) = @_;
	my $plan = $node->safe_psql('postgres',
		"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM fm ORDER BY v $op (SELECT q FROM fq WHERE qid = 1) LIMIT 10");
	like($plan, qr/Index Scan using $index on fm/, "$index: k-NN queries are index scans");
	my $r = $node->safe_psql('postgres', qq{
		SET enable_seqscan = off;
		CREATE TEMP TABLE got AS SELECT qid, array(SELECT id FROM fm ORDER BY v $op q LIMIT 10) AS ids FROM fq;
		SET enable_seqscan = on; SET enable_indexscan = off;
		CREATE TEMP TABLE exact AS SELECT qid, array(SELECT id FROM fm ORDER BY v $op q LIMIT 10) AS ids FROM fq;
		SELECT avg((SELECT count(*) FROM unnest(g.ids) x WHERE x = ANY (e.ids)) / 10.0) FROM got g JOIN exact e USING (qid);
	});
	note(sprintf('%s: mean recall@10 %.4f', $index, $r));
	return $r;
}

sub check_ok
{
	my ($index, $tuples) = @_;
	my $c = $node->safe_psql('postgres', "SELECT libravdb_index_check('$index')");
	like($c, qr/"ok": true/, "$index: libravdb_index_check is clean");
	like($c, qr/"tuples": $tuples\b/, "$index: holds every row");
	note("$index: $c");
}

# quantizer none, with the build's progress phases sampled from a second
# session (the build of 3000 x 784 takes long enough to be seen).
my $bg = $node->background_psql('postgres');
my $phases = '';
my $build = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c',
		'CREATE INDEX fm_l2 ON fm USING lhnsw (v lvector_l2_ops)' ], '<', \undef, '>', \my $out, '2>', \my $err);
for (1 .. 2000)
{
	my $p = $bg->query_safe(q{SELECT coalesce(string_agg(phase, ','), '') FROM pg_stat_progress_create_index});
	$phases .= "$p\n" if $p ne '';
	last unless $build->pumpable;
	$build->pump_nb;
	select(undef, undef, undef, 0.005);
}
$build->finish;
$bg->quit;
is($err, '', 'the build of fm_l2 succeeded');
my %seen = map { $_ => 1 } split /\n/, $phases;
note('phases seen: ' . join(', ', sort keys %seen));
ok($seen{'building index: loading tuples'} || $seen{'building index: linking graph'} || $seen{'building index: writing pages'},
	'pg_stat_progress_create_index named an lhnsw build phase');
ok(!grep({ !/^(initializing|building index: (initializing|loading tuples|linking graph|writing pages|computing quantizer range))$/ } keys %seen),
	'every phase reported is one of lhnsw\'s');
check_ok('fm_l2', 3000);
my $r_none = recall('fm_l2', '<->');
cmp_ok($r_none, '>=', 0.9, 'quantizer none: mean recall@10 >= 0.90');
$node->safe_psql('postgres', 'DROP INDEX fm_l2');

# sq8
$node->safe_psql('postgres', q{CREATE INDEX fm_l2_sq8 ON fm USING lhnsw (v lvector_l2_ops) WITH (quantizer = 'sq8')});
check_ok('fm_l2_sq8', 3000);
my $r_sq8 = recall('fm_l2_sq8', '<->');
cmp_ok($r_sq8, '>=', 0.9, 'quantizer sq8: mean recall@10 >= 0.90');
$node->safe_psql('postgres', 'DROP INDEX fm_l2_sq8');

# maintenance_work_mem = 1MB: the float32 graph (about 10 MB) does not fit,
# so it is built on sq8 codes and the table is read twice; the index still
# stores float32 vectors.
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET maintenance_work_mem = '1MB'; CREATE INDEX fm_small ON fm USING lhnsw (v lvector_cosine_ops)});
is($ret, 0, 'the build in 1MB of maintenance_work_mem succeeded');
like($stderr, qr/NOTICE:  lhnsw graph of about \d+ MB does not fit in maintenance_work_mem \(1 MB\); building it on sq8 codes/,
	'it says it builds on sq8 codes');
is($node->safe_psql('postgres', q{SELECT libravdb_index_info('fm_small')->>'quantizer'}), 'none',
	'the index stores float32 vectors');
check_ok('fm_small', 3000);
my $r_small = recall('fm_small', '<=>');
cmp_ok($r_small, '>=', 0.85, 'low maintenance_work_mem build: mean recall@10 >= 0.85');

# statement_timeout stops a build while the core threads link the graph:
# m = 100 and ef_construction = 1000 on 3000 rows takes seconds, the
# timeout is 200 ms. The error is the timeout's (57014), nothing is left
# behind, and the server goes on.
my $t0 = time;
($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\n"
	  . q{SET statement_timeout = '200ms'; CREATE INDEX fm_slow ON fm USING lhnsw (v lvector_l2_ops) WITH (m = 100, ef_construction = 1000)});
isnt($ret, 0, 'a build past statement_timeout fails');
like($stderr, qr/ERROR:  57014: canceling statement due to statement timeout/, 'with the timeout error, SQLSTATE 57014');
cmp_ok(time - $t0, '<', 10, 'and promptly');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 'fm_slow'}), '0', 'no index is left behind');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fm}), '3000', 'the server answers afterwards');

$node->stop;
log_has_no_crash($node);

done_testing();
