// TableReader: a table file mapped read-only, rows handed out as spans into
// the mapping with no copy.
//
// Open validates the header, the layout and the (bounded) metadata section
// in O(1): it never touches data pages, so a 2.47 GB table opens as fast as a
// 4 KB one. Data checksums are checked by Verify(), on demand.
//
// Memory: a span returned by row() points into the mapping and stays valid
// while the TableReader that returned it is alive (moving the reader keeps
// it valid). Thread safety: every const method may be called from any number
// of threads at once.

#ifndef EMBSTORE_STORE_TABLE_READER_H_
#define EMBSTORE_STORE_TABLE_READER_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "format/metadata.h"
#include "format/status.h"
#include "format/table_format.h"
#include "store/mapped_file.h"

namespace embstore {

// One checksum block whose bytes no longer hash to the stored value.
struct BadBlock {
  uint64_t block;
  uint64_t first_row;
  uint64_t row_count;
  uint64_t stored;
  uint64_t computed;
};

// A report lists at most this many bad blocks (the first ones, by block
// number) and counts them all.
inline constexpr size_t kMaxReportedBadBlocks = 10000;

struct VerifyReport {
  uint64_t blocks_checked = 0;
  uint64_t bytes_hashed = 0;
  uint64_t bad_block_count = 0;
  std::vector<BadBlock> bad_blocks;     // in block order, the first kMaxReportedBadBlocks
  std::vector<std::string> bad_regions; // nonzero padding, named by byte range
  bool ok() const { return bad_block_count == 0 && bad_regions.empty(); }
  // For messages: "3 corrupt blocks, the first rows [A, B)", or "0 corrupt
  // blocks, nonzero padding ..." naming the first bad region.
  std::string Summary() const;
};

struct VerifyOptions {
  unsigned threads = 0;  // 0: all cores (at most kMaxThreads)
  // Called about ten times a second from the calling thread with bytes
  // hashed so far and the total; may be empty.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

class TableReader {
 public:
  static Result<TableReader> Open(const std::string& path);
  // The same checks on a file already opened and mapped (the caller may
  // have looked at its first bytes to decide that it is a .emb).
  static Result<TableReader> Open(MappedFile file);
  // Opens the shared-memory table `name` (store/shared_table.h) with the
  // same checks, read-only. A name that does not exist is a not-found error;
  // an invalid one (a '/', "..") an invalid-argument error. A segment owned
  // by anyone but this process's user, root or one of trusted_owners (uids)
  // is refused: another user may have taken the name first (README,
  // "Security"). Defined in shared_table.cc.
  static Result<TableReader> OpenShared(const std::string& name, std::span<const uint32_t> trusted_owners = {});

  TableReader(TableReader&&) noexcept = default;
  TableReader& operator=(TableReader&&) noexcept = default;

  uint64_t rows() const { return header_.rows; }
  uint64_t dim() const { return header_.dim; }
  const Header& header() const { return header_; }
  const Metadata& metadata() const { return metadata_; }
  const std::string& path() const { return file_.path(); }
  uint64_t file_size() const { return file_.size(); }
  // The whole file as mapped (header, metadata, checksums, padding, rows).
  std::span<const uint8_t> file_bytes() const { return file_.bytes(); }

  // The row as floats. Unchecked. REQUIRES: id < rows().
  std::span<const float> row(uint64_t id) const {
    return {reinterpret_cast<const float*>(data_ + id * header_.row_stride), header_.dim};
  }
  // Rows [first, first + count) as one contiguous byte range of the file.
  // REQUIRES: first + count <= rows().
  std::span<const uint8_t> row_bytes(uint64_t first, uint64_t count) const {
    return {data_ + first * header_.row_stride, count * header_.row_stride};
  }

  // Checked twin of row(): an out-of-range error names the id and the range.
  Result<std::span<const float>> RowChecked(uint64_t id) const;

  // Copies rows ids[0], ids[1], ... into out, dim() floats each. Every id is
  // checked before anything is copied, so on error out is untouched.
  // REQUIRES: out.size() == ids.size() * dim() (else an invalid-argument error).
  Status Gather(std::span<const uint64_t> ids, std::span<float> out) const;

  // Tells the kernel how the data pages will be read (whole table, or rows
  // [first, first + count)).
  Status Advise(AccessHint hint) const;
  Status Advise(AccessHint hint, uint64_t first_row, uint64_t row_count) const;

  // Recomputes every block checksum (on several threads) and checks that
  // all padding is zero. Returns the report; an error only if the work could
  // not be done.
  Result<VerifyReport> Verify(const VerifyOptions& options = {}) const;

 private:
  TableReader(MappedFile file, Header header, Metadata metadata);

  MappedFile file_;
  Header header_;
  Metadata metadata_;
  const uint8_t* data_;  // file_.data() + header_.data_offset
};

std::string OutOfRangeMessage(uint64_t id, uint64_t rows);
// The same for a negative id (from a caller whose ids are signed).
std::string OutOfRangeMessage(int64_t id, uint64_t rows);

}  // namespace embstore

#endif  // EMBSTORE_STORE_TABLE_READER_H_
