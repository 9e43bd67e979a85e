// lvector's text input, the way lrv_lvector_in (src/pg/lvector_io.cc) calls
// it: size the buffer with vector_text_max_elements (capped at kMaxDims),
// then parse_vector_text.
//
// Contract: parse, or throw Error of a kind the glue maps to the documented
// SQLSTATE (22P02 syntax, 22003 out of range, 22000 NaN/Inf/empty, 54000 too
// many dimensions). Internal ("buffer too small") would mean the sizing and
// the parser disagree. When it parses: 1..kMaxDims elements, all finite, and
// the vector survives printing with 9 significant digits (enough for any
// float) and parsing again, bit for bit. The core has no formatter (the glue
// uses Postgres's float_to_shortest_decimal_bufn), so the round trip uses
// printf's "%.9g", which reads back exactly under the same strtof.
#include <clocale>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "libravdb/core/limits.h"
#include "libravdb/core/vector_text.h"

using namespace lrv;
using lrv::fuzz::accepts;

namespace {

constexpr const char* kType = "lvector";

// Returns the parsed vector, or false when the text was rejected cleanly.
bool parse(const char* text, std::vector<float>* out) {
    std::size_t cap = core::vector_text_max_elements(text);
    if (cap > core::kMaxDims) cap = core::kMaxDims;
    out->assign(cap, 0.0f);
    std::size_t n = 0;
    bool ok = accepts("parse_vector_text",
                      {fuzz::ErrorKind::InvalidTextRepresentation, fuzz::ErrorKind::NumericOutOfRange,
                       fuzz::ErrorKind::InvalidValue, fuzz::ErrorKind::ProgramLimit},
                      [&] { n = core::parse_vector_text(text, out->data(), cap, kType); });
    if (!ok) return false;
    LRV_CHECKF(n >= 1 && n <= cap && n <= core::kMaxDims, "parsed %zu elements into a buffer of %zu", n, cap);
    out->resize(n);
    return true;
}

std::string print(const std::vector<float>& v) {
    std::string s = "[";
    char buf[32];
    for (std::size_t i = 0; i < v.size(); i++) {
        std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", static_cast<double>(v[i]));
        s += buf;
    }
    return s + "]";
}

std::string repeat_elements(std::size_t n) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; i++) s += i ? ",1" : "1";
    return s + "]";
}

void write_seeds(fuzz::SeedWriter& w) {
    w.add("simple", "[1,2.5,-3]");
    w.add("spaces", " \t[ 1e-3 ,\n-0 , 4.25e+2 ]\r\n");
    w.add("exponents", "[3.4028235e38,-1.17549435e-38,1e-45,0x1p-3]");
    w.add("overflow", "[1,1e39]");
    w.add("nan", "[nan,1]");
    w.add("inf", "[1,-Infinity]");
    w.add("empty", "[]");
    w.add("double_comma", "[1,,2]");
    w.add("trailing", "[1,2] x");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::maybe_write_seeds(write_seeds);
    // Postgres backends parse with LC_NUMERIC=C; so does this process.
    std::setlocale(LC_ALL, "C");
    // Too large for the fuzzer's inputs, so checked once here: exactly
    // kMaxDims elements parse, one more is ProgramLimit (54000).
    std::vector<float> v;
    LRV_CHECK(parse(repeat_elements(core::kMaxDims).c_str(), &v) && v.size() == core::kMaxDims);
    std::string over = repeat_elements(core::kMaxDims + 1);
    std::vector<float> buf(core::kMaxDims);
    try {
        core::parse_vector_text(over.c_str(), buf.data(), buf.size(), kType);
        fuzz::die("%zu elements parsed", core::kMaxDims + 1);
    } catch (const core::Error& e) {
        LRV_CHECKF(e.kind() == core::ErrorKind::ProgramLimit, "kMaxDims + 1 elements: %s (%s)",
                   fuzz::kind_name(e.kind()), e.what());
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // A cstring: what Postgres hands lvector_in ends at the first NUL.
    std::string text(reinterpret_cast<const char*>(data), size);
    text.resize(std::strlen(text.c_str()));

    std::vector<float> v;
    if (!parse(text.c_str(), &v)) return 0;
    for (std::size_t i = 0; i < v.size(); i++) LRV_CHECKF(std::isfinite(v[i]), "element %zu is not finite", i);
    accepts("check_finite", {}, [&] { core::check_finite(v.data(), v.size(), kType); });

    const std::string printed = print(v);
    std::vector<float> again;
    LRV_CHECKF(parse(printed.c_str(), &again), "printed form \"%s\" does not parse", printed.c_str());
    LRV_CHECKF(again.size() == v.size(), "printed form has %zu elements, not %zu", again.size(), v.size());
    LRV_CHECKF(std::memcmp(again.data(), v.data(), v.size() * sizeof(float)) == 0,
               "\"%s\" does not read back bit for bit", printed.c_str());
    return 0;
}
