#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>

namespace lrv::core {

// The largest number of dimensions an lvector may have. The on-disk header
// stores the count in 16 bits; 16000 keeps a vector (64 kB) well below the
// 1 GB varlena limit and below what one index page chain handles comfortably.
constexpr std::size_t kMaxDims = 16000;

}  // namespace lrv::core
