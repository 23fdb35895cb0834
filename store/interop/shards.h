// The work that writes sharded tables (FORMAT.md, "Sharded tables";
// reading them is store/shard/sharded_table.h): generating one shard by
// shard, appending a table as a new shard, and compressing, decompressing
// or converting a sharded table shard by shard into another folder.
//
// Every shard is written as any table is (TableWriter, AtomicFile: whole
// or not at all), checked, and only then listed: a manifest is written
// last, atomically, after every shard it lists is in place and verified.
// A process killed at any point leaves the old manifest (or none) and no
// temporary file a later run trips on; redoing the same work writes the
// same bytes, since table ids are derived from what makes the table.
//
// The one-shard functions (GenerateShard, ...) are what a cluster's tasks
// call (the Python module's embstore.dask), one per shard, the manifest
// being written by whoever gathers their entries.

#ifndef EMBSTORE_STORE_INTEROP_SHARDS_H_
#define EMBSTORE_STORE_INTEROP_SHARDS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/manifest.h"
#include "format/status.h"
#include "store/core/cancel.h"
#include "store/embz/embz.h"
#include "store/shard/sharded_table.h"
#include "store/torch/generate.h"

namespace embstore {

struct ShardWorkOptions {
  unsigned threads = 0;  // per shard; 0: all cores
  bool sync = true;      // fsync each shard and the manifest
  // (rows done, rows total) of the whole table, from the calling thread.
  std::function<void(uint64_t, uint64_t)> progress;
  const CancelToken* cancel = nullptr;
};

// The row ranges of a table of `rows` rows cut into shards of shard_rows
// (the last one shorter): (first_row, rows) pairs.
Result<std::vector<std::pair<uint64_t, uint64_t>>> PlanShards(uint64_t rows, uint64_t shard_rows);

// The id of the table `generate` makes from spec (its whole rows) cut into
// shards of shard_rows: the same parameters always give the same id.
std::string GeneratedTableId(const GenerateSpec& spec, uint64_t shard_rows);
// The manifest of that table, with the entries of its shards.
Manifest GeneratedManifest(const GenerateSpec& spec, const std::string& table_id, std::vector<ShardEntry> shards);
// Writes shard `index` of `count` (rows [spec.first_row, + spec.count()))
// of table `table_id` at path, checks it, and returns its entry (its path
// being the file's name). Redone, it writes the same bytes.
Result<ShardEntry> GenerateShard(const std::string& path, const GenerateSpec& spec, const std::string& table_id,
                                 uint64_t index, uint64_t count);
// Before a table's shards are written into a folder: a manifest there of
// another table is removed first (unlinked; a reader that has it open
// keeps it), so that no manifest ever lists shards of two tables; a run
// stopped midway then leaves no manifest rather than a wrong one.
void RemoveOtherTablesManifest(const std::string& manifest, const std::string& table_id);
// The whole sharded table into folder dir (made if missing): shards
// shard-000000.emb, ... then dir/manifest.json. Returns the manifest's path.
Result<std::string> GenerateSharded(const std::string& dir, const GenerateSpec& spec, uint64_t shard_rows,
                                    const ShardWorkOptions& options = {});

// Adds the table at `source` (any table; verified first) as a new last
// shard of the sharded table whose manifest is at `manifest`: same dim and
// dtype, keys if and only if the table has keys (and none already in it).
// The shard is written beside the manifest as shard-NNNNNN.emb (its rows
// and metadata, plus the shard keys), then the manifest is replaced. The
// name is the first the manifest does not list whose file is absent, or is
// what a killed append of this same shard left (this table's id, index and
// first row); anything else there (another manifest's shard, a symlink) is
// kept and the next name taken.
// Appenders to one manifest take turns (a lock file beside it). Returns the
// new entry.
Result<ShardEntry> AppendShard(const std::string& manifest, const std::string& source,
                               const ShardWorkOptions& options = {});

// What to do to each shard.
enum class ShardOp { kCompress, kDecompress, kConvert };
struct ShardOpOptions : ShardWorkOptions {
  ShardOp op = ShardOp::kCompress;
  int level = kDefaultLevel;      // kCompress
  uint64_t frame_rows = 0;        // kCompress: rows per frame (0: about 128 KiB)
  Dtype dtype = Dtype::kFloat32;  // kConvert
  bool replace = true;            // an existing manifest or shard file in out_dir is replaced
};
// Shard `index` of `table` done into out_dir (compressed: NAME.embz,
// decompressed: NAME.emb, converted: NAME.emb, NAME being the shard's file
// name less its extension), checked; returns its entry for the new
// manifest. Converting makes another table (new rows): its id is derived
// from the source's and the dtype.
Result<ShardEntry> ShardOpOne(const ShardedTable& table, uint64_t index, const std::string& out_dir,
                              const ShardOpOptions& options);
// The new table's manifest from the entries ShardOpOne returned.
Manifest ShardOpManifest(const ShardedTable& table, const ShardOpOptions& options, std::vector<ShardEntry> shards);
// Writes it as out_dir/manifest.json; in the source's own folder, under
// the folder's manifest lock and only if the source manifest still lists
// the shards the work started from. Returns its path.
Result<std::string> WriteShardOpManifest(const ShardedTable& table, const std::string& out_dir,
                                         const ShardOpOptions& options, std::vector<ShardEntry> entries);
// Every shard, then out_dir/manifest.json. Returns the manifest's path.
Result<std::string> ShardOpAll(const ShardedTable& table, const std::string& out_dir, const ShardOpOptions& options);

}  // namespace embstore

#endif  // EMBSTORE_STORE_INTEROP_SHARDS_H_
