#include "libravdb/core/quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "libravdb/core/quant_kernels.h"

namespace lrv::core {

using distance::Metric;

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
    QuantizerParams p;
    p.kind = QuantizerKind::Sq8;
    if (n == 0) return p;
    float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
    for (std::size_t i = 0; i < n * dims; i++) {
        lo = std::min(lo, sample[i]);
        hi = std::max(hi, sample[i]);
    }
    p.lo = lo;
    p.step = hi > lo ? (hi - lo) / 255.0f : 1.0f;
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
    q_norm_ = vector_norm(q, dims);
    double sum = 0;
    for (std::size_t i = 0; i < dims; i++) sum += q[i];
    q_sum_ = static_cast<float>(sum);
    if (p_.kind == QuantizerKind::Sq8) {
        scaled_.resize(dims);
        for (std::size_t i = 0; i < dims; i++) scaled_[i] = (q[i] - p_.lo) / p_.step;
    }
}

double QueryCoder::value(const std::uint8_t* code, float norm) const noexcept {
    const float* q = q_.data();
    std::size_t n = dims_;
    if (p_.kind == QuantizerKind::None) {
        const float* v = reinterpret_cast<const float*>(code);
        switch (metric_) {
            case Metric::L2:
                return std::sqrt(static_cast<double>(kernels_->l2_squared(q, v, n)));
            case Metric::InnerProduct:
                return -static_cast<double>(kernels_->inner_product(q, v, n));
            case Metric::Cosine:
            {
                float dot, na, nb;
                kernels_->cosine_parts(q, v, n, &dot, &na, &nb);
                return static_cast<double>(distance::cosine_distance_from_parts(dot, na, nb));
            }
            case Metric::L1:
                return static_cast<double>(kernels_->l1(q, v, n));
        }
        return 0;
    }
    const auto& k = *quant_kernels_;
    float dot = 0;
    if (p_.kind == QuantizerKind::Fp16) {
        const auto* h = reinterpret_cast<const std::uint16_t*>(code);
        switch (metric_) {
            case Metric::L2:
                return std::sqrt(static_cast<double>(k.l2_squared_f16(q, h, n)));
            case Metric::L1:
                return k.l1_f16(q, h, n);
            case Metric::InnerProduct:
            case Metric::Cosine:
                dot = k.dot_f16(q, h, n);
                break;
        }
    } else {
        switch (metric_) {
            case Metric::L2:
                return p_.step * std::sqrt(static_cast<double>(k.l2_squared_u8(scaled_.data(), code, n)));
            case Metric::L1:
                return p_.step * k.l1_u8(scaled_.data(), code, n);
            case Metric::InnerProduct:
            case Metric::Cosine:
                dot = p_.lo * q_sum_ + p_.step * k.dot_u8(q, code, n);
                break;
        }
    }
    if (metric_ == Metric::InnerProduct) return -dot;
    float denom = q_norm_ * norm;
    if (!(denom > 0)) return std::numeric_limits<double>::quiet_NaN();
    return 1.0 - static_cast<double>(dot) / denom;
}

double QueryCoder::lower_bound(const std::uint8_t* code, float residual, float norm) const noexcept {
    double v = value(code, norm);
    if (p_.kind == QuantizerKind::None || std::isnan(v)) return v;
    // Besides the quantization error, allow for float32 rounding in the
    // kernels: the bound must never exceed the exact value Postgres recomputes.
    constexpr double kRel = 1e-4;
    switch (metric_) {
        case Metric::L2:
        case Metric::L1:
            return v - residual - kRel * (v + residual) - 1e-30;
        case Metric::InnerProduct:
            return v - static_cast<double>(q_norm_) * residual - kRel * q_norm_ * (static_cast<double>(norm) + residual) - 1e-30;
        case Metric::Cosine: {
            double slack = static_cast<double>(residual) / norm;  // (|q| r) / (|q| |x|)
            return v - slack - kRel * (1 + slack) - 1e-30;
        }
    }
    return v;
}

}  // namespace lrv::core
