// ShardedTable: a table kept as a manifest and ordinary table files, its
// shards, each holding a contiguous run of rows (FORMAT.md, "Sharded
// tables"). It is one more kind of Table (store/core/table.h): callers read
// rows, verify and search it as any other.
//
// Opening reads and checks the manifest only: a shard is opened the first
// time one of its rows is asked for (once, whichever thread asks first;
// a shard that fails is tried again at the next ask), and checked then
// against the manifest: a regular file in the manifest's
// folder (not a symlink), the same dim, dtype and row count, the table id,
// index and first row its own metadata records, and the checksum of its
// checksums the manifest records. A shard that fails any of these is an
// error naming it and its rows, for every row it holds, and never a wrong
// row. Ids go to shards by binary search over the manifest's row ranges.
//
// The manifest is read once, at Open: a manifest replaced afterwards (an
// append) is seen by tables opened afterwards. Shards are immutable files,
// so a table keeps serving the set of shards its manifest listed.
//
// Thread safety: as every Table, const methods from any number of threads.

#ifndef EMBSTORE_STORE_SHARD_SHARDED_TABLE_H_
#define EMBSTORE_STORE_SHARD_SHARDED_TABLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "format/manifest.h"
#include "format/status.h"
#include "store/core/atomic_file.h"
#include "store/core/table.h"

namespace embstore {

// Opens one shard's file as a table (OpenTable, store/interop/open_table.h,
// which knows .emb and .embz files).
using ShardOpener = std::function<Result<std::unique_ptr<Table>>(const std::string& path)>;

class ShardedTable final : public Table {
 public:
  // The manifest at manifest_path, whose bytes the caller has read (at
  // most kMaxManifestSize of them).
  static Result<std::unique_ptr<ShardedTable>> Open(const std::string& manifest_path,
                                                    std::span<const uint8_t> manifest_bytes, ShardOpener opener);
  ~ShardedTable() override;

  const Manifest& shards() const { return manifest_; }
  const Manifest* manifest() const override { return &manifest_; }
  // The folder the shards' paths are relative to.
  const std::string& folder() const { return folder_; }
  // The path of shard i's file.
  std::string ShardPath(uint64_t i) const;
  // Shard i, opened and checked (on the first call).
  Result<const Table*> Shard(uint64_t i) const;
  // "shard 3 (shard-000003.emb, rows [A, B))", for messages.
  std::string ShardName(uint64_t i) const;

  const Header& header() const override { return header_; }
  const Metadata& metadata() const override { return metadata_; }
  const std::string& path() const override { return path_; }
  // The shards' files together, as they are now (stat, not opened).
  uint64_t file_size() const override;

  using Table::Gather;
  using Table::ReadRows;
  Status Gather(std::span<const uint64_t> ids, Dtype as, std::span<uint8_t> out) const override;
  Status ReadRows(uint64_t first, uint64_t count, Dtype as, std::span<uint8_t> out) const override;
  Status Advise(AccessHint hint, uint64_t first_row, uint64_t row_count) const override;
  // Every shard in turn; findings name the shard (BadRows::shard) and rows
  // of the whole table; a shard that cannot be checked at all is listed in
  // bad_shards.
  Result<VerifyReport> Verify(const VerifyOptions& options = {}) const override;
  bool checks_rows_on_read() const override { return false; }
  // A sharded table is not one file: WriteEmb is not supported (the
  // commands work shard by shard).
  uint64_t emb_size() const override { return header_.data_size; }
  Status WriteEmb(AtomicFile* out, unsigned threads, const Progress& progress = {},
                  const CancelToken* cancel = nullptr) const override;

 private:
  struct Slot;
  ShardedTable(std::string path, Manifest manifest, Metadata metadata, ShardOpener opener);
  Result<std::unique_ptr<Table>> OpenShard(uint64_t i) const;
  uint64_t ShardOf(uint64_t row) const;  // REQUIRES: row < rows

  std::string path_, folder_;
  Manifest manifest_;
  Metadata metadata_;
  Header header_;
  ShardOpener opener_;
  std::vector<uint64_t> starts_;  // each shard's first row, then the total: for the binary search
  std::unique_ptr<Slot[]> slots_;
};

// The manifest entry for a shard file: its name in its folder, rows and
// ShardChecksum, with first_row as given.
ShardEntry DescribeShard(const Table& shard, const std::string& name, uint64_t first_row);

// Writes a manifest atomically (AtomicFile: a reader sees the old one or
// the new one, never a mix); replace: false refuses an existing file.
Status WriteManifest(const std::string& path, const Manifest& manifest, bool sync = true, bool replace = true);

// The folder a manifest's shards are in: the manifest's own; for a
// symlink to a manifest, the folder of the manifest it names (whose shards
// lie beside it, and which an append extends).
std::string ManifestFolder(const std::string& manifest_path);

// The name writers give shard i: "shard-000003.emb" (0-based, six digits
// or more), or with the extension given.
std::string ShardFileName(uint64_t index, const std::string& extension = ".emb");

}  // namespace embstore

#endif  // EMBSTORE_STORE_SHARD_SHARDED_TABLE_H_
