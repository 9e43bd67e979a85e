// The product quantizer of livfpq, and asymmetric distance computation (ADC).
//
// A d-dimensional vector is cut into m sub-vectors of d/m dimensions; each is
// replaced by the index of the nearest of ksub = 2^bits sub-centroids, so a
// code takes m bytes (bits = 8) or m/2 bytes (bits = 4, two codes a byte, the
// even sub-space in the low nibble). livfpq encodes residuals x - c of the
// coarse centroid c, which makes the sub-spaces' error much smaller.
//
// A query is not encoded: per query (and, for L2, per probed list) a table of
// m * ksub floats holds each sub-centroid's contribution, and a code's score
// is the sum of m table entries. The sum over one code is what adc() and the
// per-ISA kernels compute.
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "libravdb/core/common/aligned.h"
#include "libravdb/core/ivfpq/kmeans.h"

namespace lrv::core::ivfpq {

class ProductQuantizer {
  public:
    // Throws InvalidParameter unless m divides dims and bits is 4 or 8.
    ProductQuantizer(std::size_t dims, std::size_t m, int bits);

    std::size_t dims() const noexcept { return dims_; }
    std::size_t m() const noexcept { return m_; }
    std::size_t dsub() const noexcept { return dsub_; }
    std::size_t ksub() const noexcept { return ksub_; }
    int bits() const noexcept { return bits_; }
    std::size_t code_bytes() const noexcept { return bits_ == 8 ? m_ : (m_ + 1) / 2; }

    // Trains the m codebooks on n row-major vectors (k-means per sub-space,
    // sub-spaces spread over opts.threads).
    void train(const float* x, std::size_t n, const KMeansOptions& opts);

    // The codebooks: m blocks of ksub * dsub floats (sub-space j, centroid k
    // at (j * ksub + k) * dsub). What the index pages store.
    const float* codebook() const noexcept { return codebook_.data(); }
    std::size_t codebook_floats() const noexcept { return m_ * ksub_ * dsub_; }
    // Loads codebooks read back from pages (codebook_floats() floats).
    void set_codebook(const float* c);

    // Encodes n row-major vectors into n * code_bytes() bytes.
    void encode(const float* x, std::size_t n, std::uint8_t* codes) const;
    void decode(const std::uint8_t* code, float* out) const noexcept;

    // ADC tables, m * ksub floats each.
    // L2: table[j][k] = |r_j - C_jk|^2 for r = q - c (the query relative to
    // the probed list's centroid), so the score is |q - c - decode(code)|^2.
    void l2_table(const float* r, float* table) const noexcept;
    // Inner product: table[j][k] = q_j . C_jk, so the score plus q.c is
    // q . (c + decode(code)).
    void ip_table(const float* q, float* table) const noexcept;

  private:
    void prepare() noexcept;  // derives codebook_t_ and sq_norms_ from codebook_

    std::size_t dims_, m_, dsub_, ksub_;
    int bits_;
    AlignedVector<float> codebook_;
    // The codebook again, per sub-space transposed to dsub rows of ksub, so
    // that encode and the tables loop over contiguous centroids.
    AlignedVector<float> codebook_t_;
    std::vector<float> sq_norms_;  // |C_jk|^2, for encode
};

// Sum over sub-spaces of table[j * ksub + code_j] for one code: the scalar
// reference the kernels are held to.
float adc_reference(const float* table, const std::uint8_t* code, std::size_t m, int bits) noexcept;

// Scores n codes laid `stride` bytes apart: out[i] = adc(codes + i * stride).
// best_adc() picks the level the float kernels use (distance::best()). 4-bit
// codes have SIMD kernels that keep table rows in registers (vpermps, 16 or
// 8 codes at once); 8-bit codes use the scalar loop at every level, because
// on the CPUs we measure gathers lose to scalar loads (adc_scalar.cc).
using AdcFn = void (*)(const float* table, std::size_t m, const std::uint8_t* codes, std::size_t stride,
                       std::size_t n, float* out) noexcept;
struct AdcKernels {
    AdcFn adc8;  // bits = 8
    AdcFn adc4;  // bits = 4
};
const AdcKernels& best_adc() noexcept;
// One ISA's kernels, or nullptr when the CPU lacks it (tests).
const AdcKernels* adc_for_isa(int isa) noexcept;  // distance::Isa values

// Per-ISA tables, defined in adc_scalar.cc, adc_avx2.cc and adc_avx512.cc.
// The AVX ones are only safe to call once adc_for_isa() has handed them out.
extern const AdcKernels kScalarAdcKernels;
extern const AdcKernels kAvx2AdcKernels;
extern const AdcKernels kAvx512AdcKernels;
// The scalar kernels (adc_scalar.cc), which the AVX levels reuse: for 8-bit
// codes outright (see adc_scalar.cc), for the last few 4-bit codes of a run.
void adc8_scalar(const float* table, std::size_t m, const std::uint8_t* codes, std::size_t stride, std::size_t n,
                 float* out) noexcept;
void adc4_scalar(const float* table, std::size_t m, const std::uint8_t* codes, std::size_t stride, std::size_t n,
                 float* out) noexcept;

}  // namespace lrv::core::ivfpq
