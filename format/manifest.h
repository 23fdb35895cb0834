// A sharded table's manifest, version 1.0, as code (FORMAT.md, "Sharded
// tables"): the small JSON file that lists a table's shards, each an
// ordinary table file holding a contiguous run of the table's rows, plus
// the metadata keys by which each shard names the table it belongs to.
//
// Pure functions over bytes and values: no files, no threads, no
// exceptions out.

#ifndef EMBSTORE_FORMAT_MANIFEST_H_
#define EMBSTORE_FORMAT_MANIFEST_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/metadata.h"
#include "format/status.h"
#include "format/table_format.h"

namespace embstore {

// FORMAT.md, "Sharded tables".
inline constexpr char kManifestFormat[] = "embstore sharded table";
inline constexpr uint32_t kManifestVersionMajor = 1;
inline constexpr uint32_t kManifestVersionMinor = 0;
// The name writers give a manifest in its folder; readers take any name.
inline constexpr char kManifestFileName[] = "manifest.json";
// Readers refuse larger manifests before parsing them, and more shards.
inline constexpr uint64_t kMaxManifestSize = uint64_t{64} << 20;
// (2^15: a process reading every shard maps each, and Linux allows a
// process 65,530 mappings by default.)
inline constexpr uint64_t kMaxShards = uint64_t{1} << 15;
// Nor more JSON values (objects, lists, numbers, strings, ...) than this:
// a shard's entry is five of them, so a manifest of kMaxShards shards holds
// 164 thousand, and its tree takes about 30 MB; nor lists and objects nested
// deeper than this (a shard's entry is an object in a list in an object: 3).
inline constexpr uint64_t kMaxManifestValues = 8 * kMaxShards;
inline constexpr uint64_t kMaxManifestDepth = 16;
// A sharded table's rows: any count whose bytes fit in 2^62.
inline constexpr uint64_t kMaxShardedRows = uint64_t{1} << 52;

// The metadata keys by which a shard names its table (FORMAT.md, "Metadata
// keys").
inline constexpr char kShardTableKey[] = "shard.table";          // the table id, 32 hex digits
inline constexpr char kShardIndexKey[] = "shard.index";          // 0-based position in the manifest
inline constexpr char kShardCountKey[] = "shard.count";          // shards the table had when it was written
inline constexpr char kShardFirstRowKey[] = "shard.first_row";   // its first row in the table

struct ShardEntry {
  std::string path;        // a file name in the manifest's folder
  uint64_t first_row = 0;  // the table's row its row 0 is
  uint64_t rows = 0;
  uint64_t checksum = 0;   // ShardChecksum of the shard
};

struct Manifest {
  uint32_t version_major = kManifestVersionMajor;
  uint32_t version_minor = kManifestVersionMinor;
  std::string table_id;  // 32 lowercase hex digits
  uint64_t rows = 0;     // the sum of the shards' rows
  uint64_t dim = 0;
  Dtype dtype = Dtype::kFloat32;
  bool keys = false;     // every shard has keys (unique across the table), or none has
  Metadata metadata;     // the table's provenance (FORMAT.md, "Metadata keys"), as a table records it
  std::vector<ShardEntry> shards;  // in row order, contiguous from row 0

  // The shard holding row `row`, by binary search. REQUIRES: row < rows.
  uint64_t ShardOf(uint64_t row) const;
};

// Whether bytes look like a manifest rather than a table: the first byte
// that is not JSON whitespace is '{'. Tables and .embz files start with 0x89.
bool LooksLikeManifest(std::span<const uint8_t> prefix);

// Parses and checks a manifest (rules M1-M8 of FORMAT.md): a corruption
// error naming the field or shard, or not-supported for another major
// version. Checks the shards' row ranges (no gap, no overlap, the total)
// and their paths (a plain file name: no folder, no "..", unique), and
// nothing of the shards' files. JSON past kMaxManifestValues values or
// kMaxManifestDepth levels is not supported (refused before a tree is
// built), and a key twice in one object is corrupt.
Result<Manifest> DecodeManifest(std::span<const uint8_t> bytes);
// The manifest as JSON text, one shard a line; a function of its fields.
// REQUIRES: m passes CheckManifest.
std::string EncodeManifest(const Manifest& m);
// The checks DecodeManifest makes on the decoded fields.
Status CheckManifest(const Manifest& m);

// Whether name is usable as a shard's path: 1 to 255 bytes, not "." or
// "..", no '/' and no NUL, not starting with '.' (hidden temporary files).
Status CheckShardPath(const std::string& name);

// The checksum the manifest records for a shard: XXH3-64 of the shard's
// header checksum (the u64 at header_size - 8, which covers every header
// field, the metadata's and the keys' checksums) followed by its checksum
// table (the checksums of its rows). It is a checksum of the shard's own
// checksums: computed from the table prefix alone, equal for a .emb shard
// and the same table compressed into a .embz.
// `prefix` is the table file's bytes [0, data_offset) at least; h its
// decoded header.
uint64_t ShardChecksum(std::span<const uint8_t> prefix, const Header& h);

// A table id: 32 lowercase hex digits, the XXH3-128 of `seed`. Writers
// derive it from what makes the table (generation parameters, a source
// table's id), so that redoing the same work writes the same bytes.
std::string TableIdFrom(std::string_view seed);
bool IsTableId(const std::string& s);

// The shard keys a shard of table `table_id` carries.
void AddShardMetadata(Metadata* m, const std::string& table_id, uint64_t index, uint64_t count, uint64_t first_row);
// A corruption error unless a shard's metadata names table `table_id`,
// index `index` (with a shard count above it) and first row `first_row`.
// `what` names the shard in the message.
Status CheckShardMetadata(const Metadata& m, const std::string& table_id, uint64_t index, uint64_t first_row,
                          const std::string& what);

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_MANIFEST_H_
