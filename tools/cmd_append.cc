// embstore append: adds a table's rows to a sharded table, as a new shard.

#include <cinttypes>
#include <cstdio>

#include "store/interop/shards.h"
#include "tools/cli.h"

namespace embstore::cli {

int AppendMain(int argc, char** argv) {
  std::string manifest, source;
  po::options_description options("options");
  options.add_options()
      ("manifest", po::value(&manifest)->required(), "the sharded table's manifest (or its folder)")
      ("table", po::value(&source)->required(), "the table whose rows to add (.emb or .embz)")
      ("no-fsync", "skip fsync of the shard and the manifest");
  po::positional_options_description positional;
  positional.add("manifest", 1).add("table", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore append MANIFEST TABLE\n\n"
      "Adds TABLE's rows after the sharded table's last row, as a new shard beside the manifest\n"
      "(shard-NNNNNN.emb: TABLE's rows, metadata and keys). TABLE must have the same dim and dtype,\n"
      "and keys if and only if the table has keys (none already in it); it is verified first. The\n"
      "manifest is replaced last, atomically: readers see the old rows or the new ones, and a killed\n"
      "append leaves the old manifest.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;
  ShardWorkOptions o;
  o.sync = vm.count("no-fsync") == 0;
  Result<ShardEntry> entry = Interruptible([&](const CancelToken* cancel) {
    o.cancel = cancel;
    return AppendShard(manifest, source, o);
  });
  if (!entry.ok()) return Report("append", entry.status());
  std::printf("%s: added %s: rows [%" PRIu64 ", %" PRIu64 ")\n", ForTerminal(manifest).c_str(),
              ForTerminal(entry->path).c_str(), entry->first_row, entry->first_row + entry->rows);
  return FinishStdout("append");
}

}  // namespace embstore::cli
