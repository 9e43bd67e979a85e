// Throughput of one distance between two vectors that stay in L1, per ISA the
// CPU has, at the two sizes that matter most: 784 (Fashion-MNIST) and 1536
// (OpenAI embeddings). This isolates the kernels; index scans add cache misses
// on top, which bench/ measures end to end. Besides float x float, the
// query x code kernels of quant_kernels.h: a float query against sq8 (u8)
// and fp16 (f16) codes.
//
// items/s counts distances; FLOP/s counts 3 flops an element for L2 (sub, mul,
// add) and 2 for the inner product (mul, add), an FMA counting as two; the
// widening of a code is not counted.
//
// offset:0 puts both vectors on a cache-line boundary; offset:2 shifts them by
// 8 bytes, where the data of a varlena or an 8-byte aligned tuple lands, so
// that every other 32-byte load (AVX2) and every 64-byte load (AVX-512)
// splits a cache line. The kernels do not peel to realign (see avx512.cc), so
// the gap between the two rows is the price of storage alignment. Codes move
// by the same 8 bytes as the query.
#include <cstdio>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "libravdb/core/distance.h"
#include "libravdb/core/quant_kernels.h"

namespace {

using lrv::core::distance::float_to_half;
using lrv::core::distance::for_isa;
using lrv::core::distance::Isa;
using lrv::core::distance::isa_name;
using lrv::core::distance::quant_for_isa;

// The first cache-line boundary in buf (which has 64 bytes to spare), so
// that the offset argument alone decides whether vector loads split lines.
template <class T>
T* line_aligned(std::vector<T>& buf) {
    auto p = reinterpret_cast<std::uintptr_t>(buf.data());
    return reinterpret_cast<T*>((p + 63) & ~std::uintptr_t{63});
}

// Operands: floats in [-1, 1), random sq8 codes, or fp16 codes of floats in
// [-1, 1). The values do not change the speed of any kernel.
void fill(std::mt19937& gen, float* x, std::size_t n) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (std::size_t i = 0; i < n; i++) x[i] = dist(gen);
}
void fill(std::mt19937& gen, std::uint8_t* x, std::size_t n) {
    for (std::size_t i = 0; i < n; i++) x[i] = static_cast<std::uint8_t>(gen());
}
void fill(std::mt19937& gen, std::uint16_t* x, std::size_t n) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (std::size_t i = 0; i < n; i++) x[i] = float_to_half(dist(gen));
}

template <class B>
using KernelFn = float (*)(const float*, const B*, std::size_t) noexcept;

template <class B>
void run(benchmark::State& state, KernelFn<B> fn, std::size_t n, double flops_per_element) {
    std::mt19937 gen(42);
    std::size_t offset_bytes = 4 * static_cast<std::size_t>(state.range(0));
    std::vector<float> abuf(n + offset_bytes / 4 + 16);
    std::vector<B> bbuf(n + (offset_bytes + 64) / sizeof(B));
    float* a = line_aligned(abuf) + offset_bytes / 4;
    B* b = line_aligned(bbuf) + offset_bytes / sizeof(B);
    fill(gen, a, n);
    fill(gen, b, n);
    for (auto _ : state) {
        // The kernel is called through a pointer, so it cannot be inlined and
        // hoisted; the clobber stops the compiler from treating the inputs as
        // unchanged between iterations.
        benchmark::DoNotOptimize(fn(a, b, n));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["FLOP/s"] = benchmark::Counter(
        flops_per_element * static_cast<double>(n) * static_cast<double>(state.iterations()),
        benchmark::Counter::kIsRate);
}

template <class B>
void add(const std::string& name, KernelFn<B> fn, std::size_t n, double flops_per_element) {
    benchmark::RegisterBenchmark(name.c_str(), run<B>, fn, n, flops_per_element)
        ->ArgName("offset")
        ->Arg(0)
        ->Arg(2);
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
        const auto* k = for_isa(isa);
        const auto* qk = quant_for_isa(isa);
        if (k == nullptr || qk == nullptr) {
            std::fprintf(stderr, "skipping %s: this CPU lacks it\n", isa_name(isa));
            continue;
        }
        for (std::size_t n : {784, 1536}) {
            std::string suffix = std::string("/") + k->name + "/" + std::to_string(n);
            add("l2" + suffix, k->l2_squared, n, 3.0);
            add("ip" + suffix, k->inner_product, n, 2.0);
            add("l2_u8" + suffix, qk->l2_squared_u8, n, 3.0);
            add("ip_u8" + suffix, qk->dot_u8, n, 2.0);
            add("l2_f16" + suffix, qk->l2_squared_f16, n, 3.0);
            add("ip_f16" + suffix, qk->dot_f16, n, 2.0);
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
