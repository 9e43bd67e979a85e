#!/bin/sh
# Configure, build and run the core unit tests in build/unit (out of source).
# Extra arguments go to the configure step, e.g.  test/unit/run.sh -DLRV_SANITIZE=ON
set -eu
cd "$(dirname "$0")/../.."
cmake -S test/unit -B build/unit "$@"
cmake --build build/unit -j2
ctest --test-dir build/unit --output-on-failure -j2
