#include "tools/cli.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "format/keys.h"
#include "format/metadata.h"
#include "store/core/file_util.h"
#include "store/interop/shared_table.h"


namespace embstore::cli {

std::string ForTerminal(const std::string& text) { return EscapeLinesForDisplay(text); }

namespace {

// The one token of the process: signal handlers cannot be given state.
CancelToken g_interrupt;
struct sigaction g_old_int, g_old_term;

extern "C" void OnInterrupt(int sig) {
  if (g_interrupt.cancelled()) {  // the second one: stop now
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_interrupt.Cancel(sig);
}

// A signal ignored when the command started stays ignored (a shell
// without job control starts `cmd &` with SIGINT ignored, so that Ctrl-C
// in the foreground leaves it running).
void Catch(int sig, struct sigaction* old) {
  if (::sigaction(sig, nullptr, old) != 0 || old->sa_handler == SIG_IGN) return;
  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(sig, &sa, nullptr);
}

}  // namespace

Interruption::Interruption() {
  g_interrupt.Reset();
  Catch(SIGINT, &g_old_int);
  Catch(SIGTERM, &g_old_term);
}

Interruption::~Interruption() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

const CancelToken* Interruption::token() const { return &g_interrupt; }

int Report(const std::string& cmd, const Status& status) {
  if (status.IsCancelled()) {
    std::fprintf(stderr, "embstore %s: %s; nothing was written\n", cmd.c_str(), ForTerminal(status.message()).c_str());
    // Everything is cleaned up: end as the signal would have, so that the
    // shell sees it (a script's loop stops at Ctrl-C; $? is 130 or 143).
    const int sig = g_interrupt.signal() > 0 ? g_interrupt.signal() : SIGINT;
    std::fflush(stdout);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return 128 + sig;  // only if the signal is blocked
  }
  std::fprintf(stderr, "embstore %s: %s\n", cmd.c_str(), ForTerminal(status.message()).c_str());
  return status.IsInvalidArgument() ? kExitUsage : kExitData;
}

Status CheckOutput(const std::string& output, bool force) {
  EMB_RETURN_IF_ERROR(CheckOutputIsFile(output));
  if (!force && Exists(output)) return Status::AlreadyExists(output + " already exists; use -f to overwrite it");
  return Status::OK();
}

void AddTrustOption(po::options_description& options, std::vector<std::string>* owners) {
  options.add_options()("trust-owner", po::value(owners)->composing(),
                        "read shm:NAME tables of this user too (name or uid; by default only yours and root's)");
}

OpenOptions OpenOptionsFrom(const std::vector<std::string>& owners) {
  OpenOptions o;
  for (const std::string& user : owners) {
    auto uid = ParseOwner(user);
    if (!uid.ok()) throw UsageError{"--trust-owner: " + uid.status().message()};
    o.trusted_owners.push_back(*uid);
  }
  return o;
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
    IdRange r{0, 0, false, item};
    if (colon == std::string::npos) {
      if (!ParseWholeU64(item, &r.begin)) {
        return Status::InvalidArgument("id '" + item + "' is not a row number or a range A:B");
      }
      r.end = r.begin == UINT64_MAX ? r.begin : r.begin + 1;  // out of range anyway (ResolveIds)
    } else {
      const std::string left = item.substr(0, colon), right = item.substr(colon + 1);
      r.to_end = right.empty();
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

Result<std::vector<uint64_t>> FindKeys(const Table& table, const std::string& path,
                                       const std::vector<std::string>& keys, const std::string& no_keys_hint) {
  const KeysView* index = table.keys();
  if (index == nullptr) return Status::InvalidArgument(path + ": the table has no keys (" + no_keys_hint + ")");
  std::vector<uint64_t> ids;
  for (const std::string& key : keys) {
    auto found = index->Find(key);
    if (!found.ok()) return found.status().WithContext(path);
    if (!*found) return Status::NotFound(path + ": key " + QuoteKey(key) + " not found");
    ids.push_back(**found);
  }
  return ids;
}

Status ResolveIds(std::vector<IdRange>* ranges, uint64_t rows) {
  for (IdRange& r : *ranges) {
    const bool single = r.text.find(':') == std::string::npos;
    if (single && r.begin >= rows) return Status::OutOfRange(OutOfRangeMessage(r.begin, rows));
    if (r.to_end) r.end = rows;  // "A:" runs to the end
    if (r.begin > rows || r.end > rows) {
      return Status::OutOfRange("range " + r.text + " out of range: the table has rows [0, " +
                                std::to_string(rows) + ")");
    }
  }
  return Status::OK();
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

int RunShardOp(const char* cmd, const Table& table, const std::string& out_dir, ShardOpOptions options, bool quiet) {
  const auto* sharded = dynamic_cast<const ShardedTable*>(&table);
  if (sharded == nullptr) return Report(cmd, Status::InvalidArgument(table.path() + ": is not a sharded table"));
  ProgressBar bar(cmd, table.rows(), "rows");
  if (!quiet && bar.enabled()) options.progress = [&](uint64_t done, uint64_t) { bar.Update(done); };
  Result<std::string> manifest = Interruptible([&](const CancelToken* cancel) {
    options.cancel = cancel;
    return ShardOpAll(*sharded, out_dir, options);
  });
  bar.Done();
  return manifest.ok() ? kExitOk : Report(cmd, manifest.status());
}

}  // namespace embstore::cli
