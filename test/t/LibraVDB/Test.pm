# Shared helpers for LibraVDB's Perl TAP tests (test/t/*.pl).
#
#   use lib 'test/t';            # test/run_all.sh passes -I for this
#   use LibraVDB::Test;
#   my $node = LibraVDB::Test::new_node('main');   # init, start, CREATE EXTENSION
#   ...
#   LibraVDB::Test::log_has_no_crash($node);      # one TAP test; end every file with it
#
# The crash pattern is the one test/run_all.sh and scripts/pgcluster.sh use on
# server logs; keep them in step.

package LibraVDB::Test;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT_OK = qw(new_node crash_lines log_has_no_crash $CRASH_PATTERN);

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
