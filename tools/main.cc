// embstore: one command, one subcommand per job. Each subcommand is a small
// user program of the store/ library (see tools/cmd_*.cc).

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "store/core/version.h"
#include "tools/cli.h"

namespace {

struct Command {
  const char* name;
  int (*main)(int, char**);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"generate", embstore::cli::GenerateMain, "write a seeded table, bit-identical to PyTorch"},
    {"append", embstore::cli::AppendMain, "add a table's rows to a sharded table, as a new shard"},
    {"info", embstore::cli::InfoMain, "describe a table (--json for scripts)"},
    {"get", embstore::cli::GetMain, "print rows by id or A:B range (text, --json or --raw)"},
    {"verify", embstore::cli::VerifyMain, "check every checksum; list corrupt row blocks"},
    {"compress", embstore::cli::CompressMain, "write a .embz: smaller, still readable row by row"},
    {"decompress", embstore::cli::DecompressMain, "turn a .embz back into the original .emb, byte for byte"},
    {"import", embstore::cli::ImportMain, "make a table from .npy, safetensors, raw float32 or word vectors"},
    {"export", embstore::cli::ExportMain, "write a table as .npy, .safetensors or word2vec"},
    {"keys", embstore::cli::KeysMain, "list a table's keys; 'keys attach' gives a table keys"},
    {"nearest", embstore::cli::NearestMain, "the k rows closest to a row, key or vector (cosine, dot, l2)"},
    {"convert", embstore::cli::ConvertMain, "write a table as float32, float16 or bfloat16 (PyTorch's rounding)"},
    {"share", embstore::cli::ShareMain, "place a table in named shared memory (read it as shm:NAME)"},
    {"unshare", embstore::cli::UnshareMain, "remove a shared table's name"},
    {"shared", embstore::cli::SharedMain, "list the shared tables"},
};

void PrintUsage(FILE* out) {
  std::fprintf(out, "usage: embstore <command> [options]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'embstore <command> --help' describes each command.\n"
                    "exit codes: 0 ok, 1 data or I/O error, 2 usage error, 130 or 143 interrupted\n"
                    "(SIGINT, SIGTERM: long work stops and leaves nothing behind)\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace embstore::cli;
  // Past a file-size limit (ulimit -f) a write should fail with EFBIG and be
  // reported, not kill the process with SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    PrintUsage(stderr);
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    PrintUsage(stdout);
    return kExitOk;
  }
  if (cmd == "--version") {
    std::printf("embstore %s\n", embstore::kEmbstoreVersion);
    return kExitOk;
  }
  for (const Command& c : kCommands) {
    if (cmd != c.name) continue;
    try {
      return c.main(argc - 1, argv + 1);
    } catch (const UsageError& e) {
      std::fprintf(stderr, "embstore %s: %s\nTry 'embstore %s --help'.\n", c.name, ForTerminal(e.message).c_str(),
                   c.name);
      return kExitUsage;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "embstore %s: out of memory\n", c.name);
      return kExitData;
    }
  }
  std::fprintf(stderr, "embstore: unknown command '%s'\n\n", ForTerminal(cmd).c_str());
  PrintUsage(stderr);
  return kExitUsage;
}
