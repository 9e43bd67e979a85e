// HNSW search and neighbour selection, written once for every graph store:
// the in-memory graph of a build (graph.h) and the page-backed graph the glue
// reads through shared buffers (src/pg/lhnsw_graph.h).
//
// A store S provides, for the query it was set up with:
//   bool evaluate(std::uint32_t id, Candidate* c)
//       fills c->d (the search distance), c->key (the value a scan reports,
//       a lower bound of the exact ORDER BY value), c->flags and c->tid; returns
//       false when the slot holds no node (then it is skipped).
//   void links(std::uint32_t id, int level, std::vector<std::uint32_t>* out)
//       replaces *out with the node's links at that level (kNone dropped).
//   bool visit(std::uint32_t id)
//       true the first time an id is seen since the store was reset.
//   void prefetch(std::uint32_t id)
//       a hint that evaluate(id) comes soon (may do nothing).
// Distances may come from quantized codes; the search never needs a metric,
// only an order. The algorithms are those of Malkov and Yashunin's paper.
#pragma once
#include "libravdb/core/fence.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <queue>
#include <vector>

#include "libravdb/core/hnsw/format.h"

namespace lrv::core::hnsw {

struct Candidate {
    double d = 0;     // search distance
    double key = 0;   // what a scan reports (lower bound of the exact value)
    std::uint32_t id = kNone;
    std::uint16_t flags = 0;
    bool exact = true;      // key is the exact ORDER BY value (else a lower bound)
    std::uint64_t tid = 0;  // heap tuple, for stores that know it
};

// Orders by distance, then id, so results do not depend on arrival order.
// A NaN distance sorts after every number: finite vectors give one when an
// inner product or a cosine's norms overflow float (+inf + -inf), and with
// NaN unordered the heaps lose their order and std::sort its strict weak
// ordering (test/fuzz/hnsw_build_fuzz.cc found unsorted search results).
struct Closer {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept {
        if (a.d < b.d) return true;
        if (b.d < a.d) return false;
        const bool an = std::isnan(a.d), bn = std::isnan(b.d);
        if (an != bn) return bn;
        return a.id < b.id;
    }
};
struct Farther {
    bool operator()(const Candidate& a, const Candidate& b) const noexcept { return Closer()(b, a); }
};

using MinHeap = std::priority_queue<Candidate, std::vector<Candidate>, Farther>;
using MaxHeap = std::priority_queue<Candidate, std::vector<Candidate>, Closer>;

// Keeps the links not visited yet (marking them visited) and prefetches
// them, so their memory loads overlap the distances computed before them.
template <class S>
inline void unvisited(S& s, std::vector<std::uint32_t>* ids) {
    std::size_t k = 0;
    for (std::uint32_t n : *ids)
        if (s.visit(n)) (*ids)[k++] = n;
    ids->resize(k);
    for (std::uint32_t n : *ids) s.prefetch(n);
}

// Greedy descent at one level (ef = 1): the closest node reachable by always
// moving to a closer neighbour.
template <class S>
Candidate greedy_closest(S& s, Candidate cur, int level, std::vector<std::uint32_t>* scratch) {
    for (bool moved = true; moved;) {
        moved = false;
        s.links(cur.id, level, scratch);
        for (std::uint32_t n : *scratch) {
            Candidate c;
            if (!s.evaluate(n, &c)) continue;
            c.id = n;
            if (Closer()(c, cur)) {
                cur = c;
                moved = true;
            }
        }
    }
    return cur;
}

// The ef closest nodes reachable at `level` from the entry points (which the
// caller has already visited and evaluated), in ascending order.
template <class S>
void search_layer(S& s, const std::vector<Candidate>& entry, int level, std::size_t ef,
                  std::vector<Candidate>* out, std::vector<std::uint32_t>* scratch) {
    MinHeap cand;
    MaxHeap best;
    for (const Candidate& e : entry) {
        cand.push(e);
        best.push(e);
        if (best.size() > ef) best.pop();
    }
    while (!cand.empty()) {
        Candidate c = cand.top();
        if (best.size() >= ef && Closer()(best.top(), c)) break;
        cand.pop();
        s.links(c.id, level, scratch);
        unvisited(s, scratch);
        for (std::uint32_t n : *scratch) {
            Candidate x;
            if (!s.evaluate(n, &x)) continue;
            x.id = n;
            if (best.size() < ef || Closer()(x, best.top())) {
                cand.push(x);
                best.push(x);
                if (best.size() > ef) best.pop();
            }
        }
    }
    out->resize(best.size());
    for (std::size_t i = best.size(); i-- > 0;) {
        (*out)[i] = best.top();
        best.pop();
    }
}

// The neighbour-selection heuristic (the paper's algorithm 4 without
// extending candidates): walk the candidates from the closest and keep one
// unless it is closer to a node already kept than to the base. This keeps
// links pointing in different directions, which is what makes the graph
// navigable across clusters. `sorted` is ascending by distance to the base;
// closer(a, b, d) tells whether two candidates' nodes are closer than d to
// each other.
//
// With `fill`, slots the heuristic left empty are filled with the closest
// candidates it dropped (the paper's keepPrunedConnections). Without it, a
// node near the centre of the data (or a run of duplicates) that is closer
// to everyone than they are to each other makes every list keep that node
// alone, and parts of the graph become unreachable.
//
// Returns how many of *out the heuristic compared and kept (the first ones;
// the rest are fill): 0 when every candidate fit and none was compared.
template <class PairCloser>
std::size_t select_neighbours_by(const std::vector<Candidate>& sorted, std::size_t max_links, PairCloser&& closer,
                                 std::vector<Candidate>* out, bool fill = false) {
    out->clear();
    if (sorted.size() <= max_links) {
        *out = sorted;
        return 0;
    }
    std::size_t dropped_first = sorted.size();  // index of the first dropped candidate
    std::vector<std::uint8_t> kept(fill ? sorted.size() : 0, 0);
    for (std::size_t i = 0; i < sorted.size(); i++) {
        const Candidate& c = sorted[i];
        bool keep = true;
        for (const Candidate& k : *out) {
            if (closer(c.id, k.id, c.d)) {
                keep = false;
                break;
            }
        }
        if (keep) {
            out->push_back(c);
            if (fill) kept[i] = 1;
            if (out->size() >= max_links) break;
        } else if (dropped_first == sorted.size()) {
            dropped_first = i;
        }
    }
    const std::size_t by_heuristic = out->size();
    if (!fill) return by_heuristic;
    for (std::size_t i = dropped_first; i < sorted.size() && out->size() < max_links; i++)
        if (!kept[i]) out->push_back(sorted[i]);
    return by_heuristic;
}

// The same, with the pair distance itself: closer(a, b, d) is pair(a, b) < d.
// select_neighbours_by takes the comparison, for stores that can often
// settle it without computing the distance exactly.
template <class PairDistance>
std::size_t select_neighbours(const std::vector<Candidate>& sorted, std::size_t max_links, PairDistance&& pair,
                              std::vector<Candidate>* out, bool fill = false) {
    return select_neighbours_by(
        sorted, max_links, [&](std::uint32_t a, std::uint32_t b, double d) { return pair(a, b) < d; }, out, fill);
}

// A level-0 search that can be resumed: each round yields the next `ef`
// best nodes not yet yielded, continuing from where the last round stopped
// (the frontier of unexpanded candidates and every node evaluated but not
// yet yielded are kept), so a scan that must go on because a WHERE clause
// threw rows away neither restarts nor evaluates a node twice. The first
// round is exactly search_layer with that ef.
template <class S>
class ResumableSearch {
  public:
    // `entry` was visited and evaluated by the caller (after the descent).
    // Each round searches with `ef` but yields only its best `yield` nodes
    // (default: all ef); the rest wait in the pending set for the next
    // round, which may still find nodes closer than them. Yielding less than
    // ef keeps successive rounds closer to exact order.
    void start(const Candidate& entry, std::size_t ef, std::size_t yield = 0) {
        ef_ = std::max<std::size_t>(ef, 1);
        yield_ = yield == 0 ? ef_ : std::min(yield, ef_);
        cand_ = MinHeap();
        pending_ = MinHeap();
        cand_.push(entry);
        pending_.push(entry);
        expanded_ = 0;
        limited_ = false;
    }

    // Appends the next round's nodes to *out in ascending order of d.
    // Returns false (and appends nothing) once nothing more is reachable.
    // Stops expanding after `max_expansions` nodes in all (0: no limit).
    bool next_round(S& s, std::vector<Candidate>* out, std::vector<std::uint32_t>* scratch,
                    std::size_t max_expansions) {
        MaxHeap best;
        while (best.size() < ef_ && !pending_.empty()) {
            best.push(pending_.top());
            pending_.pop();
        }
        while (!cand_.empty()) {
            if (max_expansions != 0 && expanded_ >= max_expansions) {
                limited_ = true;
                break;
            }
            Candidate c = cand_.top();
            if (best.size() >= ef_ && Closer()(best.top(), c)) break;
            cand_.pop();
            expanded_++;
            s.links(c.id, 0, scratch);
            unvisited(s, scratch);
            for (std::uint32_t n : *scratch) {
                Candidate x;
                if (!s.evaluate(n, &x)) continue;
                x.id = n;
                cand_.push(x);
                if (best.size() < ef_ || Closer()(x, best.top())) {
                    best.push(x);
                    if (best.size() > ef_) {
                        pending_.push(best.top());
                        best.pop();
                    }
                } else {
                    pending_.push(x);
                }
            }
        }
        if (best.empty()) return false;
        while (best.size() > yield_) {
            pending_.push(best.top());
            best.pop();
        }
        std::size_t first = out->size();
        out->resize(first + best.size());
        for (std::size_t i = out->size(); i-- > first;) {
            (*out)[i] = best.top();
            best.pop();
        }
        return true;
    }

    // True once a round stopped at max_expansions.
    bool limited() const noexcept { return limited_; }
    std::size_t expanded() const noexcept { return expanded_; }

  private:
    std::size_t ef_ = 1;
    std::size_t yield_ = 1;
    MinHeap cand_;     // evaluated, links not yet followed
    MinHeap pending_;  // evaluated, not yet yielded
    std::size_t expanded_ = 0;
    bool limited_ = false;
};

}  // namespace lrv::core::hnsw
