// TableReader: a table file (or shared-memory segment) mapped read-only,
// rows handed out as spans into the mapping with no copy. The Table (one
// read interface) of .emb files and shared tables, and its mapped()
// capability: row(), row_bytes() and file_bytes() exist only here.
//
// Open validates the header, the layout and the (bounded) metadata section
// in O(1): it never touches data pages, so a 2.47 GB table opens as fast as a
// 4 KB one. Data checksums are checked by Verify(), on demand.
//
// Memory: a span returned by row() points into the mapping and stays valid
// while the TableReader that returned it is alive (moving the reader keeps
// it valid). Thread safety: every const method may be called from any number
// of threads at once.

#ifndef EMBSTORE_STORE_CORE_TABLE_READER_H_
#define EMBSTORE_STORE_CORE_TABLE_READER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/metadata.h"
#include "format/status.h"
#include "format/table_format.h"
#include "store/core/mapped_file.h"
#include "store/core/table.h"

namespace embstore {

class TableReader final : public Table {
 public:
  static Result<TableReader> Open(const std::string& path);
  // The same checks on a file already opened and mapped (the caller may
  // have looked at its first bytes to decide that it is a .emb).
  static Result<TableReader> Open(MappedFile file);
  // (Shared-memory tables: OpenSharedTable in store/interop/shared_table.h.)

  TableReader(TableReader&&) noexcept = default;
  TableReader& operator=(TableReader&&) noexcept = default;

  const Header& header() const override { return header_; }
  const Metadata& metadata() const override { return metadata_; }
  const std::string& path() const override { return file_.path(); }
  uint64_t file_size() const override { return file_.size(); }
  // The whole file as mapped (header, metadata, checksums, padding, rows).
  std::span<const uint8_t> file_bytes() const { return file_.bytes(); }

  // The row as floats. Unchecked. REQUIRES: id < rows(), dtype() float32.
  std::span<const float> row(uint64_t id) const { return row_as<float>(id); }
  // The row as stored elements of T: float for float32, uint16_t (the bit
  // patterns) for float16 and bfloat16. Unchecked. REQUIRES: id < rows(),
  // sizeof(T) == element_size().
  template <typename T>
  std::span<const T> row_as(uint64_t id) const {
    return {reinterpret_cast<const T*>(data_ + id * header_.row_stride), header_.dim};
  }
  // Rows [first, first + count) as one contiguous byte range of the file.
  // REQUIRES: first + count <= rows().
  std::span<const uint8_t> row_bytes(uint64_t first, uint64_t count) const {
    return {data_ + first * header_.row_stride, count * header_.row_stride};
  }

  // Checked twin of row(): an out-of-range error names the id and the
  // range, and a table not of float32 is an invalid-argument error.
  Result<std::span<const float>> RowChecked(uint64_t id) const;

  // Table: every id is checked before anything is copied, so on error out
  // is untouched. Large gathers from rows not in memory read ahead.
  using Table::Gather;
  using Table::ReadRows;
  Status Gather(std::span<const uint64_t> ids, Dtype as, std::span<uint8_t> out) const override;
  Status ReadRows(uint64_t first, uint64_t count, Dtype as, std::span<uint8_t> out) const override;

  // Tells the kernel how the data pages will be read (whole table, or rows
  // [first, first + count)).
  Status Advise(AccessHint hint) const;
  Status Advise(AccessHint hint, uint64_t first_row, uint64_t row_count) const override;

  // Recomputes every block checksum (on several threads) and checks that
  // all padding is zero. Returns the report; an error only if the work could
  // not be done.
  Result<VerifyReport> Verify(const VerifyOptions& options = {}) const override;
  bool checks_rows_on_read() const override { return false; }

  // The file's own bytes, copied on several threads.
  uint64_t emb_size() const override { return file_.size(); }
  Status WriteEmb(AtomicFile* out, unsigned threads, const Progress& progress = {},
                  const CancelToken* cancel = nullptr) const override;

  const TableReader* mapped() const override { return this; }
  const KeysView* keys() const override { return keys_ ? &*keys_ : nullptr; }
  std::span<const uint8_t> table_prefix() const override { return file_.bytes().first(header_.data_offset); }

 private:
  TableReader(MappedFile file, Header header, Metadata metadata);

  MappedFile file_;
  Header header_;
  Metadata metadata_;
  const uint8_t* data_;  // file_.data() + header_.data_offset
  std::optional<KeysView> keys_;  // over the mapping
};

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_TABLE_READER_H_
