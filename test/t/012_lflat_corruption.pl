# lflat on corrupted pages: with the server stopped, overwrite bytes of the
# index file, start again, and check that libravdb_index_check and index scans
# fail with SQLSTATE XX002 (index corrupted) naming what is wrong, that no
# backend crashes, and that restoring the bytes or a REINDEX repairs the index.
#
# The node has data checksums off (Cluster->init's default), so the server
# reads the corrupted pages instead of refusing them for a checksum mismatch.
#
# Byte offsets (BLCKSZ 8192, see include/libravdb/core/flat/format.h):
#   block 0, byte 24            MetaPage.magic, the first field after the page header
#   block 1, byte 24 + k*E      entry k of the stream (E = entry size); its header
#                               holds tid (6 bytes), then flags (uint16) at +6
#   block b, byte 8192-8        PageOpaque.magic in the special space of every page

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use LibraVDB::Test qw(new_node crash_lines log_has_no_crash);

use constant BLCKSZ => 8192;

my $node = new_node('corrupt');
is($node->safe_psql('postgres', 'SHOW data_checksums'), 'off', 'data checksums are off');

# 16 dimensions, no quantizer: entries of 16 + 64 = 80 bytes, 102 a page.
$node->safe_psql('postgres', q{
	CREATE TABLE c (id int PRIMARY KEY, v lvector(16));
	INSERT INTO c SELECT i, (SELECT array_agg(sin(i * 0.37 + j * 1.91)::real ORDER BY j)
	                         FROM generate_series(1, 16) j)
	  FROM generate_series(1, 500) i;
	CREATE INDEX c_idx ON c USING lflat (v lvector_l2_ops);
});
my $entry_size = $node->safe_psql('postgres', q{SELECT libravdb_index_info('c_idx')->>'entry_bytes'});
is($entry_size, 80, 'entry size of a 16-dimension float32 index');
my $pages = $node->safe_psql('postgres', q{SELECT libravdb_index_info('c_idx')->>'pages'});
cmp_ok($pages, '>=', 4, 'index has a metapage and several data pages');

my $query = '[' . join(',', map { sprintf('%.3f', cos($_)) } 1 .. 16) . ']';
my $scan_sql = "SET enable_seqscan = off; SELECT id FROM c ORDER BY v <-> '$query' LIMIT 5";
my $seq_sql = "SET enable_indexscan = off; SELECT id FROM c ORDER BY v <-> '$query' LIMIT 5";
like($node->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM c ORDER BY v <-> '$query' LIMIT 5"),
	qr/Index Scan using c_idx/, 'the query is an index scan');
my $expected = $node->safe_psql('postgres', $seq_sql);
is($node->safe_psql('postgres', $scan_sql), $expected, 'index scan matches the sequential answer');
like($node->safe_psql('postgres', q{SELECT libravdb_index_check('c_idx')}), qr/"ok": true/, 'index is clean');

my $file = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('c_idx')});
ok(-f $file, "index file $file exists");

sub read_bytes
{
	my ($pos, $len) = @_;
	open my $fh, '<:raw', $file or die "open $file: $!";
	sysseek($fh, $pos, 0) or die "seek: $!";
	my $got = sysread($fh, my $buf, $len);
	die "short read at $pos" unless defined $got && $got == $len;
	close $fh;
	return $buf;
}

sub write_bytes
{
	my ($pos, $bytes) = @_;
	open my $fh, '+<:raw', $file or die "open $file: $!";
	sysseek($fh, $pos, 0) or die "seek: $!";
	my $put = syswrite($fh, $bytes);
	die "short write at $pos" unless defined $put && $put == length $bytes;
	close $fh or die "close: $!";
}

# Runs $sql (verbose errors, stop at the first) and checks that it fails with
# XX002 and a message matching $msg_re, and that no backend crashed. After a
# crash (a failure) the node, which has restart_after_crash = off, shuts
# down; it is started again so that the rest of the test still runs.
my $crashes_seen = 0;
sub fails_corrupted
{
	my ($sql, $msg_re, $name) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql", on_error_stop => 1);
	note("$name: $err");
	isnt($ret, 0, "$name: fails");
	like($err, qr/ERROR:  XX002: /, "$name: SQLSTATE XX002")
	  or diag("stdout: " . ($out eq '' ? '(none)' : $out));
	like($err, $msg_re, "$name: message says where");

	my $lost = $err =~ /server closed the connection|connection to server was lost/;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	if ($lost)
	{
		# The postmaster logs the crash and exits a moment after psql sees it.
		for (my $i = 0; $i < 300 && -e $pidfile; $i++) { usleep(100_000); }
	}
	my @hits = crash_lines($node->logfile);
	my $new = @hits - $crashes_seen;
	$crashes_seen = @hits;
	ok(!$lost && $new == 0, "$name: no backend crashed") or diag(join '', @hits[ $#hits - $new + 1 .. $#hits ]);
	if ($lost)
	{
		$node->stop('immediate', fail_ok => 1);    # forgets the dead postmaster
		$node->start;
	}
	is($node->safe_psql('postgres', 'SELECT 42'), '42', "$name: server answers");
}

# ---------------------------------------------------------------------------
# (a) the metapage magic

my $meta_magic_pos = 0 * BLCKSZ + 24;
$node->stop;    # a clean stop writes every page to the file
is(unpack('V', read_bytes($meta_magic_pos, 4)), 0x4C464C54, 'metapage magic is "LFLT" where expected');
write_bytes($meta_magic_pos, pack('V', 0xDEADBEEF));
$node->start;

fails_corrupted(q{SELECT libravdb_index_check('c_idx')}, qr/metapage|block 0/, 'check on a bad metapage magic');
fails_corrupted($scan_sql, qr/metapage|block 0/, 'index scan on a bad metapage magic');
fails_corrupted(q{SELECT libravdb_index_info('c_idx')}, qr/metapage|block 0/, 'info on a bad metapage magic');
fails_corrupted(q{INSERT INTO c VALUES (1000, array_fill(0.5::real, ARRAY[16]))}, qr/metapage|block 0/,
	'insert on a bad metapage magic');
fails_corrupted(q{DELETE FROM c WHERE id = 1000; VACUUM c}, qr/metapage|block 0/, 'VACUUM on a bad metapage magic');
is($node->safe_psql('postgres', 'SELECT count(*) FROM c'), 500, 'failed insert left no row');

# Restore the bytes: the index is whole again.
$node->stop;
write_bytes($meta_magic_pos, pack('V', 0x4C464C54));
$node->start;
like($node->safe_psql('postgres', q{SELECT libravdb_index_check('c_idx')}), qr/"ok": true, "tuples": 500/,
	'restored metapage: check is clean');
is($node->safe_psql('postgres', $scan_sql), $expected, 'restored metapage: index scan answers again');

# ---------------------------------------------------------------------------
# (b) the flags of an entry header in a data page: entry 3 of block 1

my $entry = 3;
my $entry_off = 24 + $entry * $entry_size;    # offset in the page, as the check reports it
my $flags_pos = 1 * BLCKSZ + $entry_off + 6;
$node->stop;
is(unpack('v', read_bytes($flags_pos, 2)), 1, 'entry 3 of block 1 is live (flags = 1)');
my ($tid_hi, $tid_lo, $tid_off) = unpack('v3', read_bytes(1 * BLCKSZ + $entry_off, 6));
my $ctid = sprintf('(%d,%d)', $tid_hi * 65536 + $tid_lo, $tid_off);
write_bytes($flags_pos, pack('v', 0x00F7));
$node->start;

# A query whose nearest row is the one behind the damaged entry: an index
# scan that skipped the entry would answer wrongly without a word.
my $victim = $node->safe_psql('postgres', "SELECT id FROM c WHERE ctid = '$ctid'");
ok($victim ne '', "entry 3 points at heap tuple $ctid (id $victim)");
my $own_sql = "SET enable_seqscan = off; SELECT id FROM c ORDER BY v <-> (SELECT v FROM c WHERE id = $victim) LIMIT 3";

fails_corrupted(q{SELECT libravdb_index_check('c_idx')}, qr/block 1, offset $entry_off\b.*unknown flags/,
	'check on bad entry flags');
fails_corrupted($own_sql, qr/block 1\b/, 'index scan on bad entry flags');

$node->safe_psql('postgres', 'REINDEX INDEX c_idx');
like($node->safe_psql('postgres', q{SELECT libravdb_index_check('c_idx')}), qr/"ok": true, "tuples": 500/,
	'REINDEX repairs bad entry flags');
is($node->safe_psql('postgres', $scan_sql), $expected, 'after REINDEX the index scan answers exactly');

# ---------------------------------------------------------------------------
# (c) the special-space magic of data page 2: every reader checks it

$file = $node->data_dir . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filepath('c_idx')});  # REINDEX made a new file
my $special_pos = 2 * BLCKSZ + BLCKSZ - 8;
$node->stop;
is(unpack('V', read_bytes($special_pos, 4)), 0x4C464C54, 'data page 2 carries the lflat magic in its special space');
write_bytes($special_pos, pack('V', 0x12345678));
$node->start;

fails_corrupted(q{SELECT libravdb_index_check('c_idx')}, qr/block 2\b/, 'check on a bad page magic');
fails_corrupted($scan_sql, qr/block 2\b/, 'index scan on a bad page magic');
fails_corrupted(q{DELETE FROM c WHERE id = 7; VACUUM c}, qr/block 2\b/, 'VACUUM on a bad page magic');

$node->safe_psql('postgres', 'REINDEX INDEX c_idx');
like($node->safe_psql('postgres', q{SELECT libravdb_index_check('c_idx')}), qr/"ok": true/,
	'REINDEX repairs a bad page magic');
is($node->safe_psql('postgres', $scan_sql), $node->safe_psql('postgres', $seq_sql),
	'after REINDEX the index scan matches the sequential answer');

$node->stop;
log_has_no_crash($node);

done_testing();
