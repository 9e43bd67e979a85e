// What the libFuzzer targets in test/fuzz share: a checked failure that
// libFuzzer reports as a crash, a byte reader, the contract check for core
// calls ("return normally or throw lrv::core::Error of an allowed kind"), and
// the seed writer every target carries for its own corpus.
//
// The contract: a core function fed hostile bytes either works or throws
// lrv::core::Error with the kind the glue maps to the right SQLSTATE. Any
// other outcome -- a crash, an ASan or UBSan report, another exception type,
// another error kind, a broken invariant -- aborts, and libFuzzer saves the
// input.
#pragma once

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "libravdb/core/error.h"

namespace lrv::fuzz {

using core::ErrorKind;

[[noreturn]] __attribute__((format(printf, 1, 2))) inline void die(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fputs("\n*** lrv fuzz check failed: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputs("\n", stderr);
    va_end(ap);
    std::abort();
}

#define LRV_CHECK(cond)                                                                 \
    do {                                                                                \
        if (!(cond)) ::lrv::fuzz::die("%s:%d: %s", __FILE__, __LINE__, #cond);          \
    } while (0)
#define LRV_CHECKF(cond, ...)                                                           \
    do {                                                                                \
        if (!(cond)) ::lrv::fuzz::die(__VA_ARGS__);                                     \
    } while (0)

inline const char* kind_name(ErrorKind k) {
    switch (k) {
        case ErrorKind::InvalidParameter: return "InvalidParameter";
        case ErrorKind::InvalidTextRepresentation: return "InvalidTextRepresentation";
        case ErrorKind::InvalidBinaryRepresentation: return "InvalidBinaryRepresentation";
        case ErrorKind::DimensionMismatch: return "DimensionMismatch";
        case ErrorKind::InvalidValue: return "InvalidValue";
        case ErrorKind::NumericOutOfRange: return "NumericOutOfRange";
        case ErrorKind::ProgramLimit: return "ProgramLimit";
        case ErrorKind::OutOfMemory: return "OutOfMemory";
        case ErrorKind::IndexCorrupted: return "IndexCorrupted";
        case ErrorKind::Interrupted: return "Interrupted";
        case ErrorKind::Internal: return "Internal";
    }
    return "?";
}

// Runs fn(). Returns true when it returned normally, false when it threw an
// lrv::core::Error of one of the `allowed` kinds (a clean rejection). Any
// other Error kind aborts; any other exception type escapes the fuzz entry
// point, which std::terminate turns into an abort libFuzzer reports.
template <class Fn>
bool accepts(const char* what, std::initializer_list<ErrorKind> allowed, Fn&& fn) {
    try {
        fn();
        return true;
    } catch (const core::Error& e) {
        for (ErrorKind k : allowed)
            if (e.kind() == k) return false;
        die("%s threw Error kind %s, which this input must not produce: %s", what, kind_name(e.kind()), e.what());
    }
}

// Reads a fuzz input front to back; past the end it yields zero bytes, so a
// short input is a valid input with trailing zeros.
class Bytes {
  public:
    Bytes(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
    void read(void* out, std::size_t len) {
        std::size_t have = len < n_ ? len : n_;
        if (have) std::memcpy(out, p_, have);
        if (have < len) std::memset(static_cast<char*>(out) + have, 0, len - have);
        p_ += have;
        n_ -= have;
    }
    template <class T>
    T take() {
        T v;
        read(&v, sizeof v);
        return v;
    }
    std::uint8_t u8() { return take<std::uint8_t>(); }
    const std::uint8_t* data() const { return p_; }
    std::size_t size() const { return n_; }

  private:
    const std::uint8_t* p_;
    std::size_t n_;
};

// Page data areas the glue hands to the core, as separate heap blocks of
// exactly `page_bytes` so that ASan sees a read past one. Taken from the
// input in order; a page past the input's end reads as zeros (a page whose
// slots were never written).
inline std::vector<std::vector<std::uint8_t>> pages_from(const std::uint8_t* data, std::size_t size,
                                                         std::size_t page_bytes, std::size_t count) {
    std::vector<std::vector<std::uint8_t>> pages(count, std::vector<std::uint8_t>(page_bytes, 0));
    for (std::size_t p = 0; p < count; p++) {
        std::size_t at = p * page_bytes;
        if (at >= size) break;
        std::size_t len = size - at < page_bytes ? size - at : page_bytes;
        std::memcpy(pages[p].data(), data + at, len);
    }
    return pages;
}

// What PGXS builds give the access methods: BLCKSZ 8192 minus the 24-byte
// page header and the 8-byte special space (src/pg/am_common.h).
constexpr std::uint32_t kPageDataSize = 8192 - 24 - 8;

// Seeds. Each target knows how to write its own seed corpus: run it with
// LRV_FUZZ_WRITE_SEEDS=DIR and it writes DIR/<name> files and exits
// (test/fuzz/run.sh --seeds regenerates test/fuzz/corpus/ this way).
class SeedWriter {
  public:
    explicit SeedWriter(std::string dir) : dir_(std::move(dir)) {}
    void add(const std::string& name, const void* bytes, std::size_t len) {
        std::string path = dir_ + "/" + name;
        FILE* f = std::fopen(path.c_str(), "wb");
        if (!f) die("cannot write %s: %s", path.c_str(), std::strerror(errno));
        if (len && std::fwrite(bytes, 1, len, f) != len) die("short write to %s", path.c_str());
        std::fclose(f);
        count_++;
    }
    void add(const std::string& name, const std::string& s) { add(name, s.data(), s.size()); }
    void add(const std::string& name, const std::vector<std::uint8_t>& v) { add(name, v.data(), v.size()); }
    int count() const { return count_; }

  private:
    std::string dir_;
    int count_ = 0;
};

template <class Gen>
void maybe_write_seeds(Gen&& gen) {
    const char* dir = std::getenv("LRV_FUZZ_WRITE_SEEDS");
    if (dir == nullptr || *dir == '\0') return;
    ::mkdir(dir, 0777);
    SeedWriter w(dir);
    gen(w);
    std::fprintf(stderr, "wrote %d seeds to %s\n", w.count(), dir);
    std::exit(0);
}

// Appends the bytes of a trivially copyable value.
template <class T>
void append(std::vector<std::uint8_t>* out, const T& v) {
    const auto* b = reinterpret_cast<const std::uint8_t*>(&v);
    out->insert(out->end(), b, b + sizeof v);
}

}  // namespace lrv::fuzz
