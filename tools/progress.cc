#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace embstore::cli {

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)), enabled_(::isatty(STDERR_FILENO) == 1) {
  start_ = last_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { Done(); }

std::function<void(uint64_t, uint64_t)> ProgressBar::Callback() {
  if (!enabled_) return {};
  return [this](uint64_t done, uint64_t total) {
    total_ = total;
    Update(done);
  };
}

void ProgressBar::Update(uint64_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done < total_) return;
  last_ = now;
  Draw(done);
}

void ProgressBar::Draw(uint64_t done) {
  constexpr int kWidth = 30;
  const double frac = total_ ? std::min(1.0, double(done) / double(total_)) : 1.0;
  const int filled = static_cast<int>(frac * kWidth);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r%s [%s] %5.1f%%  %llu/%llu %s  %.1fs", label_.c_str(), bar.c_str(), frac * 100,
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_), unit_.c_str(),
               secs);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Done() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\r\033[K");  // clear the line: finished work leaves no trace
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace embstore::cli
