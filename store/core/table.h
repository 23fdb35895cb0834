// Table: the one read interface over every kind of table, whether its rows
// lie in a mapped .emb file, a shared-memory segment, or the frames of a
// .embz (and, later, a set of shards or half-precision rows). Callers ask
// for a table's shape, metadata and rows and never which kind it is; the
// few things only some kinds can do are capabilities that answer null when
// absent (mapped(): zero-copy rows; embz(): the container's parameters).
//
// Implementations: TableReader (store/core/table_reader.h: .emb files and
// shared memory, rows served from the mapping) and EmbzReader
// (store/embz/embz.h: rows decoded a frame at a time and checked). Tables
// are opened by name with OpenTable (store/interop/open_table.h).
//
// Element types (dtype(): float32, float16, bfloat16) are part of the
// interface: Gather and ReadRows hand out rows in the type the caller
// names, the stored bytes or converted (float32 when nothing is said), and
// mapped() gives typed spans of the stored elements.
//
// A sharded table (store/shard/sharded_table.h) is one more kind: a
// manifest and its shards, each an ordinary table; it sends each id to the
// shard holding it and verifies them all, one report naming each bad
// shard and rows of the whole table. Its header() describes the whole
// table (rows may exceed a file's 2^32); its manifest() lists the shards.
// Keys (a token to a row id, FORMAT.md 1.2) are a capability beside
// mapped() and embz(): keys() is null for a table without them, so only
// callers that look rows up by key ever see it.
//
// Thread safety: every const method of every implementation may be called
// from any number of threads at once. A Table is not copyable.

#ifndef EMBSTORE_STORE_CORE_TABLE_H_
#define EMBSTORE_STORE_CORE_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "format/embz_format.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "format/metadata.h"
#include "format/status.h"
#include "format/table_format.h"
#include "store/core/cancel.h"
#include "store/core/mapped_file.h"  // AccessHint

namespace embstore {

class AtomicFile;
class TableReader;

// (bytes done, bytes total), from the calling thread, about ten times a
// second; may be empty.
using Progress = std::function<void(uint64_t done, uint64_t total)>;

struct VerifyOptions {
  unsigned threads = 0;  // 0: all cores (at most kMaxThreads)
  Progress progress;
  const CancelToken* cancel = nullptr;  // stops the check early (store/core/cancel.h)
};

// Rows that failed verification: a checksum block of the table (its rows
// do not hash to the checksum the table stores), or a frame of its
// container (it does not decode, or not to its seek-table checksum).
struct BadRows {
  enum class Unit { kBlock, kFrame };
  Unit unit = Unit::kBlock;
  uint64_t index = 0;      // the block's or the frame's number
  uint64_t first_row = 0;
  uint64_t row_count = 0;
  uint64_t stored = 0;     // kBlock: the checksum the table stores
  uint64_t computed = 0;   // kBlock: the one its rows hash to
  std::string error;       // kFrame: what is wrong with it
  std::string shard;       // a sharded table: the shard's path in its manifest (rows stay the table's)

  const char* unit_name() const { return unit == Unit::kBlock ? "block" : "frame"; }
  // "block 3: rows [A, B) (stored xxh3 .., computed ..)" or
  // "frame 2: rows [A, B): <error>".
  std::string Describe() const;
};

// A report lists at most this many bad runs (the first ones, by row) and
// counts them all.
inline constexpr size_t kMaxReportedBadRows = 10000;

struct VerifyReport {
  uint64_t blocks_checked = 0;   // checksum blocks of the table
  uint64_t frames_checked = 0;   // frames of its container (0: it has none)
  uint64_t bytes_checked = 0;    // bytes of rows hashed
  uint64_t bad_block_count = 0;  // blocks whose rows do not hash to the table's checksum
  uint64_t bad_frame_count = 0;  // frames that do not decode, or not to their checksum
  std::vector<BadRows> bad;      // in row order, the first kMaxReportedBadRows
  std::vector<std::string> bad_regions;  // nonzero padding, named by byte range
  std::string bad_keys;  // what is wrong with the keys section (checksum, a key, the hash table); empty: fine
  // A sharded table: shards that could not be checked at all (missing, not
  // a table, from another table, in the wrong place), one message each.
  std::vector<std::string> bad_shards;
  uint64_t shards_checked = 0;  // a sharded table: its shards
  bool ok() const {
    return bad_block_count == 0 && bad_frame_count == 0 && bad_regions.empty() && bad_keys.empty() &&
           bad_shards.empty();
  }
  // One line for messages: "2 of 6 blocks corrupt: rows [A, B), ...",
  // "1 of 3 frames corrupt: frame 1 (rows [A, B))" (and the first bad
  // padding), or "ok".
  std::string Summary() const;
};

class Table {
 public:
  virtual ~Table() = default;
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // The table's own header: shape, element type, layout, checksum blocks.
  virtual const Header& header() const = 0;
  uint64_t rows() const { return header().rows; }
  uint64_t dim() const { return header().dim; }
  virtual const Metadata& metadata() const = 0;
  // The file it was opened from (for a shared table, the segment's file).
  virtual const std::string& path() const = 0;
  // Bytes it takes where it is stored (a .embz: the compressed file).
  virtual uint64_t file_size() const = 0;

  // The element type rows are stored in, and its size in bytes.
  Dtype dtype() const { return static_cast<Dtype>(header().dtype); }
  uint64_t element_size() const { return DtypeSize(header().dtype); }
  // Bytes of one row as stored, without padding: dim() * element_size().
  uint64_t row_size() const { return dim() * element_size(); }

  // Copies rows ids[0], ids[1], ... into out as elements of type `as`
  // (dim() each): the stored bytes when `as` is dtype(), else converted
  // with PyTorch's rounding (store/core/half.h; widening is exact). Every
  // id is checked first (an out-of-range error names it); on error, out
  // may hold some rows. REQUIRES: out.size() == ids.size() * dim() *
  // DtypeSize(as) (else an invalid-argument error).
  virtual Status Gather(std::span<const uint64_t> ids, Dtype as, std::span<uint8_t> out) const = 0;
  // Rows [first, first + count) into out, the same way.
  virtual Status ReadRows(uint64_t first, uint64_t count, Dtype as, std::span<uint8_t> out) const = 0;
  // The same into float32, what most callers want whatever the table holds.
  Status Gather(std::span<const uint64_t> ids, std::span<float> out) const {
    return Gather(ids, Dtype::kFloat32, {reinterpret_cast<uint8_t*>(out.data()), out.size_bytes()});
  }
  Status ReadRows(uint64_t first, uint64_t count, std::span<float> out) const {
    return ReadRows(first, count, Dtype::kFloat32, {reinterpret_cast<uint8_t*>(out.data()), out.size_bytes()});
  }
  // Tells the kernel how rows [first_row, first_row + row_count) will be
  // read. Advice only: an error costs speed, never rows.
  virtual Status Advise(AccessHint hint, uint64_t first_row, uint64_t row_count) const = 0;

  // Checks every row against the table's checksums (and the container's);
  // an error only if the work could not be done.
  virtual Result<VerifyReport> Verify(const VerifyOptions& options = {}) const = 0;
  // True when every row this table hands out has been checked against a
  // checksum on the way (a .embz). False when rows come straight from
  // memory and Verify() is the check (a .emb, a shared table): writers that
  // seal rows into a format without checksums must Verify first.
  virtual bool checks_rows_on_read() const = 0;

  // The table as the bytes of a .emb file: exactly emb_size() of them,
  // written into out from offset 0 on `threads` threads (0: all cores).
  // Shared-memory tables are made this way.
  virtual uint64_t emb_size() const = 0;
  virtual Status WriteEmb(AtomicFile* out, unsigned threads, const Progress& progress = {},
                          const CancelToken* cancel = nullptr) const = 0;

  // Capabilities: null where this kind of table has not got them.
  // Rows as spans straight into memory, no copy (a .emb, a shared table).
  virtual const TableReader* mapped() const { return nullptr; }
  // The .embz container's parameters (frames, level, sizes).
  virtual const EmbzHeader* embz() const { return nullptr; }
  // The table's keys: one UTF-8 key per row, found by id or by key
  // (format/keys.h), over the mapping or the container's prefix.
  virtual const KeysView* keys() const { return nullptr; }
  // A sharded table's manifest: its shards, their files and row ranges.
  virtual const Manifest* manifest() const { return nullptr; }
  // The bytes of the table file before its rows (header, metadata, checksum
  // table, keys: [0, data_offset)), where the table is one file: a .emb's
  // mapping, a .embz's inflated prefix. Empty for a sharded table.
  virtual std::span<const uint8_t> table_prefix() const { return {}; }

 protected:
  Table() = default;
  Table(Table&&) = default;
  Table& operator=(Table&&) = default;
};

std::string OutOfRangeMessage(uint64_t id, uint64_t rows);
// The same for a negative id (from a caller whose ids are signed).
std::string OutOfRangeMessage(int64_t id, uint64_t rows);
// An invalid-argument error unless out holds exactly count rows of dim
// elements of type `as`.
Status CheckRowsOut(uint64_t count, uint64_t dim, Dtype as, std::span<const uint8_t> out);
// Checks a table's keys section as verification does: its bytes against
// the header's keys_checksum, then every key and slot (KeysView::Validate).
// Returns what is wrong, or "" when all is well.
std::string CheckKeysSection(const Header& h, std::span<const uint8_t> section, const KeysView& keys);
// The same for a table's own keys (none: OK), as a corruption error naming
// the table, for writers that copy or write out keys without a verify of
// their own (a .embz source, whose rows are checked as they are read but
// whose keys are not all read).
Status CheckTableKeys(const Table& table);
// An out-of-range error unless rows [first, first + count) lie in [0, rows).
Status CheckRowRange(uint64_t first, uint64_t count, uint64_t rows);

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_TABLE_H_
