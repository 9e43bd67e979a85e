#include "libravdb/core/vector_text.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include "libravdb/core/error.h"
#include "libravdb/core/limits.h"

namespace lrv::core {
namespace {

// Postgres's scanner_isspace: the whitespace set SQL literals use.
bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

const char* skip_space(const char* p) noexcept {
    while (is_space(*p)) p++;
    return p;
}

[[noreturn]] void syntax_error(const char* text, const char* type_name) {
    fail(ErrorKind::InvalidTextRepresentation,
         std::string("invalid input syntax for type ") + type_name + ": \"" + text + "\"");
}

}  // namespace

std::size_t vector_text_max_elements(const char* text) noexcept {
    std::size_t commas = 0;
    for (const char* p = text; *p; p++)
        if (*p == ',') commas++;
    return commas + 1;
}

void check_finite(const float* x, std::size_t n, const char* type_name) {
    for (std::size_t i = 0; i < n; i++) {
        if (std::isnan(x[i])) fail(ErrorKind::InvalidValue, std::string("NaN not allowed in ") + type_name);
        if (std::isinf(x[i]))
            fail(ErrorKind::InvalidValue, std::string("infinite value not allowed in ") + type_name);
    }
}

std::size_t parse_vector_text(const char* text, float* out, std::size_t capacity,
                              const char* type_name) {
    const char* p = skip_space(text);
    if (*p != '[') syntax_error(text, type_name);
    p = skip_space(p + 1);
    if (*p == ']') fail(ErrorKind::InvalidValue, std::string(type_name) + " must have at least 1 dimension");

    std::size_t n = 0;
    for (;;) {
        if (n == kMaxDims)
            fail(ErrorKind::ProgramLimit, std::string(type_name) + " cannot have more than " +
                                              std::to_string(kMaxDims) + " dimensions");
        if (n == capacity) fail(ErrorKind::Internal, "vector text buffer too small");

        // strtof skips leading whitespace itself; refuse an empty element
        // explicitly so "[1,,2]" is a syntax error rather than a zero.
        p = skip_space(p);
        if (*p == ',' || *p == ']' || *p == '\0') syntax_error(text, type_name);
        char* end = nullptr;
        errno = 0;
        float v = std::strtof(p, &end);
        if (end == p) syntax_error(text, type_name);
        if (errno == ERANGE && std::isinf(v))
            fail(ErrorKind::NumericOutOfRange,
                 "\"" + std::string(p, static_cast<std::size_t>(end - p)) + "\" is out of range for type " + type_name);
        if (std::isnan(v)) fail(ErrorKind::InvalidValue, std::string("NaN not allowed in ") + type_name);
        if (std::isinf(v))
            fail(ErrorKind::InvalidValue, std::string("infinite value not allowed in ") + type_name);
        out[n++] = v;

        p = skip_space(end);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == ']') break;
        syntax_error(text, type_name);
    }
    p = skip_space(p + 1);
    if (*p != '\0') syntax_error(text, type_name);
    return n;
}

}  // namespace lrv::core
