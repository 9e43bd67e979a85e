// Run-time dispatch: best() must pick the highest instruction set this CPU
// (and its OS) can run, judged here by reading CPUID ourselves rather than by
// asking the same libgcc helper dispatch.cc uses.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "libravdb/core/distance.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace lrv::core::distance {
namespace {

struct CpuFeatures {
    bool avx2_fma = false;
    bool avx512f = false;
};

CpuFeatures probe() {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
    bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28);
    bool f16c = ecx & (1u << 29);  // the AVX2 level includes it (fp16 kernels)
    if (!osxsave || !avx) return f;
    // The instructions are usable only if the OS saves their registers on a
    // context switch: XCR0 bits 1-2 (XMM, YMM) and 5-7 (opmask, ZMM halves).
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    bool ymm_saved = (xcr0_lo & 0x6u) == 0x6u;
    bool zmm_saved = (xcr0_lo & 0xe6u) == 0xe6u;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
    bool avx2 = ebx & (1u << 5), avx512f = ebx & (1u << 16);
    f.avx2_fma = ymm_saved && avx2 && fma && f16c;
    f.avx512f = zmm_saved && avx512f && f.avx2_fma;
#endif
    return f;
}

Isa highest(const CpuFeatures& f) {
    if (f.avx512f) return Isa::Avx512;
    if (f.avx2_fma) return Isa::Avx2;
    return Isa::Scalar;
}

TEST(Dispatch, BestIsTheHighestIsaTheCpuHas) {
    Isa expected = highest(probe());
    EXPECT_EQ(best().isa, expected)
        << "best() chose " << best().name << ", CPUID says " << isa_name(expected);
    std::printf("[ INFO     ] kernels in use: %s\n", best().name);
}

TEST(Dispatch, ForIsaMatchesCpuid) {
    CpuFeatures f = probe();
    EXPECT_NE(for_isa(Isa::Scalar), nullptr);
    EXPECT_EQ(for_isa(Isa::Avx2) != nullptr, f.avx2_fma);
    EXPECT_EQ(for_isa(Isa::Avx512) != nullptr, f.avx512f);
}

TEST(Dispatch, TablesAreCompleteAndNamed) {
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
        const Kernels* k = for_isa(isa);
        if (k == nullptr) continue;
        EXPECT_EQ(k->isa, isa);
        EXPECT_STREQ(k->name, isa_name(isa));
        EXPECT_NE(k->l2_squared, nullptr) << k->name;
        EXPECT_NE(k->inner_product, nullptr) << k->name;
        EXPECT_NE(k->l1, nullptr) << k->name;
        EXPECT_NE(k->cosine_parts, nullptr) << k->name;
    }
}

TEST(Dispatch, Names) {
    EXPECT_STREQ(isa_name(Isa::Scalar), "scalar");
    EXPECT_STREQ(isa_name(Isa::Avx2), "avx2");
    EXPECT_STREQ(isa_name(Isa::Avx512), "avx512");
    EXPECT_STREQ(metric_name(Metric::L2), "l2");
    EXPECT_STREQ(metric_name(Metric::InnerProduct), "ip");
    EXPECT_STREQ(metric_name(Metric::Cosine), "cosine");
    EXPECT_STREQ(metric_name(Metric::L1), "l1");
}

}  // namespace
}  // namespace lrv::core::distance
