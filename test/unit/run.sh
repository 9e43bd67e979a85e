#!/bin/sh
# Configure, build and run the core unit tests out of source. Extra arguments
# go to the configure step, e.g.  test/unit/run.sh -DLRV_SANITIZE=ON  (ASan +
# UBSan). The sanitizer build lives in build/unit-asan and the plain one in
# build/unit, so neither inherits the other's cached options.
set -eu
cd "$(dirname "$0")/../.."
dir=build/unit
for a in "$@"; do
  case "$a" in -DLRV_SANITIZE=ON | -DLRV_SANITIZE:BOOL=ON) dir=build/unit-asan ;; esac
done
cmake -S test/unit -B "$dir" -DLRV_SANITIZE=OFF "$@"
cmake --build "$dir" -j2
ctest --test-dir "$dir" --output-on-failure -j2
