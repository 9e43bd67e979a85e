// Blocks for the in-memory structures a build reads at random (the graph's
// codes, link lists and link distances), and every AlignedVector: 64-byte
// aligned, and from kLargeBlock up 2 MiB aligned and, on Linux, marked for
// transparent huge pages. A block of a few hundred megabytes spans ~100k
// 4 KiB pages, far more than the TLB holds, so nearly every random read of
// a code also walks the page table; in 2 MiB pages the TLB covers the block.
// Small blocks keep normal pages, so small builds and query vectors are not
// rounded up to 2 MiB.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>

namespace lrv::core {

constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kLargeBlock = 2 * kHugePage;

// At least `bytes` (never null: throws std::bad_alloc); release with
// large_block_free.
void* large_block_alloc(std::size_t bytes);
void large_block_free(void* p) noexcept;

}  // namespace lrv::core
