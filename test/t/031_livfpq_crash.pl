# livfpq crash recovery under concurrent writes: three clients insert,
# update (new vectors, sometimes NULL) and delete rows of a table with two
# livfpq indexes (float L2 with 48-byte codes, so lists grow by pages while
# they run; cosine with 4-bit codes), each change its own transaction, some
# inserts rolled back, while a fourth runs VACUUM over and over; the server
# is stopped with "immediate" (no checkpoint, WAL replay at restart) at a
# random moment, several times. After each restart:
#   - libravdb_index_check is clean on every index;
#   - the table holds what the clients saw committed: each client owns its
#     rows and announces every change before and after its COMMIT, so only
#     the change a client was making at the crash may have gone either way;
#   - every row is found by an index search for its own vector, at every
#     list probed: itself first, at distance 0 under L2 (searched with
#     rerank = 30 first; a row missed there is searched again with every
#     candidate re-ranked, and only a miss there fails);
#   - an unlimited index scan at full probes and rerank returns each row of
#     the table once, and no row that is not in it (deleted, rolled back or
#     replaced by an update);
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

my $cycles = 5;
# The moments of the crashes are random; the seed is printed so a failure
# can be replayed (LIBRAVDB_CRASH_SEED=...).
my $seed = $ENV{LIBRAVDB_CRASH_SEED} // int(rand(1_000_000));
srand($seed);
note("crash timing seed $seed");

my $node = new_node('crash', conf => "shared_buffers = 32MB\nmax_parallel_maintenance_workers = 0\n");

# vec(seed, dims): a deterministic vector, different for every seed.
# A row's seed names its vector (0: NULL); ids and seeds never repeat.
$node->safe_psql('postgres', q{
	CREATE EXTENSION pageinspect;
	CREATE FUNCTION vec(seed bigint, dims int) RETURNS lvector LANGUAGE sql IMMUTABLE
	  AS $$ SELECT array_agg(sin(seed * 0.7311 + j * 1.3 + (seed % 101) * j * 0.017)::real ORDER BY j)::lvector
	        FROM generate_series(1, dims) j $$;
	CREATE SEQUENCE ids START 2001;
	CREATE SEQUENCE seeds START 1000001;
	CREATE TABLE t (id bigint PRIMARY KEY, owner int NOT NULL, seed bigint NOT NULL, v lvector(48))
	  WITH (autovacuum_enabled = off);
	INSERT INTO t SELECT i, i % 3, i, vec(i, 48) FROM generate_series(1, 2000) i;
	UPDATE t SET seed = 0, v = NULL WHERE id IN (10, 1000);
	CREATE INDEX t_l2 ON t USING livfpq (v lvector_l2_ops) WITH (lists = 16, pq_m = 48);
	CREATE INDEX t_cos4 ON t USING livfpq (v lvector_cosine_ops) WITH (lists = 12, pq_m = 12, pq_bits = 4);
});

# index => operator
my %indexes = (t_l2 => '<->', t_cos4 => '<=>');
my $full = 'SET libravdb.ivfpq_probes = 32768; SET libravdb.ivfpq_rerank = 100000;';
my $noseq = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';

# What the table should hold: id => seed. Writer c owns the rows with
# owner = c (id % 3 for the first 2000 rows).
my %state = map { $_ => $_ } 1 .. 2000;
$state{10} = $state{1000} = 0;

# A writer: a server-side loop over its own rows, a transaction per change,
# a NOTICE before it starts and after its COMMIT; it runs until the server
# goes down (or 60 s pass).
sub start_writer
{
	my ($c) = @_;
	my $sql = qq{DO \$\$ DECLARE i bigint; s bigint; x bigint; r float8; t0 timestamptz := clock_timestamp(); BEGIN
		FOR n IN 1 .. 1000000 LOOP
			EXIT WHEN clock_timestamp() > t0 + interval '60 s';
			r := random();
			IF r < 0.45 THEN
				i := nextval('ids'); s := nextval('seeds');
				RAISE NOTICE 'begin insert % %', i, s;
				INSERT INTO t VALUES (i, $c, s, vec(s, 48)); COMMIT;
				RAISE NOTICE 'done insert % %', i, s;
			ELSIF r < 0.5 THEN
				i := nextval('ids'); s := nextval('seeds');
				INSERT INTO t VALUES (i, $c, s, vec(s, 48)); ROLLBACK;
			ELSE
				SELECT id INTO x FROM t WHERE owner = $c AND id >= (random() * (SELECT last_value FROM ids))::bigint
				 ORDER BY id LIMIT 1;
				CONTINUE WHEN x IS NULL;
				IF r < 0.75 THEN
					s := CASE WHEN random() < 0.05 THEN 0 ELSE nextval('seeds') END;
					RAISE NOTICE 'begin update % %', x, s;
					UPDATE t SET seed = s, v = CASE WHEN s = 0 THEN NULL ELSE vec(s, 48) END WHERE id = x; COMMIT;
					RAISE NOTICE 'done update % %', x, s;
				ELSE
					RAISE NOTICE 'begin delete % 0', x;
					DELETE FROM t WHERE id = x; COMMIT;
					RAISE NOTICE 'done delete % 0', x;
				END IF;
			END IF;
			PERFORM pg_sleep(0.0002);
		END LOOP; END \$\$};
	my %c = (owner => $c, out => '', err => '');
	$c{h} = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', \undef, '>', \$c{out}, '2>', \$c{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return \%c;
}

# VACUUM, again and again, until the server goes down.
sub start_vacuumer
{
	my $script = "VACUUM t;\nSELECT pg_sleep(0.1);\n" x 600;
	my %c = (owner => 'vacuum', out => '', err => '');
	$c{h} = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres') ],
		'<', \$script, '>', \$c{out}, '2>', \$c{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return \%c;
}

# Applies a writer's announced changes to %state. Returns the change it was
# making at the crash, if any: [id, seed before, seed after] (undef: no row).
sub apply_notices
{
	my ($c) = @_;
	my $open;
	my $changes = 0;
	while ($c->{err} =~ /NOTICE:  (begin|done) (insert|update|delete) (\d+) (\d+)/g)
	{
		my ($when, $op, $id, $s) = ($1, $2, $3, $4);
		my $after = $op eq 'delete' ? undef : $s;
		if ($when eq 'begin')
		{
			$open = [ $id, $state{$id}, $after ];
			next;
		}
		die "client $c->{owner}: 'done' without 'begin' for $op $id" unless $open && $open->[0] == $id;
		if (defined $after) { $state{$id} = $after; } else { delete $state{$id}; }
		$changes++;
		undef $open;
	}
	return ($open, $changes);
}

my ($rows_checked, $cycles_done) = (0, 0);

# Fixed queries: vectors of seeds no row has.
my @queries = map { "vec(" . (5_000_000 + 7919 * $_) . ", 48)" } 1 .. 8;

sub check_recovered
{
	my ($when, $open) = @_;

	my $checks = $node->safe_psql('postgres',
		join("\nUNION ALL\n", map { "SELECT '$_', libravdb_index_check('$_')->>'ok'" } sort keys %indexes));
	is($checks, join("\n", map { "$_|true" } sort keys %indexes), "$when: libravdb_index_check clean on every index");

	# The table against the clients' view; the open changes go either way.
	my %have = map { split /\|/ } split /\n/, $node->safe_psql('postgres', 'SELECT id, seed FROM t');
	for my $o (@$open)
	{
		my ($id, $before, $after) = @$o;
		my $now = $have{$id};
		my $ok = (!defined $now && (!defined $before || !defined $after))
		  || (defined $now && ((defined $before && $now == $before) || (defined $after && $now == $after)));
		ok($ok, "$when: row $id, changed at the crash, is as before or after the change");
		if (defined $now) { $state{$id} = $now; } else { delete $state{$id}; }
	}
	my $diff = '';
	for my $id (sort { $a <=> $b } keys %{ { %state, %have } })
	{
		my ($want, $got) = ($state{$id} // 'none', $have{$id} // 'none');
		$diff .= "id $id: seed $got, clients saw $want\n" if $want ne $got;
	}
	is($diff, '', "$when: the table holds what the clients saw committed (" . scalar(keys %have) . ' rows)');

	for my $index (sort keys %indexes)
	{
		my $op = $indexes{$index};
		# The first row of the search, "id:distance", against the row's own
		# (under L2 its distance to itself is 0; no two rows share a vector).
		my $own = "SELECT r.id FROM t r WHERE r.v IS NOT NULL AND (SELECT s.id || ':' || (s.v $op r.v) FROM t s"
		  . " ORDER BY s.v $op r.v LIMIT 1) IS DISTINCT FROM r.id || ':' || (r.v $op r.v)";
		$own .= " || CASE WHEN (r.v $op r.v) = 0 THEN '' ELSE ' (not 0)' END" if $op eq '<->';
		like($node->safe_psql('postgres', "$noseq EXPLAIN (COSTS OFF) $own"),
			qr/Index Scan using $index on t s/, "$when: own-vector search uses $index");
		my $lost = $node->safe_psql('postgres',
			"$noseq $full SET libravdb.ivfpq_rerank = 30; SELECT string_agg(id::text, ',') FROM ($own) x");
		if ($lost ne '')
		{
			note("$when: $index: rows not first at rerank 30: $lost; again with every candidate re-ranked");
			$lost = $node->safe_psql('postgres',
				"$noseq $full SELECT string_agg(id::text, ',') FROM ($own AND r.id IN ($lost)) x");
		}
		is($lost, '', "$when: every row is found first by a search for its own vector through $index");
		$rows_checked += $node->safe_psql('postgres', 'SELECT count(v) FROM t');

		# An unlimited scan: each row once, none that the table lacks.
		my $all = "SELECT id FROM t ORDER BY v $op $queries[0]";
		like($node->safe_psql('postgres', "$noseq EXPLAIN (COSTS OFF) $all"),
			qr/Index Scan using $index on t/, "$when: unlimited scan uses $index");
		is($node->safe_psql('postgres', "$noseq $full
				SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' distinct, '
				    || count(*) FILTER (WHERE NOT EXISTS (SELECT FROM t x WHERE x.id = s.id)) || ' not in t'
				FROM ($all) s"),
			scalar(keys %have) . ' rows, ' . scalar(keys %have) . ' distinct, 0 not in t',
			"$when: an unlimited scan of $index returns every row once and nothing else");

		my $wrong = '';
		for my $q (@queries)
		{
			my $sql = "SELECT string_agg(id || '=' || d, ',') FROM (SELECT id, v $op $q AS d FROM t ORDER BY v $op $q LIMIT 10) s";
			my $exact = $node->safe_psql('postgres', "SET enable_indexscan = off; SET enable_bitmapscan = off; $sql");
			my $got = $node->safe_psql('postgres', "$noseq $full $sql");
			$wrong .= "$q\n  index: $got\n  exact: $exact\n" if $got ne $exact;
		}
		is($wrong, '', "$when: top-10 through $index at full probes and rerank are the exact answers");
	}

	# The recovered indexes take a new row, found at once.
	my $id = $node->safe_psql('postgres', q{
		SELECT nextval('ids') AS i, nextval('seeds') AS s \gset
		INSERT INTO t VALUES (:i, 0, :s, vec(:s, 48));
		SELECT :i || '|' || :s});
	my ($new, $s) = split /\|/, $id;
	is($node->safe_psql('postgres',
			"$noseq SELECT (SELECT id FROM t ORDER BY v <-> vec($s, 48) LIMIT 1), (SELECT id FROM t ORDER BY v <=> vec($s, 48) LIMIT 1)"),
		"$new|$new", "$when: a new row is found through every index");
	$state{$new} = $s;
}

check_recovered('before any crash', []);
my %pages_before = map { $_ => $node->safe_psql('postgres', "SELECT libravdb_index_check('$_')->>'pages'") } sort keys %indexes;

for my $cycle (1 .. $cycles)
{
	my @writers = map { start_writer($_) } 0 .. 2;
	my $vacuumer = start_vacuumer();
	my $wait = 0.4 + rand(1.2);
	note(sprintf('cycle %d: crash after %.2f s', $cycle, $wait));
	usleep(int($wait * 1_000_000));
	$node->stop('immediate');

	my (@open, $changes);
	for my $c (@writers)
	{
		$c->{h}->finish;    # psql exits non-zero: its server went away
		like($c->{err}, qr/server closed the connection|terminating connection|connection to server was lost/,
			"cycle $cycle: writer $c->{owner} was still running at the crash");
		my ($o, $n) = apply_notices($c);
		push @open, $o if $o;
		$changes += $n;
	}
	$vacuumer->{h}->finish;
	like($vacuumer->{err}, qr/server closed the connection|terminating connection|connection to server was lost/,
		"cycle $cycle: the VACUUM client was still running at the crash");
	cmp_ok($changes, '>', 0, "cycle $cycle: writers committed changes");
	note("cycle $cycle: $changes changes committed, " . scalar(@open) . ' in flight at the crash');

	$node->start;
	check_recovered("after crash $cycle", \@open);
	$cycles_done++;
}
for my $index (sort keys %indexes)
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
$cycles_done++;

note("$cycles_done crash cycles; $rows_checked own-vector searches (rows times indexes) checked after the random ones");
$node->stop;
log_has_no_crash($node);

done_testing();
