// Vector quantizers shared by the access methods, and the per-query object
// that turns a stored code into an ORDER BY value or a lower bound on it.
//
// Exactness comes from bounds, not from a guessed candidate margin: with each
// code we store the norm of its quantization error r = |x - decode(x)| (L1 norm
// for the L1 metric, L2 norm otherwise). The triangle inequality then gives a
// lower bound of the true distance from the distance to the decoded vector:
//   L2:     |q - x| >= |q - x^| - r
//   IP:    -q.x     >= -q.x^ - |q| r
//   cosine: 1 - q.x/(|q||x|) >= 1 - (q.x^ + |q| r)/(|q||x|)   (|x| is stored)
//   L1:     |q - x|_1 >= |q - x^|_1 - r_1
// Scans hand out entries in order of that bound and ask Postgres to recheck
// the exact distance on the heap row, which yields exact results in exact
// order (see src/pg/am_scan.cc).
#pragma once
#include "libravdb/core/fence.h"

#include <cstddef>
#include <cstdint>
#include <vector>

#include "libravdb/core/common/aligned.h"
#include "libravdb/core/distance.h"
#include "libravdb/core/quant_kernels.h"

namespace lrv::core {

enum class QuantizerKind : std::uint8_t { None = 0, Fp16 = 1, Sq8 = 2 };

const char* quantizer_name(QuantizerKind q) noexcept;

struct QuantizerParams {
    QuantizerKind kind = QuantizerKind::None;
    float lo = 0;    // sq8: value of code 0
    float step = 1;  // sq8: value difference between consecutive codes
};

// Bytes one code of `dims` elements takes.
std::size_t code_bytes(QuantizerKind kind, std::size_t dims) noexcept;

// sq8 range from sample vectors (n * dims floats): one scale for all
// dimensions, so that distances stay a single integer-friendly sum.
QuantizerParams train_sq8(const float* sample, std::size_t n, std::size_t dims) noexcept;
// The same from a range already measured (builds stream over the heap).
QuantizerParams sq8_from_range(float lo, float hi) noexcept;

// Encodes x into `code` (code_bytes bytes). Returns the residual norm r used
// for bounds (0 for None).
float encode(const QuantizerParams& p, distance::Metric metric, const float* x, std::size_t dims,
             std::uint8_t* code) noexcept;

// Euclidean norm of x, summed in double.
float vector_norm(const float* x, std::size_t dims) noexcept;

class QueryCoder {
  public:
    QueryCoder(const QuantizerParams& p, distance::Metric metric, const float* q, std::size_t dims);

    // For None: the exact ORDER BY value, bit for bit what the SQL operator
    // returns (same kernels, same double conversion). For a quantizer: the value for the decoded vector.
    double value(const std::uint8_t* code, float norm) const noexcept;

    // A value no greater than the exact ORDER BY value of the encoded vector.
    // For None it is the value itself. NaN when the value is undefined (cosine
    // with a zero vector); NaN sorts after every number.
    double lower_bound(const std::uint8_t* code, float residual, float norm) const noexcept;

    bool exact() const noexcept { return p_.kind == QuantizerKind::None; }

    // Entries whose code crosses a page boundary arrive in pieces: sums over
    // code elements [first, first + count), added up, then turned into a
    // lower bound. Never exact (summation order differs from the operator's).
    struct Sums {
        float a = 0, b = 0, c = 0;
    };
    Sums sums(const std::uint8_t* code, std::size_t first, std::size_t count) const noexcept;
    static Sums add(const Sums& x, const Sums& y) noexcept;
    double lower_bound_split(const Sums& s, float residual, float norm) const noexcept;
    // The value for summed pieces (approximate: not bit for bit value()).
    double value_split(const Sums& s, float norm) const noexcept { return value_from(s, norm); }
    std::size_t dims() const noexcept { return dims_; }
    QuantizerKind kind() const noexcept { return p_.kind; }

  private:
    double value_from(const Sums& s, float norm) const noexcept;
    double bound(double v, float residual, float norm) const noexcept;

    QuantizerParams p_;
    distance::Metric metric_;
    std::size_t dims_;
    // Kernel tables fetched once: the operators use the same ones, so values
    // for QuantizerKind::None match them bit for bit.
    const distance::Kernels* kernels_;
    const distance::QuantKernels* quant_kernels_;
    AlignedVector<float> q_;       // the query
    AlignedVector<float> scaled_;  // sq8: (q - lo) / step
    double q_norm_ = 0;  // in double: a subnormal float would round it by a large fraction
    float q_sum_ = 0;
    // Rounding error of value() not proportional to the value itself (set
    // per query in the constructor; see lower_bound).
    double slack_ = 0;
};

}  // namespace lrv::core
