#include "tools/cli.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "format/embz_format.h"
#include "store/table_reader.h"

namespace embstore::cli {

int Report(const std::string& cmd, const Status& status) {
  std::fprintf(stderr, "embstore %s: %s\n", cmd.c_str(), status.message().c_str());
  return status.IsInvalidArgument() ? kExitUsage : kExitData;
}

namespace {

bool ParseWholeU64(const std::string& text, uint64_t* out) {
  if (text.empty() || text[0] == '-' || text[0] == '+') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

uint64_t ParseU64(const std::string& text, const std::string& name) {
  uint64_t v;
  if (!ParseWholeU64(text, &v)) {
    throw UsageError{name + ": '" + text + "' is not a whole number >= 0 (below 2^64)"};
  }
  return v;
}

uint64_t ParseSeed(const std::string& text) {
  uint64_t v;
  if (ParseWholeU64(text, &v)) return v;
  int64_t s;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), s);
  if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) return static_cast<uint64_t>(s);
  throw UsageError{"--seed: '" + text + "' is not an integer in [-2^63, 2^64)"};
}

unsigned ParseThreads(const std::string& text) {
  const uint64_t n = ParseU64(text, "--threads");
  if (n > 1024) throw UsageError{"--threads: " + text + " is more than 1024"};
  return static_cast<unsigned>(n);
}

double ParseDouble(const std::string& text, const std::string& name) {
  double v;
  const char* first = text.data();
  if (!text.empty() && text[0] == '+') ++first;
  auto [end, ec] = std::from_chars(first, text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
    throw UsageError{name + ": '" + text + "' is not a finite number"};
  }
  return v;
}

Result<std::vector<IdRange>> ParseIds(const std::vector<std::string>& items) {
  std::vector<IdRange> out;
  out.reserve(items.size());
  for (const std::string& item : items) {
    const size_t colon = item.find(':');
    IdRange r{0, UINT64_MAX, item};
    if (colon == std::string::npos) {
      if (!ParseWholeU64(item, &r.begin) || r.begin == UINT64_MAX) {
        return Status::InvalidArgument("id '" + item + "' is not a row number or a range A:B");
      }
      r.end = r.begin + 1;
    } else {
      const std::string left = item.substr(0, colon), right = item.substr(colon + 1);
      if ((!left.empty() && !ParseWholeU64(left, &r.begin)) || (!right.empty() && !ParseWholeU64(right, &r.end))) {
        return Status::InvalidArgument("range '" + item + "' is not of the form A:B (half-open, A and B >= 0)");
      }
      if (!right.empty() && r.begin > r.end) {
        return Status::InvalidArgument("range '" + item + "' runs backwards: A must be <= B");
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

Status ResolveIds(std::vector<IdRange>* ranges, uint64_t rows) {
  for (IdRange& r : *ranges) {
    const bool single = r.text.find(':') == std::string::npos;
    if (single && r.begin >= rows) return Status::OutOfRange(OutOfRangeMessage(r.begin, rows));
    if (r.end == UINT64_MAX) r.end = rows;  // "A:" runs to the end
    if (r.begin > rows || r.end > rows) {
      return Status::OutOfRange("range " + r.text + " out of range: the table has rows [0, " +
                                std::to_string(rows) + ")");
    }
  }
  return Status::OK();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsShared(const std::string& arg) { return arg.rfind(kSharedScheme, 0) == 0; }

Result<TableReader> OpenTable(const std::string& arg) {
  if (IsShared(arg)) return TableReader::OpenShared(arg.substr(sizeof(kSharedScheme) - 1));
  return TableReader::Open(arg);
}

bool IsEmbz(const std::string& path) { return !IsShared(path) && FileIsEmbz(path); }

Result<AnyTable> OpenAnyTable(const std::string& path) {
  AnyTable t;
  if (IsEmbz(path)) {
    EMB_ASSIGN_OR_RETURN(t.packed, EmbzReader::Open(path));
  } else {
    EMB_ASSIGN_OR_RETURN(TableReader r, OpenTable(path));
    t.plain = std::make_unique<TableReader>(std::move(r));
  }
  return t;
}

int FinishStdout(const std::string& cmd) {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    return Report(cmd, Status::IOError(std::string("writing to stdout: ") + std::strerror(errno)));
  }
  return kExitOk;
}

bool ParseArgs(int argc, char** argv, const std::string& usage, po::options_description& options,
               const po::positional_options_description& positional, po::variables_map* vm) {
  options.add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), *vm);
    if (vm->count("help")) {
      std::printf("%s\n\n", usage.c_str());
      std::ostringstream os;
      os << options;
      std::printf("%s", os.str().c_str());
      return false;
    }
    po::notify(*vm);
  } catch (const po::error& e) {
    throw UsageError{e.what()};
  }
  return true;
}

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)), enabled_(::isatty(STDERR_FILENO) == 1) {
  start_ = last_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { Done(); }

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
