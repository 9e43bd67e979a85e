# lflat crash recovery under concurrent inserts: three clients insert rows
# into tables with lflat indexes, each insert its own transaction, and the
# server is stopped with "immediate" (no checkpoint, WAL replay at restart)
# while they run. After each restart:
#   - libravdb_index_check is clean on every index;
#   - every row a client saw committed is in the table;
#   - every row is found by an index search for its own vector (the nearest
#     row is itself, at distance 0);
#   - an unlimited index scan returns exactly the table's rows (entries of
#     transactions cut by the crash point at dead tuples and are skipped);
#   - inserts work.
# Three cycles, with a DELETE + VACUUM between them so that later inserts
# (and crashes) reuse freed slots.
#
# Indexes: t64 (64 dims) has a float32 L2 index and an sq8 L1 index; t7k
# has 7000 dimensions, so an entry (28 kB) covers 4 or 5 pages and every
# insert into it is a sequence of generic WAL records (at most 4 pages
# each) that a crash can cut anywhere.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use LibraVDB::Test qw(new_node log_has_no_crash);

my $node = new_node('crash');

# vec(seed, dims): a deterministic vector, different for every seed.
$node->safe_psql('postgres', q{
	CREATE FUNCTION vec(seed bigint, dims int) RETURNS lvector LANGUAGE sql IMMUTABLE
	  AS $$ SELECT array_agg(sin(seed * 0.7311 + j * 1.3 + (seed % 101) * j * 0.017)::real ORDER BY j)::lvector
	        FROM generate_series(1, dims) j $$;
	CREATE SEQUENCE ids;
	CREATE TABLE t64 (id bigint PRIMARY KEY, v lvector(64));
	CREATE TABLE t7k (id bigint PRIMARY KEY, v lvector(7000));
	INSERT INTO t64 SELECT i, vec(i, 64) FROM (SELECT nextval('ids') i FROM generate_series(1, 200)) s;
	INSERT INTO t7k SELECT i, vec(i, 7000) FROM (SELECT nextval('ids') i FROM generate_series(1, 10)) s;
	CREATE INDEX t64_l2 ON t64 USING lflat (v lvector_l2_ops);
	CREATE INDEX t64_l1_sq8 ON t64 USING lflat (v lvector_l1_ops) WITH (quantizer = 'sq8');
	CREATE INDEX t7k_l2 ON t7k USING lflat (v lvector_l2_ops);
});
is($node->safe_psql('postgres', q{SELECT libravdb_index_info('t7k_l2')->>'entry_bytes'}), 28016,
	't7k entries are 28016 bytes: more than three pages');

# index => [table, operator]
my %indexes = (t64_l2 => [ 't64', '<->' ], t64_l1_sq8 => [ 't64', '<+>' ], t7k_l2 => [ 't7k', '<->' ]);

# One client: a server-side loop, a transaction per row, a NOTICE after each
# COMMIT naming the row; it runs until the server goes down (or 30 s pass).
# $what: "t64", "t7k" or "mixed" (a 7000-dim row after every four small
# ones). Small rows come with a 2 ms pause, or thousands would pile up
# between two polls and make the checks slow.
sub start_client
{
	my ($what) = @_;
	my $small = q{INSERT INTO t64 VALUES (i, vec(i, 64)); COMMIT; RAISE NOTICE 'committed t64 %', i; PERFORM pg_sleep(0.002);};
	my $big = q{INSERT INTO t7k VALUES (i, vec(i, 7000)); COMMIT; RAISE NOTICE 'committed t7k %', i;};
	my $body = {
		t64 => $small,
		t7k => $big,
		mixed => "IF n % 5 = 0 THEN $big ELSE $small END IF;",
	}->{$what};
	my $sql = qq{DO \$\$ DECLARE i bigint; t0 timestamptz := clock_timestamp(); BEGIN
		FOR n IN 1 .. 1000000 LOOP
			EXIT WHEN clock_timestamp() > t0 + interval '30 s';
			i := nextval('ids');
			$body
		END LOOP; END \$\$};
	my %c = (what => $what, out => '', err => '');
	$c{h} = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', \undef, '>', \$c{out}, '2>', \$c{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return \%c;
}

# The ids a client was told were committed: { t64 => [...], t7k => [...] }.
sub committed_ids
{
	my ($c) = @_;
	my %ids = (t64 => [], t7k => []);
	push @{ $ids{$1} }, $2 while $c->{err} =~ /NOTICE:  committed (t64|t7k) (\d+)/g;
	return \%ids;
}

# (rows in t64, rows in t7k)
sub count_rows
{
	return split /\|/, $node->safe_psql('postgres', 'SELECT (SELECT count(*) FROM t64), (SELECT count(*) FROM t7k)');
}

# Checks after a restart; $committed: { table => [ids] } the clients saw committed.
sub check_recovered
{
	my ($when, $committed) = @_;

	my $checks = $node->safe_psql('postgres',
		join("\nUNION ALL\n", map { "SELECT '$_', libravdb_index_check('$_')->>'ok'" } sort keys %indexes));
	is($checks, join("\n", map { "$_|true" } sort keys %indexes), "$when: libravdb_index_check clean on every index");

	for my $table ('t64', 't7k')
	{
		my @ids = @{ $committed->{$table} };
		my $missing = @ids
		  ? $node->safe_psql('postgres',
			"SELECT string_agg(c::text, ',') FROM unnest('{" . join(',', @ids) . "}'::bigint[]) c"
			  . " WHERE NOT EXISTS (SELECT FROM $table WHERE id = c)")
		  : '';
		is($missing, '', "$when: the " . scalar(@ids) . " rows clients saw committed to $table are there");
	}

	for my $index (sort keys %indexes)
	{
		my ($table, $op) = @{ $indexes{$index} };
		# For each row r, the index's nearest row to r.v must be r itself
		# (vec() gives every id a different vector).
		my $plan = $node->safe_psql('postgres',
			"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT r.id FROM $table r"
			  . " WHERE (SELECT s.id FROM $table s ORDER BY s.v $op r.v LIMIT 1) IS DISTINCT FROM r.id");
		like($plan, qr/Index Scan using $index on $table s/, "$when: own-vector search uses $index");
		my $lost = $node->safe_psql('postgres', "SET enable_seqscan = off; SET enable_bitmapscan = off;\n"
			  . "SELECT string_agg(r.id::text, ',') FROM $table r WHERE (SELECT s.id FROM $table s ORDER BY s.v $op r.v LIMIT 1)"
			  . " IS DISTINCT FROM r.id");
		is($lost, '', "$when: every row of $table is its own nearest neighbour through $index");

		my $all = "SELECT count(*) FROM (SELECT id FROM $table ORDER BY v $op (SELECT v FROM $table ORDER BY id LIMIT 1)) s";
		like($node->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) $all"),
			qr/Index Scan using $index on $table/, "$when: unlimited count uses $index");
		is($node->safe_psql('postgres', "SET enable_seqscan = off; $all"),
			$node->safe_psql('postgres', "SELECT count(*) FROM $table"),
			"$when: an unlimited scan of $index returns every row of $table");
	}

	# The recovered indexes take new rows, found at once.
	my $id = $node->safe_psql('postgres', q{
		SELECT nextval('ids') AS i \gset
		INSERT INTO t64 VALUES (:i, vec(:i, 64));
		INSERT INTO t7k VALUES (:i, vec(:i, 7000));
		SELECT :i});
	is($node->safe_psql('postgres',
			"SET enable_seqscan = off; SELECT (SELECT id FROM t64 ORDER BY v <-> vec($id, 64) LIMIT 1),"
			  . " (SELECT id FROM t64 ORDER BY v <+> vec($id, 64) LIMIT 1), (SELECT id FROM t7k ORDER BY v <-> vec($id, 7000) LIMIT 1)"),
		"$id|$id|$id", "$when: a new row is found through every index");
}

check_recovered('before any crash', { t64 => [], t7k => [] });

my %committed = (t64 => [], t7k => []);
for my $cycle (1 .. 3)
{
	my ($n64, $n7k) = count_rows();
	my @clients = map { start_client($_) } ('t64', 'mixed', 't7k');

	# Let them commit a few hundred rows, then pull the plug.
	my ($target64, $target7k) = ($n64 + 150, $n7k + 30);
	for (my $waited = 0; $waited < 20_000; $waited += 20)
	{
		my ($m64, $m7k) = count_rows();
		last if $m64 >= $target64 && $m7k >= $target7k;
		usleep(20_000);
	}
	$node->stop('immediate');

	my %seen = (t64 => 0, t7k => 0);
	for my $c (@clients)
	{
		$c->{h}->finish;    # psql exits non-zero: its server went away
		like($c->{err}, qr/server closed the connection|terminating connection|connection to server was lost/,
			"cycle $cycle: client $c->{what} was still inserting at the crash");
		my $ids = committed_ids($c);
		for my $table ('t64', 't7k')
		{
			push @{ $committed{$table} }, @{ $ids->{$table} };
			$seen{$table} += @{ $ids->{$table} };
		}
	}
	cmp_ok($seen{t64}, '>', 0, "cycle $cycle: clients committed rows to t64");
	cmp_ok($seen{t7k}, '>', 0, "cycle $cycle: clients committed rows to t7k");
	note("cycle $cycle: $seen{t64} rows committed to t64, $seen{t7k} to t7k");

	$node->start;
	check_recovered("after crash $cycle", \%committed);

	# Free slots for the next cycle's inserts to reuse.
	if ($cycle < 3)
	{
		$node->safe_psql('postgres', 'DELETE FROM t64 WHERE id % 4 = 1; DELETE FROM t7k WHERE id % 4 = 1');
		$node->safe_psql('postgres', 'VACUUM t64');
		$node->safe_psql('postgres', 'VACUUM t7k');
		@{ $committed{$_} } = grep { $_ % 4 != 1 } @{ $committed{$_} } for ('t64', 't7k');
		cmp_ok($node->safe_psql('postgres', q{SELECT libravdb_index_info('t64_l2')->>'free_slots'}), '>', 0,
			"cycle $cycle: VACUUM left free slots");
		check_recovered("after DELETE and VACUUM $cycle", \%committed);
	}
}

$node->stop;
log_has_no_crash($node);

done_testing();
