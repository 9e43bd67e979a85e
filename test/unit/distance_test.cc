// Every distance kernel at every instruction set the CPU has, held to a
// double-precision reference (DESIGN.md section 6: each SIMD level against the
// scalar one, over odd dimensions).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "libravdb/core/distance.h"
#include "libravdb/core/limits.h"

namespace lrv::core::distance {

// Readable parameters in test names and failure messages; found by ADL, so it
// lives beside Isa rather than in the anonymous namespace.
void PrintTo(Isa isa, std::ostream* os) { *os << isa_name(isa); }

namespace {

// std::mt19937's output is fixed by the standard, but the distributions are
// not; mapping bits to floats by hand keeps the data identical on any library.
class Rng {
  public:
    explicit Rng(std::uint32_t seed) : gen_(seed) {}
    // Uniform in [-1, 1), a multiple of 2^-23.
    float uniform() {
        return static_cast<float>(static_cast<std::int32_t>(gen_() >> 8) - (1 << 23)) * 0x1p-23f;
    }
    // Uniform integer in [-8, 8].
    float small_int() { return static_cast<float>(static_cast<int>(gen_() % 17) - 8); }

    std::vector<float> uniform_vector(std::size_t n) {
        std::vector<float> v(n);
        for (float& x : v) x = uniform();
        return v;
    }
    std::vector<float> int_vector(std::size_t n) {
        std::vector<float> v(n);
        for (float& x : v) x = small_int();
        return v;
    }

  private:
    std::mt19937 gen_;
};

// A double-precision sum together with the sum of the absolute values of its
// terms, which is what a float summation error bound is proportional to.
struct Ref {
    double value = 0;
    double magnitude = 0;
    void add(double term) {
        value += term;
        magnitude += term < 0 ? -term : term;
    }
};

inline Ref ref_l2(const float* a, const float* b, std::size_t n) {
    Ref r;
    for (std::size_t i = 0; i < n; i++) {
        double d = static_cast<double>(a[i]) - b[i];
        r.add(d * d);
    }
    return r;
}

inline Ref ref_ip(const float* a, const float* b, std::size_t n) {
    Ref r;
    for (std::size_t i = 0; i < n; i++) r.add(static_cast<double>(a[i]) * b[i]);
    return r;
}

inline Ref ref_l1(const float* a, const float* b, std::size_t n) {
    Ref r;
    for (std::size_t i = 0; i < n; i++) {
        double d = static_cast<double>(a[i]) - b[i];
        r.add(d < 0 ? -d : d);
    }
    return r;
}

// Worst-case error of any float32 evaluation of a sum of n rounded terms
// (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., §3.1 and
// §3.2): every term passes through at most n - 1 additions, whatever the order
// or the number of SIMD lanes and accumulators, plus up to 3 roundings of its
// own (a - b, the square, the final conversion), so
//     |fl(S) - S| <= gamma_{n+3} * sum |term|,  gamma_k = k u / (1 - k u),
// with u = FLT_EPSILON / 2. Using FLT_EPSILON for u doubles that, which more
// than covers the 1 / (1 - k u) factor for every n up to kMaxDims. The bound is
// loose for long vectors on purpose (it can never flake, whatever the compiler
// or ISA does); that an element is skipped or read twice is caught instead by
// the integer test, where every sum is exact.
inline double tolerance(const Ref& r, std::size_t n) {
    return static_cast<double>(n + 3) * 1.1920928955078125e-7 * r.magnitude;
}

// n floats that end exactly where an inaccessible page begins, so reading even
// one float past the end faults instead of passing unnoticed.
class GuardedFloats {
  public:
    explicit GuardedFloats(std::size_t n) : n_(n) {
        page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        std::size_t data = (n * sizeof(float) + page_ - 1) / page_ * page_;
        size_ = data + page_;
        void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return;
        base_ = static_cast<char*>(p);
        if (mprotect(base_ + data, page_, PROT_NONE) != 0) {
            munmap(base_, size_);
            base_ = nullptr;
            return;
        }
        data_ = reinterpret_cast<float*>(base_ + data) - n;
    }
    ~GuardedFloats() {
        if (base_) munmap(base_, size_);
    }
    GuardedFloats(const GuardedFloats&) = delete;
    GuardedFloats& operator=(const GuardedFloats&) = delete;

    bool ok() const { return data_ != nullptr; }
    float* data() { return data_; }
    std::size_t size() const { return n_; }

  private:
    std::size_t n_;
    std::size_t page_ = 0;
    std::size_t size_ = 0;
    char* base_ = nullptr;
    float* data_ = nullptr;
};

// Around every vector and lane width (8 for AVX2, 16 for AVX-512, the 32- and
// 64-float unrolled steps): below, at and above each boundary, the Fashion-MNIST
// and OpenAI-embedding sizes, and the largest lvector.
constexpr std::size_t kDims[] = {1,  3,  7,  8,  9,   15,  16,   17,
                                 31, 32, 33, 64, 127, 784, 1536, kMaxDims};
static_assert(kMaxDims == 16000, "the dimension list names 16000 on purpose");

constexpr Isa kIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512};

// The kernels of one ISA, or a skip when this CPU cannot run them.
#define LRV_KERNELS_OR_SKIP(var, isa)  \
    const Kernels* var = for_isa(isa); \
    if (var == nullptr) GTEST_SKIP() << "this CPU lacks " << isa_name(isa)

std::string isa_param_name(const testing::TestParamInfo<Isa>& info) { return isa_name(info.param); }

// --- random data against the double reference ------------------------------

class KernelTest : public testing::TestWithParam<std::tuple<Isa, std::size_t>> {
  protected:
    void SetUp() override {
        auto [isa, n] = GetParam();
        k_ = for_isa(isa);
        if (k_ == nullptr) GTEST_SKIP() << "this CPU lacks " << isa_name(isa);
        n_ = n;
        Rng rng(20240611u + static_cast<std::uint32_t>(n));
        a_ = rng.uniform_vector(n);
        b_ = rng.uniform_vector(n);
    }
    const float* a() const { return a_.data(); }
    const float* b() const { return b_.data(); }

    // Every kernel of this ISA on (x, y), each within its error bound.
    void expect_matches_reference(const float* x, const float* y) const {
        Ref r = ref_l2(x, y, n_);
        EXPECT_NEAR(k_->l2_squared(x, y, n_), r.value, tolerance(r, n_));
        r = ref_ip(x, y, n_);
        EXPECT_NEAR(k_->inner_product(x, y, n_), r.value, tolerance(r, n_));
        r = ref_l1(x, y, n_);
        EXPECT_NEAR(k_->l1(x, y, n_), r.value, tolerance(r, n_));
        float dot = -1, na = -1, nb = -1;
        k_->cosine_parts(x, y, n_, &dot, &na, &nb);
        Ref rd = ref_ip(x, y, n_), ra = ref_ip(x, x, n_), rb = ref_ip(y, y, n_);
        EXPECT_NEAR(dot, rd.value, tolerance(rd, n_)) << "cosine_parts: dot";
        EXPECT_NEAR(na, ra.value, tolerance(ra, n_)) << "cosine_parts: |a|^2";
        EXPECT_NEAR(nb, rb.value, tolerance(rb, n_)) << "cosine_parts: |b|^2";
    }

    const Kernels* k_ = nullptr;
    std::size_t n_ = 0;
    std::vector<float> a_, b_;
};

TEST_P(KernelTest, MatchesDoubleReference) { expect_matches_reference(a(), b()); }

// Small integers make every partial sum an integer below 2^24 (at most
// 16 * 16 * 16000 for l2), so any order of float additions is exact and each
// ISA must agree with the reference to the last bit. A lane that is skipped,
// read twice or read from the wrong offset cannot hide inside a tolerance here.
TEST_P(KernelTest, ExactOnSmallIntegers) {
    Rng rng(7u + static_cast<std::uint32_t>(n_));
    std::vector<float> x = rng.int_vector(n_), y = rng.int_vector(n_);
    EXPECT_EQ(k_->l2_squared(x.data(), y.data(), n_), ref_l2(x.data(), y.data(), n_).value);
    EXPECT_EQ(k_->inner_product(x.data(), y.data(), n_), ref_ip(x.data(), y.data(), n_).value);
    EXPECT_EQ(k_->l1(x.data(), y.data(), n_), ref_l1(x.data(), y.data(), n_).value);
    float dot, na, nb;
    k_->cosine_parts(x.data(), y.data(), n_, &dot, &na, &nb);
    EXPECT_EQ(dot, ref_ip(x.data(), y.data(), n_).value);
    EXPECT_EQ(na, ref_ip(x.data(), x.data(), n_).value);
    EXPECT_EQ(nb, ref_ip(y.data(), y.data(), n_).value);
}

// Vectors that end where an unreadable page begins: a tail that reads past the
// end faults here even without a sanitizer (masked loads must not touch the
// masked-out lanes).
TEST_P(KernelTest, NeverReadsPastTheEnd) {
    GuardedFloats ga(n_), gb(n_);
    ASSERT_TRUE(ga.ok() && gb.ok()) << "mmap failed";
    std::copy(a_.begin(), a_.end(), ga.data());
    std::copy(b_.begin(), b_.end(), gb.data());
    expect_matches_reference(ga.data(), gb.data());
}

// Heap vectors start 16- or 64-byte aligned; kernels must not rely on it
// (lvector data sits 8 bytes into a varlena, and index tuples pack vectors).
TEST_P(KernelTest, UnalignedPointers) {
    for (std::size_t off_a : {1, 3}) {
        SCOPED_TRACE("offset of a: " + std::to_string(off_a) + " floats, b: 1 float");
        std::vector<float> bufa(n_ + off_a), bufb(n_ + 1);
        std::copy(a_.begin(), a_.end(), bufa.begin() + off_a);
        std::copy(b_.begin(), b_.end(), bufb.begin() + 1);
        expect_matches_reference(bufa.data() + off_a, bufb.data() + 1);
    }
}

// A distance must be a function of the values alone: the same pair has to
// give the same bits whether it comes from a heap tuple, an index page or a
// palloc'd query, and in either operand order, or an index scan and a
// sequential scan could order ties differently. This rules out, for example,
// peeling elements until one pointer is aligned, which would change the
// summation order with the address.
TEST_P(KernelTest, BitwiseIndependentOfAddressAndOperandOrder) {
    std::vector<float> bufa(n_ + 5), bufb(n_ + 5);
    std::copy(a_.begin(), a_.end(), bufa.begin() + 3);
    std::copy(b_.begin(), b_.end(), bufb.begin() + 5);
    const float* x = bufa.data() + 3;
    const float* y = bufb.data() + 5;
    EXPECT_EQ(k_->l2_squared(x, y, n_), k_->l2_squared(a(), b(), n_));
    EXPECT_EQ(k_->l2_squared(b(), a(), n_), k_->l2_squared(a(), b(), n_));
    EXPECT_EQ(k_->inner_product(x, y, n_), k_->inner_product(a(), b(), n_));
    EXPECT_EQ(k_->inner_product(b(), a(), n_), k_->inner_product(a(), b(), n_));
    EXPECT_EQ(k_->l1(x, y, n_), k_->l1(a(), b(), n_));
    EXPECT_EQ(k_->l1(b(), a(), n_), k_->l1(a(), b(), n_));
    float d0, na0, nb0, d1, na1, nb1;
    k_->cosine_parts(a(), b(), n_, &d0, &na0, &nb0);
    k_->cosine_parts(y, x, n_, &d1, &na1, &nb1);
    EXPECT_EQ(d0, d1);
    EXPECT_EQ(na0, nb1);
    EXPECT_EQ(nb0, na1);
}

INSTANTIATE_TEST_SUITE_P(AllIsasAndDims, KernelTest,
                         testing::Combine(testing::ValuesIn(kIsas), testing::ValuesIn(kDims)),
                         [](const testing::TestParamInfo<KernelTest::ParamType>& info) {
                             return std::string(isa_name(std::get<0>(info.param))) + "_d" +
                                    std::to_string(std::get<1>(info.param));
                         });

// --- special vectors --------------------------------------------------------

class SpecialVectorTest : public testing::TestWithParam<Isa> {};

TEST_P(SpecialVectorTest, ZeroVectorsGiveZeroSumsAndNanCosine) {
    LRV_KERNELS_OR_SKIP(k, GetParam());
    for (std::size_t n : kDims) {
        SCOPED_TRACE("n = " + std::to_string(n));
        std::vector<float> zero(n, 0.0f), other = Rng(3).uniform_vector(n);
        EXPECT_EQ(k->l2_squared(zero.data(), zero.data(), n), 0.0f);
        EXPECT_EQ(k->inner_product(zero.data(), other.data(), n), 0.0f);
        EXPECT_EQ(k->l1(zero.data(), zero.data(), n), 0.0f);
        float dot, na, nb;
        k->cosine_parts(zero.data(), zero.data(), n, &dot, &na, &nb);
        EXPECT_EQ(dot, 0.0f);
        EXPECT_EQ(na, 0.0f);
        EXPECT_EQ(nb, 0.0f);
        EXPECT_TRUE(std::isnan(cosine_distance_from_parts(dot, na, nb)));
        // One zero operand is enough: the angle is undefined.
        k->cosine_parts(other.data(), zero.data(), n, &dot, &na, &nb);
        EXPECT_TRUE(std::isnan(cosine_distance_from_parts(dot, na, nb)));
    }
}

TEST_P(SpecialVectorTest, IdenticalVectorsAreAtDistanceZero) {
    LRV_KERNELS_OR_SKIP(k, GetParam());
    for (std::size_t n : kDims) {
        SCOPED_TRACE("n = " + std::to_string(n));
        std::vector<float> a = Rng(11).uniform_vector(n), b = a;  // equal, not aliased
        // a - a is exactly zero, so these are exact whatever the order.
        EXPECT_EQ(k->l2_squared(a.data(), b.data(), n), 0.0f);
        EXPECT_EQ(k->l1(a.data(), b.data(), n), 0.0f);
        float dot, na, nb;
        k->cosine_parts(a.data(), b.data(), n, &dot, &na, &nb);
        float d = cosine_distance_from_parts(dot, na, nb);
        // Our kernels compute dot and both norms through the same operations
        // here, so sim is exactly 1; a kernel that grouped the three sums
        // differently could be a few ulp off, and the clamp keeps that >= 0.
        EXPECT_GE(d, 0.0f);
        EXPECT_LE(d, 1e-6f);
    }
}

TEST_P(SpecialVectorTest, OppositeVectorsAreAtCosineTwo) {
    LRV_KERNELS_OR_SKIP(k, GetParam());
    for (std::size_t n : kDims) {
        SCOPED_TRACE("n = " + std::to_string(n));
        std::vector<float> a = Rng(13).uniform_vector(n), b(n);
        for (std::size_t i = 0; i < n; i++) b[i] = -a[i];
        float dot, na, nb;
        k->cosine_parts(a.data(), b.data(), n, &dot, &na, &nb);
        // Negation is exact, so dot == -na and nb == na bit for bit.
        EXPECT_EQ(dot, -na);
        EXPECT_EQ(nb, na);
        EXPECT_EQ(cosine_distance_from_parts(dot, na, nb), 2.0f);
        Ref r = ref_ip(a.data(), a.data(), n);
        EXPECT_NEAR(k->l2_squared(a.data(), b.data(), n), 4 * r.value, 4 * tolerance(r, n));
    }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, SpecialVectorTest, testing::ValuesIn(kIsas), isa_param_name);

// --- the public wrappers ----------------------------------------------------

TEST(CosineDistance, ClampsToZeroTwo) {
    // Rounding can leave |dot| a little above sqrt(na * nb); the result must
    // still be a distance an index can order by.
    EXPECT_EQ(cosine_distance_from_parts(1.0001f, 1.0f, 1.0f), 0.0f);
    EXPECT_EQ(cosine_distance_from_parts(-1.0001f, 1.0f, 1.0f), 2.0f);
    EXPECT_FLOAT_EQ(cosine_distance_from_parts(0.0f, 1.0f, 4.0f), 1.0f);
    EXPECT_FLOAT_EQ(cosine_distance_from_parts(1.0f, 1.0f, 4.0f), 0.5f);

    Rng rng(17);
    for (std::size_t n : kDims) {
        std::vector<float> a = rng.uniform_vector(n), b = rng.uniform_vector(n);
        float d = cosine_distance(a.data(), b.data(), n);
        EXPECT_GE(d, 0.0f) << "n = " << n;
        EXPECT_LE(d, 2.0f) << "n = " << n;
        EXPECT_GE(cosine_distance(a.data(), a.data(), n), 0.0f) << "n = " << n;
    }
}

TEST(CosineDistance, ZeroVectorIsNan) {
    std::vector<float> zero(9, 0.0f), one(9, 1.0f);
    EXPECT_TRUE(std::isnan(cosine_distance(zero.data(), one.data(), 9)));
    EXPECT_TRUE(std::isnan(cosine_distance(zero.data(), zero.data(), 9)));
}

// The inline entry points the glue calls go through best().
TEST(Wrappers, UseTheBestKernels) {
    const Kernels& k = best();
    Rng rng(19);
    for (std::size_t n : kDims) {
        std::vector<float> a = rng.uniform_vector(n), b = rng.uniform_vector(n);
        EXPECT_EQ(l2_squared(a.data(), b.data(), n), k.l2_squared(a.data(), b.data(), n));
        EXPECT_EQ(inner_product(a.data(), b.data(), n), k.inner_product(a.data(), b.data(), n));
        EXPECT_EQ(l1(a.data(), b.data(), n), k.l1(a.data(), b.data(), n));
        float dot, na, nb;
        k.cosine_parts(a.data(), b.data(), n, &dot, &na, &nb);
        EXPECT_EQ(cosine_distance(a.data(), b.data(), n), cosine_distance_from_parts(dot, na, nb));
    }
}

}  // namespace
}  // namespace lrv::core::distance
