// Forced into src/core/distance/dispatch.cc by test/fuzz/CMakeLists.txt, and
// only when the compiler lacks __builtin_cpu_supports("f16c") (clang before
// 16; GCC, which builds the module, has it). Answers "f16c" from CPUID leaf 1
// and leaves every other feature to the compiler's builtin, so dispatch picks
// the same level it picks in the module.
#pragma once
#include <cpuid.h>
#include <cstring>

static inline bool lrv_fuzz_cpu_supports(const char* feature) {
    if (std::strcmp(feature, "f16c") == 0) {
        unsigned a, b, c, d;
        return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
    }
    if (std::strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2");
    if (std::strcmp(feature, "fma") == 0) return __builtin_cpu_supports("fma");
    if (std::strcmp(feature, "avx512f") == 0) return __builtin_cpu_supports("avx512f");
    return false;  // a feature dispatch.cc starts asking for must be added here
}
#define __builtin_cpu_supports(feature) lrv_fuzz_cpu_supports(feature)
