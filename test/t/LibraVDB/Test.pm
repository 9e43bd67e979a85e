# Shared helpers for LibraVDB's Perl TAP tests (test/t/*.pl).
#
#   use lib 'test/t';            # test/run_all.sh passes -I for this
#   use LibraVDB::Test;
#   my $node = LibraVDB::Test::new_node('main');   # init, start, CREATE EXTENSION
#   ...
#   LibraVDB::Test::log_has_no_crash($node);      # one TAP test; end every file with it
#   LibraVDB::Test::standby_catch_up($primary, $standby, 'after build');
#
# Corruption tests (the server stopped while bytes are read or written):
#   my $file = relation_file($node, 'idx');
#   my $old = read_bytes($file, $pos, 4); write_bytes($file, $pos, pack('V', 0));
#   fails_corrupted($node, $sql, qr/block 3\b/, 'what', todo => 'known gap');
#
# The crash pattern is the one test/run_all.sh and scripts/pgcluster.sh use on
# server logs; keep them in step.

package LibraVDB::Test;

use strict;
use warnings;

use Exporter 'import';
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT_OK = qw(new_node crash_lines log_has_no_crash standby_catch_up keyed_lines index_scans_only index_infos
  fashion_mnist_dir fashion_mnist_images fashion_mnist_labels $CRASH_PATTERN
  relation_file read_bytes write_bytes fails_corrupted);

# A backend killed by a signal (SIGSEGV, SIGABRT, ...), a PANIC, or a failed
# assertion in a cassert build. An immediate shutdown alone matches none of them.
our $CRASH_PATTERN =
  qr/terminated by signal|was terminated by exception|PANIC:  |^TRAP: /;

# A node with the extension created in database "postgres", started.
#   new_node($name, conf => "setting = value\n...", init => { allows_streaming => 1 })
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	$node->append_conf('postgresql.conf', $opts{conf}) if defined $opts{conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION libravdb');
	return $node;
}

# Waits until $standby has replayed everything $primary has written so far;
# dies at once, with the log lines that say why, if replay died (a WAL
# consistency failure is a FATAL in the startup process), and after
# timeout_default seconds otherwise. $when names the phase in the message.
sub standby_catch_up
{
	my ($primary, $standby, $when) = @_;
	my $target = $primary->lsn('insert');
	for (my $i = 0; $i < 10 * $PostgreSQL::Test::Utils::timeout_default; $i++)
	{
		my ($ret, $out) = $standby->psql('postgres', "SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn");
		return if $ret == 0 && $out eq 't';
		my @fatal = grep { /inconsistent page|PANIC|startup process .* (exited|terminated)/ } split /\n/,
		  slurp_file($standby->logfile);
		die "$when: standby replay failed:\n" . join("\n", @fatal) . "\n" if @fatal;
		usleep(100_000);
	}
	die "$when: standby did not replay up to $target";
}

# Fashion-MNIST (Debian's dataset-fashion-mnist, gzipped idx files): the
# directory, or undef when it is not installed. LIBRAVDB_FASHION_MNIST
# overrides the place.
sub fashion_mnist_dir
{
	my $dir = $ENV{LIBRAVDB_FASHION_MNIST} // '/usr/share/datasets/fashion-mnist';
	return -e "$dir/train-images-idx3-ubyte.gz" ? $dir : undef;
}

sub _gunzip_idx
{
	my ($file) = @_;
	my $dir = fashion_mnist_dir() // die 'Fashion-MNIST is not installed';
	my $raw;
	gunzip("$dir/$file" => \$raw) or die "gunzip $file: $GunzipError";
	return $raw;
}

# The first $n images of an idx3 file ("train-images-idx3-ubyte.gz"), as
# lvector text: '[0,12,...]'.
sub fashion_mnist_images
{
	my ($file, $n) = @_;
	my $raw = _gunzip_idx($file);
	my ($magic, $count, $rows, $cols) = unpack('N4', substr($raw, 0, 16));
	die "$file: not an idx3 file" unless $magic == 0x803;
	die "$file holds $count images, not $n" if $n > $count;
	my $size = $rows * $cols;
	return map { '[' . join(',', unpack('C*', substr($raw, 16 + $_ * $size, $size))) . ']' } 0 .. $n - 1;
}

# The first $n labels (0-9) of an idx1 file ("train-labels-idx1-ubyte.gz").
sub fashion_mnist_labels
{
	my ($file, $n) = @_;
	my $raw = _gunzip_idx($file);
	my ($magic, $count) = unpack('N2', substr($raw, 0, 8));
	die "$file: not an idx1 file" unless $magic == 0x801;
	die "$file holds $count labels, not $n" if $n > $count;
	return unpack("C$n", substr($raw, 8, $n));
}

# The lines of a server log that show a crash; empty when there is none.
sub crash_lines
{
	my ($logfile) = @_;
	return () unless -e $logfile;
	open my $fh, '<', $logfile or die "could not open $logfile: $!";
	my @hits = grep { /$CRASH_PATTERN/ } <$fh>;
	close $fh;
	return @hits;
}

# The file of a relation's main fork (its first segment), from the data
# directory of $node (which must be running to answer).
sub relation_file
{
	my ($node, $rel, $db) = @_;
	return $node->data_dir . '/'
	  . $node->safe_psql($db // 'postgres', "SELECT pg_relation_filepath('$rel')");
}

# $len bytes of $file at byte $pos.
sub read_bytes
{
	my ($file, $pos, $len) = @_;
	open my $fh, '<:raw', $file or die "open $file: $!";
	sysseek($fh, $pos, 0) or die "seek $file to $pos: $!";
	my $got = sysread($fh, my $buf, $len);
	die "short read of $file at $pos" unless defined $got && $got == $len;
	close $fh;
	return $buf;
}

# Overwrites bytes of $file at $pos (stop the server first: a running one
# keeps the page in shared buffers and may write it back).
sub write_bytes
{
	my ($file, $pos, $bytes) = @_;
	open my $fh, '+<:raw', $file or die "open $file: $!";
	sysseek($fh, $pos, 0) or die "seek $file to $pos: $!";
	my $put = syswrite($fh, $bytes);
	die "short write of $file at $pos" unless defined $put && $put == length $bytes;
	close $fh or die "close $file: $!";
}

# Runs $sql on $node (psql, verbose errors, stop at the first error) and
# checks that it fails with SQLSTATE XX002 (index corrupted) and a message
# matching $msg_re; then that no backend crashed (no new crash line in the
# server log since the last call for this node) and that the server answers.
# With todo => 'reason', those three are one TODO test: a known gap that must
# not turn the suite red, reported as "TODO passed" once fixed. The crash
# check is never TODO. After a crash (restart_after_crash is off) the
# node is started again, so that the rest of a test still runs.
# Returns psql's (exit status, stdout, stderr).
my %crashes_seen;
sub fails_corrupted
{
	my ($node, $sql, $msg_re, $name, %opts) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql", on_error_stop => 1);
	note("$name: " . ($err ne '' ? $err : "no error; stdout: " . ($out eq '' ? '(none)' : join(' ', split /\n/, $out))));
	if (defined $opts{todo})
	{
		my $builder = Test::More->builder;
		$builder->todo_start($opts{todo});
		ok($ret != 0 && $err =~ /ERROR:  XX002: / && $err =~ $msg_re, "$name: fails with XX002 saying where");
		$builder->todo_end;
	}
	else
	{
		isnt($ret, 0, "$name: fails");
		like($err, qr/ERROR:  XX002: /, "$name: SQLSTATE XX002");
		like($err, $msg_re, "$name: message says where");
	}

	my $lost = $err =~ /server closed the connection|connection to server was lost/;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	if ($lost)
	{
		# The postmaster logs the crash and exits a moment after psql sees it.
		for (my $i = 0; $i < 300 && -e $pidfile; $i++) { usleep(100_000); }
	}
	my @hits = crash_lines($node->logfile);
	my $seen = $crashes_seen{ $node->name } // 0;
	my $new = @hits - $seen;
	$crashes_seen{ $node->name } = scalar @hits;
	ok(!$lost && $new == 0, "$name: no backend crashed")
	  or diag(join '', @hits[ $#hits - $new + 1 .. $#hits ]);
	if ($lost)
	{
		$node->stop('immediate', fail_ok => 1);    # forgets the dead postmaster
		$node->start;
	}
	is($node->safe_psql('postgres', 'SELECT 42'), '42', "$name: server answers");
	return ($ret, $out, $err);
}

# Runs $sql on $node; every output line is "key: value". Returns { key => value }.
sub keyed_lines
{
	my ($node, $sql) = @_;
	my %a;
	for my $line (split /\n/, $node->safe_psql('postgres', $sql))
	{
		my ($key, $val) = $line =~ /^(.*?): (.*)$/ or die "unexpected line: $line";
		$a{$key} = $val;
	}
	return \%a;
}

# Two TAP tests: with sequential and bitmap scans off, EXPLAIN gives one plan
# per query, and each is an index scan on its index with no Seq Scan.
# @queries: [ index, table, query ], ...
sub index_scans_only
{
	my ($node, $when, @queries) = @_;
	my $sql = "SET enable_seqscan = off; SET enable_bitmapscan = off;\n";
	$sql .= "SELECT '-- plan';\nEXPLAIN (COSTS OFF) $_->[2];\n" for @queries;
	my @plans = split /^-- plan\n/m, $node->safe_psql('postgres', $sql);
	shift @plans;
	is(scalar(@plans), scalar(@queries), "$when: one plan per query (" . $node->name . ')');
	my $bad = '';
	for my $i (0 .. $#queries)
	{
		my ($index, $table) = @{ $queries[$i] };
		my $plan = $plans[$i] // '';
		$bad .= "expected an index scan on $index:\n$plan\n"
		  unless $plan =~ /Index Scan using $index on $table/ && $plan !~ /Seq Scan/;
	}
	is($bad, '', "$when: every query is an index scan on its index (" . $node->name . ')');
}

# libravdb_index_info of each index, one line each, in the order given.
sub index_infos
{
	my ($node, @indexes) = @_;
	return $node->safe_psql('postgres',
		join("\nUNION ALL\n", map { "SELECT '$_', libravdb_index_info('$_')::text" } @indexes));
}

# One TAP test: the node's whole log (every start of it) shows no crash.
sub log_has_no_crash
{
	my ($node, $test_name) = @_;
	my @hits = crash_lines($node->logfile);
	my $ok = ok(!@hits,
		$test_name // 'server log of node "' . $node->name . '" shows no crash');
	diag("crash in " . $node->logfile . ":\n" . join('', @hits)) unless $ok;
	return $ok;
}

1;
