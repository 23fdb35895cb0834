// Shared pieces of the embstore command: exit codes, number parsing with
// messages that name the option, the stderr progress bar, and the
// subcommand entry points (one file each).

#ifndef EMBSTORE_TOOLS_CLI_H_
#define EMBSTORE_TOOLS_CLI_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <memory>

#include "format/status.h"
#include "store/core/cancel.h"
#include "store/interop/open_table.h"
#include "store/interop/shards.h"
#include "tools/progress.h"

namespace embstore::cli {

// format/STYLE.md, "Errors": 0 success, 1 data or I/O error, 2 usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitData = 1;
inline constexpr int kExitUsage = 2;

// A usage problem found while parsing; main() prints it with a hint and
// exits 2.
struct UsageError {
  std::string message;
};

// Prints "embstore <cmd>: <message>" to stderr and returns the exit code
// for the status (invalid argument: 2, anything else: 1); a status
// cancelled by a signal ends the process by that signal (see Interruption). Control characters in the message (from a
// file's bytes) are escaped.
int Report(const std::string& cmd, const Status& status);

// Ctrl-C (SIGINT) and SIGTERM during long work (generate, compress,
// decompress, verify, import, export, share). While an Interruption is
// alive, the first such signal cancels token(): the work stops within
// milliseconds and leaves nothing behind, and Report() of its status ends
// the process by the same signal once it is clean (the shell's $? is 130
// for SIGINT, 143 for SIGTERM, and a script's loop stops). A second signal
// ends the process at once. A signal ignored at start stays ignored.
// Outside an Interruption both signals keep their default action (`get`
// streaming rows stops at once).
class Interruption {
 public:
  Interruption();
  ~Interruption();
  Interruption(const Interruption&) = delete;
  Interruption& operator=(const Interruption&) = delete;
  const CancelToken* token() const;
};

// work(token) inside an Interruption: a command's long work, whose Status
// (or Result) Report() turns into the signal's exit.
template <typename Work>
auto Interruptible(Work work) {
  Interruption interrupt;
  return work(interrupt.token());
}

// Text from a file or a user, made safe to print on a terminal: every line
// through EscapeForDisplay (no terminal escapes, no invalid UTF-8).
std::string ForTerminal(const std::string& text);

// An output checked before any work: something there that is not a
// regular file is refused, -f or not; a file there without -f is the
// already-exists error, exit 1 (the same code as when the file appears
// while the command runs, which the writer checks atomically).
Status CheckOutput(const std::string& output, bool force);

// compress, decompress and convert of a sharded table: every shard done
// into folder out_dir (store/interop/shards.h), then its manifest.json;
// prints nothing but the progress bar. An exit code.
int RunShardOp(const char* cmd, const Table& table, const std::string& out_dir, ShardOpOptions options, bool quiet);

// Parses a whole decimal number for option `name`; throws UsageError with
// a message naming the option ("--rows: '-3' is not a non-negative integer").
uint64_t ParseU64(const std::string& text, const std::string& name);
// A seed as torch.manual_seed takes it: any integer in [-2^63, 2^64);
// negative values wrap to their two's-complement bits.
uint64_t ParseSeed(const std::string& text);
double ParseDouble(const std::string& text, const std::string& name);
// --threads: 0 (all cores) up to 1024.
unsigned ParseThreads(const std::string& text);

// An id list item: "7" or a half-open range "A:B" ("A:" to the end, ":B"
// from 0). ParseIds checks the syntax (usage errors) before any file is
// opened; ResolveIds checks the ids against the table (out of range errors
// name the item and the table's rows).
struct IdRange {
  uint64_t begin;
  uint64_t end;
  bool to_end;  // "A:": end is the table's row count, set by ResolveIds
  std::string text;
};
Result<std::vector<IdRange>> ParseIds(const std::vector<std::string>& items);
Status ResolveIds(std::vector<IdRange>* ranges, uint64_t rows);
// The row ids of `keys` in the table at `path`, every key looked up before
// any is used: an invalid-argument error for a table without keys (ending
// with `no_keys_hint`, e.g. "rows by id only"), a not-found error naming a
// missing key, or the keys' own corruption error.
Result<std::vector<uint64_t>> FindKeys(const Table& table, const std::string& path,
                                       const std::vector<std::string>& keys, const std::string& no_keys_hint);


// Flushes stdout; an error writing it (a full disk, a closed pipe) is an
// I/O error: prints it and returns 1. Otherwise returns 0.
int FinishStdout(const std::string& cmd);

namespace po = boost::program_options;

// Parses a subcommand's arguments (argv[0] is the subcommand). Adds --help;
// prints `usage` plus the options and returns false when it was given.
// Throws UsageError for unknown options, missing values and the like.
bool ParseArgs(int argc, char** argv, const std::string& usage, po::options_description& options,
               const po::positional_options_description& positional, po::variables_map* vm);

// --trust-owner USER (repeatable), for every command that reads tables:
// shared tables of these users are read too (store/interop/shared_table.h).
void AddTrustOption(po::options_description& options, std::vector<std::string>* owners);
OpenOptions OpenOptionsFrom(const std::vector<std::string>& owners);

int GenerateMain(int argc, char** argv);
int AppendMain(int argc, char** argv);
int InfoMain(int argc, char** argv);
int GetMain(int argc, char** argv);
int VerifyMain(int argc, char** argv);
int CompressMain(int argc, char** argv);
int DecompressMain(int argc, char** argv);
int ImportMain(int argc, char** argv);
int ExportMain(int argc, char** argv);
int ConvertMain(int argc, char** argv);
int KeysMain(int argc, char** argv);
int NearestMain(int argc, char** argv);
int ShareMain(int argc, char** argv);
int UnshareMain(int argc, char** argv);
int SharedMain(int argc, char** argv);

}  // namespace embstore::cli

#endif  // EMBSTORE_TOOLS_CLI_H_
