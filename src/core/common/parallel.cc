// parallel_for: the one place core algorithms other than the HNSW build start
// threads. The scheme is BuildGraph::link_all's (graph.cc): helpers inherit a
// fully blocked signal mask, claim work from one atomic counter, and are
// always joined before we return or rethrow; the caller works too and is the
// only thread that runs poll.
#include "libravdb/core/common/parallel.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace lrv::core {

namespace {

// More threads than this buys nothing on the machines we run on and would
// only multiply per-thread scratch.
constexpr int kMaxThreads = 64;

}  // namespace

void parallel_for(std::size_t n, std::size_t chunk, int threads,
                  const std::function<void(std::size_t begin, std::size_t end, int worker)>& body,
                  const std::function<void()>& poll) {
    if (n == 0) return;
    if (chunk == 0) chunk = 1;
    const std::size_t chunks = (n - 1) / chunk + 1;
    threads = std::max(1, std::min<int>(threads, static_cast<int>(std::min<std::size_t>(chunks, kMaxThreads))));

    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex mutex;  // guards err and running; cv waits on running
    std::condition_variable cv;
    std::exception_ptr err;
    int running = threads - 1;

    auto record = [&](std::exception_ptr e) {
        std::lock_guard<std::mutex> hold(mutex);
        if (!err) err = e;
        stop = true;
    };
    // A helper's loop; the caller runs the same loop but polls between chunks.
    auto work = [&](int worker, bool caller) {
        while (!stop.load(std::memory_order_relaxed)) {
            std::size_t c = next.fetch_add(1, std::memory_order_relaxed);
            if (c >= chunks) break;
            std::size_t begin = c * chunk;
            std::size_t end = std::min(n, begin + chunk);
            body(begin, end, worker);
            if (caller && poll) poll();
        }
    };

    if (threads == 1) {
        work(0, true);
        return;
    }

    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(threads - 1));
    {
        // Helpers inherit the mask they are created under; the caller's own
        // mask is restored at once, so Postgres still gets its signals.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        try {
            for (int t = 1; t < threads; t++) {
                pool.emplace_back([&, t] {
                    try {
                        work(t, false);
                    } catch (...) {
                        record(std::current_exception());
                    }
                    std::lock_guard<std::mutex> hold(mutex);
                    running--;
                    cv.notify_all();
                });
            }
        } catch (...) {
            // Thread creation failed: the helpers already started must still
            // be joined, and they exit once they see stop.
            stop = true;
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
            for (auto& t : pool) t.join();
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }

    try {
        work(0, true);
        // Waiting on a condition variable rather than sleeping matters: a
        // k-means iteration is one parallel_for, and a fixed 20 ms sleep at
        // the end of each would add up over a build.
        std::unique_lock<std::mutex> lock(mutex);
        while (running > 0) {
            if (stop.load()) break;
            lock.unlock();
            if (poll) poll();
            lock.lock();
            cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return running == 0 || stop.load(); });
        }
    } catch (...) {
        record(std::current_exception());
    }
    for (auto& t : pool) t.join();
    if (err) std::rethrow_exception(err);
}

}  // namespace lrv::core
