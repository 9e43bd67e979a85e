// An allocator for vectors the distance kernels read: 64-byte alignment, so
// AVX-512 loads of a query never split a cache line, and huge pages for the
// large arrays of a build (large_block.h).
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <vector>

#include "libravdb/core/common/large_block.h"

namespace lrv::core {

template <typename T>
struct CacheAligned {
    using value_type = T;
    CacheAligned() noexcept = default;
    template <typename U>
    CacheAligned(const CacheAligned<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(large_block_alloc(n * sizeof(T))); }
    void deallocate(T* p, std::size_t) noexcept { large_block_free(p); }
    template <typename U>
    bool operator==(const CacheAligned<U>&) const noexcept { return true; }
    template <typename U>
    bool operator!=(const CacheAligned<U>&) const noexcept { return false; }
};

template <typename T>
using AlignedVector = std::vector<T, CacheAligned<T>>;

}  // namespace lrv::core
