// Test buffers that sit against an inaccessible page, so that a kernel which
// reads even one element past the end (or before the start) faults at once
// instead of passing unnoticed, with or without a sanitizer.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>

namespace lrv::test {

enum class Guard { After, Before };

template <class T>
class GuardedBuffer {
  public:
    // n elements of T; with Guard::After they end exactly where the guard page
    // begins (any start alignment follows from n * sizeof(T)), with
    // Guard::Before they start exactly where it ends.
    GuardedBuffer(std::size_t n, Guard guard) {
        std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        std::size_t data = (n * sizeof(T) + page - 1) / page * page;
        size_ = data + page;
        void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return;
        base_ = static_cast<char*>(p);
        char* fence = guard == Guard::After ? base_ + data : base_;
        if (mprotect(fence, page, PROT_NONE) != 0) return;
        data_ = guard == Guard::After ? reinterpret_cast<T*>(fence) - n
                                      : reinterpret_cast<T*>(fence + page);
    }
    ~GuardedBuffer() {
        if (base_) munmap(base_, size_);
    }
    GuardedBuffer(const GuardedBuffer&) = delete;
    GuardedBuffer& operator=(const GuardedBuffer&) = delete;

    bool ok() const { return data_ != nullptr; }
    T* data() { return data_; }

  private:
    std::size_t size_ = 0;
    char* base_ = nullptr;
    T* data_ = nullptr;
};

}  // namespace lrv::test
