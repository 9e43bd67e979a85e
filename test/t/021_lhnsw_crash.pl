# lhnsw crash recovery under concurrent inserts: three clients insert rows
# into a table with two lhnsw indexes (float32 L2; sq8 L1), each
# insert its own transaction, and the server is stopped with "immediate"
# (no checkpoint, WAL replay at restart) while they run, so inserts are cut
# between their WAL records (node + metapage, then one record per link back).
# After each restart:
#   - libravdb_index_check is clean on every index (a node of a cut insert
#     may be unreachable: reported, not an error);
#   - every row a client saw committed is in the table;
#   - every row is found by an index search for its own vector: ORDER BY
#     v <op> own vector LIMIT 1 returns a row at distance 0;
#   - top-10 queries through each index match the exact answers within a
#     recall floor;
#   - inserts work and are found.
# Three cycles, with a DELETE + VACUUM between them so that later inserts
# (and crashes) reuse freed slots.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use LibraVDB::Test qw(new_node log_has_no_crash);

my $node = new_node('crash');

# vec(seed): a deterministic 24-dim vector, different for every seed.
$node->safe_psql('postgres', q{
	CREATE FUNCTION vec(seed bigint) RETURNS lvector LANGUAGE sql IMMUTABLE
	  AS $$ SELECT array_agg(sin(seed * 0.7311 + j * 1.3 + (seed % 101) * j * 0.017)::real ORDER BY j)::lvector
	        FROM generate_series(1, 24) j $$;
	CREATE SEQUENCE ids;
	CREATE TABLE t (id bigint PRIMARY KEY, v lvector(24));
	INSERT INTO t SELECT i, vec(i) FROM (SELECT nextval('ids') i FROM generate_series(1, 1500)) s;
	CREATE INDEX t_l2 ON t USING lhnsw (v lvector_l2_ops);
	CREATE INDEX t_l1_sq8 ON t USING lhnsw (v lvector_l1_ops) WITH (quantizer = 'sq8');
});

my %indexes = (t_l2 => '<->', t_l1_sq8 => '<+>');

# One client: a server-side loop, a transaction per row, a NOTICE after each
# COMMIT naming the row; it runs until the server goes down (or 30 s pass).
sub start_client
{
	my $sql = q{DO $$ DECLARE i bigint; t0 timestamptz := clock_timestamp(); BEGIN
		FOR n IN 1 .. 1000000 LOOP
			EXIT WHEN clock_timestamp() > t0 + interval '30 s';
			i := nextval('ids');
			INSERT INTO t VALUES (i, vec(i)); COMMIT; RAISE NOTICE 'committed %', i;
			PERFORM pg_sleep(0.002);
		END LOOP; END $$};
	my %c = (out => '', err => '');
	$c{h} = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', \undef, '>', \$c{out}, '2>', \$c{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return \%c;
}

sub count_rows { return $node->safe_psql('postgres', 'SELECT count(*) FROM t'); }

# Fixed queries: vectors of seeds no row has.
my @queries = map { "vec(" . (1_000_000 + 7919 * $_) . ")" } 1 .. 10;

sub check_recovered
{
	my ($when, $committed) = @_;

	my $checks = $node->safe_psql('postgres',
		join("\nUNION ALL\n", map { "SELECT '$_', libravdb_index_check('$_')->>'ok'" } sort keys %indexes));
	is($checks, join("\n", map { "$_|true" } sort keys %indexes), "$when: libravdb_index_check clean on every index");
	note("$when: $_ " . $node->safe_psql('postgres', "SELECT libravdb_index_check('$_')")) for sort keys %indexes;

	my $missing = @$committed
	  ? $node->safe_psql('postgres',
		"SELECT string_agg(c::text, ',') FROM unnest('{" . join(',', @$committed) . "}'::bigint[]) c"
		  . " WHERE NOT EXISTS (SELECT FROM t WHERE id = c)")
	  : '';
	is($missing, '', "$when: the " . scalar(@$committed) . " rows clients saw committed are there");

	for my $index (sort keys %indexes)
	{
		my $op = $indexes{$index};
		my $q = "SELECT r.id FROM t r WHERE (SELECT s.v $op r.v FROM t s ORDER BY s.v $op r.v LIMIT 1) IS DISTINCT FROM 0";
		like($node->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) $q"),
			qr/Index Scan using $index on t s/, "$when: own-vector search uses $index");
		# ef_search 100: the approximate search must not be what decides
		# whether a committed row is there (at the default 40 one row in a
		# thousand or so settles on a neighbour instead of its own copy).
		my $lost = $node->safe_psql('postgres',
			"SET enable_seqscan = off; SET enable_bitmapscan = off; SET libravdb.hnsw_ef_search = 100; "
			  . "SELECT string_agg(id::text, ',') FROM ($q) x");
		is($lost, '', "$when: every row is found at distance 0 by a search for its own vector through $index");

		my ($hit, $total) = (0, 0);
		for my $qv (@queries)
		{
			my $sql = "SELECT id FROM t ORDER BY v $op $qv LIMIT 10";
			my %exact = map { $_ => 1 } split /\n/,
			  $node->safe_psql('postgres', "SET enable_indexscan = off; SET enable_bitmapscan = off; $sql");
			my @got = split /\n/, $node->safe_psql('postgres', "SET enable_seqscan = off; $sql");
			$hit += grep { $exact{$_} } @got;
			$total += 10;
		}
		note(sprintf('%s: %s recall@10 %.3f', $when, $index, $hit / $total));
		cmp_ok($hit / $total, '>=', 0.85, "$when: top-10 through $index within the recall floor");
	}

	my $id = $node->safe_psql('postgres', q{
		SELECT nextval('ids') AS i \gset
		INSERT INTO t VALUES (:i, vec(:i));
		SELECT :i});
	is($node->safe_psql('postgres',
			"SET enable_seqscan = off; SELECT (SELECT id FROM t ORDER BY v <-> vec($id) LIMIT 1),"
			  . " (SELECT id FROM t ORDER BY v <+> vec($id) LIMIT 1)"),
		"$id|$id", "$when: a new row is found through every index");
	push @$committed, $id;
}

my @committed;
check_recovered('before any crash', \@committed);

for my $cycle (1 .. 3)
{
	my $n = count_rows();
	my @clients = map { start_client() } 1 .. 3;
	for (my $waited = 0; $waited < 20_000; $waited += 20)
	{
		last if count_rows() >= $n + 200;
		usleep(20_000);
	}
	$node->stop('immediate');

	my $seen = 0;
	for my $c (@clients)
	{
		$c->{h}->finish;    # psql exits non-zero: its server went away
		like($c->{err}, qr/server closed the connection|terminating connection|connection to server was lost/,
			"cycle $cycle: a client was still inserting at the crash");
		my @ids = $c->{err} =~ /NOTICE:  committed (\d+)/g;
		push @committed, @ids;
		$seen += @ids;
	}
	cmp_ok($seen, '>', 0, "cycle $cycle: clients committed rows");
	note("cycle $cycle: $seen rows committed");

	$node->start;
	check_recovered("after crash $cycle", \@committed);

	if ($cycle < 3)
	{
		$node->safe_psql('postgres', 'DELETE FROM t WHERE id % 4 = 1');
		$node->safe_psql('postgres', 'VACUUM t');
		@committed = grep { $_ % 4 != 1 } @committed;
		cmp_ok($node->safe_psql('postgres', q{SELECT libravdb_index_info('t_l2')->>'free_slots'}), '>', 0,
			"cycle $cycle: VACUUM left free slots");
		check_recovered("after DELETE and VACUUM $cycle", \@committed);
	}
}

$node->stop;
log_has_no_crash($node);

done_testing();
