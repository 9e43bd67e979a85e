// Quantizers (quantizer.h) and the IEEE half conversions (quant_kernels.h):
// the conversions bit for bit, training and encoding, and the property scans
// rely on for exact results -- the lower bound of a code never exceeds the
// value the SQL operator computes on the original vector. The query-by-code
// kernels themselves are held to a double reference at every ISA in
// quant_kernels_test.cc.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <gtest/gtest.h>

#include "libravdb/core/distance.h"
#include "libravdb/core/limits.h"
#include "libravdb/core/quant_kernels.h"
#include "libravdb/core/quantizer.h"

namespace lrv::core {

namespace distance {
static void PrintTo(Metric m, std::ostream* os) { *os << metric_name(m); }
}  // namespace distance
static void PrintTo(QuantizerKind q, std::ostream* os) { *os << quantizer_name(q); }

namespace {

using distance::float_to_half;
using distance::half_to_float;
using distance::Metric;

// Data from std::mt19937's fixed output sequence, mapped to numbers by hand
// (the standard distributions differ between libraries).
class Rng {
  public:
    explicit Rng(std::uint32_t seed) : gen_(seed) {}
    std::uint32_t bits() { return gen_(); }
    // Uniform in [lo, hi).
    float in(float lo, float hi) {
        double u = static_cast<double>(gen_() >> 8) * 0x1p-24;
        return static_cast<float>(lo + (static_cast<double>(hi) - lo) * u);
    }
    // Uniform integer in [lo, hi].
    int integer(int lo, int hi) { return lo + static_cast<int>(gen_() % static_cast<std::uint32_t>(hi - lo + 1)); }
    std::vector<float> floats(std::size_t n, float lo, float hi) {
        std::vector<float> v(n);
        for (float& x : v) x = in(lo, hi);
        return v;
    }

  private:
    std::mt19937 gen_;
};

std::uint32_t float_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
float bits_float(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
std::uint64_t double_bits(double d) {
    std::uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

bool half_is_finite(std::uint16_t h) { return ((h >> 10) & 0x1f) != 0x1f; }

// The value of a half by its definition, in double.
double half_value(std::uint16_t h) {
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double mag = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
    return (h & 0x8000) ? -mag : mag;
}

constexpr std::uint16_t kMaxHalf = 0x7bff;  // 65504

// --- half conversions -------------------------------------------------------

TEST(Half, DecodesEveryPatternByDefinition) {
    for (std::uint32_t h = 0; h <= 0xffff; h++) {
        auto hh = static_cast<std::uint16_t>(h);
        float f = half_to_float(hh);
        if (half_is_finite(hh)) {
            ASSERT_EQ(static_cast<double>(f), half_value(hh)) << std::hex << "h = 0x" << h;
            ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << "h = 0x" << h;
        } else if ((h & 0x3ff) == 0) {
            ASSERT_TRUE(std::isinf(f) && std::signbit(f) == ((h & 0x8000) != 0)) << std::hex << "h = 0x" << h;
        } else {
            ASSERT_TRUE(std::isnan(f)) << std::hex << "h = 0x" << h;
        }
    }
}

TEST(Half, EveryFiniteHalfRoundTrips) {
    for (std::uint32_t h = 0; h <= 0xffff; h++) {
        auto hh = static_cast<std::uint16_t>(h);
        if (!half_is_finite(hh)) continue;
        ASSERT_EQ(float_to_half(half_to_float(hh)), hh) << std::hex << "h = 0x" << h;
    }
}

// Between two adjacent finite halves of one sign (including the subnormal to
// normal step and zero to the smallest subnormal): the midpoint goes to the
// even one, anything off the midpoint to the nearer one. The midpoint needs
// 12 significant bits, so it is exact in float.
TEST(Half, RoundsToNearestEven) {
    for (std::uint32_t sign : {0u, 0x8000u}) {
        for (std::uint32_t m = 0; m < kMaxHalf; m++) {
            auto lo = static_cast<std::uint16_t>(sign | m), hi = static_cast<std::uint16_t>(sign | (m + 1));
            double mid_d = (half_value(lo) + half_value(hi)) / 2;
            float mid = static_cast<float>(mid_d);
            ASSERT_EQ(static_cast<double>(mid), mid_d);
            float toward_hi = std::nextafter(mid, sign ? -INFINITY : INFINITY);
            float toward_lo = std::nextafter(mid, sign ? INFINITY : -INFINITY);
            ASSERT_EQ(float_to_half(mid), (m & 1) ? hi : lo) << std::hex << "between 0x" << lo << " and 0x" << hi;
            ASSERT_EQ(float_to_half(toward_hi), hi) << std::hex << "just above the midpoint of 0x" << lo;
            ASSERT_EQ(float_to_half(toward_lo), lo) << std::hex << "just below the midpoint of 0x" << lo;
        }
    }
}

TEST(Half, SaturatesInsteadOfOverflowing) {
    const float above[] = {65504.0f, std::nextafter(65520.0f, 0.0f), 65520.0f, 65536.0f, 1e6f, 3e38f,
                           std::numeric_limits<float>::max(), std::numeric_limits<float>::infinity()};
    for (float f : above) {
        EXPECT_EQ(float_to_half(f), kMaxHalf) << f;
        EXPECT_EQ(float_to_half(-f), 0x8000 | kMaxHalf) << -f;
    }
    EXPECT_EQ(half_to_float(kMaxHalf), 65504.0f);
    // Just below 65504 + half an ulp (16) still rounds down, as IEEE does.
    EXPECT_EQ(float_to_half(65511.0f), kMaxHalf);
    EXPECT_EQ(float_to_half(65488.0f), kMaxHalf - 1);
}

TEST(Half, Subnormals) {
    const float min_sub = 0x1p-24f, min_normal = 0x1p-14f;
    EXPECT_EQ(float_to_half(min_sub), 0x0001);
    EXPECT_EQ(float_to_half(-min_sub), 0x8001);
    EXPECT_EQ(float_to_half(min_normal), 0x0400);
    EXPECT_EQ(float_to_half(min_normal - min_sub), 0x03ff);
    EXPECT_EQ(float_to_half(0x1.8p-24f), 0x0002);  // tie between 1 and 2: even
    EXPECT_EQ(float_to_half(0x1.8p-23f), 0x0003);  // exact
    // Half the smallest subnormal is a tie with zero: zero is even.
    EXPECT_EQ(float_to_half(0x1p-25f), 0x0000);
    EXPECT_EQ(float_to_half(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
    // Far below: signed zero, including float subnormals.
    for (float f : {1e-8f, 1e-20f, 1e-38f, std::numeric_limits<float>::denorm_min(), 0.0f}) {
        EXPECT_EQ(float_to_half(f), 0x0000) << f;
        EXPECT_EQ(float_to_half(-f), 0x8000) << -f;
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("f16c"))) std::uint16_t hw_float_to_half(float f) {
    return static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hw_half_to_float(std::uint16_t h) { return _cvtsh_ss(h); }

bool cpu_has_f16c() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c");
}

// The hardware conversion agrees wherever the result is finite in IEEE (it
// would give infinity from 65520 up, where ours saturates).
TEST(Half, MatchesF16cHardware) {
    if (!cpu_has_f16c()) GTEST_SKIP() << "this CPU lacks F16C";
    for (std::uint32_t h = 0; h <= 0xffff; h++) {
        auto hh = static_cast<std::uint16_t>(h);
        if (!half_is_finite(hh)) continue;
        ASSERT_EQ(float_bits(half_to_float(hh)), float_bits(hw_half_to_float(hh))) << std::hex << "h = 0x" << h;
    }
    Rng rng(16);
    for (int i = 0; i < 2000000; i++) {
        float f;
        if (i % 2 == 0) {
            // Any bit pattern with a magnitude below 65520: every exponent,
            // float subnormals included, equally often.
            std::uint32_t exp = rng.bits() % 143, mant = rng.bits() & 0x7fffff;
            f = bits_float((rng.bits() & 0x80000000u) | (exp << 23) | mant);
            if (std::fabs(f) >= 65520.0f) continue;
        } else {
            f = rng.in(-70000.0f, 70000.0f);
            if (std::fabs(f) >= 65520.0f) {
                EXPECT_EQ(float_to_half(f) & 0x7fff, kMaxHalf) << f;
                continue;
            }
        }
        ASSERT_EQ(float_to_half(f), hw_float_to_half(f)) << std::hexfloat << f;
    }
}
#endif

// --- codes, training, encoding ----------------------------------------------

constexpr QuantizerKind kKinds[] = {QuantizerKind::None, QuantizerKind::Fp16, QuantizerKind::Sq8};
constexpr Metric kMetrics[] = {Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1};

TEST(Quantizer, CodeBytes) {
    for (std::size_t d : {std::size_t{1}, std::size_t{3}, std::size_t{784}, kMaxDims}) {
        EXPECT_EQ(code_bytes(QuantizerKind::None, d), 4 * d);
        EXPECT_EQ(code_bytes(QuantizerKind::Fp16, d), 2 * d);
        EXPECT_EQ(code_bytes(QuantizerKind::Sq8, d), d);
    }
    EXPECT_STREQ(quantizer_name(QuantizerKind::None), "none");
    EXPECT_STREQ(quantizer_name(QuantizerKind::Fp16), "fp16");
    EXPECT_STREQ(quantizer_name(QuantizerKind::Sq8), "sq8");
}

TEST(Quantizer, TrainSq8CoversTheSampleRange) {
    Rng rng(5);
    std::vector<float> s = rng.floats(50 * 7, -3.0f, 5.0f);
    s[17] = -4.5f;
    s[200] = 6.25f;
    QuantizerParams p = train_sq8(s.data(), 50, 7);
    EXPECT_EQ(p.kind, QuantizerKind::Sq8);
    EXPECT_EQ(p.lo, -4.5f);
    EXPECT_FLOAT_EQ(p.step, (6.25f + 4.5f) / 255);
    EXPECT_NEAR(p.lo + 255.0 * p.step, 6.25, 1e-5);

    // A constant sample and an empty one still give a usable (positive) step.
    std::vector<float> same(30, 2.5f);
    p = train_sq8(same.data(), 10, 3);
    EXPECT_EQ(p.lo, 2.5f);
    EXPECT_GT(p.step, 0.0f);
    p = train_sq8(nullptr, 0, 3);
    EXPECT_EQ(p.kind, QuantizerKind::Sq8);
    EXPECT_GT(p.step, 0.0f);

    // Extreme ranges still give a finite, positive step that encodes every
    // sample with a finite residual: wider than FLT_MAX, and narrower than
    // 255 float subnormals.
    const float wide[] = {-3e38f, 3e38f, 1.0f}, narrow[] = {0.0f, 0x1p-147f, 0x1p-148f};
    for (const float* s3 : {wide, narrow}) {
        p = train_sq8(s3, 3, 1);
        EXPECT_EQ(p.lo, s3[0]);
        EXPECT_GT(p.step, 0.0f);
        EXPECT_TRUE(std::isfinite(p.step));
        for (int i = 0; i < 3; i++) {
            std::uint8_t c;
            float r = encode(p, Metric::L2, &s3[i], 1, &c);
            EXPECT_TRUE(std::isfinite(r)) << s3[i];
            EXPECT_LE(r, s3[1] == 3e38f ? 1e37f : 0x1p-148f) << s3[i];
        }
    }
}

// The residual is the norm of what the code loses: at least the exact norm
// (rounded up, never down) and not much more.
void expect_residual(float r, double exact) {
    EXPECT_GE(static_cast<double>(r), exact);
    EXPECT_LE(static_cast<double>(r), exact * (1 + 4e-6) + 1e-30);
}

TEST(Quantizer, Sq8EncodesToNearestCodeAndClamps) {
    QuantizerParams p;
    p.kind = QuantizerKind::Sq8;
    p.lo = -1.0f;
    p.step = 0.5f;
    // Codes 0..255 stand for -1, -0.5, ..., 126.5.
    const float x[] = {-1.0f, -7.0f, 0.6f, 0.9f, 125.9f, 126.0f, 126.3f, 126.5f, 400.0f, 1e30f};
    const std::uint8_t want[] = {0, 0, 3, 4, 254, 254, 255, 255, 255, 255};
    const std::size_t n = sizeof x / sizeof x[0];
    std::vector<std::uint8_t> code(n);
    double e2 = 0, e1 = 0;
    for (std::size_t i = 0; i < n; i++) {
        double e = static_cast<double>(x[i]) - (p.lo + p.step * want[i]);
        if (i + 1 < n) {  // not the 1e30 one, which would swamp the sums
            e2 += e * e;
            e1 += std::fabs(e);
        }
    }
    float r = encode(p, Metric::L2, x, n - 1, code.data());
    for (std::size_t i = 0; i + 1 < n; i++) EXPECT_EQ(code[i], want[i]) << "x = " << x[i];
    expect_residual(r, std::sqrt(e2));
    r = encode(p, Metric::L1, x, n - 1, code.data());
    expect_residual(r, e1);
    r = encode(p, Metric::InnerProduct, x, n, code.data());
    EXPECT_EQ(code[n - 1], 255);
    EXPECT_GE(r, 1e30f);

    // On the grid nothing is lost.
    const float g[] = {-1.0f, 0.0f, 2.5f, 126.5f};
    EXPECT_EQ(encode(p, Metric::L2, g, 4, code.data()), 0.0f);
    EXPECT_EQ(encode(p, Metric::L1, g, 4, code.data()), 0.0f);
}

TEST(Quantizer, NoneAndFp16Encode) {
    Rng rng(8);
    std::vector<float> x = rng.floats(33, -100.0f, 100.0f);
    x[0] = 70000.0f;  // saturates in fp16
    std::vector<std::uint8_t> code(4 * x.size());
    QuantizerParams none;
    EXPECT_EQ(encode(none, Metric::L2, x.data(), x.size(), code.data()), 0.0f);
    EXPECT_EQ(std::memcmp(code.data(), x.data(), 4 * x.size()), 0);

    QuantizerParams fp16;
    fp16.kind = QuantizerKind::Fp16;
    double e2 = 0, e1 = 0;
    for (float v : x) {
        double e = static_cast<double>(v) - half_to_float(float_to_half(v));
        e2 += e * e;
        e1 += std::fabs(e);
    }
    float r = encode(fp16, Metric::Cosine, x.data(), x.size(), code.data());
    for (std::size_t i = 0; i < x.size(); i++) {
        std::uint16_t h;
        std::memcpy(&h, code.data() + 2 * i, 2);
        EXPECT_EQ(h, float_to_half(x[i]));
    }
    expect_residual(r, std::sqrt(e2));
    expect_residual(encode(fp16, Metric::L1, x.data(), x.size(), code.data()), e1);
}

TEST(Quantizer, VectorNorm) {
    Rng rng(9);
    std::vector<float> x = rng.floats(1536, -1.0f, 1.0f);
    double s = 0;
    for (float v : x) s += static_cast<double>(v) * v;
    EXPECT_EQ(vector_norm(x.data(), x.size()), static_cast<float>(std::sqrt(s)));
    EXPECT_EQ(vector_norm(x.data(), 0), 0.0f);
}

// --- the lower bound --------------------------------------------------------

// What the SQL operator returns for (column value x, query q).
double sql_value(Metric m, const float* x, const float* q, std::size_t n) {
    switch (m) {
        case Metric::L2:
            return std::sqrt(static_cast<double>(distance::l2_squared(x, q, n)));
        case Metric::InnerProduct:
            return -static_cast<double>(distance::inner_product(x, q, n));
        case Metric::Cosine:
            return static_cast<double>(distance::cosine_distance(x, q, n));
        case Metric::L1:
            return static_cast<double>(distance::l1(x, q, n));
    }
    return 0;
}

struct Dataset {
    std::string name;
    std::size_t dims;
    std::vector<std::vector<float>> data, queries;
    bool train_on_data = true;  // sq8 range from the data, else from `sample`
    std::vector<float> sample;
};

QuantizerParams params_for(QuantizerKind kind, const Dataset& ds) {
    QuantizerParams p;
    if (kind == QuantizerKind::Sq8) {
        std::vector<float> flat;
        if (ds.train_on_data) {
            for (const auto& v : ds.data) flat.insert(flat.end(), v.begin(), v.end());
        } else {
            flat = ds.sample;
        }
        p = train_sq8(flat.data(), flat.size() / ds.dims, ds.dims);
    }
    p.kind = kind;
    return p;
}

struct BoundStats {
    std::size_t pairs = 0, violations = 0;
    std::string first_violation;
    double worst_gap = 0;  // max (exact - bound) / max(|exact|, 1)
};

BoundStats check_bounds(const Dataset& ds, QuantizerKind kind, Metric metric, const QuantizerParams& p) {
    BoundStats st;
    const std::size_t n = ds.dims;
    std::vector<std::vector<std::uint8_t>> codes;
    std::vector<float> residuals, norms;
    for (const auto& x : ds.data) {
        codes.emplace_back(code_bytes(kind, n));
        residuals.push_back(encode(p, metric, x.data(), n, codes.back().data()));
        norms.push_back(vector_norm(x.data(), n));
    }
    for (std::size_t qi = 0; qi < ds.queries.size(); qi++) {
        const auto& q = ds.queries[qi];
        QueryCoder coder(p, metric, q.data(), n);
        EXPECT_EQ(coder.exact(), kind == QuantizerKind::None);
        for (std::size_t xi = 0; xi < ds.data.size(); xi++) {
            double exact = sql_value(metric, ds.data[xi].data(), q.data(), n);
            double v = coder.value(codes[xi].data(), norms[xi]);
            double lb = coder.lower_bound(codes[xi].data(), residuals[xi], norms[xi]);
            st.pairs++;
            bool ok;
            if (kind == QuantizerKind::None) {
                ok = double_bits(lb) == double_bits(exact) && double_bits(v) == double_bits(exact);
            } else if (std::isnan(exact)) {
                ok = true;  // NaN sorts last: any bound is below it
            } else {
                ok = !std::isnan(lb) && lb <= exact;
                if (ok && std::isfinite(exact))
                    st.worst_gap = std::max(st.worst_gap, (exact - lb) / std::max(std::fabs(exact), 1.0));
            }
            // The same code summed in pieces (an entry crossing pages, split
            // on 16-byte boundaries as pages split it) must bound it too.
            const std::size_t elem = code_bytes(kind, 1), per16 = 16 / elem;
            double split_lb = lb;
            if (n > per16) {
                std::size_t cut = per16 * (1 + (xi + qi) % ((n - 1) / per16));
                auto sums = QueryCoder::add(coder.sums(codes[xi].data(), 0, cut),
                                            coder.sums(codes[xi].data() + cut * elem, cut, n - cut));
                split_lb = coder.lower_bound_split(sums, residuals[xi], norms[xi]);
                if (!std::isnan(exact)) ok = ok && !std::isnan(split_lb) && split_lb <= exact;
            }
            if (!ok && st.violations++ == 0) {
                std::ostringstream os;
                os.precision(17);
                os << "query " << qi << ", vector " << xi << ": exact " << exact << ", value " << v
                   << ", lower bound " << lb << ", split lower bound " << split_lb << ", residual "
                   << residuals[xi] << ", norm " << norms[xi] << ", sq8 lo " << p.lo << " step " << p.step;
                st.first_violation = os.str();
            }
        }
    }
    return st;
}

std::vector<float> zeros(std::size_t n) { return std::vector<float>(n, 0.0f); }

std::string num(double x) {
    std::ostringstream os;
    os << x;
    return os.str();
}

// Vectors uniform in [-scale, scale], a zero vector, a duplicate, and queries
// that include stored vectors (distance zero) and the zero vector.
Dataset uniform_set(std::uint32_t seed, std::size_t dims, float scale, std::size_t count = 48) {
    Rng rng(seed);
    Dataset ds;
    ds.name = "uniform d" + std::to_string(dims) + " scale " + num(scale);
    ds.dims = dims;
    for (std::size_t i = 0; i < count; i++) ds.data.push_back(rng.floats(dims, -scale, scale));
    ds.data.push_back(zeros(dims));
    ds.data.push_back(ds.data[0]);
    for (int i = 0; i < 4; i++) ds.queries.push_back(rng.floats(dims, -scale, scale));
    ds.queries.push_back(ds.data[1]);
    ds.queries.push_back(ds.data[count / 2]);
    ds.queries.push_back(zeros(dims));
    for (float& v : ds.queries.back()) v = scale * 3;  // outside the data range
    ds.queries.push_back(zeros(dims));
    return ds;
}

// sq8 trained on [-1, 1]; stored vectors and queries then carry outliers
// far outside it, which clamp to codes 0 and 255 (and saturate fp16).
Dataset outlier_set(std::uint32_t seed, std::size_t dims, float outlier) {
    Rng rng(seed);
    Dataset ds;
    ds.name = "outliers d" + std::to_string(dims) + " of " + num(outlier);
    ds.dims = dims;
    ds.train_on_data = false;
    ds.sample = rng.floats(16 * dims, -1.0f, 1.0f);
    auto with_outliers = [&] {
        std::vector<float> v = rng.floats(dims, -1.0f, 1.0f);
        for (float& x : v)
            if (rng.integer(0, 9) == 0) x = rng.integer(0, 1) ? outlier : -outlier;
        return v;
    };
    for (int i = 0; i < 40; i++) ds.data.push_back(with_outliers());
    ds.data.push_back(zeros(dims));
    for (int i = 0; i < 4; i++) ds.queries.push_back(with_outliers());
    ds.queries.push_back(rng.floats(dims, -1.0f, 1.0f));
    ds.queries.push_back(ds.data[3]);
    ds.queries.push_back(zeros(dims));
    return ds;
}

// Integer-valued data on or near the sq8 grid: residuals at or near zero, so
// the bound has nothing to hide float rounding behind. `denom` 255 gives
// pixel intensities scaled to [0, 1] (grid step 1/255, not a float).
Dataset grid_set(std::uint32_t seed, std::size_t dims, int lo, int hi, float denom) {
    Rng rng(seed);
    Dataset ds;
    ds.name = "grid [" + std::to_string(lo) + ", " + std::to_string(hi) + "] / " + num(denom) + " d" +
              std::to_string(dims);
    ds.dims = dims;
    auto vec = [&] {
        std::vector<float> v(dims);
        for (float& x : v) x = static_cast<float>(rng.integer(lo, hi)) / denom;
        return v;
    };
    for (int i = 0; i < 40; i++) ds.data.push_back(vec());
    // Make the trained range the full [lo, hi] however the draw went.
    ds.data[0][0] = static_cast<float>(lo) / denom;
    ds.data[0][dims > 1 ? 1 : 0] = static_cast<float>(hi) / denom;
    std::vector<float> mid(dims, lo <= 0 && hi >= 0 ? 0.0f : static_cast<float>(lo) / denom);
    ds.data.push_back(mid);
    for (int i = 0; i < 4; i++) ds.queries.push_back(vec());
    for (int i = 1; i < 5; i++) ds.queries.push_back(ds.data[static_cast<std::size_t>(i)]);
    ds.queries.push_back(mid);
    ds.queries.push_back(rng.floats(dims, -1.0f, 1.0f));
    return ds;
}

std::vector<Dataset> bound_datasets() {
    std::vector<Dataset> sets;
    std::uint32_t seed = 100;
    for (std::size_t dims : {1, 3, 17, 128, 784})
        sets.push_back(uniform_set(seed++, dims, 1.0f));
    // fp16 saturates from 65520 on; from about 1e18 the float sums behind the
    // SQL value overflow, and below about 1e-19 squares underflow.
    for (float scale : {1e-25f, 1e-20f, 1e-15f, 1e-3f, 1e3f, 1e5f, 1e12f, 1e18f, 1e19f, 1e25f, 3e38f})
        for (std::size_t dims : {3, 100})
            sets.push_back(uniform_set(seed++, dims, scale));
    for (float outlier : {30.0f, 1e6f})
        for (std::size_t dims : {5, 200}) sets.push_back(outlier_set(seed++, dims, outlier));
    for (std::size_t dims : {16, 784}) {
        sets.push_back(grid_set(seed++, dims, 0, 255, 255.0f));
        sets.push_back(grid_set(seed++, dims, -128, 127, 1.0f));
        sets.push_back(grid_set(seed++, dims, 0, 255, 1.0f));
        sets.push_back(grid_set(seed++, dims, -1000, 1000, 8.0f));
    }
    return sets;
}

class LowerBoundTest : public testing::TestWithParam<std::tuple<QuantizerKind, Metric>> {};

TEST_P(LowerBoundTest, NeverAboveTheSqlValue) {
    auto [kind, metric] = GetParam();
    for (const Dataset& ds : bound_datasets()) {
        BoundStats st = check_bounds(ds, kind, metric, params_for(kind, ds));
        EXPECT_EQ(st.violations, 0u) << ds.name << ": " << st.violations << " of " << st.pairs
                                     << " pairs, first: " << st.first_violation;
    }
}

// sq8 with lo = 0, step = 1 on integers in [0, 255] (and fp16 on the same
// integers) loses nothing: the residual is zero and the bound only has to
// allow for float rounding, so it must sit close to the exact value. The gap
// is relative to max(|exact|, 1): integer data puts every nonzero L2 or L1
// distance at 1 or more, and a cosine distance is at most 2 anyway.
TEST_P(LowerBoundTest, TightWhenTheCodeIsExact) {
    auto [kind, metric] = GetParam();
    for (std::size_t dims : {16, 784}) {
        Dataset ds = grid_set(7 + static_cast<std::uint32_t>(dims), dims, 0, 255, 1.0f);
        ds.queries.pop_back();  // the non-integer query
        QuantizerParams p = params_for(kind, ds);
        if (kind == QuantizerKind::Sq8) {
            ASSERT_EQ(p.lo, 0.0f);
            ASSERT_EQ(p.step, 1.0f);
        }
        std::vector<std::uint8_t> code(code_bytes(kind, dims));
        for (const auto& x : ds.data) ASSERT_EQ(encode(p, metric, x.data(), dims, code.data()), 0.0f);
        BoundStats st = check_bounds(ds, kind, metric, p);
        EXPECT_EQ(st.violations, 0u) << st.first_violation;
        EXPECT_LE(st.worst_gap, 1e-3) << ds.name;
    }
}

// sq8 works on the query scaled to code units, (q - lo) / step rounded to
// float, so a query equal to a stored vector on the grid (exact distance 0)
// gets a small nonzero value that the bound must absorb. Pixel intensities
// divided by 255 are such data: the grid step 1/255 is not a float.
TEST(LowerBound, Sq8QueryEqualToAStoredVector) {
    for (std::size_t dims : {16, 784}) {
        Dataset ds = grid_set(40 + static_cast<std::uint32_t>(dims), dims, 0, 255, 255.0f);
        for (int i = 0; i < 60; i++) ds.data.push_back(grid_set(300 + i, dims, 0, 255, 255.0f).data[5]);
        ds.queries = ds.data;
        for (Metric metric : kMetrics) {
            BoundStats st = check_bounds(ds, QuantizerKind::Sq8, metric, params_for(QuantizerKind::Sq8, ds));
            EXPECT_EQ(st.violations, 0u) << ds.name << " " << distance::metric_name(metric) << ": "
                                         << st.violations << " of " << st.pairs << ", first: " << st.first_violation;
        }
    }
}

// sq8 computes q.x^ as lo * sum(q) + step * q.c: with lo far from zero and
// x small the two terms nearly cancel, and their rounding is relative to
// |lo| * sum |q_i|, not to |q| |x|.
TEST(LowerBound, Sq8InnerProductWithLoFarFromZero) {
    Rng rng(41);
    for (std::size_t dims : {16, 100, 784}) {
        Dataset ds;
        ds.name = "lo -128 d" + std::to_string(dims);
        ds.dims = dims;
        ds.data.push_back(zeros(dims));
        for (int i = 0; i < 5; i++) {
            std::vector<float> v(dims, 0.0f);
            v[rng.integer(0, static_cast<int>(dims) - 1)] = static_cast<float>(rng.integer(-2, 2));
            ds.data.push_back(v);
        }
        for (int i = 0; i < 100; i++) ds.queries.push_back(rng.floats(dims, -1.0f, 1.0f));
        QuantizerParams p;
        p.kind = QuantizerKind::Sq8;
        p.lo = -128;
        p.step = 1;
        for (Metric metric : {Metric::InnerProduct, Metric::Cosine}) {
            BoundStats st = check_bounds(ds, QuantizerKind::Sq8, metric, p);
            EXPECT_EQ(st.violations, 0u) << ds.name << " " << distance::metric_name(metric) << ": "
                                         << st.violations << " of " << st.pairs << ", first: " << st.first_violation;
        }
    }
}

// With no quantizer the scan's key is the SQL value itself, bit for bit.
TEST(LowerBound, NoneIsTheSqlValue) {
    for (Metric metric : kMetrics) {
        Dataset ds = uniform_set(3, 1536, 1.0f, 8);
        BoundStats st = check_bounds(ds, QuantizerKind::None, metric, QuantizerParams{});
        EXPECT_EQ(st.violations, 0u) << distance::metric_name(metric) << ": " << st.first_violation;
    }
}

// NaN marks an undefined cosine (a zero vector on either side) and nothing
// else: the scan sorts NaN after every number.
TEST(LowerBound, NanOnlyForZeroVectorsUnderCosine) {
    const std::size_t n = 9;
    Rng rng(4);
    std::vector<float> x = rng.floats(n, -1.0f, 1.0f), q = rng.floats(n, -1.0f, 1.0f), z = zeros(n);
    for (QuantizerKind kind : kKinds) {
        QuantizerParams p;
        if (kind == QuantizerKind::Sq8) p = train_sq8(x.data(), 1, n);
        p.kind = kind;
        for (Metric metric : kMetrics) {
            SCOPED_TRACE(std::string(quantizer_name(kind)) + " " + distance::metric_name(metric));
            std::vector<std::uint8_t> cx(code_bytes(kind, n)), cz(code_bytes(kind, n));
            float rx = encode(p, metric, x.data(), n, cx.data());
            float rz = encode(p, metric, z.data(), n, cz.data());
            QueryCoder cq(p, metric, q.data(), n), c0(p, metric, z.data(), n);
            bool cos = metric == Metric::Cosine;
            EXPECT_FALSE(std::isnan(cq.lower_bound(cx.data(), rx, vector_norm(x.data(), n))));
            EXPECT_EQ(std::isnan(cq.lower_bound(cz.data(), rz, 0.0f)), cos);
            EXPECT_EQ(std::isnan(c0.lower_bound(cx.data(), rx, vector_norm(x.data(), n))), cos);
            EXPECT_EQ(std::isnan(c0.lower_bound(cz.data(), rz, 0.0f)), cos);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllQuantizersAndMetrics, LowerBoundTest,
                         testing::Combine(testing::ValuesIn(kKinds), testing::ValuesIn(kMetrics)),
                         [](const testing::TestParamInfo<LowerBoundTest::ParamType>& info) {
                             return std::string(quantizer_name(std::get<0>(info.param))) + "_" +
                                    distance::metric_name(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace lrv::core
