# livfpq crash recovery under concurrent writes (LibraVDB::Crash): three
# clients insert, update (new vectors, sometimes NULL), delete and roll back
# rows of a table with two livfpq indexes (float L2 with 48-byte codes, so
# lists grow by pages while they run; cosine with 4-bit codes), each change
# its own transaction, while a fourth runs VACUUM over and over; the server
# is stopped at a random moment (immediate stop, SIGKILL of the postmaster,
# SIGKILL of every process), five times. After each restart:
#   - libravdb_index_check is clean on every index;
#   - the table holds what the clients saw committed (only the change a
#     client was making at the crash may have gone either way);
#   - every row is found by an index search for its own vector, at every
#     list probed: itself first, at distance 0 under L2 (searched with
#     rerank = 30 first; a row missed there is searched again with every
#     candidate re-ranked, and only a miss there fails);
#   - an unlimited index scan at full probes and rerank returns each row of
#     the table once, in distance order, and no row that is not in it
#     (deleted, rolled back or replaced by an update);
#   - top-10 answers at full probes and rerank are the exact ones;
#   - a new row is found.
# A last cycle stops the server in the middle of a VACUUM of a livfpq index:
# some list pages compacted, the list's directory entry not yet updated.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use LibraVDB::Test qw(new_node log_has_no_crash);
use LibraVDB::Crash;

my $node = new_node('crash', conf => "shared_buffers = 32MB\nmax_parallel_maintenance_workers = 0\n");
$node->safe_psql('postgres', 'CREATE EXTENSION pageinspect');

my $full = 'SET libravdb.ivfpq_probes = 32768; SET libravdb.ivfpq_rerank = 100000;';
my $noseq = $LibraVDB::Crash::noseq;

my $crash = LibraVDB::Crash->new(
	node    => $node,
	tables  => [ { name => 't', dims => 48, rows => 2000, nulls => [ 10, 1000 ] } ],
	indexes => [
		[ t_l2   => 't', '<->', 'USING livfpq (v lvector_l2_ops) WITH (lists = 16, pq_m = 48)' ],
		[ t_cos4 => 't', '<=>', 'USING livfpq (v lvector_cosine_ops) WITH (lists = 12, pq_m = 12, pq_bits = 4)' ],
	],
	own       => "$full SET libravdb.ivfpq_rerank = 30;",
	own_again => $full,
	scan      => $full,
	recall    => 'exact',
	every_row => 1);
my @indexes = qw(t_cos4 t_l2);

$crash->check('before any crash');
my %pages_before = map { $_ => $node->safe_psql('postgres', "SELECT libravdb_index_check('$_')->>'pages'") } @indexes;
$crash->cycle($_) for 1 .. 5;
for my $index (@indexes)
{
	my $pages = $node->safe_psql('postgres', "SELECT libravdb_index_check('$index')->>'pages'");
	note("$index: $pages_before{$index} list pages before the crashes, $pages after");
}
cmp_ok($node->safe_psql('postgres', q{SELECT libravdb_index_check('t_l2')->>'pages'}), '>', $pages_before{t_l2},
	'lists of t_l2 grew by pages while the server crashed');

# The last crash, in the middle of a VACUUM of a livfpq index. An expression
# index of big entries (pq_m = 128: 140 bytes, 57 a page) over a heap of a
# few pages: with a cost delay, VACUUM spends most of its time walking the
# list's 11 pages. The server stops once a list page is compacted (today the
# list's directory entry, in block 1, changes only after the last page); a
# commit first makes sure the compaction is in the WAL on disk.
$node->safe_psql('postgres', q{
	CREATE TABLE vx (id int, s int) WITH (autovacuum_enabled = off);
	INSERT INTO vx SELECT i, i FROM generate_series(1, 600) i;
	CREATE INDEX vx_l2 ON vx USING livfpq ((vec(s, 128)::lvector(128)) lvector_l2_ops) WITH (lists = 1, pq_m = 128);
	CHECKPOINT;
	DELETE FROM vx WHERE id % 2 = 0;
	CREATE TABLE vx_pages AS SELECT b, md5(get_raw_page('vx_l2', b)) AS m
	  FROM generate_series(0, pg_relation_size('vx_l2') / 8192 - 1) b;
	CREATE TABLE flush (x int);
});
my $vac_err = '';
my $vac = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'),
		'-c', 'SET vacuum_cost_delay = 20', '-c', 'SET vacuum_cost_limit = 1', '-c', 'VACUUM vx' ],
	'<', \undef, '>', \my $vac_out, '2>', \$vac_err);
my $changed = '';
for (my $t0 = time; time - $t0 < 30;)
{
	$changed = $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE b <> 1 AND m <> md5(get_raw_page('vx_l2', b))) || ' '
		    || count(*) FILTER (WHERE b = 1 AND m <> md5(get_raw_page('vx_l2', b))) FROM vx_pages});
	last if $changed !~ /^0 /;
	usleep(5_000);
}
$node->safe_psql('postgres', 'INSERT INTO flush VALUES (1)');
$node->stop('immediate');
$vac->finish;
like($vac_err, qr/server closed the connection|terminating connection|connection to server was lost/,
	'the VACUUM was still running at the crash');
like($changed, qr/^[1-9]/, 'the server stopped in the middle of the VACUUM of vx_l2, list pages compacted');
note("pages of vx_l2 changed by VACUUM at the crash, besides the directory's, and directory pages changed: $changed");
$node->start;
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT libravdb_index_check('vx_l2')->>'ok'});
is($out, 'true', 'after a crash in VACUUM: libravdb_index_check clean');
diag("after a crash in VACUUM: $err") if $err;
$node->safe_psql('postgres', 'VACUUM vx');
($ret, $out, $err) = $node->psql('postgres', q{SELECT libravdb_index_check('vx_l2')->>'tuples'});
is($out, '300', 'after a crash in VACUUM and another VACUUM: the index counts the table\'s 300 rows');
diag("after another VACUUM: $err") if $err;
is($node->safe_psql('postgres', "$noseq $full SELECT id FROM vx ORDER BY vec(s, 128)::lvector(128) <-> vec(77, 128) LIMIT 1"),
	'77', 'after a crash in VACUUM: a row is found through the index');
$crash->extra_cycle('immediate');
$crash->summary;
$node->stop;
log_has_no_crash($node);

done_testing();
