// TableWriter: writes a new table file safely.
//
// Rows stream into an unnamed temporary file (O_TMPFILE; a hidden named one
// where the filesystem lacks it) in the destination's folder, with the full
// size reserved up front so a full disk fails at Create, not halfway.
// Finish() writes the checksum table and header, fsyncs, and renames the
// file over the destination in one step, then fsyncs the folder. Until then
// the destination is untouched: readers see the old table or the new one,
// never half of one. A writer destroyed without Finish(), or whose Finish()
// fails, removes its temporary file; what a killed process may leave is
// said once, in store/core/atomic_file.h.
//
// A symlink at the destination is followed: its target is replaced. A
// destination that is not a regular file (a device, a FIFO) is refused.
//
// Readers that already map an old file at the destination keep reading the
// old bytes (they hold the old inode).
//
// Not thread-safe: one thread drives a writer.

#ifndef EMBSTORE_STORE_CORE_TABLE_WRITER_H_
#define EMBSTORE_STORE_CORE_TABLE_WRITER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "format/checksum.h"
#include "format/metadata.h"
#include "format/status.h"
#include "format/table_format.h"
#include "store/core/atomic_file.h"

namespace embstore {

struct WriterOptions {
  Dtype dtype = Dtype::kFloat32;  // the element type rows are stored in
  Metadata metadata;
  uint64_t block_rows = 0;  // rows per checksum block; 0 picks ~1 MiB blocks
  // A keys section (format/keys.h: EncodeKeys, or the bytes of another
  // table's section, whose key count must equal the rows): the table is
  // then version 1.2. Written at Create; the bytes need not outlive it.
  std::span<const uint8_t> keys;
  bool sync = true;         // fsync file and folder before returning from Finish
  bool unnamed_temp = true; // O_TMPFILE where possible (false: always a hidden named file; for tests)
  // Replace a file at the destination. false: Finish fails with an
  // already-exists error if a file is there when the table is put in place
  // (however late it appeared), and leaves that file as it is.
  bool replace = true;
  const CancelToken* cancel = nullptr;  // Finish discards the table once it is cancelled (after the fsync)
};

class TableWriter {
 public:
  static Result<std::unique_ptr<TableWriter>> Create(const std::string& path, uint64_t rows, uint64_t dim,
                                                     const WriterOptions& options = {});
  ~TableWriter();
  TableWriter(const TableWriter&) = delete;
  TableWriter& operator=(const TableWriter&) = delete;

  const Header& header() const { return header_; }
  uint64_t rows_written() const { return rows_written_; }

  // Appends whole rows of elements of type `as`, converted to the table's
  // dtype where they differ (PyTorch's rounding, store/core/half.h):
  // elements.size() must be a multiple of dim * DtypeSize(as) and not
  // exceed the rows still owed.
  Status Append(std::span<const uint8_t> elements, Dtype as);
  // The same for float32 rows.
  Status Append(std::span<const float> values) {
    return Append({reinterpret_cast<const uint8_t*>(values.data()), values.size_bytes()}, Dtype::kFloat32);
  }

  // Replaces the metadata given at Create, before Finish: for values known
  // only once every row is written (a checksum of the source). The new
  // pairs must encode to exactly as many bytes, since the layout is fixed.
  Status ReplaceMetadata(const Metadata& metadata);

  // Requires exactly `rows` rows appended. After an error the writer is dead:
  // the temporary file is gone and the destination untouched.
  Status Finish();

  // The other way to fill a table: map the data region writable and produce
  // rows in place (no copy), then FinishMapped with the checksum of every
  // block (FORMAT.md, "Checksum table"). Not mixed with Append. Fails with
  // not-supported where the file's space could not be reserved up front,
  // since a write through a mapping cannot report a full disk.
  // REQUIRES for MapRows: a float32 table; MapRowBytes maps any.
  Result<std::span<float>> MapRows();
  Result<std::span<uint8_t>> MapRowBytes();
  Status FinishMapped(std::span<const uint64_t> block_hashes);
  // The third way: rows written in place, by pwrite, from any number of
  // threads at once on distinct ranges (offsets are bytes into the row
  // data), read back if need be, then FinishWritten with every block's
  // checksum. Through the page cache, without the zeroing and the faults a
  // fresh mapping costs. Not mixed with Append or MapRows.
  Status WriteDataAt(uint64_t offset, std::span<const uint8_t> bytes) const;
  Status ReadDataAt(uint64_t offset, std::span<uint8_t> bytes) const;
  Status FinishWritten(std::span<const uint64_t> block_hashes);

 private:
  TableWriter(std::unique_ptr<AtomicFile> file, Header header, std::string metadata);
  void Discard();              // unmaps, removes the temporary file
  Status Fail(Status status);  // Discard(), then returns status
  Status FlushBuffer();
  Status AppendStored(const uint8_t* src, uint64_t n);  // n rows of the table's own dtype
  Status Commit();  // writes metadata, checksums and header; fsync; rename

  std::unique_ptr<AtomicFile> file_;
  std::string path_;
  Header header_;
  std::string metadata_bytes_;
  std::vector<uint8_t> buffer_;
  std::vector<uint8_t> convert_;  // Append of another dtype: rows converted here
  uint64_t write_offset_;  // file offset of buffer_[0]
  uint64_t rows_written_ = 0;
  uint64_t block_bytes_done_ = 0;  // bytes of the current block hashed so far
  std::vector<uint64_t> block_hashes_;
  StreamingHash hash_;
  void* mapping_ = nullptr;   // MapRows
  bool dead_ = false;
};

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_TABLE_WRITER_H_
