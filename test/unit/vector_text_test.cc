// Text input of vectors (vector_text.h). The parser reads short plain
// decimals itself and everything else with strtof; whichever path an element
// takes, the float must be the one strtof gives, bit for bit, and malformed
// elements must still be refused.
#include <clocale>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "libravdb/core/error.h"
#include "libravdb/core/vector_text.h"

namespace {

using lrv::core::parse_vector_text;

std::uint32_t bits(float f) {
    std::uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
}

std::vector<float> parse(const std::string& text) {
    std::vector<float> out(lrv::core::vector_text_max_elements(text.c_str()));
    out.resize(parse_vector_text(text.c_str(), out.data(), out.size(), "lvector"));
    return out;
}

// A random decimal: up to 9 digits, the point anywhere (or nowhere), an
// optional sign, sometimes a trailing point or a leading one.
std::string random_decimal(std::mt19937& rng) {
    std::uniform_int_distribution<int> ndig(1, 9), digit(0, 9), coin(0, 3);
    const int n = ndig(rng);
    std::string s;
    const int sign = coin(rng);
    if (sign == 0) s += '-';
    if (sign == 1 && coin(rng) == 0) s += '+';
    std::uniform_int_distribution<int> point(-1, n);
    const int at = point(rng);  // -1: no point
    for (int i = 0; i < n; i++) {
        if (i == at) s += '.';
        s += static_cast<char>('0' + digit(rng));
    }
    if (at == n) s += '.';
    return s;
}

TEST(VectorText, EveryElementIsStrtofsFloat) {
    std::setlocale(LC_NUMERIC, "C");
    std::mt19937 rng(20261203);
    for (int round = 0; round < 2000; round++) {
        std::vector<std::string> elems(256);
        std::string text = "[";
        for (std::size_t i = 0; i < elems.size(); i++) {
            elems[i] = random_decimal(rng);
            text += (i ? (i % 3 ? "," : " , ") : "") + elems[i];
        }
        text += "]";
        const std::vector<float> got = parse(text);
        ASSERT_EQ(got.size(), elems.size());
        for (std::size_t i = 0; i < elems.size(); i++)
            ASSERT_EQ(bits(got[i]), bits(std::strtof(elems[i].c_str(), nullptr))) << elems[i];
    }
}

TEST(VectorText, SevenDigitFractionsRoundLikeStrtof) {
    // Every 7-digit mantissa with its point at each place, on a stride that
    // still covers all leading digits and last digits.
    std::setlocale(LC_NUMERIC, "C");
    char buf[32];
    for (std::uint32_t m = 0; m < 10000000; m += 997) {
        for (int f = 0; f <= 7; f++) {
            std::snprintf(buf, sizeof buf, "%07u", m);
            std::string s(buf);
            s.insert(s.size() - static_cast<std::size_t>(f), ".");
            const std::vector<float> got = parse("[" + s + "]");
            ASSERT_EQ(bits(got[0]), bits(std::strtof(s.c_str(), nullptr))) << s;
        }
    }
}

TEST(VectorText, OtherFormsStillGoThroughStrtof) {
    const std::vector<float> v = parse("[1e3, 0x1p-3, 12345678.9, -0, +7., .5, 3.4028235e38]");
    ASSERT_EQ(v.size(), 7u);
    EXPECT_EQ(v[0], 1000.0f);
    EXPECT_EQ(v[1], 0.125f);
    EXPECT_EQ(bits(v[2]), bits(std::strtof("12345678.9", nullptr)));
    EXPECT_EQ(bits(v[3]), bits(-0.0f));
    EXPECT_EQ(v[4], 7.0f);
    EXPECT_EQ(v[5], 0.5f);
    EXPECT_EQ(v[6], 3.4028235e38f);
}

TEST(VectorText, MalformedElementsAreRefused) {
    for (const char* bad : {"[1,,2]", "[1.5.2]", "[12abc]", "[-]", "[.]", "[+]", "[1 2]", "[1,2", "[1]x", "[--1]"}) {
        try {
            parse(bad);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const lrv::core::Error& e) {
            EXPECT_EQ(e.kind(), lrv::core::ErrorKind::InvalidTextRepresentation) << bad << ": " << e.what();
        }
    }
    for (const char* bad : {"[nan]", "[1,inf]"}) {
        try {
            parse(bad);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const lrv::core::Error& e) {
            EXPECT_EQ(e.kind(), lrv::core::ErrorKind::InvalidValue) << bad;
        }
    }
}

}  // namespace
