# Churn: for each access method, a table of 3,000 clustered 32-dimension
# vectors loses 80 % of its rows and gets as many new ones, five times, with
# a VACUUM after each DELETE. Checked for every index:
#   - after every round libravdb_index_check is clean and counts the table's
#     rows (for lhnsw: at most 0.5 % of the live nodes unreachable);
#   - the index does not grow without bound: its size after the five rounds
#     is at most 1.5 times its size after the first, and at most 1.5 times
#     the size of a fresh REINDEX;
#   - recall@10 at the access method's default settings (livfpq: 8 lists,
#     2 probed, see %options), over 30 queries against an exact ORDER BY the
#     planner cannot run on the index, stays within 0.05 of a fresh REINDEX
#     of the same rows, and so does lhnsw's at ef_search 10; lflat is exact,
#     so its recall must be 1 both times.
# The measured sizes and recalls are printed with note().

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash);

my $rows = 3000;
my $rounds = 5;
my $churn = 0.8;
my $growth_limit = 1.5;
my $recall_margin = 0.05;
my $unreachable_limit = 0.005;

my $node = new_node('churn', conf => "shared_buffers = 64MB\nautovacuum = off\n");

# cvec(seed): 25 clusters (seed % 25) of pseudo-random points, deterministic.
$node->safe_psql('postgres', q{
	CREATE FUNCTION rnd(x bigint) RETURNS float8 LANGUAGE sql IMMUTABLE
	  AS $$ SELECT hashint8(x)::float8 / 2147483648 $$;
	CREATE FUNCTION cvec(seed bigint) RETURNS lvector LANGUAGE sql IMMUTABLE
	  AS $$ SELECT array_agg((rnd(1000000000 + (seed % 25) * 64 + j) + rnd(seed * 64 + j))::real ORDER BY j)::lvector
	        FROM generate_series(1, 32) j $$;
});

# Default index options, except for livfpq: its default of sqrt(rows) lists
# puts each list on one page, so 8 lists of 375 rows with 44-byte entries
# make chains of two or three pages that the churn empties and refills; a
# scan probes 2 of them (its own option), so recall is below 1 and tells.
my %am = (lflat => 'lflat', lhnsw => 'lhnsw', livfpq => 'livfpq');
my %options = (lflat => '', lhnsw => '', livfpq => 'WITH (lists = 8, pq_m = 32, pq_bits = 8, probes = 2)');
for my $am (sort keys %am)
{
	$node->safe_psql('postgres', qq{
		CREATE TABLE t_$am (id bigint PRIMARY KEY, v lvector(32)) WITH (autovacuum_enabled = off);
		INSERT INTO t_$am SELECT i, cvec(i) FROM generate_series(1, $rows) i;
		CREATE INDEX i_$am ON t_$am USING $am (v lvector_l2_ops) $options{$am};
	});
}

my $noseq = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
# At the default ef_search (40) both lhnsw graphs find nearly every
# neighbour; at 10 a graph worn by churn would show.
my $low_ef = 'SET libravdb.hnsw_ef_search = 10;';

# recall@10 of the index of t_$am over 30 queries (seeds no row has), each
# against the exact top 10 ((v <-> q) + 0 cannot use the index). $set: the
# search settings.
$node->safe_psql('postgres', 'CREATE TABLE queries AS SELECT cvec(5000000 + 37 * s) AS qv FROM generate_series(1, 30) s');
sub recall
{
	my ($am, $set) = @_;
	my $q = qq{SELECT avg((SELECT count(*) FROM unnest(got) g WHERE g = ANY (exact)))::float8 / 10 FROM (
		SELECT array(SELECT id FROM t_$am ORDER BY v <-> q.qv LIMIT 10) AS got,
		       array(SELECT id FROM t_$am ORDER BY (v <-> q.qv) + 0 LIMIT 10) AS exact
		  FROM queries q) x};
	return $node->safe_psql('postgres', "$noseq " . ($set // '') . " $q");
}

sub index_size { my ($am) = @_; return $node->safe_psql('postgres', "SELECT pg_relation_size('i_$am')"); }

for my $am (sort keys %am)
{
	like($node->safe_psql('postgres', "$noseq EXPLAIN (COSTS OFF) SELECT array(SELECT id FROM t_$am"
			  . " ORDER BY v <-> q.qv LIMIT 10) FROM queries q"),
		qr/Index Scan using i_$am/, "$am: the recall query's inner search is an index scan");
	note(sprintf('%s: after the build: %d bytes, recall@10 %.3f', $am, index_size($am), recall($am)));
}

# Checks one index after a round: clean, counting the table's rows.
sub check_index
{
	my ($am, $when) = @_;
	my $check = $node->safe_psql('postgres', "SELECT libravdb_index_check('i_$am')");
	my $n = $node->safe_psql('postgres', "SELECT count(*) FROM t_$am");
	like($check, qr/"ok": true/, "$am, $when: libravdb_index_check is clean");
	like($check, qr/"tuples": $n\b/, "$am, $when: the index counts the table's $n rows");
	if ($am eq 'lhnsw')
	{
		my ($unreachable) = $check =~ /"unreachable": (\d+)/;
		cmp_ok($unreachable, '<=', $unreachable_limit * $n,
			"$am, $when: at most $unreachable_limit of the live nodes unreachable ($unreachable)");
	}
}

my (%size1, %size_end);
my $next_id = $rows + 1;
for my $round (1 .. $rounds)
{
	# The same rows go in every table: 80 % of them out (chosen by a hash of
	# id and round), VACUUM, as many new rows in.
	my $cut = int($churn * 2**32) - 2**31;
	for my $am (sort keys %am)
	{
		$node->safe_psql('postgres', qq{
			DELETE FROM t_$am WHERE hashint8(id * 16 + $round) < $cut;
			VACUUM t_$am;
			INSERT INTO t_$am SELECT $next_id + n, cvec($next_id + n)
			  FROM generate_series(0, $rows - 1 - (SELECT count(*) FROM t_$am)) n;
		});
	}
	$next_id += $rows;
	my @sizes;
	for my $am (sort keys %am)
	{
		is($node->safe_psql('postgres', "SELECT count(*) FROM t_$am"), $rows, "$am, round $round: the table holds $rows rows");
		check_index($am, "round $round");
		my $size = index_size($am);
		$size1{$am} = $size if $round == 1;
		$size_end{$am} = $size;
		push @sizes, "$am $size";
	}
	note("round $round: index bytes: " . join(', ', @sizes));
}
is($node->safe_psql('postgres', "SELECT count(*) FROM t_lhnsw WHERE id <= $rows"),
	$node->safe_psql('postgres', "SELECT count(*) FROM t_lflat WHERE id <= $rows"),
	'the tables lost the same rows');

for my $am (sort keys %am)
{
	my $churned = recall($am);
	my $churned_low = $am eq 'lhnsw' ? recall($am, $low_ef) : undef;
	cmp_ok($size_end{$am}, '<=', $growth_limit * $size1{$am},
		"$am: after $rounds rounds the index is at most $growth_limit times its size after the first");
	$node->safe_psql('postgres', "REINDEX INDEX i_$am");
	check_index($am, 'after REINDEX');
	my $fresh = recall($am);
	my $fresh_size = index_size($am);
	cmp_ok($size_end{$am}, '<=', $growth_limit * $fresh_size,
		"$am: after $rounds rounds the index is at most $growth_limit times the size of a fresh build");
	if ($am eq 'lhnsw')
	{
		my $fresh_low = recall($am, $low_ef);
		note(sprintf('%s at ef_search 10: recall@10 churned %.3f, fresh %.3f', $am, $churned_low, $fresh_low));
		cmp_ok($churned_low, '>=', $fresh_low - $recall_margin,
			"$am: recall@10 at ef_search 10 after churn within $recall_margin of a fresh build");
	}
	note(sprintf('%s: size after round 1 %d, after round %d %d (%.2fx), after REINDEX %d; recall@10 churned %.3f,'
			  . ' fresh %.3f', $am, $size1{$am}, $rounds, $size_end{$am}, $size_end{$am} / $size1{$am}, $fresh_size,
			$churned, $fresh));
	if ($am eq 'lflat')
	{
		is($churned + 0, 1, "$am: exact after churn");
		is($fresh + 0, 1, "$am: exact after REINDEX");
	}
	else
	{
		cmp_ok($churned, '>=', $fresh - $recall_margin,
			"$am: recall@10 after churn within $recall_margin of a fresh build");
	}
}

$node->stop;
log_has_no_crash($node);

done_testing();
