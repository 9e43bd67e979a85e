# Running out of space: the server runs with a file-size limit (ulimit -f,
# 2 MB; PostgreSQL ignores SIGXFSZ, so a write past the limit fails with
# EFBIG like a full disk) and 1 MB WAL segments, so index files hit the
# limit long before anything else does. The heap stays small: its vectors
# (1,024 dimensions, runs of equal values) are compressed in the row (the
# tables set toast_tuple_target = 128), the index's are not.
#   - CREATE INDEX for each access method fails with a clear ERROR ("could
#     not extend file"), leaves no index behind, and the table answers.
#   - For each access method, an index that fits takes INSERTs, one batch per
#     transaction, until one fails extending it: the ERROR is the same, the
#     index checks clean, every committed row is found by its own vector,
#     VACUUM works.
#   - After a restart without the limit, INSERTs succeed again and the
#     index still checks clean and finds every row.
#   - The server log shows no crash.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(log_has_no_crash);

my $limit_kb = 2048;
my $node = PostgreSQL::Test::Cluster->new('diskfull');
$node->init(extra => ['--wal-segsize=1']);
$node->append_conf('postgresql.conf', "shared_buffers = 16MB\nautovacuum = off\nmin_wal_size = 4MB\nmax_wal_size = 8MB\n"
	  . "max_parallel_maintenance_workers = 0\nlog_statement = none\n");

# Starts the server with the file-size limit (or without, $limit undef).
sub start_limited
{
	my ($limit) = @_;
	my $cmd = 'exec pg_ctl -w -D ' . $node->data_dir . ' -l ' . $node->logfile . ' start';
	$cmd = "ulimit -f $limit && $cmd" if defined $limit;
	system('sh', '-c', $cmd) == 0 or die "could not start the server: $cmd";
	$node->_update_pid(1);    # Cluster.pm's own record of the running server
}
start_limited($limit_kb);
$node->safe_psql('postgres', 'CREATE EXTENSION libravdb');

# vec(seed): 1,024 dimensions in 16 runs of equal values (compressible).
$node->safe_psql('postgres', q{
	CREATE FUNCTION vec(seed bigint) RETURNS lvector LANGUAGE sql IMMUTABLE
	  AS $$ SELECT ('[' || string_agg(repeat(x || ',', 63) || x, ',' ORDER BY k) || ']')::lvector
	        FROM (SELECT k, round(sin(seed * 0.7 + k)::numeric, 3)::text AS x FROM generate_series(0, 15) k) s $$;
});

my %small = (lflat => '', lhnsw => '', livfpq => 'WITH (lists = 4, pq_m = 1024, pq_bits = 4)');
my %big_rows = (lflat => 1500, lhnsw => 1500, livfpq => 4500);
my %fit_rows = (lflat => 200, lhnsw => 200, livfpq => 300);
my $extend_error = qr/could not extend file .*: File too large/;

# 1. A build that cannot fit.
for my $am (sort keys %small)
{
	$node->safe_psql('postgres', qq{
		CREATE TABLE big_$am (id int PRIMARY KEY, v lvector(1024)) WITH (toast_tuple_target = 128);
		INSERT INTO big_$am SELECT i, vec(i) FROM generate_series(1, $big_rows{$am}) i;
	});
	my $heap = $node->safe_psql('postgres', "SELECT pg_relation_size('big_$am')");
	cmp_ok($heap, '<', $limit_kb * 1024 / 2, "$am: the table ($heap bytes) is well under the limit");
	my ($ret, $out, $err) = $node->psql('postgres', "CREATE INDEX big_${am}_idx ON big_$am USING $am (v lvector_l2_ops) $small{$am}");
	isnt($ret, 0, "$am: CREATE INDEX past the limit fails");
	like($err, $extend_error, "$am: with a clear error") or diag($err);
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'big_${am}_idx'"), 0,
		"$am: and leaves no index behind");
	is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT v) FROM big_$am"), "$big_rows{$am}|$big_rows{$am}",
		"$am: the table still answers");
	$node->safe_psql('postgres', "DROP TABLE big_$am");
}

# 2. Inserts into an index that grows past the limit.
my $noseq = 'SET enable_seqscan = off; SET enable_bitmapscan = off; SET libravdb.ivfpq_probes = 4; SET libravdb.ivfpq_rerank = 100000;';
sub own_vector_misses
{
	my ($am) = @_;
	return $node->safe_psql('postgres', qq{$noseq
		SELECT count(*) FROM t_$am WHERE id <> (SELECT t2.id FROM t_$am t2 ORDER BY t2.v <-> t_$am.v LIMIT 1)});
}
my %next;
for my $am (sort keys %small)
{
	$node->safe_psql('postgres', qq{
		CREATE TABLE t_$am (id int PRIMARY KEY, v lvector(1024)) WITH (toast_tuple_target = 128);
		INSERT INTO t_$am SELECT i, vec(i) FROM generate_series(1, $fit_rows{$am}) i;
		CREATE INDEX t_${am}_idx ON t_$am USING $am (v lvector_l2_ops) $small{$am};
	});
	my ($id, $err, $batches) = ($fit_rows{$am} + 1, '', 0);
	while ($batches < 200)
	{
		my $ret;
		($ret, undef, $err) = $node->psql('postgres', "INSERT INTO t_$am SELECT i, vec(i) FROM generate_series($id, $id + 49) i");
		last if $ret != 0;
		$id += 50;
		$batches++;
	}
	like($err, $extend_error, "$am: an INSERT fails extending the index, with a clear error") or diag($err);
	my $rows = $node->safe_psql('postgres', "SELECT count(*) FROM t_$am");
	is($rows, $id - 1, "$am: the table holds the $rows rows of the committed batches");
	my $heap = $node->safe_psql('postgres', "SELECT pg_relation_size('t_$am')");
	cmp_ok($heap, '<', $limit_kb * 1024, "$am: it was the index, not the table, that hit the limit");
	like($node->safe_psql('postgres', "SELECT libravdb_index_check('t_${am}_idx')"), qr/"ok": true/,
		"$am: libravdb_index_check is clean after the failed INSERT");
	is(own_vector_misses($am), 0, "$am: every committed row is found by its own vector");
	my ($vret, undef, $verr) = $node->psql('postgres', "VACUUM t_$am");
	is($vret, 0, "$am: VACUUM works") or diag($verr);
	$next{$am} = $id;
}

# 3. Space again: a restart without the limit.
$node->stop;
start_limited(undef);
for my $am (sort keys %small)
{
	my $id = $next{$am};
	$node->safe_psql('postgres', "INSERT INTO t_$am SELECT i, vec(i) FROM generate_series($id, $id + 199) i");
	like($node->safe_psql('postgres', "SELECT libravdb_index_check('t_${am}_idx')"), qr/"ok": true/,
		"$am: after the restart, 200 more rows go in and the index checks clean");
	is(own_vector_misses($am), 0, "$am: and finds every row by its own vector");
}

log_has_no_crash($node);
$node->stop;
done_testing();
