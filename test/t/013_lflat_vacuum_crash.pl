# A VACUUM of an lflat index cut by a crash half-way through its pages.
#
# VACUUM frees dead entries page by page. Each page's cleared headers and the
# metapage's counts must change in one WAL record: if the metapage were only
# updated at the end, a crash in between would leave it counting entries the
# pages no longer hold, and libravdb_index_check would report the index
# corrupted. The VACUUM is slowed down (vacuum_cost_delay) and the server
# stopped immediately once the metapage shows about a tenth of the pages
# freed. The WAL of those pages may not all be flushed yet, so the test tries
# again until a restart shows some dead entries freed and some not, and
# fails if no attempt does.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use LibraVDB::Test qw(new_node log_has_no_crash);

my $node = new_node('vaccrash', conf => "autovacuum = off\nwal_writer_delay = 10ms\n");
my $rows = 3000;

sub info
{
	my ($key) = @_;
	return $node->safe_psql('postgres', "SELECT libravdb_index_info('t_l2')->>'$key'");
}

sub setup
{
	$node->safe_psql('postgres', qq{
		DROP TABLE IF EXISTS t;
		CREATE TABLE t (id int PRIMARY KEY, v lvector(64));
		INSERT INTO t SELECT i, (SELECT array_agg(sin(i * 7 + j)::float4) FROM generate_series(1, 64) j)::lvector
		  FROM generate_series(1, $rows) i;
		CREATE INDEX t_l2 ON t USING lflat (v lvector_l2_ops);
		DELETE FROM t WHERE id % 2 = 0;
		CHECKPOINT;
	});
}

# Starts a VACUUM that sleeps after nearly every page it touches, and waits
# until it is in its index pass; returns the psql harness.
sub slow_vacuum
{
	my ($what) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-q', '-d', $node->connstr('postgres'),
			'-c', "SET vacuum_cost_delay = '5ms'", '-c', 'SET vacuum_cost_limit = 1',
			'-c', 'VACUUM (INDEX_CLEANUP on, TRUNCATE off) t'
		],
		'>', \$out, '2>', \$err);
	my $phase = '';
	for (my $i = 0; $i < 3000 && $phase ne 'vacuuming indexes'; $i++)
	{
		usleep(10_000);
		$phase = $node->safe_psql('postgres', 'SELECT phase FROM pg_stat_progress_vacuum') // '';
	}
	is($phase, 'vacuuming indexes', "$what: VACUUM reached its index pass");
	return $h;
}

my $cut = 0;
for my $attempt (1 .. 6)
{
	setup();
	is(info('tuples'), $rows, "attempt $attempt: the index counts $rows entries before VACUUM");
	my $h = slow_vacuum("attempt $attempt");
	# The metapage counts each page's freed entries as VACUUM goes (15 a
	# page): stop the server once it shows ten pages done, of about 100. The
	# WAL writer (every 10 ms here) has flushed the first pages' records by
	# then; the latest may be lost, which leaves an earlier cut.
	my $seen = 0;
	for (my $i = 0; $i < 3000 && $seen < 150; $i++)
	{
		$seen = info('free_slots');
		usleep(5_000) if $seen < 150;
	}
	$node->stop('immediate');
	$h->finish;
	note("attempt $attempt: stopped when the metapage counted $seen free slots");
	$node->start;

	my (undef, $report, $check_err) = $node->psql('postgres', q{SELECT libravdb_index_check('t_l2')->>'ok'});
	is($check_err, '', "attempt $attempt: libravdb_index_check raises nothing after the crash");
	is($report, 'true', "attempt $attempt: libravdb_index_check passes after the crash");

	# Scans see exactly the rows that are left, whatever VACUUM had freed.
	is( $node->safe_psql('postgres', q{
			SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_indexscan = on;
			SELECT count(*), sum(id) FROM (SELECT id FROM t ORDER BY v <-> (SELECT v FROM t WHERE id = 1)) s}),
		($rows / 2) . '|' . (($rows / 2)**2),
		"attempt $attempt: an index scan returns the $rows/2 rows left, each once");

	my $tuples = info('tuples');
	my $free = info('free_slots');
	note("attempt $attempt: after the crash the metapage counts $tuples live entries and $free free slots");
	is($tuples + $free, $rows, "attempt $attempt: live entries and free slots add up to the slots written");
	if ($tuples > $rows / 2 && $tuples < $rows)
	{
		$cut = 1;
		last;
	}
}
ok($cut, 'one crash cut the VACUUM with some dead entries freed and others not');

# A VACUUM run to the end frees the rest.
$node->safe_psql('postgres', 'VACUUM t');
is(info('tuples'), $rows / 2, 'a full VACUUM after the crash leaves the live rows only');
is(info('free_slots'), $rows / 2, '... and every dead entry a free slot');
is($node->safe_psql('postgres', q{SELECT libravdb_index_check('t_l2')->>'ok'}), 'true', 'the index checks clean');

$node->stop;
log_has_no_crash($node);

done_testing();
