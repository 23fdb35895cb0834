// Tables by the names users give them: a .emb path, a .embz path, a
// sharded table's manifest (or the folder holding it as manifest.json:
// store/shard/sharded_table.h), or "shm:NAME" for a shared-memory table
// (store/interop/shared_table.h). The
// command line, the Python module and `share` open tables through here, so
// all accept the same names and describe a table the same way. What comes
// back is a Table (store/core/table.h): callers do not ask which kind.

#ifndef EMBSTORE_STORE_INTEROP_OPEN_TABLE_H_
#define EMBSTORE_STORE_INTEROP_OPEN_TABLE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/status.h"
#include "store/core/table.h"
#include "store/core/table_reader.h"
#include "store/embz/embz.h"

namespace embstore {

// "shm:NAME" names a shared-memory table; "./shm:x" is a file of that name.
inline constexpr char kSharedScheme[] = "shm:";
bool IsShared(const std::string& spec);

// How tables are opened by name.
struct OpenOptions {
  // A .embz's cache of decoded frames (EmbzReader::Open); a sharded
  // table's .embz shards share it (at least one frame each).
  uint64_t cache_bytes = kDefaultFrameCache;
  // Shared-memory tables owned by these users (uids) are read too; by
  // default only segments of this process's user or root are
  // (OpenSharedTable).
  std::vector<uint32_t> trusted_owners;
};

// Any table. A file is opened once: its kind is decided from the first
// bytes of that same file, which is then what is read (a path that changes
// from a .emb to a .embz meanwhile gives one or the other, whole).
// A manifest's shards are opened lazily with the same options.
Result<std::unique_ptr<Table>> OpenTable(const std::string& spec, const OpenOptions& options = {});
// The file a name means: a folder holding a manifest.json means it;
// anything else is itself.
std::string ResolveTableSpec(const std::string& spec);

// A table whose rows lie in a mapping (a .emb file or a shared table), for
// work that needs its bytes in place (compress); a .embz is refused with an
// invalid-argument error saying so.
Result<TableReader> OpenMappedTable(const std::string& spec, const OpenOptions& options = {});

// What `embstore info --json` prints: one JSON object (2-space indent)
// with the table's shape, layout, checksums, metadata, its .embz container
// (if it has one) and, for generated tables, the PyTorch lines that remake it.
std::string TableInfoJson(const Table& table, const std::string& spec);

}  // namespace embstore

#endif  // EMBSTORE_STORE_INTEROP_OPEN_TABLE_H_
