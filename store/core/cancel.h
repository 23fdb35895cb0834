// Stopping long work: a CancelToken is a request to stop, made from any
// thread or from a signal handler, that long operations poll.
//
// generate, compress, decompress, verify, import, export and share (their
// options take `const CancelToken* cancel`) check it between pieces of work
// a few milliseconds long, on every worker thread. Once it is cancelled
// they stop, discard what they were writing (nothing is put in place: no
// partial destination, no temporary file, no half-made shared table; a file
// that was to be replaced is left as it was) and return a Status whose
// IsCancelled() is true.
//
// Thread-safe; Cancel() is async-signal-safe (a lock-free atomic store), so
// a SIGINT or SIGTERM handler may call it.

#ifndef EMBSTORE_STORE_CORE_CANCEL_H_
#define EMBSTORE_STORE_CORE_CANCEL_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "format/status.h"

namespace embstore {

class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Asks the work to stop. `signal` (SIGINT, SIGTERM) is recorded for the
  // error message and the caller's exit code; 0 means "not a signal".
  void Cancel(int signal = 0) noexcept { state_.store(signal > 0 ? signal : kBySignalNone, std::memory_order_relaxed); }
  bool cancelled() const noexcept { return state_.load(std::memory_order_relaxed) != 0; }
  // The signal that cancelled, or 0.
  int signal() const noexcept {
    const int s = state_.load(std::memory_order_relaxed);
    return s > 0 ? s : 0;
  }
  // Ready for another operation.
  void Reset() noexcept { state_.store(0, std::memory_order_relaxed); }

  // The error long work returns once cancelled: "cancelled", or
  // "interrupted by SIGINT" / "by SIGTERM" / "by signal N".
  Status Error() const;

 private:
  static constexpr int kBySignalNone = -1;
  static_assert(std::atomic<int>::is_always_lock_free, "Cancel() must be async-signal-safe");
  std::atomic<int> state_{0};
};

// For the polling loops: a null token is never cancelled.
inline bool IsCancelled(const CancelToken* token) { return token != nullptr && token->cancelled(); }

// Hash64 (XXH3-64) of size bytes, 64 MiB at a time with a look at the token
// in between, for spans that may be gigabytes long; nullopt once cancelled.
std::optional<uint64_t> Hash64Cancellable(const uint8_t* data, uint64_t size, const CancelToken* cancel);

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_CANCEL_H_
