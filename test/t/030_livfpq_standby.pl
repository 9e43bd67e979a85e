# livfpq on a streaming standby: the standby replays the build (bulk
# log_newpage_range), inserts (one generic record each: directory entry,
# target page and, when a list's chain grows, the old tail and the new page),
# DELETE + VACUUM (each list page compacted, then the directory entry),
# inserts that reuse the room VACUUM made, and REINDEX (also CONCURRENTLY),
# under wal_consistency_checking = 'generic' on both nodes (every replayed
# generic record is compared with the page image the primary logged). Then
# the standby is promoted and takes writes of its own.
#
# After each phase, for every index and several query vectors, ORDER BY d
# LIMIT 10, plain and with a WHERE that one row in 7 passes (so the scan goes
# on past its first batch, through further lists), is run
#   - at the index's own probes/rerank (small, so answers are approximate and
#     the filtered queries need the later refills), and
#   - at full settings (every list probed, every candidate re-ranked),
# and the ids and distances must be the same on the standby as on the
# primary. At full settings the primary's answers must be the exact ones
# (same distances as a sequential scan + sort); at the index's settings every
# answer has as many rows as the exact one, in order, and mean recall@10 is
# held to a floor. libravdb_index_check is clean on both nodes and gives the
# same counts, and libravdb_index_info is the same on both.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash standby_catch_up keyed_lines index_scans_only index_infos);

my $conf = "wal_consistency_checking = 'generic'\n";
# Cluster.pm gives streaming nodes 1MB of shared_buffers; more keeps the
# scans (and the centroid reads) off the disk.
$conf .= "shared_buffers = 32MB\n";
# One build thread, so training (and so every answer) is the same each run.
$conf .= "max_parallel_maintenance_workers = 0\n";
my $primary = new_node('primary', init => { allows_streaming => 1 }, conf => $conf);
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', $conf);
$standby->start;

is($primary->safe_psql('postgres', 'SHOW wal_consistency_checking'), 'generic', 'primary checks generic WAL');
is($standby->safe_psql('postgres', 'SHOW wal_consistency_checking'), 'generic', 'standby checks generic WAL');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby is in recovery');

# ---------------------------------------------------------------------------
# Data, from random() after setseed, so every run has the same.
#   t  64 dims, 4000 rows; NULL vectors, a zero vector (NaN under cosine:
#      the NULL list) and duplicated vectors (exact ties) among them.
#      t_l2 has 44-byte entries (pq_m = 32), about 185 a page: its lists
#      start at two pages each. t_ip4 has 4-bit codes.
#   w  300 dims, 600 rows, 40 lists: centroids and codebooks over many pages.
$primary->safe_psql('postgres', q{
	CREATE FUNCTION rvec(dims int) RETURNS real[] LANGUAGE sql VOLATILE
	  AS $$ SELECT array_agg((random() * 2 - 1)::real) FROM generate_series(1, dims) $$;
	CREATE TABLE t (id int PRIMARY KEY, v lvector(64));
	CREATE TABLE w (id int PRIMARY KEY, v lvector(300));
	SELECT setseed(0.25);
	INSERT INTO t SELECT i, rvec(64) FROM generate_series(1, 4000) i;
	UPDATE t SET v = NULL WHERE id IN (5, 500, 2500);
	UPDATE t SET v = array_fill(0::real, ARRAY[64]) WHERE id = 7;
	UPDATE t SET v = (SELECT v FROM t WHERE id = 100) WHERE id IN (1100, 2100);
	INSERT INTO w SELECT i, rvec(300) FROM generate_series(1, 600) i;
	CREATE INDEX t_l2 ON t USING livfpq (v lvector_l2_ops) WITH (lists = 16, pq_m = 32, probes = 4, rerank = 40);
	CREATE INDEX t_cos ON t USING livfpq (v lvector_cosine_ops) WITH (lists = 16, pq_m = 16, probes = 3, rerank = 30);
	CREATE INDEX t_ip4 ON t USING livfpq (v lvector_ip_ops) WITH (lists = 12, pq_m = 16, pq_bits = 4, probes = 4, rerank = 50);
	CREATE INDEX w_cos ON w USING livfpq (v lvector_cosine_ops) WITH (lists = 40, pq_m = 30, probes = 5, rerank = 30);
});

# index => [table, operator]
my %indexes = (
	t_l2 => [ 't', '<->' ],
	t_cos => [ 't', '<=>' ],
	t_ip4 => [ 't', '<#>' ],
	w_cos => [ 'w', '<=>' ],
);
my %dims = (t => 64, w => 300);

# Mean recall@10 floors at each index's own (small) probes and rerank, over
# its plain and filtered queries (8 answers for t, 6 for w). Measured over the
# five phases (uniform random data, a hard case for IVF-PQ, and settings kept
# small on purpose so the filtered queries need later refills): t_l2
# 0.375-0.625, t_cos 0.35-0.41, t_ip4 0.325-0.41, w_cos 0.217-0.283; after
# promotion 0.40 over all four. Floors sit about 0.1 below the lowest.
my %floor = (t_l2 => 0.25, t_cos => 0.25, t_ip4 => 0.2, w_cos => 0.12);

# Query vectors, fixed: pseudo-random ones (a small LCG, independent of
# Perl's rand) and, for t, the stored vector of row 100 (an exact match with
# two duplicates).
my $lcg = 12345;
sub next_rand { $lcg = ($lcg * 1103515245 + 12345) % 2147483648; return $lcg / 2147483648 * 2 - 1; }
my %queries;
for my $table (sort keys %dims)
{
	for my $n (1 .. 3)
	{
		push @{ $queries{$table} },
		  "'[" . join(',', map { sprintf('%.4f', next_rand()) } 1 .. $dims{$table}) . "]'";
	}
}
push @{ $queries{t} }, '(SELECT v FROM t WHERE id = 100)';

# The settings a script runs under.
my %settings = (
	own => "RESET libravdb.ivfpq_probes; RESET libravdb.ivfpq_rerank;\n",
	full => "SET libravdb.ivfpq_probes = 32768; SET libravdb.ivfpq_rerank = 100000;\n",
);

# One script printing "<index> <setting> q<n> <kind>: id=d,id=d,..." per
# query; $mode 'seq' prints the exact answers (setting "exact").
sub script
{
	my ($mode) = @_;
	my $sql =
	  $mode eq 'seq'
	  ? "SET enable_indexscan = off; SET enable_bitmapscan = off;\n"
	  : "SET enable_seqscan = off; SET enable_bitmapscan = off;\n";
	for my $setting ($mode eq 'seq' ? ('exact') : sort keys %settings)
	{
		$sql .= $settings{$setting} if $settings{$setting};
		for my $index (sort keys %indexes)
		{
			my ($table, $op) = @{ $indexes{$index} };
			my $i = 0;
			for my $q (@{ $queries{$table} })
			{
				$i++;
				for my $kind ([ 'plain', 'true' ], [ 'filtered', 'id % 7 = 3' ])
				{
					$sql .= "SELECT '$index $setting q$i $kind->[0]: ' || coalesce(string_agg(id || '=' || coalesce(d::text, 'null'), ','), '')"
					  . " FROM (SELECT id, v $op $q AS d FROM $table WHERE $kind->[1] ORDER BY v $op $q LIMIT 10) s;\n";
				}
			}
		}
	}
	return $sql;
}

sub answers { my ($node, $mode) = @_; return keyed_lines($node, script($mode)); }

# Every query of script('index') is an index scan on its index.
sub check_plans
{
	my ($node, $when) = @_;
	my @queries;
	for my $index (sort keys %indexes)
	{
		my ($table, $op) = @{ $indexes{$index} };
		push @queries, [ $index, $table, "SELECT id FROM $table WHERE id % 7 = 3 ORDER BY v $op $_ LIMIT 10" ]
		  for @{ $queries{$table} };
	}
	index_scans_only($node, $when, @queries);
}

sub info { return index_infos($_[0], sort keys %indexes); }

# "id=d,..." as [[id, d], ...]
sub pairs { return map { [ split /=/ ] } split /,/, $_[0]; }

# The distances of an answer, and its ids closer than its last distance
# (rows at the last distance may be any of the tied ones), sorted.
sub canonical
{
	my @p = pairs($_[0]);
	return '' unless @p;
	my $last = $p[-1][1];
	return join(',', map { $_->[1] } @p) . ' / ' . join(',', sort { $a <=> $b } map { $_->[0] } grep { $_->[1] ne $last } @p);
}

# Recall of an answer against the exact one, rows at the exact k-th distance
# counting as interchangeable.
sub recall
{
	my ($got, $exact) = @_;
	my @e = pairs($exact);
	my @g = pairs($got);
	return 1 unless @e;
	my %ids = map { $_->[0] => 1 } @e;
	my $kth = $e[-1][1];
	my $hit = grep { $ids{ $_->[0] } || ($kth ne 'null' && $kth ne 'NaN' && $_->[1] ne 'null' && $_->[1] ne 'NaN' && $_->[1] <= $kth) } @g;
	$hit = @e if $hit > @e;
	return $hit / @e;
}

# Distances never decrease along an answer (NaN, then NULL, last).
sub in_order
{
	my $prev = -9**9**9;
	for my $p (pairs($_[0]))
	{
		my $d = $p->[1];
		next if $d eq 'null' || $d eq 'NaN';
		return 0 if $d < $prev;
		$prev = $d;
	}
	return 1;
}

sub checks
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		join("\nUNION ALL\n", map { "SELECT '$_', libravdb_index_check('$_')::text" } sort keys %indexes));
}

sub check_field
{
	my ($node, $index, $field) = @_;
	return $node->safe_psql('postgres', "SELECT libravdb_index_check('$index')->>'$field'");
}

# Answers of the index scans on $node held to the exact ones (see the top);
# returns { index => mean recall at its own settings }.
sub check_answers
{
	my ($node, $when, $exact) = @_;
	my $got = answers($node, 'index');
	my ($wrong, $short, $order) = ('', '', '');
	my (%sum, %n);
	for my $key (sort keys %$exact)
	{
		my ($index, undef, $rest) = split / /, $key, 3;
		my $e = $exact->{$key};
		my $full = $got->{"$index full $rest"} // '(missing)';
		my $own = $got->{"$index own $rest"} // '(missing)';
		$wrong .= "$index $rest\n  full:  $full\n  exact: $e\n" if canonical($full) ne canonical($e);
		my $want = () = $e =~ /=/g;
		my $have = () = $own =~ /=/g;
		$short .= "$index $rest: $have rows, exact $want\n" if $have != $want;
		$order .= "$index $rest: $own\n" unless in_order($own);
		$sum{$index} += recall($own, $e);
		$n{$index}++;
	}
	my $name = $node->name;
	is($wrong, '', "$when: at full probes and rerank the index answers are the exact ones ($name)");
	is($short, '', "$when: at the index's settings every answer has as many rows as the exact one ($name)");
	is($order, '', "$when: at the index's settings every answer is in order ($name)");
	return ($got, { map { $_ => $sum{$_} / $n{$_} } keys %sum });
}

sub check_phase
{
	my ($when) = @_;
	standby_catch_up($primary, $standby, $when);
	check_plans($primary, $when);
	check_plans($standby, $when);

	my $exact = answers($primary, 'seq');
	is(scalar(keys %$exact), 30, "$when: 30 exact answers computed");
	my ($pri, $recall) = check_answers($primary, $when, $exact);
	my $stb = answers($standby, 'index');
	my $diff = '';
	for my $key (sort keys %$pri)
	{
		my $s = $stb->{$key} // '(missing)';
		$diff .= "$key\n  primary: $pri->{$key}\n  standby: $s\n" if $s ne $pri->{$key};
	}
	is($diff, '', "$when: standby index scans give the primary's answers, ids and distances");
	for my $index (sort keys %indexes)
	{
		note(sprintf('%s: %s mean recall@10 at its own settings %.4f', $when, $index, $recall->{$index}));
		cmp_ok($recall->{$index}, '>=', $floor{$index}, "$when: mean recall\@10 through $index");
	}

	my $cp = checks($primary);
	my $bad = join "\n", grep { !/"ok": true/ } split /\n/, $cp;
	is($bad, '', "$when: libravdb_index_check clean on every index (primary)");
	is(checks($standby), $cp, "$when: libravdb_index_check clean, with the same counts, on the standby");
	is(info($standby), info($primary), "$when: libravdb_index_info the same on the standby");
}

check_phase('after build');
my %pages_built = map { $_ => check_field($primary, $_, 'pages') } sort keys %indexes;

# Inserts: 2400 rows into t (lists of t_l2 grow from about 250 entries in
# two pages to about 400 in three), 200 into w; NULLs and a zero vector.
$primary->safe_psql('postgres', q{
	SELECT setseed(0.5);
	INSERT INTO t SELECT i, rvec(64) FROM generate_series(4001, 6400) i;
	INSERT INTO t VALUES (6401, NULL), (6402, array_fill(0::real, ARRAY[64]));
	INSERT INTO w SELECT i, rvec(300) FROM generate_series(601, 800) i;
	INSERT INTO w VALUES (801, NULL);
});
for my $index (sort keys %indexes)
{
	cmp_ok(check_field($primary, $index, 'pages'), '>', $pages_built{$index}, "inserts grew list chains of $index by new pages");
}
check_phase('after inserts');

# Updates (new vectors: a new entry, the old one dead), DELETE and VACUUM.
$primary->safe_psql('postgres', q{
	SELECT setseed(0.75);
	UPDATE t SET v = rvec(64) WHERE id % 10 = 3;
	UPDATE w SET v = rvec(300) WHERE id % 5 = 1;
	DELETE FROM t WHERE id % 3 = 0;
	DELETE FROM w WHERE id % 3 = 0;
});
$primary->safe_psql('postgres', 'VACUUM t');
$primary->safe_psql('postgres', 'VACUUM w');
my %size;
for my $index (sort keys %indexes)
{
	my $table = $indexes{$index}[0];
	is(check_field($primary, $index, 'tuples'), $primary->safe_psql('postgres', "SELECT count(*) FROM $table"),
		"VACUUM left $index one entry per row of $table");
	$size{$index} = $primary->safe_psql('postgres', "SELECT pg_relation_size('$index')");
}
check_phase('after updates, DELETE and VACUUM');

# Inserts that fit in the room VACUUM made: no index grows.
$primary->safe_psql('postgres', q{
	SELECT setseed(0.125);
	INSERT INTO t SELECT i, rvec(64) FROM generate_series(7001, 8000) i;
	INSERT INTO w SELECT i, rvec(300) FROM generate_series(901, 1000) i;
});
for my $index (sort keys %indexes)
{
	is($primary->safe_psql('postgres', "SELECT pg_relation_size('$index')"), $size{$index},
		"inserts into $index reused the room VACUUM made");
}
check_phase('after inserts into the room VACUUM made');

$primary->safe_psql('postgres', 'REINDEX TABLE t');
$primary->safe_psql('postgres', 'REINDEX INDEX CONCURRENTLY w_cos');
check_phase('after REINDEX');

# Promotion: the former standby writes into the replayed indexes.
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby did not leave recovery';
$standby->safe_psql('postgres', q{
	SELECT setseed(0.875);
	INSERT INTO t SELECT i, rvec(64) FROM generate_series(9001, 9600) i;
	INSERT INTO w SELECT i, rvec(300) FROM generate_series(1001, 1100) i;
	DELETE FROM t WHERE id % 7 = 0;
	VACUUM t;
	INSERT INTO t SELECT i, rvec(64) FROM generate_series(9601, 9800) i;
	INSERT INTO t VALUES (9801, array_fill(0.5::real, ARRAY[64]));
});
check_plans($standby, 'after promotion');
my $bad = join "\n", grep { !/"ok": true/ } split /\n/, checks($standby);
is($bad, '', 'after promotion: libravdb_index_check clean on every index');
my (undef, $recall) = check_answers($standby, 'after promotion', answers($standby, 'seq'));
my $mean = 0;
$mean += $recall->{$_} / keys %indexes for keys %indexes;
note(sprintf('after promotion: mean recall@10 at the indexes\' settings %.4f', $mean));
cmp_ok($mean, '>=', 0.28, 'after promotion: mean recall@10 of the index answers');
is($standby->safe_psql('postgres', q{SET enable_seqscan = off;
		SELECT id FROM t ORDER BY v <-> array_fill(0.5::real, ARRAY[64])::lvector LIMIT 1}),
	'9801', 'after promotion: a new row is found through the index');

$primary->stop;
$standby->stop;
for my $node ($primary, $standby)
{
	log_has_no_crash($node);
	unlike(slurp_file($node->logfile), qr/inconsistent page found/, 'no WAL consistency failure in the log of ' . $node->name);
}

done_testing();
