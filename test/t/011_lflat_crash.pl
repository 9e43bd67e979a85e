# lflat crash recovery under concurrent writes (LibraVDB::Crash): three
# clients insert, update (new vectors, sometimes NULL), delete and roll back
# rows while VACUUM runs over and over (so inserts reuse the slots it frees),
# and the server is stopped at a random moment (immediate stop, SIGKILL of
# the postmaster, SIGKILL of every process), six times. After each restart
# every check of LibraVDB::Crash holds exactly: lflat is exact, so every row
# is found first by a search for its own vector (at distance 0 under L2 and
# L1), an unlimited scan returns every row once in distance order, and top-10
# answers equal an exact scan's, ids and distances.
#
# Indexes: t (64 dims) has a float32 L2 index, an sq8 L1 index and an fp16
# cosine index (both re-ranked on the heap); t7k has 7000 dimensions, so an
# entry (28 kB) covers 4 or 5 pages and every insert into it is a sequence of
# generic WAL records (at most 4 pages each) that a crash can cut anywhere.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash);
use LibraVDB::Crash;

my $node = new_node('crash', conf => "shared_buffers = 32MB\n");

my $crash = LibraVDB::Crash->new(
	node   => $node,
	tables => [
		{ name => 't',   dims => 64,   rows => 600,  nulls => [ 10, 500 ], weight => 0.9 },
		{ name => 't7k', dims => 7000, rows => 10,   nulls => [3],         weight => 0.1 },
	],
	indexes => [
		[ t_l2       => 't',   '<->', 'USING lflat (v lvector_l2_ops)' ],
		[ t_l1_sq8   => 't',   '<+>', q{USING lflat (v lvector_l1_ops) WITH (quantizer = 'sq8')} ],
		[ t_cos_fp16 => 't',   '<=>', q{USING lflat (v lvector_cosine_ops) WITH (quantizer = 'fp16')} ],
		[ t7k_l2     => 't7k', '<->', 'USING lflat (v lvector_l2_ops)' ],
	],
	recall    => 'exact',
	every_row => 1);
is($node->safe_psql('postgres', q{SELECT libravdb_index_info('t7k_l2')->>'entry_bytes'}), 28016,
	't7k entries are 28016 bytes: more than three pages');

$crash->check('before any crash');
$crash->cycle($_) for 1 .. 6;
$crash->summary;
# Inserts reused the slots VACUUM freed: fewer slots than entries written.
for my $index (qw(t_l2 t7k_l2))
{
	my $table = $index =~ s/_l2$//r;
	my $slots = $node->safe_psql('postgres', "SELECT libravdb_index_info('$index')->>'slots'");
	cmp_ok($slots, '<', $crash->entries_written($table),
		"$index: fewer slots than the " . $crash->entries_written($table) . " entries written: inserts reused freed slots");
	note("$index: " . $node->safe_psql('postgres', "SELECT libravdb_index_info('$index') - 'am'"));
}

$node->stop;
log_has_no_crash($node);

done_testing();
