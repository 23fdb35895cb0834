// embstore share / unshare / shared: tables in named shared memory, for
// process pools that should hold one copy in RAM (store/interop/shared_table.h).

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "store/core/file_util.h"
#include "store/core/table_reader.h"
#include "store/interop/shared_table.h"
#include "tools/cli.h"

namespace embstore::cli {

namespace {

// "0600", "600", "0o640": octal permission bits.
uint32_t ParseMode(const std::string& text) {
  std::string digits = text;
  if (digits.rfind("0o", 0) == 0) digits = digits.substr(2);
  if (digits.empty() || digits.size() > 4) throw UsageError{"--mode: '" + text + "' is not an octal mode like 0600"};
  uint32_t mode = 0;
  for (char c : digits) {
    if (c < '0' || c > '7') throw UsageError{"--mode: '" + text + "' is not an octal mode like 0600"};
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  if (mode > 0777 || (mode & 0400) == 0) {
    throw UsageError{"--mode: '" + text + "': permission bits within 0777 that let the owner read (0400)"};
  }
  return mode;
}

}  // namespace

int ShareMain(int argc, char** argv) {
  std::string source, name, mode = "0600", threads = "0";
  bool force = false, quiet = false, verbose = false;
  std::vector<std::string> owners;
  po::options_description options("options");
  options.add_options()
      ("source", po::value(&source)->required(), "table: FILE.emb, FILE.embz or shm:NAME")
      ("name", po::value(&name)->required(), "segment name: letters, digits, '.', '_', '-'")
      ("force,f", po::bool_switch(&force), "replace a segment of that name (its readers keep the old one)")
      ("mode", po::value(&mode)->default_value("0600"), "who may read it, octal (write bits are dropped)")
      ("threads,T", po::value(&threads)->default_value("0"), "threads, 0: all cores")
      ("quiet,q", po::bool_switch(&quiet), "no progress bar")
      ("verbose,v", po::bool_switch(&verbose), "print a summary line");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("source", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore share FILE --name NAME [-f] [--mode 0600] [-T N]\n\n"
      "Places the table (a .emb, or a .embz inflated once) in shared memory, verified, under\n"
      "NAME; processes then open it as shm:NAME (e.g. 'embstore get shm:NAME 3') with no copy.\n"
      "It appears whole or not at all, and lives until 'embstore unshare NAME' or a reboot.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  ShareOptions o;
  o.mode = ParseMode(mode);
  o.replace = force;
  o.threads = ParseThreads(threads);
  o.trusted_owners = OpenOptionsFrom(owners).trusted_owners;
  if (Status st = ValidateSharedName(name); !st.ok()) throw UsageError{"--name: " + st.message()};
  // Checked again, atomically, when the segment gets its name: a loser of
  // two racing shares gets this same error, and exit 1, either way.
  if (!force && Exists(SharedPath(name))) {
    return Report("share", Status::AlreadyExists("shared table '" + name + "' already exists; use -f to replace it"));
  }
  // The total is the table's size, which only ShareTable knows (.embz).
  ProgressBar bar("share", "bytes");
  if (!quiet) o.progress = bar.Callback();
  Status st = Interruptible([&](const CancelToken* cancel) {
    o.cancel = cancel;
    return ShareTable(source, name, o);
  });
  bar.Done();
  if (!st.ok()) return Report("share", st);
  if (verbose) {
    auto t = OpenSharedTable(name);
    if (t.ok()) {
      std::fprintf(stderr, "shm:%s: %" PRIu64 " x %" PRIu64 ", %" PRIu64 " bytes in %s\n", name.c_str(), t->rows(),
                   t->dim(), t->file_size(), SharedPath(name).c_str());
    }
  }
  return kExitOk;
}

int UnshareMain(int argc, char** argv) {
  std::string name;
  po::options_description options("options");
  options.add_options()("name", po::value(&name)->required(), "segment name");
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore unshare NAME\n\n"
      "Removes a shared table's name. Processes that have it open keep reading it; its memory\n"
      "is freed when the last of them closes it.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  if (name.rfind(kSharedScheme, 0) == 0) name = name.substr(sizeof(kSharedScheme) - 1);
  if (Status st = ValidateSharedName(name); !st.ok()) throw UsageError{st.message()};
  Status st = UnshareTable(name);
  return st.ok() ? kExitOk : Report("unshare", st);
}

int SharedMain(int argc, char** argv) {
  po::options_description options("options");
  options.add_options()("json", "print a JSON array");
  po::positional_options_description positional;
  po::variables_map vm;
  const std::string usage =
      "usage: embstore shared [--json]\n\n"
      "Lists the shared tables (segments in " + SharedDir() + "), with shape, size and mode.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  auto list = ListShared();
  if (!list.ok()) return Report("shared", list.status());
  if (vm.count("json")) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (const auto& s : *list) {
      nlohmann::ordered_json e;
      e["name"] = s.name;
      e["path"] = SharedPath(s.name);
      e["bytes"] = s.bytes;
      e["mode"] = OctalMode(s.mode);
      e["uid"] = s.uid;
      if (s.valid) {
        e["rows"] = s.rows;
        e["dim"] = s.dim;
      } else {
        e["error"] = s.error;
      }
      j.push_back(e);
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return FinishStdout("shared");
  }
  if (list->empty()) std::printf("no shared tables in %s\n", SharedDir().c_str());
  for (const auto& s : *list) {
    if (s.valid) {
      std::printf("shm:%-24s %" PRIu64 " x %" PRIu64 " float32  %" PRIu64 " bytes  mode %s  uid %u\n", s.name.c_str(),
                  s.rows, s.dim, s.bytes, OctalMode(s.mode).c_str(), s.uid);
    } else {
      std::printf("shm:%-24s %" PRIu64 " bytes  mode %s  uid %u  NOT A TABLE: %s\n", s.name.c_str(), s.bytes,
                  OctalMode(s.mode).c_str(), s.uid, s.error.c_str());
    }
  }
  return FinishStdout("shared");
}

}  // namespace embstore::cli
