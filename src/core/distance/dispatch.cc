// Run-time choice of kernels. The choice is made once, on first use, from
// CPUID (via the compiler's cpu-model support), never from compile flags.
#include <cmath>
#include <limits>

#include "libravdb/core/distance.h"

namespace lrv::core::distance {
namespace {

// libgcc's answer already accounts for the OS: it reports AVX2 and AVX-512F
// only when XCR0 says the kernel saves the YMM / ZMM state, so a hypervisor
// that hides that state makes us fall back instead of faulting.
//
// Each level is what its source files are compiled for (the -m flags in the
// Makefile): the AVX2 level is AVX2 + FMA + F16C, because the quantized
// kernels convert halves with F16C; AVX-512 adds AVX-512F. Every CPU with
// AVX2 so far has F16C too, so in practice this only matters under a
// hypervisor that masks the flag.
bool cpu_has(Isa isa) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                __builtin_cpu_supports("f16c");
    switch (isa) {
        case Isa::Scalar:
            return true;
        case Isa::Avx2:
            return avx2;
        case Isa::Avx512:
            return avx2 && __builtin_cpu_supports("avx512f");
    }
    return false;
#else
    return isa == Isa::Scalar;
#endif
}

const Kernels* table(Isa isa) noexcept {
    switch (isa) {
        case Isa::Scalar:
            return &kScalarKernels;
        case Isa::Avx2:
            return &kAvx2Kernels;
        case Isa::Avx512:
            return &kAvx512Kernels;
    }
    return nullptr;
}

// A build for another architecture leaves the AVX tables empty; treating an
// incomplete table as absent keeps a null kernel from ever being called.
bool complete(const Kernels& k) noexcept {
    return k.l2_squared && k.inner_product && k.l1 && k.cosine_parts;
}

const Kernels& choose() noexcept {
    static constexpr Isa kBestFirst[] = {Isa::Avx512, Isa::Avx2};
    for (Isa isa : kBestFirst)
        if (const Kernels* k = for_isa(isa)) return *k;
    return kScalarKernels;
}

}  // namespace

const Kernels& best() noexcept {
    static const Kernels& chosen = choose();
    return chosen;
}

const Kernels* for_isa(Isa isa) noexcept {
    if (!cpu_has(isa)) return nullptr;
    const Kernels* k = table(isa);
    return k && complete(*k) ? k : nullptr;
}

const char* isa_name(Isa isa) noexcept {
    switch (isa) {
        case Isa::Scalar:
            return "scalar";
        case Isa::Avx2:
            return "avx2";
        case Isa::Avx512:
            return "avx512";
    }
    return "unknown";
}

float cosine_distance_from_parts(float dot, float norm_a, float norm_b) noexcept {
    // In double: the product of two float norms neither overflows nor loses
    // digits there, and the rounding of the float sums can still push |sim| a
    // hair past 1, which the clamp absorbs.
    double denom = std::sqrt(static_cast<double>(norm_a) * static_cast<double>(norm_b));
    if (denom == 0.0) return std::numeric_limits<float>::quiet_NaN();
    double sim = static_cast<double>(dot) / denom;
    if (sim > 1.0) sim = 1.0;
    if (sim < -1.0) sim = -1.0;
    return static_cast<float>(1.0 - sim);
}

float cosine_distance(const float* a, const float* b, std::size_t n) noexcept {
    float dot, na, nb;
    best().cosine_parts(a, b, n, &dot, &na, &nb);
    return cosine_distance_from_parts(dot, na, nb);
}

const char* metric_name(Metric m) noexcept {
    switch (m) {
        case Metric::L2:
            return "l2";
        case Metric::InnerProduct:
            return "ip";
        case Metric::Cosine:
            return "cosine";
        case Metric::L1:
            return "l1";
    }
    return "unknown";
}

}  // namespace lrv::core::distance
