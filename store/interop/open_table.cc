#include "store/interop/open_table.h"

#include <nlohmann/json.hpp>

#include "store/interop/shared_table.h"
#include "store/torch/generate.h"

namespace embstore {

bool IsShared(const std::string& spec) { return spec.rfind(kSharedScheme, 0) == 0; }

Result<std::unique_ptr<Table>> OpenTable(const std::string& spec, const OpenOptions& options) {
  if (IsShared(spec)) {
    EMB_ASSIGN_OR_RETURN(TableReader r, OpenSharedTable(spec.substr(sizeof(kSharedScheme) - 1), options.trusted_owners));
    return std::unique_ptr<Table>(std::make_unique<TableReader>(std::move(r)));
  }
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(spec));
  if (LooksLikeEmbz(file.bytes().first(std::min<uint64_t>(file.size(), sizeof(kEmbzMagic))))) {
    EMB_ASSIGN_OR_RETURN(auto z, EmbzReader::Open(std::move(file), options.cache_bytes));
    return std::unique_ptr<Table>(std::move(z));
  }
  EMB_ASSIGN_OR_RETURN(TableReader r, TableReader::Open(std::move(file)));
  return std::unique_ptr<Table>(std::make_unique<TableReader>(std::move(r)));
}

Result<TableReader> OpenMappedTable(const std::string& spec, const OpenOptions& options) {
  if (IsShared(spec)) return OpenSharedTable(spec.substr(sizeof(kSharedScheme) - 1), options.trusted_owners);
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(spec));
  if (LooksLikeEmbz(file.bytes().first(std::min<uint64_t>(file.size(), sizeof(kEmbzMagic))))) {
    return Status::InvalidArgument(spec + ": is a compressed table (.embz); this needs a .emb or a shared table "
                                   "(decompress or share it first)");
  }
  return TableReader::Open(std::move(file));
}

std::string TableInfoJson(const Table& table, const std::string& spec) {
  const Header& h = table.header();
  const uint64_t file_size = table.file_size();
  nlohmann::ordered_json j;
  j["file"] = spec;
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
