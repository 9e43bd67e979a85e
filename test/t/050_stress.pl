# Bounded-time stress, for each access method: pgbench clients insert,
# update, delete and search (with and without a WHERE) while another client
# runs VACUUM, REINDEX INDEX CONCURRENTLY and libravdb_index_check in a loop.
#   - Every search asserts its own answer inside pgbench: LIMIT 10 returns 10
#     rows (the table always holds over 1,000 matching rows) in distance
#     order; a violation divides by zero, which pgbench reports as an error.
#   - Both pgbench runs end without any error (pgbench exits 0 only when no
#     client aborted), each client having run transactions.
#   - Afterwards: the index checks clean and counts the table's rows; every
#     row is found by its own vector (lflat exactly, livfpq at full probes
#     exactly, lhnsw for at least 99 %); an unlimited index scan returns each
#     row at most once and no deleted one.
#   - The server log shows no crash.
# LIBRAVDB_STRESS_SECONDS (default 8) sets each run's length, soak runs set
# it higher; LIBRAVDB_STRESS_AMS (default "lflat lhnsw livfpq") picks the
# access methods.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash);

my $seconds = $ENV{LIBRAVDB_STRESS_SECONDS} // 8;
my $rows = 3000;
my $clients = 4;

# No autovacuum: its snapshots would keep the final VACUUM from removing the
# last deleted rows, which the index then still counts.
my $node = new_node('stress', conf => "shared_buffers = 64MB\nmax_connections = 40\nautovacuum = off\n"
	  . "deadlock_timeout = 100ms\nlog_min_messages = warning\n");

# vec(seed): a deterministic 32-dimension vector in 20 clusters.
$node->safe_psql('postgres', q{
	CREATE FUNCTION vec(seed bigint) RETURNS lvector LANGUAGE sql IMMUTABLE
	  AS $$ SELECT array_agg((sin((seed % 20) * 7.1 + j) + 0.3 * sin(seed * 1.37 + j * 3.3))::real ORDER BY j)::lvector
	        FROM generate_series(1, 32) j $$;
});

my %options = (lflat => '', lhnsw => '', livfpq => 'WITH (lists = 16)');
my $dir = $node->basedir;

# The workload. Ids above $rows come from a sequence; deletes pick a random
# id, so the table stays near $rows rows.
write_file("$dir/insert.sql", <<'EOF');
INSERT INTO t (id, cat, v) SELECT s, s % 3, vec(s) FROM nextval('t_id') s;
EOF
write_file("$dir/update.sql", <<'EOF');
\set id random(1, 6000)
\set s random(1, 1000000)
UPDATE t SET v = vec(:s) WHERE id = :id;
EOF
write_file("$dir/delete.sql", <<'EOF');
\set id random(1, 6000)
DELETE FROM t WHERE id = :id;
EOF
# n: rows returned; bad: rows closer than the one before them.
my $search = <<'EOF';
\set s random(1, 1000000)
SELECT count(*) AS n, count(*) FILTER (WHERE d < prev) AS bad FROM (
  SELECT d, lag(d) OVER (ORDER BY r) AS prev FROM (
    SELECT v <-> vec(:s) AS d, row_number() OVER () AS r FROM (
      SELECT v FROM t WHERE_CLAUSE ORDER BY v <-> vec(:s) LIMIT 10) a) b) c \gset
\if :n != 10 or :bad != 0
SELECT 1 / 0 AS wrong_answer;
\endif
EOF
(my $s1 = $search) =~ s/WHERE_CLAUSE//;
(my $s2 = $search) =~ s/WHERE_CLAUSE/WHERE cat = 1/;
write_file("$dir/search.sql", $s1);
write_file("$dir/search_filtered.sql", $s2);
write_file("$dir/vacuum.sql", "VACUUM t;\n");
write_file("$dir/reindex.sql", "REINDEX INDEX CONCURRENTLY t_idx;\n");
write_file("$dir/check.sql", "SELECT libravdb_index_check('t_idx');\n");

sub pgbench
{
	my ($tag, @args) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-T', $seconds, @args, 'postgres' ],
		'>', \$out, '2>', \$err);
	return { tag => $tag, h => $h, out => \$out, err => \$err };
}

my $noseq = 'SET enable_seqscan = off; SET enable_bitmapscan = off;';
for my $am (split ' ', $ENV{LIBRAVDB_STRESS_AMS} // 'lflat lhnsw livfpq')
{
	$node->safe_psql('postgres', qq{
		DROP TABLE IF EXISTS t;
		DROP SEQUENCE IF EXISTS t_id;
		CREATE TABLE t (id bigint PRIMARY KEY, cat int, v lvector(32));
		INSERT INTO t SELECT i, i % 3, vec(i) FROM generate_series(1, $rows) i;
		CREATE SEQUENCE t_id START $rows;
		SELECT setval('t_id', $rows);
		CREATE INDEX t_idx ON t USING $am (v lvector_l2_ops) $options{$am};
		ALTER DATABASE postgres SET enable_seqscan = off;
		ALTER DATABASE postgres SET enable_bitmapscan = off;
	});
	like($node->safe_psql('postgres', "$noseq EXPLAIN (COSTS OFF) SELECT id FROM t WHERE cat = 1 ORDER BY v <-> vec(1) LIMIT 10"),
		qr/Index Scan using t_idx/, "$am: the searches are index scans");

	my @runs = (
		pgbench('workload', '-c', $clients, '-j', 2, '-f', "$dir/insert.sql\@4", '-f', "$dir/update.sql\@2",
			'-f', "$dir/delete.sql\@4", '-f', "$dir/search.sql\@6", '-f', "$dir/search_filtered.sql\@4"),
		pgbench('maintenance', '-c', 1, '-f', "$dir/vacuum.sql\@3", '-f', "$dir/reindex.sql\@1",
			'-f', "$dir/check.sql\@2"));
	for my $r (@runs)
	{
		$r->{h}->finish;
		my $rc = $r->{h}->result(0);
		my ($done) = ${ $r->{out} } =~ /number of transactions actually processed: (\d+)/;
		my ($failed) = ${ $r->{out} } =~ /number of failed transactions: (\d+)/;
		is($rc, 0, "$am, $r->{tag}: pgbench ends without errors")
		  or diag("stdout:\n${ $r->{out} }\nstderr:\n${ $r->{err} }");
		ok(defined $done && $done > 0, "$am, $r->{tag}: transactions ran (" . ($done // 'none') . ')');
		ok(!$failed, "$am, $r->{tag}: no failed transactions") if defined $failed;
		note("$am, $r->{tag}: " . join(', ', ${ $r->{out} } =~ /^(number of transactions actually processed: \d+|tps = [\d.]+)/mg));
	}
	$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET ALL');

	# VACUUM first: the last deletes' entries are still in the index. With
	# INDEX_CLEANUP on, as otherwise a VACUUM that finds few dead rows skips
	# the indexes and leaves their entries (pointing at dead line pointers).
	$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP on) t');
	my $n = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
	my $check = $node->safe_psql('postgres', "SELECT libravdb_index_check('t_idx')");
	like($check, qr/"ok": true/, "$am: libravdb_index_check is clean after the stress");
	like($check, qr/"tuples": $n\b/, "$am: the index counts the table's $n rows");

	# Every row found first by its own vector. Duplicate vectors (an update
	# may give two rows the same seed) tie at distance 0: any row of the
	# tie counts.
	my $settings = $am eq 'livfpq' ? 'SET libravdb.ivfpq_probes = 16; SET libravdb.ivfpq_rerank = 10000;' : '';
	my $own = $node->safe_psql('postgres', qq{$noseq $settings
		SELECT count(*) FILTER (WHERE (SELECT t2.v <-> t.v FROM t t2 ORDER BY t2.v <-> t.v LIMIT 1) = 0)
		  FROM t;
	});
	if ($am eq 'lhnsw')
	{
		cmp_ok($own, '>=', 0.99 * $n, "$am: at least 99 % of the $n rows are found by their own vector ($own)");
	}
	else
	{
		is($own, $n, "$am: all $n rows are found by their own vector");
	}
	is($node->safe_psql('postgres', qq{$noseq $settings
		SELECT count(*) - count(DISTINCT id) FROM (SELECT id FROM t ORDER BY v <-> vec(7)) s;
		}), 0, "$am: an unlimited index scan returns no row twice");
	is($node->safe_psql('postgres', qq{$noseq $settings
		SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> vec(7)) s WHERE id NOT IN (SELECT id FROM t);
		}), 0, "$am: and no row the table does not hold");
}

log_has_no_crash($node);
$node->stop;
done_testing();

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
}
