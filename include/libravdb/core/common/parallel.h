// Work split over core threads, the way DESIGN.md section 3.8 asks: threads
// that never call Postgres, start with every signal blocked, and are joined
// before the call returns or throws. Only the calling thread runs `poll`,
// which is where the glue checks for interrupts and reports progress; when
// poll (or any chunk) throws, the other threads stop at their next chunk and
// the first exception propagates.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <functional>

namespace lrv::core {

// Runs body(begin, end, worker) over [0, n) in chunks of `chunk` items on
// `threads` threads (the caller counts as one; worker is 0..threads-1, so a
// body can keep per-thread scratch). Chunks are claimed in order, so a body
// whose output depends only on its range gives results independent of the
// thread count. poll() runs on the caller between chunks and every ~20 ms
// while it waits for the others.
void parallel_for(std::size_t n, std::size_t chunk, int threads,
                  const std::function<void(std::size_t begin, std::size_t end, int worker)>& body,
                  const std::function<void()>& poll);

}  // namespace lrv::core
