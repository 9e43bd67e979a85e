// An allocator for vectors the distance kernels read: 64-byte alignment, so
// AVX-512 loads of a query never split a cache line.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace lrv::core {

template <typename T>
struct CacheAligned {
    using value_type = T;
    static constexpr std::size_t kAlign = 64;
    CacheAligned() noexcept = default;
    template <typename U>
    CacheAligned(const CacheAligned<U>&) noexcept {}
    T* allocate(std::size_t n) {
        std::size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
        void* p = std::aligned_alloc(kAlign, bytes == 0 ? kAlign : bytes);
        if (p == nullptr) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t) noexcept { std::free(p); }
    template <typename U>
    bool operator==(const CacheAligned<U>&) const noexcept { return true; }
    template <typename U>
    bool operator!=(const CacheAligned<U>&) const noexcept { return false; }
};

template <typename T>
using AlignedVector = std::vector<T, CacheAligned<T>>;

}  // namespace lrv::core
