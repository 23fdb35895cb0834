#include "store/interop/open_table.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "format/checksum.h"

#include "store/core/file_util.h"
#include "store/interop/shared_table.h"
#include "store/shard/sharded_table.h"
#include "store/torch/generate.h"

namespace embstore {

bool IsShared(const std::string& spec) { return spec.rfind(kSharedScheme, 0) == 0; }

namespace {

// A table file (.emb, .embz) or a manifest, by its first bytes; shards
// are files only (a manifest among shards is refused).
Result<std::unique_ptr<Table>> OpenFile(const std::string& path, const OpenOptions& options, bool shard) {
  MapOptions mo;
  mo.follow_symlinks = !shard;  // a shard must be a regular file in its manifest's folder
  mo.keep_descriptor = !shard;  // a table may have thousands of shards
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path, mo));
  // (A manifest is told by its first byte that is not whitespace: 4 KiB
  // of whitespace before it is allowed.)
  const std::span<const uint8_t> head = file.bytes().first(std::min<uint64_t>(file.size(), 4096));
  if (LooksLikeEmbz(head.first(std::min<size_t>(head.size(), sizeof(kEmbzMagic))))) {
    EMB_ASSIGN_OR_RETURN(auto z, EmbzReader::Open(std::move(file), options.cache_bytes));
    return std::unique_ptr<Table>(std::move(z));
  }
  if (LooksLikeManifest(head)) {
    if (shard) return Status::Corruption(path + ": is a manifest, not a table file (a manifest cannot be a shard)");
    // The .embz frame cache is the table's: its shards share cache_bytes
    // (at least a frame each), set once the manifest says how many there are.
    auto per_shard = std::make_shared<uint64_t>(options.cache_bytes);
    auto opener = [options, per_shard](const std::string& p) {
      OpenOptions o = options;
      o.cache_bytes = *per_shard;
      return OpenFile(p, o, true);
    };
    EMB_ASSIGN_OR_RETURN(auto t, ShardedTable::Open(path, file.bytes(), opener));
    *per_shard = std::max<uint64_t>(1, options.cache_bytes / t->shards().shards.size());
    return std::unique_ptr<Table>(std::move(t));
  }
  EMB_ASSIGN_OR_RETURN(TableReader r, TableReader::Open(std::move(file)));
  return std::unique_ptr<Table>(std::make_unique<TableReader>(std::move(r)));
}

}  // namespace

std::string ResolveTableSpec(const std::string& spec) {
  std::error_code ec;
  if (!IsShared(spec) && std::filesystem::is_directory(spec, ec)) {
    const std::string manifest = (spec.back() != '/' ? spec + "/" : spec) + kManifestFileName;
    // A folder without one is itself, and refused as not a table file.
    if (std::filesystem::exists(manifest, ec)) return manifest;
  }
  return spec;
}

Result<std::unique_ptr<Table>> OpenTable(const std::string& spec, const OpenOptions& options) {
  if (IsShared(spec)) {
    EMB_ASSIGN_OR_RETURN(TableReader r, OpenSharedTable(spec.substr(sizeof(kSharedScheme) - 1), options.trusted_owners));
    return std::unique_ptr<Table>(std::make_unique<TableReader>(std::move(r)));
  }
  const std::string file = ResolveTableSpec(spec);
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    // Refused as any folder is, saying what would make it a table.
    return Status::IOError(NotRegularFile(file, 0040000).message() + " (nor a sharded table's folder: it holds no " +
                           kManifestFileName + ")");
  }
  return OpenFile(file, options, false);
}

Result<TableReader> OpenMappedTable(const std::string& spec, const OpenOptions& options) {
  if (IsShared(spec)) return OpenSharedTable(spec.substr(sizeof(kSharedScheme) - 1), options.trusted_owners);
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(spec));
  if (LooksLikeEmbz(file.bytes().first(std::min<uint64_t>(file.size(), sizeof(kEmbzMagic))))) {
    return Status::InvalidArgument(spec + ": is a compressed table (.embz); this needs a .emb or a shared table "
                                   "(decompress or share it first)");
  }
  if (LooksLikeManifest(file.bytes().first(std::min<uint64_t>(file.size(), 4096)))) {
    return Status::InvalidArgument(spec + ": is a sharded table's manifest; this needs one .emb file or a shared "
                                   "table (work on its shards one by one)");
  }
  return TableReader::Open(std::move(file));
}

std::string TableInfoJson(const Table& table, const std::string& spec) {
  const Header& h = table.header();
  const uint64_t file_size = table.file_size();
  nlohmann::ordered_json j;
  j["file"] = spec;
  if (const Manifest* m = table.manifest()) {
    j["sharded"] = {{"format_version", std::to_string(m->version_major) + "." + std::to_string(m->version_minor)},
                    {"table_id", m->table_id},
                    {"shards", nlohmann::ordered_json::array()}};
    for (const ShardEntry& e : m->shards) {
      j["sharded"]["shards"].push_back(
          {{"path", e.path}, {"first_row", e.first_row}, {"rows", e.rows}, {"checksum", Hex64(e.checksum)}});
    }
    j["dtype"] = DtypeName(h.dtype);
    j["rows"] = h.rows;
    j["dim"] = h.dim;
    j["file_size"] = file_size;
    j["keys"] = m->keys;
    j["metadata"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : table.metadata()) j["metadata"][k] = v;
    const std::string torch = TorchReproduction(table.metadata(), h.rows, h.dim);
    if (!torch.empty()) j["torch"] = torch;
    return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  j["format_version"] = std::to_string(h.version_major) + "." + std::to_string(h.version_minor);
  j["dtype"] = DtypeName(h.dtype);
  j["rows"] = h.rows;
  j["dim"] = h.dim;
  j["row_stride"] = h.row_stride;
  j["data_offset"] = h.data_offset;
  j["data_size"] = h.data_size;
  j["file_size"] = file_size;
  if (const EmbzHeader* container = table.embz()) {
    const EmbzHeader& z = *container;
    j["compressed"] = {{"format_version", std::to_string(z.version_major) + "." + std::to_string(z.version_minor)},
                       {"table_size", z.table_size},
                       {"ratio", static_cast<double>(z.table_size) / static_cast<double>(file_size)},
                       {"frame_rows", z.frame_rows},
                       {"frames", z.frame_count},
                       {"level", z.level}};
  }
  if (const KeysView* keys = table.keys()) {
    j["keys"] = {{"count", keys->size()}, {"bytes", h.keys_size}};
  } else {
    j["keys"] = nullptr;
  }
  j["checksum"] = {{"algorithm", "xxh3-64"}, {"block_rows", h.checksum_block_rows}, {"blocks", h.checksum_count}};
  j["metadata"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : table.metadata()) j["metadata"][k] = v;
  const std::string torch = TorchReproduction(table.metadata(), h.rows, h.dim);
  if (!torch.empty()) j["torch"] = torch;
  // Metadata values are bytes; replace invalid UTF-8 rather than fail.
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace embstore
