// embstore info: what a table is, for people and (with --json) for scripts.

#include <cstdio>
#include <memory>

#include "store/core/table_reader.h"
#include "format/checksum.h"
#include "store/embz/embz.h"
#include "store/torch/generate.h"
#include "tools/cli.h"

namespace embstore::cli {


int InfoMain(int argc, char** argv) {
  std::string path;
  std::vector<std::string> owners;
  po::options_description options("options");
  options.add_options()
      ("file", po::value(&path)->required(), "table file")
      ("json", "print one JSON object");
  AddTrustOption(options, &owners);
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: embstore info FILE [--json]\n\n"
      "Describes a table: shape, dtype, layout, checksum blocks, metadata, and for generated\n"
      "tables the PyTorch lines that make the same rows. Reads only the header: instant at any size.\n"
      "A sharded table's manifest (or its folder): its shards and their rows, from the manifest alone.";
  if (!ParseArgs(argc, argv, usage, options, positional, &vm)) return kExitOk;

  // A .embz describes the table inside it, plus its own container.
  auto opened = OpenTable(path, OpenOptionsFrom(owners));
  if (!opened.ok()) return Report("info", opened.status());
  const Table& table = **opened;
  const Header& h = table.header();
  const Metadata& metadata = table.metadata();
  const uint64_t file_size = table.file_size();
  const std::string torch = TorchReproduction(metadata, h.rows, h.dim);

  if (vm.count("json")) {
    std::printf("%s\n", TableInfoJson(table, path).c_str());
    return FinishStdout("info");
  }

  std::printf("file         %s\n", ForTerminal(path).c_str());
  if (const Manifest* m = table.manifest()) {
    // A sharded table: what its manifest says (no shard is opened).
    std::printf("format       embstore sharded table %u.%u: a manifest and %zu shard%s\n", m->version_major,
                m->version_minor, m->shards.size(), m->shards.size() == 1 ? "" : "s");
    std::printf("shape        %llu x %llu %s\n", (unsigned long long)h.rows, (unsigned long long)h.dim,
                DtypeName(h.dtype));
    std::printf("table id     %s\n", m->table_id.c_str());
    std::printf("files        %llu bytes in the shards\n", (unsigned long long)file_size);
    std::printf("keys         %s\n", m->keys ? "every shard has keys" : "none (rows by id only)");
    const size_t n = m->shards.size();
    for (size_t i = 0; i < n; ++i) {
      if (n > 12 && i == 5) {
        std::printf("  ... %zu more\n", n - 10);
        i = n - 5;
      }
      const ShardEntry& e = m->shards[i];
      std::printf("  shard %-6zu rows [%llu, %llu)  %s  checksums %s\n", i, (unsigned long long)e.first_row,
                  (unsigned long long)(e.first_row + e.rows), ForTerminal(e.path).c_str(), Hex64(e.checksum).c_str());
    }
  } else {
  std::printf("format       embstore table %u.%u\n", h.version_major, h.version_minor);
  std::printf("shape        %llu x %llu %s\n", (unsigned long long)h.rows, (unsigned long long)h.dim,
              DtypeName(h.dtype));
  std::printf("row stride   %llu bytes\n", (unsigned long long)h.row_stride);
  std::printf("data         %llu bytes at offset %llu\n", (unsigned long long)h.data_size,
              (unsigned long long)h.data_offset);
  std::printf("file size    %llu bytes\n", (unsigned long long)file_size);
  if (const EmbzHeader* container = table.embz()) {
    const EmbzHeader& z = *container;
    std::printf("compressed   embstore .embz %u.%u: %llu-byte table, ratio %.4f, %llu frames of %llu rows, level %u\n",
                z.version_major, z.version_minor, (unsigned long long)z.table_size,
                static_cast<double>(z.table_size) / static_cast<double>(file_size), (unsigned long long)z.frame_count,
                (unsigned long long)z.frame_rows, z.level);
  }
  if (const KeysView* keys = table.keys()) {
    std::printf("keys         %llu (UTF-8, %llu bytes with their index)\n", (unsigned long long)keys->size(),
                (unsigned long long)h.keys_size);
  } else {
    std::printf("keys         none (rows by id only)\n");
  }
  std::printf("checksums    XXH3-64, %llu block%s of %u rows\n", (unsigned long long)h.checksum_count,
              h.checksum_count == 1 ? "" : "s", h.checksum_block_rows);
  }
  std::printf("metadata     %zu entr%s\n", metadata.size(), metadata.size() == 1 ? "y" : "ies");
  for (const auto& [k, v] : metadata) std::printf("  %-22s %s\n", k.c_str(), EscapeForDisplay(v).c_str());
  if (!torch.empty()) {
    std::printf("same rows in PyTorch:\n");
    size_t start = 0;
    while (start < torch.size()) {
      size_t end = torch.find('\n', start);
      std::printf("  %s\n", ForTerminal(torch.substr(start, end - start)).c_str());
      start = end + 1;
    }
  }
  return FinishStdout("info");
}

}  // namespace embstore::cli
