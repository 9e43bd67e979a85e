// large_block_alloc: see large_block.h.
#include "libravdb/core/common/large_block.h"

#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lrv::core {

void* large_block_alloc(std::size_t bytes) {
    void* p;
    if (bytes >= kLargeBlock) {
        const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
        p = std::aligned_alloc(kHugePage, rounded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        // Only a hint: where transparent huge pages are off (or "never"), the
        // block keeps 4 KiB pages and works the same.
        if (p != nullptr) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    } else {
        const std::size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
        p = std::aligned_alloc(64, rounded);
    }
    if (p == nullptr) throw std::bad_alloc();
    return p;
}

void large_block_free(void* p) noexcept { std::free(p); }

}  // namespace lrv::core
