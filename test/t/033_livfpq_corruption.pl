# livfpq on corrupted pages: with the server stopped, overwrite bytes of the
# index file (metapage fields, a list's directory entry, a list page's
# header, an entry's flags, the special space of a page), start again, and
# check that libravdb_index_check and index scans fail with SQLSTATE XX002
# naming the block of what is wrong, that no backend crashes, and that
# restoring the bytes or a REINDEX repairs the index.
#
# Where a scan (or an insert, or VACUUM) does not notice a corruption it
# reads -- it answers wrongly, or fails with another SQLSTATE -- its checks are
# TODO tests naming the gap; the crash checks never are. FORMAT.md says
# "a wrong list, ... is corruption (XX002, with the block and the byte
# offset), never skipped". A count or a hint in the directory that a scan
# uses only to size a buffer is checked by libravdb_index_check alone, and
# the scan must still answer exactly.
#
# Data checksums are off (Cluster->init's default), so the server reads the
# corrupted pages instead of refusing them.
#
# Byte positions (BLCKSZ 8192; include/libravdb/core/ivfpq/format.h,
# src/core/ivfpq/FORMAT.md):
#   block 0, byte 24 + f           MetaPage field at offset f: magic 0,
#                                  version 4, lists 12, list_start 48, reserved0 52
#   block 1, byte 24 + 32 * i + f  directory entry of list i (255 a page):
#                                  head 0, tail 4, free_hint 8, count 12
#   list page, byte 24 + f         ListPageHeader: next 0, list 4, n_entries 8
#   list page, byte 40 + k * E     entry k (E = entry size): flags at +6,
#                                  error at +8
#   block b, byte 8192 - 8         PageOpaque.magic in the special space

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash relation_file read_bytes write_bytes fails_corrupted);

use constant { BLCKSZ => 8192, PAGE_HEADER => 24, DATA_PER_PAGE => 8160, NO_BLOCK => 0xFFFFFFFF };

my $node = new_node('icorrupt', conf => "max_parallel_maintenance_workers = 0\n");
is($node->safe_psql('postgres', 'SHOW data_checksums'), 'off', 'data checksums are off');

# 64 dimensions, 8-bit codes of 64 bytes: entries of 76 bytes, 107 a page;
# 900 rows in 4 lists make chains of about three pages. Three NULL rows fill
# the NULL list.
my $rows = 903;
$node->safe_psql('postgres', qq{
	CREATE TABLE f (id int PRIMARY KEY, v lvector(64)) WITH (autovacuum_enabled = off);
	INSERT INTO f SELECT i, (SELECT array_agg((sin(i * 0.37 + j * 1.91) + (i % 4) * 0.8)::real ORDER BY j)
	                         FROM generate_series(1, 64) j)
	  FROM generate_series(1, 900) i;
	INSERT INTO f VALUES (901, NULL), (902, NULL), (903, NULL);
	CREATE INDEX f_idx ON f USING livfpq (v lvector_l2_ops) WITH (lists = 4, pq_m = 64, pq_bits = 8);
});
is($node->safe_psql('postgres', q{SELECT libravdb_index_info('f_idx')->>'entry_bytes'}), 76, 'entry size');
my $clean = qr/"ok": true, "lists": 4, "pages": \d+, "tuples": $rows\b/;
like($node->safe_psql('postgres', q{SELECT libravdb_index_check('f_idx')}), $clean, 'index is clean');

sub vec_of { my ($i) = @_; return "(SELECT v FROM f WHERE id = $i)"; }
my $query = '[' . join(',', map { sprintf('%.3f', cos($_) + 1) } 1 .. 64) . ']';
# Every list probed (4 of the default 10), the answer exact.
my $noseq = 'SET enable_seqscan = off; SET enable_bitmapscan = off; SET libravdb.ivfpq_rerank = 1000;';
my $scan_sql = "$noseq SELECT id FROM f ORDER BY v <-> '$query' LIMIT 5";
my $seq_sql = "SET enable_indexscan = off; SELECT id FROM f ORDER BY v <-> '$query' LIMIT 5";
like($node->safe_psql('postgres', "$noseq EXPLAIN (COSTS OFF) SELECT id FROM f ORDER BY v <-> '$query' LIMIT 5"),
	qr/Index Scan using f_idx/, 'the query is an index scan');
my $expected = $node->safe_psql('postgres', $seq_sql);
is($node->safe_psql('postgres', $scan_sql), $expected, 'index scan matches the sequential answer');
# Every row, NULLs last, through the index.
my $all_sql = "$noseq SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM f ORDER BY v <-> '$query') s";
is($node->safe_psql('postgres', $all_sql), "$rows|$rows", 'an unlimited index scan returns every row once');

my $file = relation_file($node, 'f_idx');

# ---------------------------------------------------------------------------
# The layout, read from the file of the stopped server.

my %meta;
sub meta_pos { return PAGE_HEADER + $_[0]; }
sub dir_pos { my ($list, $off) = @_; return (1 + int($list / 255)) * BLCKSZ + PAGE_HEADER + 32 * ($list % 255) + $off; }
sub page_pos { my ($blk, $off) = @_; return $blk * BLCKSZ + PAGE_HEADER + $off; }
sub entry_pos { my ($blk, $k, $off) = @_; return page_pos($blk, 16 + $k * $meta{entry_size} + $off); }
sub read_meta
{
	@meta{qw(magic version metric pq_bits dims lists pq_m code_bytes entry_size data_per_page dir_start dir_blocks
	  centroid_start codebook_start list_start reserved0)} =
	  unpack('V v C C V12', read_bytes($file, meta_pos(0), 64));
}
sub dir_entry
{
	my %e;
	@e{qw(head tail free_hint count radius)} = unpack('V4 f<', read_bytes($file, dir_pos($_[0], 0), 20));
	return \%e;
}
sub list_page
{
	my %h;
	@h{qw(next list n_entries reserved0 reserved1)} = unpack('V V v v V', read_bytes($file, page_pos($_[0], 0), 16));
	return \%h;
}
sub entry
{
	my ($blk, $k) = @_;
	my %e;
	@e{qw(tid_hi tid_lo tid_off flags error)} = unpack('v4 f<', read_bytes($file, entry_pos($blk, $k, 0), 12));
	return \%e;
}

# What the cases corrupt, found again after each REINDEX: list 0 (its
# directory entry, its chain of pages), list 1's head, an entry of list 0's
# head page with its row, and the number of blocks.
my ($nblocks, @dir, @chain, $head, $second, $victim_k, $victim, $own_sql, $own_expected, $head1);
sub survey
{
	my ($when) = @_;
	$node->stop;    # a clean stop writes every page to the file
	read_meta();
	is($meta{magic}, 0x4C495650, "$when: metapage magic is \"LIVP\" where expected");
	is($meta{entry_size}, 76, "$when: metapage entry size where expected");
	is($meta{dir_start}, 1, "$when: the directory is block 1");
	$nblocks = (-s $file) / BLCKSZ;
	@dir = map { dir_entry($_) } 0 .. $meta{lists};
	@chain = ();
	for (my $b = $dir[0]{head}; $b != NO_BLOCK; $b = list_page($b)->{next}) { push @chain, $b; }
	cmp_ok(scalar @chain, '>=', 2, "$when: list 0 is a chain of " . scalar(@chain) . ' pages: ' . join(' ', @chain));
	($head, $second) = @chain[ 0, 1 ];
	$head1 = $dir[1]{head};
	is(list_page($head)->{list}, 0, "$when: block $head is a page of list 0");
	$victim_k = 5;
	my $e = entry($head, $victim_k);
	is($e->{flags}, 1, "$when: entry $victim_k of block $head is live");
	my $ctid = sprintf('(%d,%d)', $e->{tid_hi} * 65536 + $e->{tid_lo}, $e->{tid_off});
	$node->start;
	$victim = $node->safe_psql('postgres', "SELECT id FROM f WHERE ctid = '$ctid'");
	ok($victim ne '', "$when: the entry points at heap tuple $ctid (id $victim)");
	$own_sql = "$noseq SELECT id FROM f ORDER BY v <-> " . vec_of($victim) . " LIMIT 3";
	$own_expected = $node->safe_psql('postgres', "SET enable_indexscan = off; SELECT id FROM f ORDER BY v <-> "
		  . vec_of($victim) . " LIMIT 3");
	like($own_expected, qr/^$victim\n/, "$when: row $victim is nearest to itself");
	is($node->safe_psql('postgres', $own_sql), $own_expected, "$when: own-vector search finds row $victim first");
}
survey('after the build');

# An insert into list 0 (the victim's vector again) and a VACUUM that
# removes it; neither changes what the checks compare.
my $insert_sql = "INSERT INTO f VALUES (1000, " . vec_of($victim) . ")";
my $vacuum_sql = 'DELETE FROM f WHERE id = 1000; VACUUM f';

# Overwrites $bytes at $pos with the server stopped, starts it; returns the
# old bytes. The position and the bytes go to the log, for a reproduction.
sub corrupt_at
{
	my ($pos, $bytes) = @_;
	$node->stop;
	my $old = read_bytes($file, $pos, length $bytes);
	note(sprintf('block %d, byte %d of the page (file offset %d): %s -> %s', int($pos / BLCKSZ), $pos % BLCKSZ,
			$pos, unpack('H*', $old), unpack('H*', $bytes)));
	write_bytes($file, $pos, $bytes);
	$node->start;
	return $old;
}

sub restore_at
{
	my ($pos, $bytes, $what) = @_;
	$node->stop;
	write_bytes($file, $pos, $bytes);
	$node->start;
	$node->safe_psql('postgres', 'DELETE FROM f WHERE id = 1000');
	like($node->safe_psql('postgres', q{SELECT libravdb_index_check('f_idx')}), qr/"ok": true/,
		"$what restored: check is clean");
	is($node->safe_psql('postgres', $scan_sql), $expected, "$what restored: index scan answers again");
	is($node->safe_psql('postgres', $own_sql), $own_expected, "$what restored: row $victim is found");
}

sub reindex
{
	my ($what) = @_;
	$node->safe_psql('postgres', 'DELETE FROM f WHERE id = 1000; REINDEX INDEX f_idx');
	like($node->safe_psql('postgres', q{SELECT libravdb_index_check('f_idx')}), $clean, "REINDEX repairs $what");
	is($node->safe_psql('postgres', $scan_sql), $expected, "after REINDEX of $what the index scan answers exactly");
	is($node->safe_psql('postgres', $all_sql), "$rows|$rows", "after REINDEX of $what every row is there once");
	$file = relation_file($node, 'f_idx');    # REINDEX made a new file
	survey("after REINDEX of $what");
}

# ---------------------------------------------------------------------------
# (a) metapage fields: every reader validates the metapage first

for my $case (
	[ 'magic', 0, pack('V', 0xDEADBEEF), qr/bad magic number 0xDEADBEEF \(byte offset 0\)/, 1 ],
	[ 'version', 4, pack('v', 2), qr/unsupported format version 2 \(byte offset 4\)/, 0 ],
	[ 'list count', 12, pack('V', 0), qr/list count 0 out of range \(byte offset 12\)/, 0 ],
	[ 'list start', 48, pack('V', $meta{list_start} + 1),
		qr/list pages start at block @{[ $meta{list_start} + 1 ]}, expected $meta{list_start} \(byte offset 48\)/, 0 ],
	[ 'reserved field', 52, pack('V', 1), qr/reserved field not zero \(byte offset 52\)/, 0 ])
{
	my ($field, $off, $bytes, $detail_re, $all) = @$case;
	my $old = corrupt_at(meta_pos($off), $bytes);
	my $re = qr/invalid metapage at block 0\n(?:.*\n)*DETAIL:  livfpq metapage: $detail_re/;
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')}, $re, "check on a bad metapage $field");
	fails_corrupted($node, $scan_sql, $re, "index scan on a bad metapage $field");
	if ($all)
	{
		fails_corrupted($node, q{SELECT libravdb_index_info('f_idx')}, $re, "info on a bad metapage $field");
		fails_corrupted($node, $insert_sql, $re, "insert on a bad metapage $field");
		fails_corrupted($node, $vacuum_sql, $re, "VACUUM on a bad metapage $field");
		is($node->safe_psql('postgres', 'SELECT count(*) FROM f'), $rows, 'failed insert left no row');
	}
	restore_at(meta_pos($off), $old, "metapage $field");
}

# ---------------------------------------------------------------------------
# (b) the directory entry of list 0

# Its head on a centroid page, beyond the end of the index, on list 1's head.
{
	my $pos = dir_pos(0, 0);
	my $c = $meta{centroid_start};
	my $old = corrupt_at($pos, pack('V', $c));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $c: list 0 links to block $c, outside the list pages/, 'check on a head in the centroids');
	fails_corrupted($node, $scan_sql, qr/unexpected page at block $c\b/, 'index scan on a head in the centroids');
	fails_corrupted($node, $vacuum_sql, qr/unexpected page at block $c\b/, 'VACUUM on a head in the centroids');
	restore_at($pos, $old, 'list head');

	my $far = $nblocks + 100;
	corrupt_at($pos, pack('V', $far));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $far: list 0 links to block $far, outside the list pages/,
		'check on a head beyond the index');
	fails_corrupted($node, $scan_sql, qr/broken chain in list 0 at block $far\b/, 'index scan on a head beyond the index');
	restore_at($pos, $old, 'list head');

	corrupt_at($pos, pack('V', $head1));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head1: livfpq list page of list 0: header names list 1 \(byte offset 4\)/,
		"check on a head on list 1's page");
	fails_corrupted($node, $scan_sql, qr/block $head1\b/, "index scan on a head on list 1's page");
	restore_at($pos, $old, 'list head');
}

# Its count: a scan sizes a buffer with it, nothing more.
{
	my $pos = dir_pos(0, 12);
	my $n = $dir[0]{count};
	my $old = corrupt_at($pos, pack('V', $n + 5));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block 1: list 0 holds $n entries but the directory counts @{[ $n + 5 ]}/,
		'check on a wrong count');
	is($node->safe_psql('postgres', $scan_sql), $expected, 'index scan with a wrong count answers exactly');
	restore_at($pos, $old, 'list count');

	corrupt_at($pos, pack('V', 0x7FFFFFFF));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block 1: list 0 holds $n entries but the directory counts 2147483647/,
		'check on a huge count');
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$scan_sql");
	note("index scan with a huge count: " . ($err ne '' ? $err : $out));
	ok($out eq $expected || $err =~ /ERROR:  XX002: .*block 1\b/, 'index scan with a huge count answers exactly'
		  . ' or fails with XX002');
	restore_at($pos, $old, 'list count');
}

# Its tail and its insert hint on a centroid page.
{
	my $c = $meta{centroid_start};
	my $pos = dir_pos(0, 4);
	my $old = corrupt_at($pos, pack('V', $c));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block 1: list 0 ends at block $chain[-1] but the directory says $c\b/, 'check on a wrong tail');
	restore_at($pos, $old, 'list tail');

	$pos = dir_pos(0, 8);
	$old = corrupt_at($pos, pack('V', $c));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')}, qr/block (1|$c)\b/, 'check on a hint in the centroids');
	fails_corrupted($node, $insert_sql, qr/unexpected page at block $c\b/, 'insert on a hint in the centroids');
	restore_at($pos, $old, 'insert hint');
}

# ---------------------------------------------------------------------------
# (c) the header of list 0's head page

{
	# n_entries: one more than a page holds; one less than it holds.
	my $pos = page_pos($head, 8);
	my $n = list_page($head)->{n_entries};
	my $cap = int((DATA_PER_PAGE - 16) / $meta{entry_size});
	my $old = corrupt_at($pos, pack('v', $cap + 1));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head: livfpq list page of list 0: @{[ $cap + 1 ]} entries, at most $cap fit \(byte offset 8\)/,
		'check on too many entries');
	fails_corrupted($node, $scan_sql, qr/block $head\b/, 'index scan on too many entries');
	restore_at($pos, $old, 'entry count');

	# The victim's entry becomes the first one past the end.
	$node->stop;
	my $last = read_bytes($file, entry_pos($head, $n - 1, 0), $meta{entry_size});
	my $mine = read_bytes($file, entry_pos($head, $victim_k, 0), $meta{entry_size});
	write_bytes($file, entry_pos($head, $victim_k, 0), $last);
	write_bytes($file, entry_pos($head, $n - 1, 0), $mine);
	$node->start;
	$old = corrupt_at($pos, pack('v', $n - 1));
	# The first nonzero byte of the entry past the end (a TID's high bytes are 0).
	my $past = join('|', map { 16 + ($n - 1) * $meta{entry_size} + $_ } 0 .. 11);
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head: livfpq list page of list 0: nonzero byte after the last entry \(byte offset (?:$past)\)/,
		'check on too few entries');
	fails_corrupted($node, $own_sql, qr/block $head\b/, 'own-vector index scan on too few entries');
	restore_at($pos, $old, 'entry count');

	# The list it belongs to.
	$pos = page_pos($head, 4);
	$old = corrupt_at($pos, pack('V', 2));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head: livfpq list page of list 0: header names list 2 \(byte offset 4\)/,
		'check on a page of another list');
	fails_corrupted($node, $scan_sql, qr/block $head\b/, 'index scan on a page of another list');
	restore_at($pos, $old, 'page list');

	# The next page: a codebook page, the page itself.
	$pos = page_pos($head, 0);
	my $cb = $meta{codebook_start};
	$old = corrupt_at($pos, pack('V', $cb));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head: livfpq list page of list 0: next page $cb is not a list page \(byte offset 0\)/,
		'check on a next page in the codebooks');
	fails_corrupted($node, $scan_sql, qr/unexpected page at block $cb\b/, 'index scan on a next page in the codebooks');
	fails_corrupted($node, $vacuum_sql, qr/unexpected page at block $cb\b/, 'VACUUM on a next page in the codebooks');
	restore_at($pos, $old, 'next page');

	corrupt_at($pos, pack('V', $head));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head: list 0 reaches block $head a second time/, 'check on a chain that loops');
	fails_corrupted($node, $scan_sql, qr/broken chain in list 0 at block $head\b/, 'index scan on a chain that loops');
	fails_corrupted($node, $vacuum_sql, qr/broken chain in list 0 at block $head\b/, 'VACUUM on a chain that loops');
	# (A constant NULL would let the planner drop the ORDER BY.)
	fails_corrupted($node, "$noseq SELECT count(*) FROM (SELECT id FROM f ORDER BY v <-> (SELECT NULL::lvector) LIMIT 100000) s",
		qr/broken chain in list 0 at block $head\b/, 'index scan for a NULL query on a chain that loops');
	restore_at($pos, $old, 'next page');
}

# ---------------------------------------------------------------------------
# (d) an entry: the flags and the code error of the victim's

{
	my $off = 16 + $victim_k * $meta{entry_size};
	my $pos = entry_pos($head, $victim_k, 6);
	my $old = corrupt_at($pos, pack('v', 0x00F7));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head: livfpq list page of list 0: entry $victim_k has unknown flags 247 \(byte offset @{[ $off + 6 ]}\)/,
		'check on unknown entry flags');
	fails_corrupted($node, $own_sql, qr/block $head\b/, 'own-vector index scan on unknown entry flags');
	restore_at($pos, $old, 'entry flags');

	corrupt_at($pos, pack('v', 2));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head: livfpq list page of list 0: entry $victim_k is a NULL outside the NULL list/,
		'check on a NULL entry in list 0');
	fails_corrupted($node, $own_sql, qr/block $head\b/, 'own-vector index scan on a NULL entry in list 0');
	restore_at($pos, $old, 'entry flags');

	$pos = entry_pos($head, $victim_k, 8);
	$old = corrupt_at($pos, pack('f<', -1.0));
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')},
		qr/corrupted at block $head: livfpq list page of list 0: entry $victim_k has a code error out of range \(byte offset @{[ $off + 8 ]}\)/,
		'check on a negative code error');
	restore_at($pos, $old, 'code error');
}

# ---------------------------------------------------------------------------
# (e) the special-space magic of a list page (list 0's page with room, where
# inserts go), the directory page, a codebook page

for my $case ([ 'list page', $dir[0]{free_hint} ], [ 'directory page', 1 ], [ 'codebook page', $meta{codebook_start} ])
{
	my ($what, $b) = @$case;
	ok((grep { $_ == $b } @chain), "block $b, list 0's insert hint, is in its chain") if $what eq 'list page';
	my $pos = $b * BLCKSZ + BLCKSZ - 8;
	$node->stop;
	is(unpack('V', read_bytes($file, $pos, 4)), 0x4C495650, "$what $b carries the livfpq magic in its special space");
	$node->start;
	my $old = corrupt_at($pos, pack('V', 0x12345678));
	my $re = qr/unexpected page at block $b\b/;
	fails_corrupted($node, q{SELECT libravdb_index_check('f_idx')}, $re, "check on a bad magic of the $what");
	fails_corrupted($node, $scan_sql, $re, "index scan on a bad magic of the $what");
	fails_corrupted($node, $insert_sql, $re, "insert on a bad magic of the $what");
	fails_corrupted($node, $vacuum_sql, $re, "VACUUM on a bad magic of the $what") unless $what eq 'codebook page';
	if ($what eq 'list page') { reindex("a bad magic of the $what"); }
	else { restore_at($pos, $old, "magic of the $what"); }
}

$node->stop;
log_has_no_crash($node);

done_testing();
