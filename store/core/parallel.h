// A small fork-join helper for the parallel scans (verify, generate): run a
// body on N threads while the calling thread reports progress.
//
// Stateless; call from any thread.

#ifndef EMBSTORE_STORE_CORE_PARALLEL_H_
#define EMBSTORE_STORE_CORE_PARALLEL_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "format/status.h"
#include "store/core/cancel.h"

namespace embstore {

// Threads to use: `requested`, or every core when 0; at most `max_useful`
// (work items) and at most kMaxThreads; at least 1.
inline constexpr unsigned kMaxThreads = 256;
unsigned ResolveThreads(unsigned requested, uint64_t max_useful);

// Runs body(0) .. body(threads - 1) concurrently and waits for all. With a
// progress callback, the calling thread calls it about ten times a second
// with (done->load(), total) and once at the end; otherwise the calling
// thread runs body(0) itself. Returns an error if threads cannot be started
// (after joining those that did start: their work is then incomplete).
// With a cancel token, the bodies poll it and return early; RunParallel
// then returns its error (the work is incomplete).
Status RunParallel(unsigned threads, const std::function<void(unsigned worker)>& body,
                   const std::atomic<uint64_t>* done = nullptr, uint64_t total = 0,
                   const std::function<void(uint64_t, uint64_t)>& progress = {},
                   const CancelToken* cancel = nullptr);

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_PARALLEL_H_
