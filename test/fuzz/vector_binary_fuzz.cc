// lvector's binary input (COPY BINARY, the extended protocol), and what a
// received vector flows into in the core.
//
// The binary decoding itself has no core function: lrv_lvector_recv in
// src/pg/lvector_io.cc reads the message with Postgres's pq_getmsgint and
// pq_getmsgfloat4 and checks it with glue helpers (check_dim_count,
// check_element). So this target decodes the same wire format here -- int16
// dimension count, int16 reserved (must be 0), then dims float4, all in
// network byte order, with nothing after them -- applying the same checks in
// the same order, with the core's check_finite standing in for the glue's
// per-element check. What it really fuzzes is the core code behind an
// accepted vector, which is where hostile but valid values (huge, tiny,
// subnormal, signed zeros, mixed signs that overflow a dot product) go:
// vector_norm, every quantizer's encode, QueryCoder (whole and split into
// two pieces, as entries crossing a page are) and the distance kernels.
//
// Checks, for each metric and quantizer, with the query equal to the vector
// and to the vector rotated by one element:
//  - check_finite accepts exactly the vectors whose elements are all finite;
//  - the kernels give the same value for (x, q) and (q, x), bit for bit;
//  - without a quantizer QueryCoder::value is bit for bit the SQL
//    operator's value (what src/pg/lvector_ops.cc returns);
//  - the residual encode returns is a number >= 0;
//  - lower_bound and lower_bound_split never exceed the operator's value
//    (NaN sorting last): a scan that handed out a larger key would make the
//    executor's recheck fail with "index returned tuples in wrong order".
//
// Input: byte 0 chooses the sq8 range and where the split falls; the rest is
// the recv message.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "libravdb/core/distance.h"
#include "libravdb/core/limits.h"
#include "libravdb/core/quantizer.h"
#include "libravdb/core/vector_text.h"

using namespace lrv;
using core::QuantizerKind;
using core::QuantizerParams;
using core::distance::Metric;

namespace {

enum class Recv { Ok, Truncated, Reserved, NoDims, TooManyDims, Length, NotFinite };

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
float be_float(const std::uint8_t* p) {
    std::uint32_t u = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// The checks of lrv_lvector_recv, in its order.
Recv decode_recv(const std::uint8_t* p, std::size_t n, std::vector<float>* x) {
    if (n < 4) return Recv::Truncated;                  // 22P03
    const int dim = be16(p);                            // pq_getmsgint(buf, 2): 0..65535
    if (be16(p + 2) != 0) return Recv::Reserved;        // 22P03
    if (dim < 1) return Recv::NoDims;                   // 22000
    if (static_cast<std::size_t>(dim) > core::kMaxDims) return Recv::TooManyDims;  // 54000
    if (n - 4 != 4 * static_cast<std::size_t>(dim)) return Recv::Length;          // 22P03
    x->resize(static_cast<std::size_t>(dim));
    for (int i = 0; i < dim; i++) (*x)[i] = be_float(p + 4 + 4 * i);
    bool finite = fuzz::accepts("check_finite", {fuzz::ErrorKind::InvalidValue},
                                [&] { core::check_finite(x->data(), x->size(), "lvector"); });
    bool all_finite = std::all_of(x->begin(), x->end(), [](float f) { return std::isfinite(f); });
    LRV_CHECKF(finite == all_finite, "check_finite says %d for a vector whose elements are %sall finite", finite,
               all_finite ? "" : "not ");
    return finite ? Recv::Ok : Recv::NotFinite;  // 22000
}

// The ORDER BY operators of src/pg/lvector_ops.cc (<->, <#>, <=>, <+>).
double op_value(Metric m, const float* a, const float* b, std::size_t n) {
    namespace d = core::distance;
    switch (m) {
        case Metric::L2: return std::sqrt(static_cast<double>(d::l2_squared(a, b, n)));
        case Metric::InnerProduct: return -static_cast<double>(d::inner_product(a, b, n));
        case Metric::Cosine: return static_cast<double>(d::cosine_distance(a, b, n));
        case Metric::L1: return static_cast<double>(d::l1(a, b, n));
    }
    return 0;
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0; }
// a <= b with NaN after every number, as scans and the executor sort.
bool at_most(double a, double b) {
    if (std::isnan(b)) return true;
    if (std::isnan(a)) return false;
    return a <= b;
}

const char* metric_str(Metric m) { return core::distance::metric_name(m); }

void check_pair(const std::vector<float>& x, const std::vector<float>& q, const QuantizerParams& p, Metric metric,
                std::size_t split) {
    const std::size_t d = x.size();
    const double exact = op_value(metric, x.data(), q.data(), d);  // column <op> query
    const double swapped = op_value(metric, q.data(), x.data(), d);
    LRV_CHECKF(same(exact, swapped), "%s: op(x, q) = %.17g but op(q, x) = %.17g", metric_str(metric), exact, swapped);

    const float norm = core::vector_norm(x.data(), d);
    LRV_CHECKF(norm >= 0, "vector_norm = %g", static_cast<double>(norm));
    std::vector<std::uint8_t> code(core::code_bytes(p.kind, d) + 1, 0xA5);
    const float r = core::encode(p, metric, x.data(), d, code.data());
    LRV_CHECKF(r >= 0, "%s %s: residual %g", core::quantizer_name(p.kind), metric_str(metric), static_cast<double>(r));
    LRV_CHECKF(code.back() == 0xA5, "encode wrote past code_bytes");

    core::QueryCoder qc(p, metric, q.data(), d);
    if (p.kind == QuantizerKind::None) {
        const double v = qc.value(code.data(), norm);
        LRV_CHECKF(same(v, exact), "%s: QueryCoder::value %.17g, operator %.17g", metric_str(metric), v, exact);
    }
    const double lb = qc.lower_bound(code.data(), r, norm);
    LRV_CHECKF(at_most(lb, exact), "%s %s: lower_bound %.17g exceeds the exact value %.17g (residual %g, norm %g)",
               core::quantizer_name(p.kind), metric_str(metric), lb, exact, static_cast<double>(r),
               static_cast<double>(norm));

    const std::size_t elem = core::code_bytes(p.kind, 1);
    core::QueryCoder::Sums s = core::QueryCoder::add(qc.sums(code.data(), 0, split),
                                                     qc.sums(code.data() + split * elem, split, d - split));
    const double lbs = qc.lower_bound_split(s, r, norm);
    LRV_CHECKF(at_most(lbs, exact),
               "%s %s: lower_bound_split at %zu = %.17g exceeds the exact value %.17g (residual %g, norm %g)",
               core::quantizer_name(p.kind), metric_str(metric), split, lbs, exact, static_cast<double>(r),
               static_cast<double>(norm));
}

std::vector<std::uint8_t> message(std::uint8_t cfg, const std::vector<float>& x, std::uint16_t reserved = 0) {
    std::vector<std::uint8_t> m{cfg, static_cast<std::uint8_t>(x.size() >> 8), static_cast<std::uint8_t>(x.size()),
                                static_cast<std::uint8_t>(reserved >> 8), static_cast<std::uint8_t>(reserved)};
    for (float f : x) {
        std::uint32_t u;
        std::memcpy(&u, &f, sizeof u);
        for (int s = 24; s >= 0; s -= 8) m.push_back(static_cast<std::uint8_t>(u >> s));
    }
    return m;
}

void write_seeds(fuzz::SeedWriter& w) {
    w.add("small", message(0x00, {1, 2.5f, -3}));
    w.add("one", message(0x21, {0.5f}));
    w.add("huge", message(0x12, {3.0e38f, -3.0e38f, 3.0e38f, 1}));
    w.add("tiny", message(0x43, {1e-45f, -1e-40f, 1.17549435e-38f, 0, -0.0f}));
    w.add("mixed", message(0x94, {65504, 65520, -7e4f, 1e-8f, 1e20f, -1e20f, 3, 4}));
    w.add("reserved", message(0x00, {1, 2}, 1));
    w.add("nan", message(0x00, {1, NAN}));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    fuzz::maybe_write_seeds(write_seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t cfg = data[0];
    std::vector<float> x;
    if (decode_recv(data + 1, size - 1, &x) != Recv::Ok) return 0;
    const std::size_t d = x.size();

    // sq8 ranges: trained on this vector, on data in [-1, 1] (an INSERT
    // after the build, values outside the range), or on its ends only.
    const auto [lo_it, hi_it] = std::minmax_element(x.begin(), x.end());
    QuantizerParams sq8;
    switch ((cfg >> 4) % 3) {
        case 0: sq8 = core::sq8_from_range(*lo_it, *hi_it); break;
        case 1: sq8 = core::sq8_from_range(-1, 1); break;
        default: sq8 = core::sq8_from_range(std::min(x.front(), x.back()), std::max(x.front(), x.back())); break;
    }
    const std::size_t split = d == 1 ? (cfg & 1) : (cfg & 0x0F) % (d + 1);

    std::vector<float> rotated(d);
    for (std::size_t i = 0; i < d; i++) rotated[i] = x[(i + 1) % d];

    QuantizerParams none, fp16;
    fp16.kind = QuantizerKind::Fp16;
    for (const QuantizerParams& p : {none, fp16, sq8})
        for (Metric m : {Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1}) {
            check_pair(x, x, p, m, split);
            check_pair(x, rotated, p, m, split);
        }
    return 0;
}
