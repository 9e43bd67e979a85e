# Crash recovery under concurrent writes, for any of the three access
# methods (test/t/011_lflat_crash.pl, 021_lhnsw_crash.pl, 031_livfpq_crash.pl).
#
#   my $crash = LibraVDB::Crash->new(node => $node, tables => [...], indexes => [...], ...);
#   $crash->check('before any crash');
#   $crash->cycle($_) for 1 .. 6;        # writers, a crash, a restart, check()
#   $crash->summary;
#
# Tables: each is (id bigint PRIMARY KEY, owner int, seed bigint, v lvector(dims)),
# filled with `rows` rows; a row's seed names its vector, vec(seed, dims), and
# seed 0 means NULL. Ids (sequence "ids") and seeds (sequence "seeds") never
# repeat, and vec() gives every seed its own vector, so no two rows share one.
#
# A cycle starts three writers and a VACUUM loop, waits a random time and
# stops the server, by turns:
#   immediate  pg_ctl stop -m immediate: every process gets SIGQUIT and exits
#              wherever it is; no checkpoint, WAL replay at restart;
#   kill9      SIGKILL of the postmaster alone: its children go on until they
#              notice (each writer finishes the change it is making and exits
#              at its next sleep, VACUUM at its next wait); shared buffers are
#              lost with the last of them;
#   kill9-all  SIGKILL of the postmaster and of every child at once (a power
#              cut for the processes; nothing runs a signal handler).
# Writer c changes only the rows with owner = c, one transaction per change
# (insert; insert rolled back; update to a new vector, sometimes NULL;
# delete), and announces each with a NOTICE before it starts and after its
# COMMIT (or ROLLBACK), so the test knows the table's contents except for the
# one change per writer in flight at the crash, which may have gone either
# way. After the restart, check():
#   - libravdb_index_check is clean on every index (and the test's
#     check_report hook accepts the report);
#   - each table holds exactly what the clients saw committed;
#   - every row with a vector is found first by an index search for its own
#     vector (ORDER BY v <op> own LIMIT 1), at distance 0 under L2 and L1;
#     the search runs with the `own` settings, and a row missed there is
#     searched again with `own_again` (if given): a miss there fails;
#   - an unlimited index scan returns no row twice and none the table lacks
#     (deleted, rolled back, replaced by an update), in non-decreasing
#     distance, and (with every_row) every row of the table;
#   - top-k answers through the index against an exact scan: equal, ids and
#     distances (recall => 'exact'), or recall@k at least `recall`;
#   - a new row is found through every index, at the default settings or
#     else with `own_again`.
# The crash timing seed is printed; LIBRAVDB_CRASH_SEED replays it (the
# writers' choices are seeded from it too, their interleaving is not). What
# each writer saw (its NOTICEs) goes to tmp_check/log/<test>_writers.log.

package LibraVDB::Crash;

use strict;
use warnings;

use Cwd qw(realpath);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $WRITERS = 3;
my @MODES   = qw(immediate kill9 immediate kill9-all);
my $GONE    = qr/server closed the connection|terminating connection|connection to server was lost/;

our $noseq = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
our $exact = 'SET enable_indexscan = off; SET enable_bitmapscan = off;';

# new(node => $node,
#     tables  => [ { name => 't', dims => 48, rows => 2000, nulls => [10, 1000], weight => 1 }, ... ],
#          (nulls: positions, 1-based, of rows whose vector is NULL; weight:
#           the share of the writers' changes that go to the table)
#     indexes => [ [ name, table, operator, 'USING ... (v opclass) WITH (...)' ], ... ],
#     own => 'SET ...;', own_again => 'SET ...;',   # own-vector search settings
#     scan => 'SET ...;',                           # unlimited scans and top-k
#     topk => 'SET ...;',                           # top-k only, after scan
#     recall => 'exact' | 0.9, k => 10, queries => 8,
#     every_row => 1,                               # unlimited scans return every row
#     check_report => sub { my ($crash, $when, $index, $report) = @_; ... },
#     own_vacuum => 1,        # rows missed with own_again: VACUUM, search again
#     vacuum_report => sub { my ($crash, $when, $index, $report) = @_; ... });
#          (after the checks: VACUUM every table, then libravdb_index_check's
#           report of each index to this hook)
sub new
{
	my ($class, %o) = @_;
	my $self = bless {
		own       => '',
		own_again => undef,
		scan      => '',
		topk      => '',
		recall    => 'exact',
		k         => 10,
		queries   => 8,
		every_row => 1,
		%o,
		rows_checked => 0,
		cycles_done  => 0,
		changes      => 0,
		in_flight    => 0,
		cut_inserts  => 0,
		modes_seen   => {},
	}, $class;

	$self->{seed} = $ENV{LIBRAVDB_CRASH_SEED} // int(rand(1_000_000));
	srand($self->{seed});
	note("crash timing seed $self->{seed} (replay: LIBRAVDB_CRASH_SEED=$self->{seed})");

	my $node = $self->{node};
	my $next_id = 1;
	my $sql = q{
		CREATE FUNCTION vec(seed bigint, dims int) RETURNS lvector LANGUAGE sql IMMUTABLE
		  AS $$ SELECT array_agg(sin(seed * 0.7311 + j * 1.3 + (seed % 101) * j * 0.017)::real ORDER BY j)::lvector
		        FROM generate_series(1, dims) j $$;
		CREATE SEQUENCE seeds START 1000001;
	};
	for my $t (@{ $self->{tables} })
	{
		my ($name, $dims, $rows) = @$t{qw(name dims rows)};
		my ($lo, $hi) = ($next_id, $next_id + $rows - 1);
		$sql .= "CREATE TABLE $name (id bigint PRIMARY KEY, owner int NOT NULL, seed bigint NOT NULL, v lvector($dims))"
		  . " WITH (autovacuum_enabled = off);\n"
		  . "INSERT INTO $name SELECT i, i % $WRITERS, i, vec(i, $dims) FROM generate_series($lo, $hi) i;\n";
		$self->{state}{$name} = { map { $_ => $_ } $lo .. $hi };
		for my $pos (@{ $t->{nulls} // [] })
		{
			my $id = $lo + $pos - 1;
			$sql .= "UPDATE $name SET seed = 0, v = NULL WHERE id = $id;\n";
			$self->{state}{$name}{$id} = 0;
		}
		$next_id = $hi + 1;
	}
	$sql .= "CREATE SEQUENCE ids START $next_id;\n";
	$sql .= "CREATE INDEX $_->[0] ON $_->[1] $_->[3];\n" for @{ $self->{indexes} };
	$node->safe_psql('postgres', $sql);

	$self->{table} = { map { $_->{name} => $_ } @{ $self->{tables} } };
	# Fixed queries: vectors of seeds no row has.
	$self->{query} = { map { my $d = $_->{dims}; ($_->{name} => [ map { "vec(" . (5_000_000 + 7919 * $_) . ", $d)" } 1 .. $self->{queries} ]) }
		  @{ $self->{tables} } };
	return $self;
}

sub node { return $_[0]{node} }
# Index entries the table's rows have had so far: its first rows, and one
# for each insert, update and rolled-back insert the writers completed (and
# the checks' new rows). Changes cut by a crash are not counted.
sub entries_written { my ($self, $table) = @_; return $self->{table}{$table}{rows} + ($self->{entries}{$table} // 0); }
# Changes in flight at the crashes so far that would have added a vector to
# the indexes (an insert, an update to a vector, an insert to be rolled back).
sub cut_inserts { return $_[0]{cut_inserts} }

# The writers' loop body for one table: $c is the writer (and owner).
sub _changes
{
	my ($t, $c) = @_;
	my ($name, $dims) = @$t{qw(name dims)};
	return qq{
			r := random();
			IF r < 0.45 THEN
				i := nextval('ids'); s := nextval('seeds');
				RAISE NOTICE 'begin insert $name % %', i, s;
				INSERT INTO $name VALUES (i, $c, s, vec(s, $dims)); COMMIT;
				RAISE NOTICE 'done insert $name % %', i, s;
			ELSIF r < 0.5 THEN
				i := nextval('ids'); s := nextval('seeds');
				RAISE NOTICE 'begin rollback $name % %', i, s;
				INSERT INTO $name VALUES (i, $c, s, vec(s, $dims)); ROLLBACK;
				RAISE NOTICE 'done rollback $name % %', i, s;
			ELSE
				SELECT id INTO x FROM $name WHERE owner = $c AND id >= (random() * (SELECT last_value FROM ids))::bigint
				 ORDER BY id LIMIT 1;
				IF x IS NULL THEN
					SELECT id INTO x FROM $name WHERE owner = $c ORDER BY id LIMIT 1;
				END IF;
				IF x IS NULL THEN
					NULL;
				ELSIF r < 0.75 THEN
					s := CASE WHEN random() < 0.05 THEN 0 ELSE nextval('seeds') END;
					RAISE NOTICE 'begin update $name % %', x, s;
					UPDATE $name SET seed = s, v = CASE WHEN s = 0 THEN NULL ELSE vec(s, $dims) END WHERE id = x; COMMIT;
					RAISE NOTICE 'done update $name % %', x, s;
				ELSE
					RAISE NOTICE 'begin delete $name % 0', x;
					DELETE FROM $name WHERE id = x; COMMIT;
					RAISE NOTICE 'done delete $name % 0', x;
				END IF;
			END IF;};
}

sub _psql
{
	my ($self, $who, @args) = @_;
	my %c = (owner => $who, out => '', err => '');
	$c{h} = IPC::Run::start([ 'psql', '-X', '-q', '-d', $self->{node}->connstr('postgres'), @args ],
		'<', \undef, '>', \$c{out}, '2>', \$c{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return \%c;
}

# A writer: a server-side loop over its own rows until the server goes down
# (or 60 s pass). Its random() is seeded from the crash seed.
sub _start_writer
{
	my ($self, $c, $cycle) = @_;
	my @tables = @{ $self->{tables} };
	my $total = 0;
	$total += $_->{weight} // 1 for @tables;
	my ($body, $acc) = ('', 0);
	for my $i (0 .. $#tables)
	{
		$acc += ($tables[$i]{weight} // 1) / $total;
		my $cond = $i == $#tables ? 'ELSE' : ($i == 0 ? 'IF' : 'ELSIF') . sprintf(' w < %.6f THEN', $acc);
		$body .= "$cond\n" . _changes($tables[$i], $c) . "\n";
	}
	$body = @tables == 1 ? _changes($tables[0], $c) : "w := random();\n$body END IF;";
	my $setseed = (($self->{seed} * 31 + $cycle * 7 + $c) % 999_983) / 999_983.0;
	my $sql = qq{DO \$\$ DECLARE i bigint; s bigint; x bigint; r float8; w float8; t0 timestamptz := clock_timestamp(); BEGIN
		PERFORM setseed($setseed);
		FOR n IN 1 .. 1000000 LOOP
			EXIT WHEN clock_timestamp() > t0 + interval '60 s';
			$body
			PERFORM pg_sleep(0.0002);
		END LOOP; END \$\$};
	return $self->_psql($c, '-c', $sql);
}

# VACUUM of every table, again and again, until the server goes down.
sub _start_vacuumer
{
	my ($self) = @_;
	my $script = join('', map { "VACUUM $_->{name};\n" } @{ $self->{tables} }) . "SELECT pg_sleep(0.1);\n";
	# From a file: IPC::Run feeds a scalar to stdin only while pumped.
	my $file = $self->{node}->basedir . '/vacuum_loop.sql';
	PostgreSQL::Test::Utils::append_to_file($file, $script x 600) unless -e $file;
	return $self->_psql('vacuum', '-f', $file);
}

# Applies a writer's announced changes to the state. Returns the change it
# was making at the crash, if any: [table, id, seed before, seed after]
# (undef: no row), and the number of changes it completed.
sub _apply_notices
{
	my ($self, $c) = @_;
	my $open;
	my $changes = 0;
	while ($c->{err} =~ /NOTICE:  (begin|done) (insert|rollback|update|delete) (\w+) (\d+) (\d+)/g)
	{
		my ($when, $op, $table, $id, $s) = ($1, $2, $3, $4, $5);
		my $state = $self->{state}{$table};
		if ($when eq 'begin')
		{
			die "client $c->{owner}: 'begin' while a change is open" if $open;
			my $after = ($op eq 'delete' || $op eq 'rollback') ? undef : $s;
			$open = [ $table, $id, $state->{$id}, $after, ($op eq 'delete' || $s == 0) ? 0 : 1 ];
			next;
		}
		die "client $c->{owner}: 'done' without 'begin' for $op $id" unless $open && $open->[1] == $id;
		if (defined $open->[3]) { $state->{$id} = $open->[3]; } else { delete $state->{$id}; }
		$self->{entries}{$table}++ unless $op eq 'delete';
		$changes++;
		undef $open;
	}
	return ($open, $changes);
}

# The server's processes: those whose working directory is the data
# directory (every child of the postmaster has it, and nothing else here).
sub _server_pids
{
	my ($self) = @_;
	my $dir = realpath($self->{node}->data_dir);
	opendir(my $dh, '/proc') or return ();
	my @pids;
	for my $p (grep { /^\d+$/ } readdir $dh)
	{
		my $cwd = readlink("/proc/$p/cwd");
		push @pids, $p if defined $cwd && $cwd eq $dir && $p != $$;
	}
	closedir $dh;
	return @pids;
}

# Stops the server the way $mode says; returns once no process of it is left.
sub crash
{
	my ($self, $mode) = @_;
	my $node = $self->{node};
	if ($mode eq 'immediate')
	{
		$node->stop('immediate');
		return;
	}
	die "unknown crash mode $mode" unless $mode eq 'kill9' || $mode eq 'kill9-all';
	my ($postmaster) = PostgreSQL::Test::Utils::slurp_file($node->data_dir . '/postmaster.pid') =~ /^(\d+)/;
	my @children = grep { $_ != $postmaster } $self->_server_pids;
	$node->kill9;
	kill 'KILL', @children if $mode eq 'kill9-all';
	my $t0 = time;
	# The children first: a new postmaster refuses to start while any of
	# them is attached to the old shared memory.
	while (my @left = $self->_server_pids)
	{
		kill 'KILL', @left if $mode eq 'kill9-all';
		die "server processes @left still there " . (time - $t0) . " s after SIGKILL of the postmaster"
		  if time - $t0 > $PostgreSQL::Test::Utils::timeout_default;
		usleep(10_000);
	}
	my $gone = time - $t0;
	# Then the postmaster: until its parent (init, here) reaps it, its PID
	# is taken, and a new postmaster would take the lock file for a running
	# server's. A zombie is dead: its lock files can go.
	while (kill 0, $postmaster)
	{
		my $stat = '';
		if (open my $fh, '<', "/proc/$postmaster/stat") { $stat = <$fh> // ''; close $fh; }
		if ($stat =~ /^\d+ \(.*\) Z /s)
		{
			unlink($node->data_dir . '/postmaster.pid') or die "unlink postmaster.pid: $!";
			unlink($node->host . '/.s.PGSQL.' . $node->port . '.lock');
			last;
		}
		die "postmaster $postmaster still there after SIGKILL" if time - $t0 > $PostgreSQL::Test::Utils::timeout_default;
		usleep(10_000);
	}
	note(sprintf('%s: the last child was gone after %.2f s, the postmaster after %.2f s', $mode, $gone, time - $t0));
}

# One cycle: writers and VACUUM, a crash at a random moment, a restart and
# check().
sub cycle
{
	my ($self, $cycle, %o) = @_;
	my $node = $self->{node};
	my $mode = $o{mode} // $MODES[ ($cycle - 1) % @MODES ];
	my @writers = map { $self->_start_writer($_, $cycle) } 0 .. $WRITERS - 1;
	my $vacuumer = $self->_start_vacuumer;
	my $wait = 0.4 + rand(1.2);
	note(sprintf('cycle %d: %s after %.2f s', $cycle, $mode, $wait));
	usleep(int($wait * 1_000_000));
	$self->crash($mode);
	$self->{modes_seen}{$mode}++;

	my (@open, $changes);
	for my $c (@writers)
	{
		$c->{h}->finish;    # psql exits non-zero: its server went away
		like($c->{err}, $GONE, "cycle $cycle: writer $c->{owner} was still running at the $mode");
		my ($o, $n) = $self->_apply_notices($c);
		if ($o)
		{
			push @open, $o;
			$self->{cut_inserts} += $o->[4];
		}
		$changes += $n;
		# What the writer saw, for a post-mortem (next to the server log).
		my $name = $PostgreSQL::Test::Utils::test_logfile =~ s{.*/regress_log_}{}r;
		PostgreSQL::Test::Utils::append_to_file(
			"$PostgreSQL::Test::Utils::log_path/${name}_writers.log",
			"=== cycle $cycle ($mode), writer $c->{owner}\n$c->{err}");
	}
	$vacuumer->{h}->finish;
	like($vacuumer->{err}, $GONE, "cycle $cycle: the VACUUM client was still running at the $mode");
	cmp_ok($changes, '>', 0, "cycle $cycle: writers committed changes");
	note("cycle $cycle: $changes changes committed, " . scalar(@open) . ' in flight at the crash'
		  . (@open ? ': ' . join(', ', map { "$_->[0] $_->[1]" } @open) : ''));
	$self->{changes} += $changes;
	$self->{in_flight} += @open;

	$node->start;
	$self->check("after $mode $cycle", \@open);
	$self->{cycles_done}++;
}

# The checks after a restart; $open: the changes in flight at the crash.
sub check
{
	my ($self, $when, $open) = @_;
	my $node = $self->{node};
	my @indexes = @{ $self->{indexes} };
	my $t0 = time;

	# The indexes' own checks.
	my $ok = 1;
	for my $ix (@indexes)
	{
		my ($ret, $out, $err) = $node->psql('postgres', "SELECT libravdb_index_check('$ix->[0]')");
		my $report = $ret == 0 ? eval { decode_json($out) } : undef;
		unless ($report && $report->{ok})
		{
			$ok = 0;
			diag("$when: libravdb_index_check('$ix->[0]'): $out $err");
			next;
		}
		$self->{check_report}->($self, $when, $ix->[0], $report) if $self->{check_report};
	}
	ok($ok, "$when: libravdb_index_check clean on every index");

	# The tables against the clients' view; the open changes go either way.
	for my $t (@{ $self->{tables} })
	{
		my $name = $t->{name};
		my $state = $self->{state}{$name};
		my %have = map { split /\|/ } split /\n/, $node->safe_psql('postgres', "SELECT id, seed FROM $name");
		for my $o (grep { $_->[0] eq $name } @{ $open // [] })
		{
			my (undef, $id, $before, $after) = @$o;
			my $now = $have{$id};
			my $either = (!defined $now && (!defined $before || !defined $after))
			  || (defined $now && ((defined $before && $now == $before) || (defined $after && $now == $after)));
			ok($either, "$when: $name row $id, changed at the crash, is as before or after the change")
			  or diag("$name row $id: seed " . ($now // 'none') . ', before ' . ($before // 'none') . ', after ' . ($after // 'none'));
			if (defined $now) { $state->{$id} = $now; } else { delete $state->{$id}; }
		}
		my $diff = '';
		for my $id (sort { $a <=> $b } keys %{ { %$state, %have } })
		{
			my ($want, $got) = ($state->{$id} // 'none', $have{$id} // 'none');
			$diff .= "id $id: seed $got, clients saw $want\n" if $want ne $got;
		}
		is($diff, '', "$when: $name holds what the clients saw committed (" . scalar(keys %have) . ' rows)');
		$t->{count} = scalar(keys %have);
	}

	for my $ix (@indexes)
	{
		my ($index, $table, $op) = @$ix;
		$self->_check_index($when, $index, $table, $op);
	}

	# The recovered indexes take a new row in every table, found at once.
	for my $t (@{ $self->{tables} })
	{
		my ($name, $dims) = @$t{qw(name dims)};
		my ($id, $s) = split /\|/, $node->safe_psql('postgres', qq{
			SELECT nextval('ids') AS i, nextval('seeds') AS s \\gset
			INSERT INTO $name VALUES (:i, 0, :s, vec(:s, $dims));
			SELECT :i || '|' || :s});
		my @ix = grep { $_->[1] eq $name } @indexes;
		my $first = sub {
			my ($set, @which) = @_;
			return [ split /\|/, $node->safe_psql('postgres',
				"$noseq $set SELECT "
				  . join(', ', map { "(SELECT id FROM $name ORDER BY v $_->[2] vec($s, $dims) LIMIT 1)" } @which)) ];
		};
		# At the default settings an approximate index may miss it (a search
		# of 40 candidates is not exhaustive); then it must be found with the
		# own_again settings, as any other row.
		my $found = $first->('', @ix);
		my @missed = grep { $found->[$_] ne $id } 0 .. $#ix;
		if (@missed && defined $self->{own_again})
		{
			note("$when: the new row $id of $name is not first through "
				  . join(', ', map { "$ix[$_][0] (got $found->[$_])" } @missed)
				  . "; searched again with $self->{own_again}");
			my $again = $first->($self->{own_again}, map { $ix[$_] } @missed);
			$found->[ $missed[$_] ] = $again->[$_] for 0 .. $#missed;
			$self->{new_row_retries}++;
		}
		is(join('|', @$found), join('|', ($id) x @ix), "$when: a new row of $name is found through every index");
		$self->{state}{$name}{$id} = $s;
		$self->{entries}{$name}++;
	}

	if ($self->{vacuum_report})
	{
		$node->safe_psql('postgres', join('', map { "VACUUM $_->{name};\n" } @{ $self->{tables} }));
		for my $ix (@indexes)
		{
			my $out = $node->safe_psql('postgres', "SELECT libravdb_index_check('$ix->[0]')");
			$self->{vacuum_report}->($self, $when, $ix->[0], decode_json($out));
		}
	}
	note(sprintf('%s: checked in %.1f s', $when, time - $t0));
}

# Runs statements in one session, RESET ALL between them; returns each
# one's output.
sub _batch
{
	my ($self, @sql) = @_;
	my $out = $self->{node}->safe_psql('postgres', join("\n\\echo @@\nRESET ALL;\n", @sql));
	my @parts = split /^@@\n?/m, $out . "\n", -1;
	chomp @parts;
	die 'expected ' . scalar(@sql) . ' outputs, got ' . scalar(@parts) . ":\n$out" unless @parts == @sql;
	return @parts;
}

sub _check_index
{
	my ($self, $when, $index, $table, $op) = @_;
	my $count = $self->{table}{$table}{count};

	# The first row of the search, "id:distance", against the row's own
	# (under L2 and L1 its distance to itself is 0).
	my $own = "SELECT r.id FROM $table r WHERE r.v IS NOT NULL AND (SELECT s.id || ':' || (s.v $op r.v) FROM $table s"
	  . " ORDER BY s.v $op r.v LIMIT 1) IS DISTINCT FROM r.id || ':' || (r.v $op r.v)";
	$own .= " || CASE WHEN (r.v $op r.v) = 0 THEN '' ELSE ' (not 0)' END" if $op eq '<->' || $op eq '<+>';
	# An unlimited scan: no row twice, none the table lacks, in order.
	my $q0 = $self->{query}{$table}[0];
	my $all = "SELECT id, v $op $q0 AS d FROM $table ORDER BY v $op $q0";
	# Top-k, through the index and exact.
	my $k = $self->{k};
	my @q = @{ $self->{query}{$table} };
	# (Ties, which vec() does make in 7000 dimensions, come in either order:
	# each answer is listed by distance, then id.)
	my $topk = join('', map { "SELECT coalesce(string_agg(id || '=' || d, ',' ORDER BY d, id), 'none') FROM"
		  . " (SELECT id, v $op $_ AS d FROM $table ORDER BY v $op $_ LIMIT $k) s;\n" } @q);

	my ($plan_own, $lost, $with_v, $plan_all, $got, $x, $g) = $self->_batch(
		"$noseq EXPLAIN (COSTS OFF) $own;",
		"$noseq $self->{own} SELECT string_agg(id::text, ',') FROM ($own) x;",
		"SELECT count(v) FROM $table;",
		"$noseq EXPLAIN (COSTS OFF) $all;",
		"$noseq $self->{scan}
		 SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' distinct, '
		     || count(*) FILTER (WHERE NOT EXISTS (SELECT FROM $table x WHERE x.id = s.id)) || ' not in $table, '
		     || count(*) FILTER (WHERE d < p OR (p IS NULL AND d IS NOT NULL AND n > 1)) || ' out of order'
		 FROM (SELECT id, d, lag(d) OVER () AS p, row_number() OVER () AS n FROM ($all) a) s;",
		"$exact\n$topk",
		"$noseq $self->{scan} $self->{topk}\n$topk");

	like($plan_own, qr/Index Scan using $index on $table s/, "$when: own-vector search uses $index");
	if ($lost ne '' && defined $self->{own_again})
	{
		note("$when: $index: rows not found first: $lost; searched again with $self->{own_again}");
		$lost = $self->{node}->safe_psql('postgres',
			"$noseq $self->{own_again} SELECT string_agg(id::text, ',') FROM ($own AND r.id IN ($lost)) x");
		if ($lost ne '' && $self->{own_vacuum})
		{
			note("$when: $index: rows not found with $self->{own_again} either: $lost; searched again after a VACUUM");
			$lost = $self->{node}->safe_psql('postgres', "VACUUM $table;\n"
				  . "$noseq $self->{own_again} SELECT string_agg(id::text, ',') FROM ($own AND r.id IN ($lost)) x");
		}
	}
	is($lost, '', "$when: every row is found first by a search for its own vector through $index")
	  or diag("$when: $index: rows not found (seed $self->{seed}): $lost");
	$self->{rows_checked} += $with_v;

	like($plan_all, qr/Index Scan using $index on $table/, "$when: unlimited scan uses $index");
	if ($self->{every_row})
	{
		is($got, "$count rows, $count distinct, 0 not in $table, 0 out of order",
			"$when: an unlimited scan of $index returns every row once, in order, and nothing else");
	}
	else
	{
		my ($rows, $distinct, $rest) = $got =~ /^(\d+) rows, (\d+) distinct, (.*)$/;
		is("$distinct distinct, $rest", "$rows distinct, 0 not in $table, 0 out of order",
			"$when: an unlimited scan of $index returns no row twice, nothing else, in order");
		note("$when: an unlimited scan of $index returned $rows of the $count rows");
	}

	my @x = split /\n/, $x;
	my @g = split /\n/, $g;
	my ($hit, $total, $wrong) = (0, 0, '');
	for my $i (0 .. $#q)
	{
		my ($xi, $gi) = ($x[$i] // 'missing', $g[$i] // 'missing');
		# Equal, but for which of the rows tied at the k-th distance made it.
		my $last = ($xi =~ /=([^=,]*)$/)[0] // '';
		my $strip = sub { join(',', map { my ($id, $d) = split /=/; $d eq $last ? "?=$d" : $_ } split /,/, $_[0]) };
		$wrong .= "$q[$i]\n  index: $gi\n  exact: $xi\n" if $strip->($gi) ne $strip->($xi);
		my %in = map { (split /=/)[0] => 1 } split /,/, $xi;
		$hit += grep { $in{ (split /=/)[0] } } split /,/, $gi;
		$total += scalar(keys %in);
	}
	if ($self->{recall} eq 'exact')
	{
		is($wrong, '', "$when: top-$k through $index are the exact answers");
	}
	else
	{
		my $recall = $total ? $hit / $total : 1;
		note(sprintf('%s: %s recall@%d %.3f', $when, $index, $k, $recall));
		cmp_ok($recall, '>=', $self->{recall}, "$when: top-$k through $index at recall $self->{recall} or better");
	}
}

# Counts a crash cycle the test ran itself (a crash at a chosen moment).
sub extra_cycle { $_[0]{cycles_done}++; $_[0]{modes_seen}{ $_[1] }++; }

# Notes what the cycles did; one TAP test that each crash mode was used.
sub summary
{
	my ($self) = @_;
	note("$self->{cycles_done} crash cycles survived ("
		  . join(', ', map { "$self->{modes_seen}{$_} $_" } sort keys %{ $self->{modes_seen} })
		  . "); $self->{changes} changes committed, $self->{in_flight} in flight at a crash;"
		  . " $self->{rows_checked} own-vector searches (rows times indexes) checked; "
		  . ($self->{new_row_retries} // 0) . ' new rows needed the own_again search');
	ok($self->{modes_seen}{immediate} && $self->{modes_seen}{kill9} && $self->{modes_seen}{'kill9-all'},
		'cycles crashed the server with immediate stops, SIGKILL of the postmaster and SIGKILL of every process');
}

1;
