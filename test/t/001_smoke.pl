# Smoke test of the server-level rig: create the extension, store lvectors,
# answer nearest-neighbour queries exactly, crash the server (immediate stop),
# and check that recovery brings back every committed row, none of the
# uncommitted ones, and the same answers.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LibraVDB::Test qw(new_node log_has_no_crash);

my $node = new_node('main');

$node->safe_psql('postgres', q{
	CREATE TABLE items (id int PRIMARY KEY, v lvector(3));
	INSERT INTO items VALUES
		(1, '[1,1,1]'), (2, '[1,1,2]'), (3, '[3,3,4]'), (4, '[-1,-1,-1]'), (5, '[0,0,0]');
	-- Enough rows to span many pages, and wide vectors that take the
	-- compression path of STORAGE main.
	CREATE TABLE bulk (id int PRIMARY KEY, v lvector(3));
	INSERT INTO bulk SELECT i, ARRAY[i % 97, i % 89, -(i % 83)]::real[] FROM generate_series(1, 3000) i;
	CREATE TABLE wide (id int PRIMARY KEY, v lvector(768));
	INSERT INTO wide SELECT i, (SELECT array_agg(((i * j) % 101) / 7.0)::real[] FROM generate_series(1, 768) j)
	  FROM generate_series(1, 200) i;
	CHECKPOINT;
});

# Changes after the checkpoint exist only in WAL when the server goes down.
$node->safe_psql('postgres', q{
	INSERT INTO bulk SELECT i, ARRAY[i % 31, i % 37, i % 41]::real[] FROM generate_series(3001, 4000) i;
	UPDATE bulk SET v = v + '[0.5,0.5,0.5]' WHERE id % 10 = 0;
	DELETE FROM bulk WHERE id % 7 = 0;
	INSERT INTO wide SELECT i, (SELECT array_agg(((i + j) % 13)::real) FROM generate_series(1, 768) j)::lvector
	  FROM generate_series(201, 300) i;
});

# Exact answers on the hand-made rows. Distances from [1,1,1]:
#   L2: 1:0 2:1 5:1.73 4:3.46 3:4.12   L1: 1:0 2:1 5:3 4:6 3:7
#   negative inner product: 3:-10 2:-4 1:-3 5:0 4:3
# cosine distance from [1,0,0]: 1:0.423 3:0.486 2:0.592 4:1.577 5:NaN (zero vector)
my %answers = (
	'l2 top 2' => [ q{SELECT id FROM items ORDER BY v <-> '[1,1,1]' LIMIT 2}, "1\n2" ],
	'l2 order' => [ q{SELECT string_agg(id::text, ',' ORDER BY v <-> '[1,1,1]', id) FROM items}, '1,2,5,4,3' ],
	'l1 order' => [ q{SELECT string_agg(id::text, ',' ORDER BY v <+> '[1,1,1]', id) FROM items}, '1,2,5,4,3' ],
	'ip order' => [ q{SELECT string_agg(id::text, ',' ORDER BY v <#> '[1,1,1]', id) FROM items}, '3,2,1,5,4' ],
	'cosine order' => [ q{SELECT string_agg(id::text, ',' ORDER BY v <=> '[1,0,0]', id) FROM items}, '1,3,2,4,5' ],
	'distance values' => [ q{SELECT v <-> '[1,1,1]', v <+> '[1,1,1]', v <#> '[1,1,1]' FROM items WHERE id = 2}, '1|1|-4' ],
	'avg and sum' => [ q{SELECT avg(v), sum(v) FROM items}, '[0.8,0.8,1.2]|[4,4,6]' ],
);

sub check_answers
{
	my ($when) = @_;
	for my $name (sort keys %answers)
	{
		my ($sql, $want) = @{ $answers{$name} };
		is($node->safe_psql('postgres', $sql), $want, "$name ($when)");
	}
}

# Fingerprints of the data that are not hand-checked: compared across the crash.
my $fingerprint_sql = q{
	SELECT (SELECT count(*) || ':' || md5(string_agg(id || '=' || v::text, ';' ORDER BY id)) FROM bulk)
	|| ' ' || (SELECT count(*) || ':' || md5(string_agg(id || '=' || v::text, ';' ORDER BY id)) FROM wide)
	|| ' ' || (SELECT string_agg(id::text, ',') FROM
	           (SELECT id FROM bulk ORDER BY v <-> '[10,20,-30]', id LIMIT 10) nn)
};

check_answers('before crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM bulk'), 4000 - int(4000 / 7), 'bulk row count before crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM wide'), 300, 'wide row count before crash');
my $fingerprint = $node->safe_psql('postgres', $fingerprint_sql);

# A transaction in progress at the crash: its rows must not survive.
my $open_tx = $node->background_psql('postgres');
$open_tx->query_safe(q{BEGIN; INSERT INTO items VALUES (100, '[1,1,1]'); DELETE FROM bulk WHERE id < 100});

$node->stop('immediate');
$open_tx->quit;
$node->start;

check_answers('after crash recovery');
is($node->safe_psql('postgres', $fingerprint_sql), $fingerprint, 'bulk and wide tables unchanged by crash recovery');
is($node->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id = 100'), '0', 'uncommitted insert is gone');
is($node->safe_psql('postgres', 'SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = \'wide\'::regclass AND attname = \'v\''),
	'lvector(768)', 'typmod survives recovery');

# The recovered server still enforces lvector(3) and accepts new rows.
my ($ret, $out, $err) = $node->psql('postgres', q{INSERT INTO items VALUES (6, '[1,2]')});
isnt($ret, 0, 'wrong number of dimensions rejected after recovery');
like($err, qr/dimension/i, 'the error names dimensions');
$node->safe_psql('postgres', q{INSERT INTO items VALUES (6, '[1,1,1.5]')});
is($node->safe_psql('postgres', q{SELECT id FROM items ORDER BY v <-> '[1,1,1]' LIMIT 2}), "1\n6", 'new row found after recovery');

$node->stop;
log_has_no_crash($node);

done_testing();
