# lflat on a streaming standby: the standby replays our generic WAL records
# under wal_consistency_checking (every replayed page is compared with the
# full image the primary logged), and answers nearest-neighbour queries
# exactly as the primary does, after a build, inserts (entries straddling
# pages, and entries long enough to take several WAL records), updates,
# DELETE + VACUUM, inserts that reuse the freed slots, and a REINDEX. Then
# the standby is promoted and takes writes of its own.
#
# Each check compares, for every index and several query vectors, the rows
# and distances of ORDER BY d LIMIT 10, and of the same with a WHERE that
# fewer than 10 rows pass (so the scan continues past its first batch of
# 1000 candidates to the end of the index):
#   primary, index scan   vs  primary, sequential scan + sort (exact; rows
#                             at equal distances may come in either order)
#   standby, index scan   vs  primary, index scan (identical: same heap)
# (ORDER BY d, id would make ties deterministic, but PostgreSQL 15 plans no
# index scan for it: an ordering operator must match every sort key.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash standby_catch_up keyed_lines index_scans_only index_infos);

my $wcc = "wal_consistency_checking = 'generic'\n";
my $primary = new_node('primary', init => { allows_streaming => 1 }, conf => $wcc);
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', $wcc);
$standby->start;

is($primary->safe_psql('postgres', 'SHOW wal_consistency_checking'), 'generic', 'primary checks generic WAL');
is($standby->safe_psql('postgres', 'SHOW wal_consistency_checking'), 'generic', 'standby checks generic WAL');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby is in recovery');

# ---------------------------------------------------------------------------
# Data. Vectors come from random() after setseed, so every run has the same.
#   t     64 dims, 3000 rows; NULL vectors, a zero vector (NaN cosine
#         distance) and duplicated vectors (exact ties) among them
#   w2k   2000 dims: 8016-byte entries, most straddle two pages
#   w7k   7000 dims: 28016-byte entries over 4-5 pages, so every insert is
#         several WAL records (a record holds at most 4 pages)

$primary->safe_psql('postgres', q{
	CREATE FUNCTION rvec(dims int) RETURNS real[] LANGUAGE sql VOLATILE
	  AS $$ SELECT array_agg((random() * 2 - 1)::real) FROM generate_series(1, dims) $$;
	CREATE TABLE t (id int PRIMARY KEY, cat int, v lvector(64));
	CREATE TABLE w2k (id int PRIMARY KEY, cat int, v lvector(2000));
	CREATE TABLE w7k (id int PRIMARY KEY, cat int, v lvector(7000));
	SELECT setseed(0.25);
	INSERT INTO t SELECT i, i % 10, rvec(64) FROM generate_series(1, 3000) i;
	UPDATE t SET v = NULL WHERE id IN (5, 500, 2500);
	UPDATE t SET v = array_fill(0::real, ARRAY[64]) WHERE id = 7;
	UPDATE t SET v = (SELECT v FROM t WHERE id = 100) WHERE id IN (1100, 2100);
	INSERT INTO w2k SELECT i, i % 10, rvec(2000) FROM generate_series(1, 120) i;
	INSERT INTO w7k SELECT i, i % 10, rvec(7000) FROM generate_series(1, 20) i;
	CREATE INDEX t_l2 ON t USING lflat (v lvector_l2_ops);
	CREATE INDEX t_ip_fp16 ON t USING lflat (v lvector_ip_ops) WITH (quantizer = 'fp16');
	CREATE INDEX t_cos_sq8 ON t USING lflat (v lvector_cosine_ops) WITH (quantizer = 'sq8');
	CREATE INDEX t_l1_sq8 ON t USING lflat (v lvector_l1_ops) WITH (quantizer = 'sq8');
	CREATE INDEX w2k_l2 ON w2k USING lflat (v lvector_l2_ops);
	CREATE INDEX w2k_l1_fp16 ON w2k USING lflat (v lvector_l1_ops) WITH (quantizer = 'fp16');
	CREATE INDEX w7k_cos ON w7k USING lflat (v lvector_cosine_ops);
	CREATE INDEX w7k_l2_sq8 ON w7k USING lflat (v lvector_l2_ops) WITH (quantizer = 'sq8');
});

# index => [table, operator]
my %indexes = (
	t_l2 => [ 't', '<->' ],
	t_ip_fp16 => [ 't', '<#>' ],
	t_cos_sq8 => [ 't', '<=>' ],
	t_l1_sq8 => [ 't', '<+>' ],
	w2k_l2 => [ 'w2k', '<->' ],
	w2k_l1_fp16 => [ 'w2k', '<+>' ],
	w7k_cos => [ 'w7k', '<=>' ],
	w7k_l2_sq8 => [ 'w7k', '<->' ],
);
my %dims = (t => 64, w2k => 2000, w7k => 7000);

# Query vectors, fixed: two pseudo-random ones per table (a small LCG, so the
# numbers do not depend on Perl's rand), plus the stored vector of row 100 of
# t (an exact match with two duplicates).
my $lcg = 12345;
sub next_rand { $lcg = ($lcg * 1103515245 + 12345) % 2147483648; return $lcg / 2147483648 * 2 - 1; }
my %queries;
for my $table (sort keys %dims)
{
	for my $n (1 .. 2)
	{
		push @{ $queries{$table} },
		  "'[" . join(',', map { sprintf('%.4f', next_rand()) } 1 .. $dims{$table}) . "]'";
	}
}
push @{ $queries{t} }, '(SELECT v FROM t WHERE id = 100)';

# One SQL script per mode that prints one line per (index, query, kind):
# "<index> q<n> <kind>: <answer>".
sub script
{
	my ($mode) = @_;
	my $sql =
	  $mode eq 'index'
	  ? "SET enable_seqscan = off; SET enable_bitmapscan = off;\n"
	  : "SET enable_indexscan = off; SET enable_bitmapscan = off;\n";
	for my $index (sort keys %indexes)
	{
		my ($table, $op) = @{ $indexes{$index} };
		# Only this index may serve the query: the others on the table use
		# other operators.
		my $i = 0;
		for my $q (@{ $queries{$table} })
		{
			$i++;
			my $label = "$index q$i";
			$sql .= "SELECT '$label plain: ' || coalesce(string_agg(id || '=' || coalesce(d::text, 'null'), ','), '')"
			  . " FROM (SELECT id, v $op $q AS d FROM $table ORDER BY v $op $q LIMIT 10) s;\n";
			$sql .= "SELECT '$label filtered: ' || coalesce(string_agg(id || '=' || coalesce(d::text, 'null'), ','), '')"
			  . " FROM (SELECT id, v $op $q AS d FROM $table WHERE id % 389 = 1 ORDER BY v $op $q LIMIT 10) s;\n";
		}
	}
	return $sql;
}

# The queries for (index, query vector), as script() writes them.
sub queries_for
{
	my ($index, $q) = @_;
	my ($table, $op) = @{ $indexes{$index} };
	return (
		"SELECT id FROM $table ORDER BY v $op $q LIMIT 10",
		"SELECT id FROM $table WHERE id % 389 = 1 ORDER BY v $op $q LIMIT 10");
}

sub answers { my ($node, $mode) = @_; return keyed_lines($node, script($mode)); }

# Every query of script('index') is an index scan on its index.
sub check_plans
{
	my ($node, $when) = @_;
	my @queries;
	for my $index (sort keys %indexes)
	{
		my $table = $indexes{$index}[0];
		for my $q (@{ $queries{$table} })
		{
			push @queries, [ $index, $table, $_ ] for queries_for($index, $q);
		}
	}
	index_scans_only($node, $when, @queries);
}

sub info { return index_infos($_[0], sort keys %indexes); }

# The checks after each phase.
sub check_phase
{
	my ($when) = @_;
	standby_catch_up($primary, $standby, $when);

	check_plans($primary, $when);
	check_plans($standby, $when);

	my $exact = answers($primary, 'seq');
	my $pri = answers($primary, 'index');
	my $stb = answers($standby, 'index');
	cmp_ok(scalar(keys %$exact), '>', 0, "$when: answers computed");
	note("$when, $_: $pri->{$_}") for ('t_cos_sq8 q3 plain', 't_l2 q1 filtered', 'w7k_l2_sq8 q1 plain');

	my ($diff_exact, $diff_standby) = ('', '');
	for my $key (sort keys %$exact)
	{
		my $seq = $exact->{$key};
		my $idx = $pri->{$key} // '(missing)';
		my $sb = $stb->{$key} // '(missing)';
		$diff_exact .= "$key\n  exact: $seq\n  index: $idx\n" unless same_answer($idx, $seq);
		$diff_standby .= "$key\n  primary: $idx\n  standby: $sb\n" if $sb ne $idx;
	}
	is($diff_exact, '', "$when: primary index scans give the exact answers");
	is($diff_standby, '', "$when: standby index scans give the primary's answers");

	# Non-empty answers, so that the comparisons above are not vacuous.
	my $empty = join ' ', grep { $pri->{$_} !~ /\d/ } sort keys %$pri;
	is($empty, '', "$when: every query returned rows");

	for my $node ($primary, $standby)
	{
		my $checks = $node->safe_psql('postgres',
			join("\nUNION ALL\n",
				map { "SELECT '$_', libravdb_index_check('$_')->>'ok', libravdb_index_check('$_')->>'tuples'" }
				  sort keys %indexes));
		my $bad = join "\n", grep { !/\|true\|\d+$/ } split /\n/, $checks;
		is($bad, '', "$when: libravdb_index_check clean on every index (" . $node->name . ')');
	}
	is(info($standby), info($primary), "$when: standby's indexes hold the same slots as the primary's");
}

# Two answers "id=d,id=d,..." of the same ORDER BY d LIMIT k query agree:
# the same distances in the same order, and the same ids at each distance,
# except at the last distance, where LIMIT may cut a group of ties anywhere.
sub same_answer
{
	my ($x, $y) = @_;
	return 1 if $x eq $y;
	my @x = map { [ split /=/ ] } split /,/, $x;
	my @y = map { [ split /=/ ] } split /,/, $y;
	return 0 unless @x == @y;
	return 0 if grep { $x[$_][1] ne $y[$_][1] } 0 .. $#x;
	my (%gx, %gy);
	push @{ $gx{ $_->[1] } }, $_->[0] for @x;
	push @{ $gy{ $_->[1] } }, $_->[0] for @y;
	for my $d (keys %gx)
	{
		next if $d eq $x[-1][1];
		return 0 unless join(',', sort @{ $gx{$d} }) eq join(',', sort @{ $gy{$d} });
	}
	return 1;
}

sub info_field
{
	my ($index, $field) = @_;
	return $primary->safe_psql('postgres', "SELECT libravdb_index_info('$index')->>'$field'");
}

check_phase('after build');

# ---------------------------------------------------------------------------
# Inserts after the build: appended entries, straddling pages, multi-record.

$primary->safe_psql('postgres', q{
	SELECT setseed(0.5);
	INSERT INTO t SELECT i, i % 10, rvec(64) FROM generate_series(3001, 3600) i;
	INSERT INTO t VALUES (3601, 1, NULL);
	INSERT INTO w2k SELECT i, i % 10, rvec(2000) FROM generate_series(121, 200) i;
	INSERT INTO w7k SELECT i, i % 10, rvec(7000) FROM generate_series(21, 32) i;
});
check_phase('after inserts');

# ---------------------------------------------------------------------------
# Updates: new heap tuples, new entries; the old ones stay until VACUUM.

$primary->safe_psql('postgres', q{
	SELECT setseed(0.75);
	UPDATE t SET v = rvec(64) WHERE id % 10 = 3;
	UPDATE t SET v = v + v WHERE id % 10 = 4;
	UPDATE w2k SET v = rvec(2000) WHERE id % 4 = 1;
	UPDATE w7k SET v = rvec(7000) WHERE id % 5 = 2;
});
check_phase('after updates');

# ---------------------------------------------------------------------------
# DELETE + VACUUM: dead entries become free slots.

my %slots_before;
$primary->safe_psql('postgres', q{
	DELETE FROM t WHERE id % 3 = 0;
	DELETE FROM w2k WHERE id % 3 = 0;
	DELETE FROM w7k WHERE id % 3 = 0;
});
$primary->safe_psql('postgres', 'VACUUM t');
$primary->safe_psql('postgres', 'VACUUM w2k');
$primary->safe_psql('postgres', 'VACUUM w7k');
for my $index (sort keys %indexes)
{
	$slots_before{$index} = info_field($index, 'slots');
	cmp_ok(info_field($index, 'free_slots'), '>', 0, "VACUUM freed slots in $index");
	my $table = $indexes{$index}[0];
	is(info_field($index, 'tuples'), $primary->safe_psql('postgres', "SELECT count(*) FROM $table"),
		"after VACUUM $index holds one entry per row");
}
check_phase('after DELETE and VACUUM');

# ---------------------------------------------------------------------------
# Inserts that reuse the freed slots: the stream does not grow.

$primary->safe_psql('postgres', q{
	SELECT setseed(0.125);
	INSERT INTO t SELECT i, i % 10, rvec(64) FROM generate_series(4001, 4300) i;
	INSERT INTO w2k SELECT i, i % 10, rvec(2000) FROM generate_series(301, 320) i;
	INSERT INTO w7k SELECT i, i % 10, rvec(7000) FROM generate_series(41, 44) i;
});
for my $index (sort keys %indexes)
{
	is(info_field($index, 'slots'), $slots_before{$index}, "inserts into $index reused free slots");
}
check_phase('after inserts into free slots');

# ---------------------------------------------------------------------------
# REINDEX: a fresh build, WAL-logged in bulk.

$primary->safe_psql('postgres', 'REINDEX TABLE t');
$primary->safe_psql('postgres', 'REINDEX INDEX w2k_l2');
$primary->safe_psql('postgres', 'REINDEX TABLE w7k');
is(info_field('t_l2', 'free_slots'), 0, 'REINDEX packed the index');
check_phase('after REINDEX');

# ---------------------------------------------------------------------------
# Promotion: the former standby takes writes into the replayed indexes.

$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby did not leave recovery';
$standby->safe_psql('postgres', q{
	SELECT setseed(0.875);
	INSERT INTO t SELECT i, i % 10, rvec(64) FROM generate_series(5001, 5200) i;
	INSERT INTO w2k SELECT i, i % 10, rvec(2000) FROM generate_series(501, 520) i;
	INSERT INTO w7k SELECT i, i % 10, rvec(7000) FROM generate_series(501, 504) i;
	DELETE FROM t WHERE id % 7 = 0;
	VACUUM t;
	INSERT INTO t SELECT i, i % 10, rvec(64) FROM generate_series(5201, 5300) i;
});
check_plans($standby, 'after promotion');
my $exact = answers($standby, 'seq');
my $got = answers($standby, 'index');
my $diff = '';
for my $key (sort keys %$exact)
{
	my $idx = $got->{$key} // '(missing)';
	$diff .= "$key\n  exact: $exact->{$key}\n  index: $idx\n" unless same_answer($idx, $exact->{$key});
}
is($diff, '', 'after promotion: index scans give the exact answers');
my $all_sql = "SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> $queries{t}[0]) s";
like($standby->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) $all_sql"),
	qr/Index Scan using t_l2 on t/, 'after promotion: the unlimited query is an index scan');
is($standby->safe_psql('postgres', "SET enable_seqscan = off; $all_sql"),
	$standby->safe_psql('postgres', 'SELECT count(*) FROM t'),
	'after promotion: an unlimited index scan returns every row');
is($standby->safe_psql('postgres',
		join("\nUNION ALL\n", map { "SELECT libravdb_index_check('$_')->>'ok'" } sort keys %indexes)),
	join("\n", ('true') x scalar(keys %indexes)),
	'after promotion: libravdb_index_check clean on every index');

$primary->stop;
$standby->stop;
for my $node ($primary, $standby)
{
	log_has_no_crash($node);
	my $log = slurp_file($node->logfile);
	unlike($log, qr/inconsistent page found/, 'no WAL consistency failure in the log of ' . $node->name);
}

done_testing();
