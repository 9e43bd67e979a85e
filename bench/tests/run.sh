#!/usr/bin/env bash
# Unit tests of the benchmark harness (bench/*.py) on tiny synthetic data.
# No server needed. Exits non-zero on any failure; the last line reads
# "bench: N passed, N failed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec /usr/bin/python3 - <<'PY'
import sys, unittest
suite = unittest.defaultTestLoader.discover(".", pattern="test_*.py")
result = unittest.TextTestRunner(verbosity=2).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
passed = result.testsRun - failed - len(result.skipped)
print(f"bench: {passed} passed, {failed} failed" + (f", {len(result.skipped)} skipped" if result.skipped else ""))
sys.exit(1 if failed or result.testsRun == 0 else 0)
PY
