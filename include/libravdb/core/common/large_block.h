// Large blocks for the in-memory structures a build reads at random (the
// graph's codes, link lists and link distances): 2 MiB aligned and, on Linux,
// marked for transparent huge pages. Such a block of a few hundred megabytes
// spans ~100k 4 KiB pages, far more than the TLB holds, so nearly every
// random read of a code also walks the page table; in 2 MiB pages the TLB
// covers the block. Small blocks (below kLargeBlock) keep 64-byte alignment
// and normal pages, so small builds do not round each block up to 2 MiB.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <vector>

namespace lrv::core {

constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kLargeBlock = 2 * kHugePage;

// At least `bytes` (never null: throws std::bad_alloc), 64-byte aligned;
// release with std::free.
void* large_block_alloc(std::size_t bytes);

template <typename T>
struct LargeBlockAllocator {
    using value_type = T;
    LargeBlockAllocator() noexcept = default;
    template <typename U>
    LargeBlockAllocator(const LargeBlockAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(large_block_alloc(n * sizeof(T))); }
    void deallocate(T* p, std::size_t) noexcept;
    template <typename U>
    bool operator==(const LargeBlockAllocator<U>&) const noexcept { return true; }
    template <typename U>
    bool operator!=(const LargeBlockAllocator<U>&) const noexcept { return false; }
};

void large_block_free(void* p) noexcept;

template <typename T>
void LargeBlockAllocator<T>::deallocate(T* p, std::size_t) noexcept {
    large_block_free(p);
}

template <typename T>
using LargeVector = std::vector<T, LargeBlockAllocator<T>>;

}  // namespace lrv::core
