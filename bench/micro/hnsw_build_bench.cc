// Build and search the core's in-memory HNSW graph without Postgres: how long
// link_all takes and what recall@k the graph gives, for one data set.
//
//   hnsw_build_bench BASE QUERIES DIMS [options]
//
// BASE and QUERIES are raw little-endian float32 files (rows * DIMS floats),
// for instance written by numpy's tofile(). Options:
//   --quantizer none|fp16|sq8   what the graph stores (default none)
//   --link stored|sq8|sq8-search  codes the links are chosen on: the stored
//                               ones (default), sq8 (BuildGraph::link_on_sq8),
//                               or searched on sq8, chosen on the stored ones
//                               (BuildGraph::search_on_sq8)
//   --metric l2|ip|cosine|l1    (default l2)
//   --threads T --m M --ef-construction E --rows N --queries Q --k K
//   --ef 10,20,40,80            ef_search values to report recall for
//
// Ground truth is brute force over the stored floats with the metric's own
// kernel. The build time is link_all's wall time; adding the nodes (encoding)
// is reported separately.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "libravdb/core/hnsw/graph.h"
#include "libravdb/core/quantizer.h"

using namespace lrv::core;

namespace {

std::vector<float> read_floats(const char* path, std::size_t dims, std::size_t max_rows) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot open %s\n", path);
        std::exit(2);
    }
    in.seekg(0, std::ios::end);
    std::size_t rows = static_cast<std::size_t>(in.tellg()) / (dims * sizeof(float));
    if (max_rows > 0 && rows > max_rows) rows = max_rows;
    in.seekg(0);
    std::vector<float> v(rows * dims);
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s BASE QUERIES DIMS [options]\n", argv[0]);
        return 2;
    }
    const std::size_t dims = std::strtoul(argv[3], nullptr, 10);
    std::string quantizer = "none", link = "", metric_name = "l2", efs = "10,20,40,80,160";
    int threads = 2;
    hnsw::BuildOptions bo;
    std::size_t rows = 0, n_queries = 200, k = 10;
    for (int i = 4; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--quantizer") quantizer = v;
        else if (a == "--link") link = v;
        else if (a == "--metric") metric_name = v;
        else if (a == "--threads") threads = std::atoi(v.c_str());
        else if (a == "--m") bo.m = std::atoi(v.c_str());
        else if (a == "--ef-construction") bo.ef_construction = std::atoi(v.c_str());
        else if (a == "--rows") rows = std::strtoul(v.c_str(), nullptr, 10);
        else if (a == "--queries") n_queries = std::strtoul(v.c_str(), nullptr, 10);
        else if (a == "--k") k = std::strtoul(v.c_str(), nullptr, 10);
        else if (a == "--ef") efs = v;
        else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    distance::Metric metric = metric_name == "ip"       ? distance::Metric::InnerProduct
                              : metric_name == "cosine" ? distance::Metric::Cosine
                              : metric_name == "l1"     ? distance::Metric::L1
                                                        : distance::Metric::L2;
    std::vector<float> base = read_floats(argv[1], dims, rows);
    std::vector<float> queries = read_floats(argv[2], dims, n_queries);
    rows = base.size() / dims;
    n_queries = queries.size() / dims;

    QuantizerParams qp;
    if (quantizer == "fp16") qp.kind = QuantizerKind::Fp16;
    if (quantizer == "sq8") qp = train_sq8(base.data(), rows, dims);
    hnsw::BuildGraph g(bo, qp, metric, dims);

    auto t0 = std::chrono::steady_clock::now();
    g.reserve(rows);
    for (std::size_t i = 0; i < rows; i++) g.add(base.data() + i * dims, i);
    if (link == "sq8" && !g.link_on_sq8()) std::printf("link_on_sq8 declined: codes too coarse\n");
    if (link == "sq8-search" && !g.search_on_sq8()) std::printf("search_on_sq8 declined\n");
    const double add_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    g.link_all(threads, [](std::size_t) {});
    const double link_s = seconds_since(t0);
    std::printf("rows %zu dims %zu quantizer %s link %s metric %s threads %d m %d efc %d: add %.2f s link %.2f s\n",
                rows, dims, quantizer.c_str(), link.empty() ? "stored" : link.c_str(), metric_name.c_str(), threads,
                bo.m, bo.ef_construction, add_s, link_s);

    // Nodes a search can reach: breadth first from the entry point at level 0.
    {
        std::vector<char> seen(g.size(), 0);
        std::vector<std::uint32_t> queue{g.entry_point()};
        seen[g.entry_point()] = 1;
        for (std::size_t head = 0; head < queue.size(); head++) {
            std::uint32_t cnt;
            const std::uint32_t* l = g.links(queue[head], 0, &cnt);
            for (std::uint32_t i = 0; i < cnt; i++)
                if (!seen[l[i]]) {
                    seen[l[i]] = 1;
                    queue.push_back(l[i]);
                }
        }
        std::printf("  unreachable at level 0: %zu of %zu (%zu given a link after linking)\n",
                    g.size() - queue.size(), g.size(), g.repaired());
    }

    // Exact top k per query.
    std::vector<std::set<std::uint64_t>> truth(n_queries);
    for (std::size_t q = 0; q < n_queries; q++) {
        std::vector<std::pair<double, std::uint64_t>> all(rows);
        for (std::size_t i = 0; i < rows; i++)
            all[i] = {hnsw::metric_value(metric, queries.data() + q * dims, base.data() + i * dims, dims), i};
        std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end());
        for (std::size_t j = 0; j < k; j++) truth[q].insert(all[j].second);
    }
    std::stringstream list(efs);
    std::string item;
    while (std::getline(list, item, ',')) {
        const std::size_t ef = std::strtoul(item.c_str(), nullptr, 10);
        std::size_t hits = 0;
        t0 = std::chrono::steady_clock::now();
        for (std::size_t q = 0; q < n_queries; q++)
            for (const hnsw::Candidate& c : g.search(queries.data() + q * dims, k, ef))
                hits += truth[q].count(g.tid(c.id));
        const double s = seconds_since(t0);
        std::printf("  ef %4zu recall@%zu %.4f  %.0f queries/s\n", ef, k,
                    static_cast<double>(hits) / static_cast<double>(n_queries * k), n_queries / s);
    }
    return 0;
}
