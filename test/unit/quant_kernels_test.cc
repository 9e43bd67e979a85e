// The query-by-code kernels (quant_kernels.h) at every instruction set this
// CPU has, held to a double reference (DESIGN.md section 7: each SIMD level
// against the scalar one): on both sides of every vector width and unrolled
// step, with codes and queries at any alignment, against guard pages, and bit
// for bit repeatable. quantizer_test.cc covers the half conversions
// themselves, encoding, and the lower bounds scans build on these kernels.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "guarded_buffer.h"
#include "libravdb/core/distance.h"
#include "libravdb/core/limits.h"
#include "libravdb/core/quant_kernels.h"

namespace lrv::core::distance {
namespace {

using lrv::test::Guard;
using lrv::test::GuardedBuffer;

// Around every vector width and unrolled step (8 and 64 elements for AVX2,
// 16 and 128 for AVX-512): below, at and above each, the Fashion-MNIST and
// OpenAI-embedding sizes, and the largest lvector.
constexpr std::size_t kDims[] = {1,  3,  7,   8,   15,  16,  17,  31,   32,   33,
                                 63, 64, 65,  127, 128, 129, 255, 784, 1536, kMaxDims};
static_assert(kMaxDims == 16000, "the dimension list names 16000 on purpose");

constexpr Isa kIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512};

struct Case {
    Isa isa;
    std::size_t n;
};
void PrintTo(const Case& c, std::ostream* os) { *os << isa_name(c.isa) << ", n = " << c.n; }

std::vector<Case> all_cases() {
    std::vector<Case> cases;
    for (Isa isa : kIsas)
        for (std::size_t n : kDims) cases.push_back({isa, n});
    return cases;
}

// std::mt19937's output is fixed by the standard, its distributions are not.
class Rng {
  public:
    explicit Rng(std::uint32_t seed) : gen_(seed) {}
    std::uint32_t bits() { return gen_(); }
    // Uniform in [lo, hi), and an integer in [lo, hi].
    float in(float lo, float hi) {
        return lo + (hi - lo) * static_cast<float>(gen_() >> 8) * 0x1p-24f;
    }
    int integer(int lo, int hi) {
        return lo + static_cast<int>(gen_() % static_cast<std::uint32_t>(hi - lo + 1));
    }

  private:
    std::mt19937 gen_;
};

std::uint32_t bits_of(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

bool half_is_finite(std::uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

// --- the three operations, over either code type ------------------------------

enum class Op { L2, Dot, L1 };
constexpr Op kOps[] = {Op::L2, Op::Dot, Op::L1};

const char* op_name(Op op) { return op == Op::L2 ? "l2_squared" : op == Op::Dot ? "dot" : "l1"; }

U8Fn kernel(const QuantKernels& k, Op op, const std::uint8_t*) {
    return op == Op::L2 ? k.l2_squared_u8 : op == Op::Dot ? k.dot_u8 : k.l1_u8;
}
F16Fn kernel(const QuantKernels& k, Op op, const std::uint16_t*) {
    return op == Op::L2 ? k.l2_squared_f16 : op == Op::Dot ? k.dot_f16 : k.l1_f16;
}

const char* code_name(const std::uint8_t*) { return "u8"; }
const char* code_name(const std::uint16_t*) { return "f16"; }

double decode(std::uint8_t c) { return c; }
double decode(std::uint16_t h) { return half_to_float(h); }  // exact; see quantizer_test.cc

// A double-precision sum with the sum of the absolute values of its terms,
// which a float summation error bound is proportional to: any float32
// evaluation, in any order and over any number of lanes, is within
// gamma_{n+3} * magnitude (Higham, as in distance_test.cc; FLT_EPSILON for u
// leaves room for the 1 / (1 - nu) factor). The conversion of a code adds no
// error: bytes and halves are exact in float.
struct Ref {
    double value = 0;
    double magnitude = 0;
    double tolerance(std::size_t n) const {
        return static_cast<double>(n + 3) * 1.1920928955078125e-7 * magnitude;
    }
};

template <class Code>
Ref reference(Op op, const float* q, const Code* c, std::size_t n) {
    Ref r;
    for (std::size_t i = 0; i < n; i++) {
        double x = decode(c[i]), d = q[i] - x;
        double t = op == Op::L2 ? d * d : op == Op::Dot ? q[i] * x : (d < 0 ? -d : d);
        r.value += t;
        r.magnitude += t < 0 ? -t : t;
    }
    return r;
}

// --- every ISA and dimension --------------------------------------------------

class QuantKernelsByIsa : public testing::TestWithParam<Case> {
  protected:
    void SetUp() override {
        k_ = quant_for_isa(GetParam().isa);
        if (k_ == nullptr) GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam().isa);
        n_ = GetParam().n;
        Rng rng(31337u + static_cast<std::uint32_t>(n_));
        // sq8 kernels get the query scaled to code units, a little outside
        // [0, 255] where the query is outside the trained range.
        q_ = floats(rng, -20.0f, 275.0f);
        c_.resize(n_);
        for (auto& x : c_) x = static_cast<std::uint8_t>(rng.bits());
        h_.resize(n_);
        for (auto& x : h_) x = float_to_half(rng.in(-2.0f, 2.0f));
    }

    std::vector<float> floats(Rng& rng, float lo, float hi) const {
        std::vector<float> v(n_);
        for (float& x : v) x = rng.in(lo, hi);
        return v;
    }

    template <class Code>
    float call(Op op, const float* q, const Code* c) const {
        return kernel(*k_, op, c)(q, c, n_);
    }

    // Every operation on (q, c), each within its error bound.
    template <class Code>
    void expect_near_reference(const float* q, const Code* c) const {
        for (Op op : kOps) {
            Ref r = reference(op, q, c, n_);
            EXPECT_NEAR(call(op, q, c), r.value, r.tolerance(n_))
                << op_name(op) << "_" << code_name(c);
        }
    }

    // Every operation gives the same bits on (q, c) as on the fixture's data,
    // which the other tests hold to the reference.
    template <class Code>
    void expect_same_bits(const float* q, const Code* c) const {
        for (Op op : kOps)
            EXPECT_EQ(bits_of(call(op, q, c)), bits_of(call(op, q_.data(), codes(c))))
                << op_name(op) << "_" << code_name(c);
    }
    const std::uint8_t* codes(const std::uint8_t*) const { return c_.data(); }
    const std::uint16_t* codes(const std::uint16_t*) const { return h_.data(); }

    const QuantKernels* k_ = nullptr;
    std::size_t n_ = 0;
    std::vector<float> q_;
    std::vector<std::uint8_t> c_;
    std::vector<std::uint16_t> h_;
};

TEST_P(QuantKernelsByIsa, MatchesDoubleReference) {
    expect_near_reference(q_.data(), c_.data());
    expect_near_reference(q_.data(), h_.data());
    // dot_u8 gets the query unscaled; halves of any finite value, from
    // subnormals to 65504.
    Rng rng(4242u + static_cast<std::uint32_t>(n_));
    std::vector<float> q = floats(rng, -1.0f, 1.0f);
    std::vector<std::uint16_t> h(n_);
    for (auto& x : h) {
        do x = static_cast<std::uint16_t>(rng.bits());
        while (!half_is_finite(x));
    }
    expect_near_reference(q.data(), c_.data());
    expect_near_reference(q.data(), h.data());
}

// Small integers keep every partial sum an integer below 2^24, so any order of
// float additions is exact and every ISA must give the reference to the last
// bit: a lane skipped, read twice or read from the wrong offset cannot hide
// in a tolerance here. Bounds at n = 16000: u8 l2 and l1 use |q - c| <= 8
// (at most 64 a term), dot uses c <= 63 and |q| <= 8 (504 a term); f16 uses
// integers in [-8, 8] (256 a term).
TEST_P(QuantKernelsByIsa, ExactOnSmallIntegers) {
    Rng rng(7u + static_cast<std::uint32_t>(n_));
    std::vector<float> near(n_), small(n_);
    std::vector<std::uint8_t> low(n_);
    std::vector<std::uint16_t> h(n_);
    for (std::size_t i = 0; i < n_; i++) {
        near[i] = static_cast<float>(static_cast<int>(c_[i]) + rng.integer(-8, 8));
        small[i] = static_cast<float>(rng.integer(-8, 8));
        low[i] = static_cast<std::uint8_t>(rng.integer(0, 63));
        h[i] = float_to_half(static_cast<float>(rng.integer(-8, 8)));
    }
    const std::uint8_t* c = c_.data();
    EXPECT_EQ(call(Op::L2, near.data(), c), reference(Op::L2, near.data(), c, n_).value);
    EXPECT_EQ(call(Op::L1, near.data(), c), reference(Op::L1, near.data(), c, n_).value);
    EXPECT_EQ(call(Op::Dot, small.data(), low.data()),
              reference(Op::Dot, small.data(), low.data(), n_).value);
    for (Op op : kOps)
        EXPECT_EQ(call(op, small.data(), h.data()), reference(op, small.data(), h.data(), n_).value)
            << op_name(op) << "_f16";
}

// A distance must be a function of the values alone, or an index scan and a
// sequential scan could order ties differently: the same bits for a code at
// any address (codes sit at byte offsets in index tuples) and a query at any
// float offset. This rules out peeling to alignment, which would change the
// summation order with the address. Half codes move by whole halves: a
// uint16_t pointer is 2-byte aligned by its type.
TEST_P(QuantKernelsByIsa, SameBitsAtAnyAlignment) {
    std::vector<float> qbuf(n_ + 3);
    std::vector<std::uint8_t> cbuf(n_ + 7);
    std::vector<std::uint16_t> hbuf(n_ + 3);
    for (std::size_t off = 1; off <= 7; off++) {
        SCOPED_TRACE("codes moved by " + std::to_string(off) + " bytes, query by " +
                     std::to_string(off % 4) + " floats");
        float* q = qbuf.data() + off % 4;
        std::copy(q_.begin(), q_.end(), q);
        std::copy(c_.begin(), c_.end(), cbuf.begin() + static_cast<std::ptrdiff_t>(off));
        expect_same_bits(q, cbuf.data() + off);
        if (off % 2 == 0) {
            std::copy(h_.begin(), h_.end(), hbuf.begin() + static_cast<std::ptrdiff_t>(off / 2));
            expect_same_bits(q, hbuf.data() + off / 2);
        }
    }
}

TEST_P(QuantKernelsByIsa, RepeatableBitForBit) {
    for (int round = 0; round < 3; round++) {
        expect_same_bits(q_.data(), c_.data());
        expect_same_bits(q_.data(), h_.data());
    }
}

// Vectors that end where an unreadable page begins, or begin where one ends:
// a tail that reads past the end (or a loop that starts early) faults here
// even without a sanitizer. Masked loads must not touch masked-out lanes.
TEST_P(QuantKernelsByIsa, NeverReadsOutsideTheVectors) {
    for (auto guard : {Guard::After, Guard::Before}) {
        SCOPED_TRACE(guard == Guard::After ? "guard page after" : "guard page before");
        GuardedBuffer<float> q(n_, guard);
        GuardedBuffer<std::uint8_t> c(n_, guard);
        GuardedBuffer<std::uint16_t> h(n_, guard);
        ASSERT_TRUE(q.ok() && c.ok() && h.ok()) << "mmap failed";
        std::copy(q_.begin(), q_.end(), q.data());
        std::copy(c_.begin(), c_.end(), c.data());
        std::copy(h_.begin(), h_.end(), h.data());
        expect_same_bits(q.data(), c.data());
        expect_same_bits(q.data(), h.data());
    }
}

// Code x code: integer sums, so every table must give the 64-bit reference
// exactly, at any alignment, reading nothing outside the codes. Random codes,
// then the extremes (all 0 against all 255: the largest sums, which must not
// overflow a 32-bit lane at 16,000 elements).
std::uint64_t pair_reference(Op op, const std::uint8_t* a, const std::uint8_t* b, std::size_t n) {
    std::uint64_t s = 0;
    for (std::size_t i = 0; i < n; i++) {
        const std::int64_t x = a[i], y = b[i];
        s += static_cast<std::uint64_t>(op == Op::L2 ? (x - y) * (x - y) : op == Op::Dot ? x * y : (x > y ? x - y : y - x));
    }
    return s;
}

U8PairFn pair_kernel(const QuantKernels& k, Op op) {
    return op == Op::L2 ? k.l2_squared_u8u8 : op == Op::Dot ? k.dot_u8u8 : k.l1_u8u8;
}

TEST_P(QuantKernelsByIsa, CodePairsExact) {
    Rng rng(99u + static_cast<std::uint32_t>(n_));
    std::vector<std::uint8_t> b(n_), zeros(n_, 0), full(n_, 255);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng.bits());
    for (Op op : kOps) {
        SCOPED_TRACE(op_name(op));
        U8PairFn f = pair_kernel(*k_, op);
        EXPECT_EQ(f(c_.data(), b.data(), n_), pair_reference(op, c_.data(), b.data(), n_));
        EXPECT_EQ(f(zeros.data(), full.data(), n_), pair_reference(op, zeros.data(), full.data(), n_));
        EXPECT_EQ(f(full.data(), full.data(), n_), pair_reference(op, full.data(), full.data(), n_));
        EXPECT_EQ(f(full.data(), zeros.data(), n_), pair_reference(op, full.data(), zeros.data(), n_));
    }
    std::vector<std::uint8_t> abuf(n_ + 7), bbuf(n_ + 7);
    for (std::size_t off = 1; off <= 7; off++) {
        std::copy(c_.begin(), c_.end(), abuf.begin() + static_cast<std::ptrdiff_t>(off));
        std::copy(b.begin(), b.end(), bbuf.begin() + static_cast<std::ptrdiff_t>(7 - off));
        for (Op op : kOps)
            EXPECT_EQ(pair_kernel(*k_, op)(abuf.data() + off, bbuf.data() + 7 - off, n_),
                      pair_reference(op, c_.data(), b.data(), n_))
                << op_name(op) << " at offsets " << off << " and " << 7 - off;
    }
    for (auto guard : {Guard::After, Guard::Before}) {
        GuardedBuffer<std::uint8_t> ga(n_, guard), gb(n_, guard);
        ASSERT_TRUE(ga.ok() && gb.ok()) << "mmap failed";
        std::copy(c_.begin(), c_.end(), ga.data());
        std::copy(b.begin(), b.end(), gb.data());
        for (Op op : kOps)
            EXPECT_EQ(pair_kernel(*k_, op)(ga.data(), gb.data(), n_), pair_reference(op, c_.data(), b.data(), n_))
                << op_name(op) << (guard == Guard::After ? " guard after" : " guard before");
    }
}

INSTANTIATE_TEST_SUITE_P(AllIsasAndDims, QuantKernelsByIsa, testing::ValuesIn(all_cases()),
                         [](const testing::TestParamInfo<Case>& info) {
                             return std::string(isa_name(info.param.isa)) + "_d" +
                                    std::to_string(info.param.n);
                         });

// --- the half conversion inside the kernels -----------------------------------

// Every finite half, in every lane and every step of the loops: a one-hot
// query makes dot_f16 return one decoded code exactly (the other terms are
// zeros), which must be half_to_float's value. This holds F16C's vcvtph2ps,
// subnormals included, to the portable decoder.
TEST(QuantKernelsByIsaHalves, DotDecodesEveryFiniteHalfExactly) {
    constexpr std::size_t kWindow = 255;  // every step, and a tail, of both SIMD loops
    std::vector<std::uint16_t> all;
    for (std::uint32_t bits = 0; bits <= 0xffff; bits++) {
        auto h = static_cast<std::uint16_t>(bits);
        if (half_is_finite(h)) all.push_back(h);
    }
    all.resize((all.size() + kWindow - 1) / kWindow * kWindow, 0);
    for (Isa isa : kIsas) {
        const QuantKernels* k = quant_for_isa(isa);
        if (k == nullptr) continue;
        SCOPED_TRACE(isa_name(isa));
        std::vector<float> q(kWindow, 0.0f);
        for (std::size_t start = 0; start < all.size(); start += kWindow) {
            for (std::size_t j = 0; j < kWindow; j++) {
                std::uint16_t h = all[start + j];
                q[j] = 1.0f;
                float got = k->dot_f16(q.data(), all.data() + start, kWindow);
                q[j] = 0.0f;
                // == rather than bits: a -0 code sums to +0 with the zeros.
                ASSERT_EQ(got, half_to_float(h))
                    << std::hex << "h = 0x" << h << std::dec << ", lane " << j;
            }
        }
    }
}

}  // namespace
}  // namespace lrv::core::distance
