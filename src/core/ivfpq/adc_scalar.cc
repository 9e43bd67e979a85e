// Scalar ADC kernels, and the choice of kernels for this CPU.
//
// The choice follows distance::for_isa, so the ADC level is always one the
// float kernels were also allowed to use: one CPU check for the library.
#include "libravdb/core/distance.h"
#include "libravdb/core/ivfpq/pq.h"

namespace lrv::core::ivfpq {

// Four partial sums, so lookups do not wait on one chain of dependent adds.
// At m = 98 the table is 100 kB, beyond L1, and the loop is bound by L2
// loads. Gathers do not help: on Zen 4 the AVX2 and AVX-512 gathers are
// microcoded and measured slower than these scalar loads (and since the 2023
// "Downfall" microcode, Intel's are slow too), so every level scores 8-bit
// codes with this loop.
void adc8_scalar(const float* table, std::size_t m, const std::uint8_t* codes, std::size_t stride, std::size_t n,
                 float* out) noexcept {
    for (std::size_t i = 0; i < n; i++) {
        const std::uint8_t* c = codes + i * stride;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        std::size_t j = 0;
        for (; j + 4 <= m; j += 4) {
            s0 += table[j * 256 + c[j]];
            s1 += table[(j + 1) * 256 + c[j + 1]];
            s2 += table[(j + 2) * 256 + c[j + 2]];
            s3 += table[(j + 3) * 256 + c[j + 3]];
        }
        for (; j < m; j++) s0 += table[j * 256 + c[j]];
        out[i] = (s0 + s1) + (s2 + s3);
    }
}

void adc4_scalar(const float* table, std::size_t m, const std::uint8_t* codes, std::size_t stride, std::size_t n,
                 float* out) noexcept {
    const std::size_t pairs = m / 2;
    for (std::size_t i = 0; i < n; i++) {
        const std::uint8_t* c = codes + i * stride;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        std::size_t b = 0;
        for (; b + 2 <= pairs; b += 2) {
            s0 += table[(2 * b) * 16 + (c[b] & 0xF)];
            s1 += table[(2 * b + 1) * 16 + (c[b] >> 4)];
            s2 += table[(2 * b + 2) * 16 + (c[b + 1] & 0xF)];
            s3 += table[(2 * b + 3) * 16 + (c[b + 1] >> 4)];
        }
        for (; b < pairs; b++) {
            s0 += table[(2 * b) * 16 + (c[b] & 0xF)];
            s1 += table[(2 * b + 1) * 16 + (c[b] >> 4)];
        }
        if (m & 1) s2 += table[(m - 1) * 16 + (c[pairs] & 0xF)];  // the odd last sub-space, low nibble
        out[i] = (s0 + s1) + (s2 + s3);
    }
}

namespace {

bool complete(const AdcKernels& k) noexcept { return k.adc8 != nullptr && k.adc4 != nullptr; }

const AdcKernels* table_for(distance::Isa isa) noexcept {
    switch (isa) {
        case distance::Isa::Scalar:
            return &kScalarAdcKernels;
        case distance::Isa::Avx2:
            return &kAvx2AdcKernels;
        case distance::Isa::Avx512:
            return &kAvx512AdcKernels;
    }
    return nullptr;
}

const AdcKernels& choose() noexcept {
    // Start from the level the float kernels use; a level below it is a
    // fallback only for a build that left that ADC table empty.
    for (int isa = static_cast<int>(distance::best().isa); isa > 0; isa--)
        if (const AdcKernels* k = adc_for_isa(isa)) return *k;
    return kScalarAdcKernels;
}

}  // namespace

const AdcKernels kScalarAdcKernels = {adc8_scalar, adc4_scalar};

const AdcKernels* adc_for_isa(int isa) noexcept {
    if (isa < static_cast<int>(distance::Isa::Scalar) || isa > static_cast<int>(distance::Isa::Avx512)) return nullptr;
    const distance::Isa level = static_cast<distance::Isa>(isa);
    if (distance::for_isa(level) == nullptr) return nullptr;
    const AdcKernels* k = table_for(level);
    return k && complete(*k) ? k : nullptr;
}

const AdcKernels& best_adc() noexcept {
    static const AdcKernels& chosen = choose();
    return chosen;
}

}  // namespace lrv::core::ivfpq
