#include "libravdb/core/quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "libravdb/core/quant_kernels.h"

namespace lrv::core {

using distance::Metric;

namespace {

// Relative rounding error allowed for the float kernels, on the code's side
// and on the exact value's side together.
constexpr double kRel = 1e-4;
// Relative error of double arithmetic (2^-52 with room to spare).
constexpr double kDoubleRel = 1e-15;
// Norms beyond which the float sums behind an exact IP or cosine value may
// overflow (|q|^2, |x|^2 and |q.x| must stay below FLT_MAX, about 3.4e38).
constexpr double kHugeNorm = 1e19;
// Squared norms below dims * this leave the float sums behind an exact cosine
// value in the subnormal range, where their error is no longer relative.
constexpr double kTinySquare = 1e-39;

}  // namespace

const char* quantizer_name(QuantizerKind q) noexcept {
    switch (q) {
        case QuantizerKind::None:
            return "none";
        case QuantizerKind::Fp16:
            return "fp16";
        case QuantizerKind::Sq8:
            return "sq8";
    }
    return "unknown";
}

std::size_t code_bytes(QuantizerKind kind, std::size_t dims) noexcept {
    switch (kind) {
        case QuantizerKind::None:
            return dims * sizeof(float);
        case QuantizerKind::Fp16:
            return dims * sizeof(std::uint16_t);
        case QuantizerKind::Sq8:
            return dims;
    }
    return dims * sizeof(float);
}

QuantizerParams train_sq8(const float* sample, std::size_t n, std::size_t dims) noexcept {
    if (n == 0) {
        QuantizerParams p;
        p.kind = QuantizerKind::Sq8;
        return p;
    }
    float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
    for (std::size_t i = 0; i < n * dims; i++) {
        lo = std::min(lo, sample[i]);
        hi = std::max(hi, sample[i]);
    }
    return sq8_from_range(lo, hi);
}

QuantizerParams sq8_from_range(float lo, float hi) noexcept {
    QuantizerParams p;
    p.kind = QuantizerKind::Sq8;
    if (!(hi >= lo)) return p;  // no values seen
    p.lo = lo;
    // In double, and at least the smallest float: in float, hi - lo overflows
    // for samples spanning more than FLT_MAX, and a range below 255 subnormals
    // gives step 0, which validate_meta rejects and encode divides by.
    p.step = hi > lo ? std::max(static_cast<float>((static_cast<double>(hi) - lo) / 255.0),
                                std::numeric_limits<float>::denorm_min())
                     : 1.0f;
    return p;
}

float vector_norm(const float* x, std::size_t dims) noexcept {
    double s = 0;
    for (std::size_t i = 0; i < dims; i++) s += static_cast<double>(x[i]) * x[i];
    return static_cast<float>(std::sqrt(s));
}

float encode(const QuantizerParams& p, Metric metric, const float* x, std::size_t dims,
             std::uint8_t* code) noexcept {
    double r2 = 0, r1 = 0;
    switch (p.kind) {
        case QuantizerKind::None:
            std::memcpy(code, x, dims * sizeof(float));
            return 0;
        case QuantizerKind::Fp16:
            for (std::size_t i = 0; i < dims; i++) {
                std::uint16_t h = distance::float_to_half(x[i]);
                std::memcpy(code + 2 * i, &h, sizeof h);
                double e = static_cast<double>(x[i]) - distance::half_to_float(h);
                r2 += e * e;
                r1 += std::fabs(e);
            }
            break;
        case QuantizerKind::Sq8:
            for (std::size_t i = 0; i < dims; i++) {
                double t = (static_cast<double>(x[i]) - p.lo) / p.step;
                double c = std::min(255.0, std::max(0.0, std::nearbyint(t)));
                code[i] = static_cast<std::uint8_t>(c);
                double e = static_cast<double>(x[i]) - (p.lo + static_cast<double>(p.step) * c);
                r2 += e * e;
                r1 += std::fabs(e);
            }
            break;
    }
    // Round the bound up so float rounding can only loosen it.
    double r = metric == Metric::L1 ? r1 : std::sqrt(r2);
    return r == 0 ? 0.0f : static_cast<float>(r * (1 + 1e-6)) + std::numeric_limits<float>::denorm_min();
}

QueryCoder::QueryCoder(const QuantizerParams& p, Metric metric, const float* q, std::size_t dims)
    : p_(p),
      metric_(metric),
      dims_(dims),
      kernels_(&distance::best()),
      quant_kernels_(&distance::best_quant()),
      q_(q, q + dims) {
    double sum = 0, abs_sum = 0, sum_sq = 0;
    for (std::size_t i = 0; i < dims; i++) {
        sum += q[i];
        abs_sum += std::fabs(q[i]);
        sum_sq += static_cast<double>(q[i]) * q[i];
    }
    q_norm_ = std::sqrt(sum_sq);
    q_sum_ = static_cast<float>(sum);
    const bool sq8 = p_.kind == QuantizerKind::Sq8;
    // sq8: how far the scaled query (in float) is from (q - lo) / step, in
    // units of x, as an L2 and an L1 norm; what double rounding adds to that
    // is relative to |q - lo|.
    double scale_err2 = 0, scale_err1 = 0, lo_dist2 = 0, lo_dist1 = 0;
    if (sq8) {
        scaled_.resize(dims);
        for (std::size_t i = 0; i < dims; i++) {
            double d = static_cast<double>(q[i]) - p_.lo, s = d / p_.step;
            scaled_[i] = static_cast<float>(s);
            double e = (static_cast<double>(scaled_[i]) - s) * p_.step;
            scale_err2 += e * e;
            scale_err1 += std::fabs(e);
            lo_dist2 += d * d;
            lo_dist1 += std::fabs(d);
        }
    }
    // Errors of value() and of the exact value that are not relative to the
    // value, so kRel does not cover them:
    //  - each float operation whose result underflows is off by up to half
    //    the smallest subnormal: the n products or squares of the exact
    //    kernel and of the code's (in code units for sq8, so scaled by step),
    //    plus a few roundings around them (sq8: sum(q) rounded to float, then
    //    multiplied by lo);
    //  - sq8 L2 and L1 work on the scaled query, whose elements are rounded
    //    relative to |q_i - lo|, not to |q_i - x_i|: a query equal to a stored
    //    vector has exact distance 0 but a small nonzero value (by the
    //    triangle inequality the value moves by at most the norm of that
    //    rounding error, measured above);
    //  - sq8 IP and cosine compute q.x^ as lo * sum(q) + step * q.c, two
    //    terms that cancel when lo is far from 0 and x small.
    const double subnormal = std::numeric_limits<float>::denorm_min();  // twice one underflow error
    const double ops = static_cast<double>(dims) + 4;
    const double both_sides = 1 + (sq8 ? static_cast<double>(p_.step) : 1.0);
    switch (metric) {
        case Metric::L2:  // sqrt(a + e) <= sqrt(a) + sqrt(e), on each side
            slack_ = std::sqrt(ops * subnormal) * both_sides + std::sqrt(scale_err2) + kDoubleRel * std::sqrt(lo_dist2);
            break;
        case Metric::L1:
            slack_ = ops * subnormal * both_sides + scale_err1 + kDoubleRel * lo_dist1;
            break;
        case Metric::InnerProduct:
        case Metric::Cosine:
            slack_ = ops * subnormal * both_sides +
                     (sq8 ? (kRel * abs_sum + subnormal) * std::fabs(static_cast<double>(p_.lo)) : 0);
            break;
    }
}

QueryCoder::Sums QueryCoder::sums(const std::uint8_t* code, std::size_t first, std::size_t count) const noexcept {
    Sums r;
    const float* q = q_.data() + first;
    if (p_.kind == QuantizerKind::None) {
        const float* v = reinterpret_cast<const float*>(code);
        switch (metric_) {
            case Metric::L2:
                r.a = kernels_->l2_squared(q, v, count);
                break;
            case Metric::InnerProduct:
                r.a = kernels_->inner_product(q, v, count);
                break;
            case Metric::Cosine:
                kernels_->cosine_parts(q, v, count, &r.a, &r.b, &r.c);
                break;
            case Metric::L1:
                r.a = kernels_->l1(q, v, count);
                break;
        }
        return r;
    }
    const auto& k = *quant_kernels_;
    if (p_.kind == QuantizerKind::Fp16) {
        const auto* h = reinterpret_cast<const std::uint16_t*>(code);
        switch (metric_) {
            case Metric::L2:
                r.a = k.l2_squared_f16(q, h, count);
                break;
            case Metric::L1:
                r.a = k.l1_f16(q, h, count);
                break;
            case Metric::InnerProduct:
            case Metric::Cosine:
                r.a = k.dot_f16(q, h, count);
                break;
        }
        return r;
    }
    const float* scaled = scaled_.data() + first;
    switch (metric_) {
        case Metric::L2:
            r.a = k.l2_squared_u8(scaled, code, count);
            break;
        case Metric::L1:
            r.a = k.l1_u8(scaled, code, count);
            break;
        case Metric::InnerProduct:
        case Metric::Cosine:
            r.a = k.dot_u8(q, code, count);
            break;
    }
    return r;
}

QueryCoder::Sums QueryCoder::add(const Sums& x, const Sums& y) noexcept { return Sums{x.a + y.a, x.b + y.b, x.c + y.c}; }

// For QuantizerKind::None with the sums of one kernel call over the whole
// vector, this is bit for bit what the SQL operator returns.
double QueryCoder::value_from(const Sums& s, float norm) const noexcept {
    if (p_.kind == QuantizerKind::None) {
        switch (metric_) {
            case Metric::L2:
                return std::sqrt(static_cast<double>(s.a));
            case Metric::InnerProduct:
                return -static_cast<double>(s.a);
            case Metric::Cosine:
                return static_cast<double>(distance::cosine_distance_from_parts(s.a, s.b, s.c));
            case Metric::L1:
                return static_cast<double>(s.a);
        }
        return 0;
    }
    float dot = 0;
    if (p_.kind == QuantizerKind::Fp16) {
        switch (metric_) {
            case Metric::L2:
                return std::sqrt(static_cast<double>(s.a));
            case Metric::L1:
                return s.a;
            case Metric::InnerProduct:
            case Metric::Cosine:
                dot = s.a;
                break;
        }
    } else {
        switch (metric_) {
            case Metric::L2:
                return p_.step * std::sqrt(static_cast<double>(s.a));
            case Metric::L1:
                return p_.step * s.a;
            case Metric::InnerProduct:
            case Metric::Cosine:
                dot = p_.lo * q_sum_ + p_.step * s.a;
                break;
        }
    }
    if (metric_ == Metric::InnerProduct) return -dot;
    double denom = q_norm_ * norm;
    if (!(denom > 0)) return std::numeric_limits<double>::quiet_NaN();
    return 1.0 - static_cast<double>(dot) / denom;
}

double QueryCoder::value(const std::uint8_t* code, float norm) const noexcept {
    return value_from(sums(code, 0, dims_), norm);
}

double QueryCoder::lower_bound(const std::uint8_t* code, float residual, float norm) const noexcept {
    double v = value(code, norm);
    if (p_.kind == QuantizerKind::None) return v;
    return bound(v, residual, norm);
}

double QueryCoder::lower_bound_split(const Sums& s, float residual, float norm) const noexcept {
    // Summed in pieces, even an unquantized vector's value differs from the
    // operator's in the last bits: treat it like a quantized one (residual 0
    // for None) so the result is a bound and the executor rechecks it.
    return bound(value_from(s, norm), residual, norm);
}

double QueryCoder::bound(double v, float residual, float norm) const noexcept {
    // Besides the quantization error, allow for float32 rounding in the
    // kernels: the bound must never exceed the exact value Postgres recomputes
    // (the executor's recheck raises "index returned tuples in wrong order"
    // when it does). Where that value comes from overflowing float sums it
    // bounds nothing we can compute, so the bound is -infinity there.
    constexpr double kNoBound = -std::numeric_limits<double>::infinity();
    double b = kNoBound;
    switch (metric_) {
        case Metric::L2:
        case Metric::L1:
            b = v - residual - kRel * (v + residual) - slack_;
            break;
        case Metric::InnerProduct:
            if (q_norm_ * norm > kHugeNorm * kHugeNorm) return kNoBound;
            b = v - q_norm_ * residual - kRel * q_norm_ * (static_cast<double>(norm) + residual) - slack_;
            break;
        case Metric::Cosine: {
            // A zero vector: the exact value is NaN too.
            if (!(q_norm_ > 0 && norm > 0)) return std::numeric_limits<double>::quiet_NaN();
            double small = std::min<double>(q_norm_, norm), large = std::max<double>(q_norm_, norm);
            if (large > kHugeNorm || small * small < static_cast<double>(dims_) * kTinySquare) return kNoBound;
            double slack = static_cast<double>(residual) / norm;  // (|q| r) / (|q| |x|)
            b = v - slack - kRel * (1 + slack) - slack_ / (q_norm_ * norm);
            break;
        }
    }
    // NaN or +infinity: the code's own kernels overflowed (fp16 codes
    // saturate at 65504, so this happens even where the exact value is small).
    return b < std::numeric_limits<double>::infinity() ? b : kNoBound;
}

}  // namespace lrv::core
