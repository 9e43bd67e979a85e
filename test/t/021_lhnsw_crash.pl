# lhnsw crash recovery under concurrent writes (LibraVDB::Crash): three
# clients insert, update (new vectors, sometimes NULL), delete and roll back
# rows while VACUUM runs over and over, and the server is stopped at a random
# moment (immediate stop, SIGKILL of the postmaster, SIGKILL of every
# process), six times. An insert links its node in steps (node + metapage,
# then one record per link back), so crashes cut inserts between them.
#
# Indexes: t (32 dims) has a float32 L2 graph and an sq8 L1 one; t2k has
# 1800 dimensions, so most nodes' slots (7.3 kB) cross a page boundary.
# Slots of 7000 dimensions (28 kB, five pages, written in two records before
# they go live) would be the harder case, but inserts into such an index fail
# today (the TODO test at the end): switch t2k to 7000 dimensions once they
# work.
#
# What lhnsw promises here, and the test asserts:
#   - a committed row was linked completely before its COMMIT (at least one
#     link leads to it), so it stays reachable: an own-vector search at
#     ef_search 100 finds it first, or else one at ef_search 1000 does, or
#     else (a later insert's prune took its last link) one at 1000 after a
#     VACUUM does, which links in every live node no search reaches; a row
#     no search finds even then is a lost row;
#   - libravdb_index_check's "unreachable" (live nodes no link path from
#     the entry point leads to) never exceeds the inserts in flight at the
#     crashes so far, and is 0 once VACUUM has run (which frees the nodes of
#     cut inserts, whose rows are dead, and links in the rest); after a
#     VACUUM no upper slot of a cut insert is left either;
#   - an unlimited scan returns no row twice and nothing the table lacks, in
#     order; it may skip rows the graph reaches late (README, "Filters"; the
#     same section says LIMIT k returns k rows whenever k rows match, which
#     a fresh 1500-row index already does not do for k near 1500), so the
#     count it returns is only noted;
#   - top-10 at ef_search 100 has recall 0.9 or better against an exact
#     scan. (At the default 40, t2k's 1800-dimension vectors in an m = 8
#     graph grown from 30 rows by inserts measured 0.906 to 0.99 after the
#     later crashes, and once 0.875, in runs without any lost row: the
#     graph's quality for such data, not damage, which shows as rows not
#     found.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash);
use LibraVDB::Crash;

my $node = new_node('crash', conf => "shared_buffers = 32MB\nmax_parallel_maintenance_workers = 0\n");

my $crash = LibraVDB::Crash->new(
	node   => $node,
	tables => [
		{ name => 't',   dims => 32,   rows => 1500, nulls => [ 10, 1000 ], weight => 0.9 },
		{ name => 't2k', dims => 1800, rows => 30,   nulls => [5],          weight => 0.1 },
	],
	indexes => [
		[ t_l2     => 't',   '<->', 'USING lhnsw (v lvector_l2_ops)' ],
		[ t_l1_sq8 => 't',   '<+>', q{USING lhnsw (v lvector_l1_ops) WITH (quantizer = 'sq8')} ],
		[ t2k_l2   => 't2k', '<->', 'USING lhnsw (v lvector_l2_ops) WITH (m = 8)' ],
	],
	own          => 'SET libravdb.hnsw_ef_search = 100;',
	own_again    => 'SET libravdb.hnsw_ef_search = 1000;',
	scan         => '',
	topk         => 'SET libravdb.hnsw_ef_search = 100;',
	recall       => 0.9,
	queries      => 16,
	every_row    => 0,
	own_vacuum   => 1,
	check_report => sub {
		my ($crash, $when, $index, $report) = @_;
		cmp_ok($report->{unreachable}, '<=', $crash->cut_inserts,
			"$when: $index: no more unreachable nodes than inserts cut by the crashes so far ("
			  . $crash->cut_inserts . ')');
		note("$when: $index: " . join(', ', map { "$_ $report->{$_}" } qw(tuples live deleted nulls unreachable)));
	},
	vacuum_report => sub {
		my ($crash, $when, $index, $report) = @_;
		is($report->{unreachable}, 0, "$when, then VACUUM: $index: every live node is reachable");
		is($report->{deleted}, 0, "$when, then VACUUM: $index: no deleted node left");
		is($report->{orphan_upper_slots}, 0, "$when, then VACUUM: $index: no upper slot of a cut insert left");
	});
$crash->check('before any crash');
$crash->cycle($_) for 1 .. 6;
$crash->summary;

# Known gap: an insert that appends a node of level 1 or more to an index
# whose slots cover more than one page writes its upper slot (after the
# node's) first, extending the index past a block that does not exist yet,
# and fails with "index ... extended to block N, expected N+1" (or +2, +3).
my ($failed, $first) = split /\|/, $node->safe_psql('postgres', q{
	CREATE TABLE big (id int, v lvector(7000));
	CREATE INDEX big_l2 ON big USING lhnsw (v lvector_l2_ops) WITH (m = 8);
	CREATE TABLE big_errors (id int, msg text);
	DO $$ BEGIN
		FOR i IN 1 .. 40 LOOP
			BEGIN
				INSERT INTO big VALUES (i, vec(i, 7000));
			EXCEPTION WHEN OTHERS THEN
				INSERT INTO big_errors VALUES (i, SQLERRM);
			END;
		END LOOP; END $$;
	SELECT count(*) || '|' || coalesce(min(msg), '') FROM big_errors});
note("inserts into big: $failed failed; the first error: $first") if $failed;
is($failed, 0, 'inserts of 7000-dim rows, one at a time, into an lhnsw index');

$node->stop;
log_has_no_crash($node);

done_testing();
