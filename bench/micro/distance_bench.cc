// Throughput of one distance between two vectors that stay in L1, per ISA the
// CPU has, at the two sizes that matter most: 784 (Fashion-MNIST) and 1536
// (OpenAI embeddings). This isolates the kernels; index scans add cache misses
// on top, which bench/ measures end to end.
//
// items/s counts distances; FLOP/s counts 3 flops an element for L2 (sub, mul,
// add) and 2 for the inner product (mul, add), an FMA counting as two.
//
// offset:0 puts both vectors on a cache-line boundary; offset:2 shifts them by
// 8 bytes, where the data of a varlena or an 8-byte aligned tuple lands, so
// that every other 32-byte load (AVX2) and every 64-byte load (AVX-512)
// splits a cache line. The kernels do not peel to realign (see avx512.cc), so
// the gap between the two rows is the price of storage alignment.
#include <cstdio>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "libravdb/core/distance.h"

namespace {

using lrv::core::distance::for_isa;
using lrv::core::distance::Isa;
using lrv::core::distance::isa_name;
using lrv::core::distance::PairFn;

// The first cache-line boundary in buf (which has 16 floats to spare), so
// that the offset argument alone decides whether vector loads split lines.
float* line_aligned(std::vector<float>& buf) {
    auto p = reinterpret_cast<std::uintptr_t>(buf.data());
    return reinterpret_cast<float*>((p + 63) & ~std::uintptr_t{63});
}

void run(benchmark::State& state, PairFn fn, std::size_t n, double flops_per_element) {
    std::mt19937 gen(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::size_t offset = static_cast<std::size_t>(state.range(0));
    std::vector<float> abuf(n + offset + 16), bbuf(n + offset + 16);
    float* a = line_aligned(abuf) + offset;
    float* b = line_aligned(bbuf) + offset;
    for (std::size_t i = 0; i < n; i++) {
        a[i] = dist(gen);
        b[i] = dist(gen);
    }
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

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
        const auto* k = for_isa(isa);
        if (k == nullptr) {
            std::fprintf(stderr, "skipping %s: this CPU lacks it\n", isa_name(isa));
            continue;
        }
        for (std::size_t n : {784, 1536}) {
            std::string suffix = std::string("/") + k->name + "/" + std::to_string(n);
            benchmark::RegisterBenchmark(("l2" + suffix).c_str(), run, k->l2_squared, n, 3.0)
                ->ArgName("offset")
                ->Arg(0)
                ->Arg(2);
            benchmark::RegisterBenchmark(("ip" + suffix).c_str(), run, k->inner_product, n, 2.0)
                ->ArgName("offset")
                ->Arg(0)
                ->Arg(2);
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
