// The progress bar long work shows on stderr: the embstore command and the
// Python module draw the same one.

#ifndef EMBSTORE_TOOLS_PROGRESS_H_
#define EMBSTORE_TOOLS_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace embstore::cli {

// A one-line progress bar on stderr, drawn only when stderr is a terminal
// (and redrawn at most ~10 times a second). Silent otherwise.
class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, std::string unit);
  // A bar whose total comes with the reports (Callback()): only the work
  // knows it (a .embz's table size, an import's source).
  ProgressBar(std::string label, std::string unit) : ProgressBar(std::move(label), 0, std::move(unit)) {}
  ~ProgressBar();
  void Update(uint64_t done);
  // A store progress callback, (done, total), that draws this bar; empty
  // (the work then reports nothing) when the bar is not drawn.
  std::function<void(uint64_t, uint64_t)> Callback();
  void Done();
  bool enabled() const { return enabled_; }

 private:
  void Draw(uint64_t done);
  std::string label_;
  uint64_t total_;
  std::string unit_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace embstore::cli

#endif  // EMBSTORE_TOOLS_PROGRESS_H_
