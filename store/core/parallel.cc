#include "store/core/parallel.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace embstore {

unsigned ResolveThreads(unsigned requested, uint64_t max_useful) {
  uint64_t n = requested ? requested : std::max(1u, std::thread::hardware_concurrency());
  n = std::min<uint64_t>({n, max_useful, kMaxThreads});
  return static_cast<unsigned>(std::max<uint64_t>(n, 1));
}

Status RunParallel(unsigned threads, const std::function<void(unsigned)>& body,
                   const std::atomic<uint64_t>* done, uint64_t total,
                   const std::function<void(uint64_t, uint64_t)>& progress, const CancelToken* cancel) {
  const bool report = progress && done != nullptr;
  std::mutex mu;
  std::condition_variable cv;
  unsigned finished = 0;
  auto run = [&](unsigned w) {
    body(w);
    std::lock_guard<std::mutex> lock(mu);
    ++finished;
    cv.notify_all();
  };
  std::vector<std::thread> pool;
  Status status;
  try {
    for (unsigned w = report ? 0 : 1; w < threads; ++w) pool.emplace_back(run, w);
  } catch (const std::system_error& e) {
    status = Status::IOError(std::string("cannot start worker threads: ") + e.what());
  }
  if (status.ok()) {
    if (report) {
      std::unique_lock<std::mutex> lock(mu);
      while (finished < threads) {
        lock.unlock();
        progress(done->load(std::memory_order_relaxed), total);
        lock.lock();
        cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return finished == threads; });
      }
    } else {
      run(0);
    }
  }
  for (auto& t : pool) t.join();
  if (status.ok() && IsCancelled(cancel)) return cancel->Error();
  if (status.ok() && report) progress(total, total);
  return status;
}

}  // namespace embstore
