// A table named the way users name one: a .emb path, a .embz path, or
// "shm:NAME" for a shared-memory table (store/shared_table.h). The command
// line and the Python module open tables through here, so both accept the
// same names and describe a table the same way.

#ifndef EMBSTORE_STORE_ANY_TABLE_H_
#define EMBSTORE_STORE_ANY_TABLE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/status.h"
#include "store/embz.h"
#include "store/table_reader.h"

namespace embstore {

// "shm:NAME" names a shared-memory table; "./shm:x" is a file of that name.
inline constexpr char kSharedScheme[] = "shm:";
bool IsShared(const std::string& spec);

// How tables are opened by name.
struct OpenOptions {
  // A .embz's cache of decoded frames (EmbzReader::Open).
  uint64_t cache_bytes = kDefaultFrameCache;
  // Shared-memory tables owned by these users (uids) are read too; by
  // default only segments of this process's user or root are
  // (TableReader::OpenShared).
  std::vector<uint32_t> trusted_owners;
};

// A .emb file or a shared-memory table, served zero-copy from its mapping.
// A .embz is refused (its rows are not in a mapping).
Result<TableReader> OpenTable(const std::string& spec, const OpenOptions& options = {});

// A table of either kind: a .emb or shm: table (rows straight from the
// mapping) or a .embz (rows decoded a frame at a time). Exactly one pointer
// is set.
struct AnyTable {
  std::unique_ptr<TableReader> plain;
  std::unique_ptr<EmbzReader> packed;
  const Header& header() const { return plain ? plain->header() : packed->header(); }
  const Metadata& metadata() const { return plain ? plain->metadata() : packed->metadata(); }
  uint64_t file_size() const { return plain ? plain->file_size() : packed->file_size(); }
  uint64_t rows() const { return header().rows; }
  uint64_t dim() const { return header().dim; }
  // Copies rows ids[0], ids[1], ... into out (ids.size() * dim() floats);
  // every id is checked first.
  Status Gather(std::span<const uint64_t> ids, std::span<float> out) const {
    return plain ? plain->Gather(ids, out) : packed->Gather(ids, out);
  }
};
// The file is opened once: its kind is decided from the first bytes of
// that same file, which is then what is read (a path that changes from a
// .emb to a .embz meanwhile gives one or the other, whole).
Result<AnyTable> OpenAnyTable(const std::string& spec, const OpenOptions& options = {});

// What `embstore info --json` prints: one JSON object (2-space indent)
// with the table's shape, layout, checksums, metadata, the .embz container
// (if any) and, for generated tables, the PyTorch lines that remake it.
std::string TableInfoJson(const AnyTable& table, const std::string& spec);

}  // namespace embstore

#endif  // EMBSTORE_STORE_ANY_TABLE_H_
