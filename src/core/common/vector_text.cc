#include "libravdb/core/vector_text.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
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

// Short plain decimals ("128", "-0.25", "3."; at most 7 digits, no
// exponent) without strtof, which costs most of a long vector's parse. The
// digits form an integer m < 10^7 < 2^24 and the value is m / 10^f with
// f <= 7: both are exact in float, and IEEE division rounds the exact
// quotient once, to nearest, which is what strtof returns (the fast path of
// Clinger's algorithm). The division is in float, not double: rounding to
// double first and then to float could differ. Returns nullptr, and the
// caller uses strtof, for anything else; the element must end where an
// element may end (',', ']', whitespace, end of text), so "1e5", "0x1p3",
// "1.5.2" and "12abc" all go to strtof and its checks.
const char* parse_short_decimal(const char* p, float* out) noexcept {
    static constexpr float kPow10[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f};
    const char* q = p;
    const bool negative = *q == '-';
    if (*q == '-' || *q == '+') q++;
    std::uint32_t m = 0;
    int digits = 0, fraction = 0;
    for (; *q >= '0' && *q <= '9'; q++, digits++) m = m * 10 + static_cast<std::uint32_t>(*q - '0');
    if (*q == '.') {
        for (q++; *q >= '0' && *q <= '9'; q++, digits++, fraction++) m = m * 10 + static_cast<std::uint32_t>(*q - '0');
    }
    if (digits == 0 || digits > 7) return nullptr;
    if (!(*q == ',' || *q == ']' || *q == '\0' || is_space(*q))) return nullptr;
    float v = static_cast<float>(m);
    if (fraction > 0) v /= kPow10[fraction];
    *out = negative ? -v : v;
    return q;
}

[[noreturn]] void syntax_error(const char* text, const char* type_name) {
    fail(ErrorKind::InvalidTextRepresentation,
         std::string("invalid input syntax for type ") + type_name + ": \"" + text + "\"");
}

// Any element strtof reads (exponents, hex, long digit strings), with the
// range, NaN and infinity checks; returns where the element ends.
const char* parse_with_strtof(const char* p, const char* text, const char* type_name, float* out) {
    char* end = nullptr;
    errno = 0;
    const float v = std::strtof(p, &end);
    if (end == p) syntax_error(text, type_name);
    if (errno == ERANGE && std::isinf(v))
        fail(ErrorKind::NumericOutOfRange,
             "\"" + std::string(p, static_cast<std::size_t>(end - p)) + "\" is out of range for type " + type_name);
    check_finite(&v, 1, type_name);
    *out = v;
    return end;
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
        float v;
        const char* end = parse_short_decimal(p, &v);
        if (end == nullptr) end = parse_with_strtof(p, text, type_name, &v);
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
