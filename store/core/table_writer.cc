#include "store/core/table_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "format/endian.h"
#include "format/keys.h"
#include "store/core/half.h"

namespace embstore {

namespace {

constexpr size_t kBufferSize = 1 << 20;

}  // namespace

TableWriter::TableWriter(std::unique_ptr<AtomicFile> file, Header header, std::string metadata)
    : file_(std::move(file)),
      path_(file_->path()),
      header_(header),
      metadata_bytes_(std::move(metadata)),
      write_offset_(header.data_offset) {
  buffer_.reserve(kBufferSize);
}

TableWriter::~TableWriter() {
  if (!dead_) Discard();
}

Result<std::unique_ptr<TableWriter>> TableWriter::Create(const std::string& path, uint64_t rows, uint64_t dim,
                                                          const WriterOptions& options) {
  EMB_ASSIGN_OR_RETURN(std::string metadata, EncodeMetadata(options.metadata));
  TableShape shape;
  shape.rows = rows;
  shape.dim = dim;
  shape.dtype = static_cast<uint32_t>(options.dtype);
  shape.metadata_size = metadata.size();
  shape.block_rows = options.block_rows;
  shape.keys_size = options.keys.size();
  EMB_ASSIGN_OR_RETURN(Header header, PlanLayout(shape));
  header.metadata_checksum = Hash64(metadata.data(), metadata.size());
  if (!options.keys.empty()) {
    // The same checks a reader makes at open, so a writer never makes a
    // table that will not open.
    EMB_RETURN_IF_ERROR(KeysView::Open(options.keys, rows).status().WithContext(path + ": keys"));
    header.keys_checksum = Hash64(options.keys.data(), options.keys.size());
  }

  AtomicFileOptions fo;
  fo.sync = options.sync;
  fo.unnamed_temp = options.unnamed_temp;
  fo.no_replace = !options.replace;
  fo.cancel = options.cancel;
  EMB_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, header.file_size(), fo));
  if (!options.keys.empty()) {
    if (Status st = file->WriteAt(options.keys.data(), options.keys.size(), header.keys_offset); !st.ok()) {
      file->Discard();
      return st;
    }
  }
  std::unique_ptr<TableWriter> w(new TableWriter(std::move(file), header, std::move(metadata)));
  return w;
}

Status TableWriter::Fail(Status status) {
  Discard();
  return status;
}

void TableWriter::Discard() {
  mapping_ = nullptr;
  file_->Discard();  // unmaps too
  dead_ = true;
}

Status TableWriter::FlushBuffer() {
  if (buffer_.empty()) return Status::OK();
  EMB_RETURN_IF_ERROR(file_->WriteAt(buffer_.data(), buffer_.size(), write_offset_));
  write_offset_ += buffer_.size();
  buffer_.clear();
  return Status::OK();
}

Status TableWriter::Append(std::span<const uint8_t> elements, Dtype as) {
  if (dead_) return Status::InvalidArgument(path_ + ": writer already finished or failed");
  if (mapping_ != nullptr) return Status::InvalidArgument(path_ + ": Append on a mapped writer");
  const uint64_t dim = header_.dim, esize = DtypeSize(as);
  if (esize == 0 || elements.size() % (dim * esize) != 0) {
    return Status::InvalidArgument("append: " + std::to_string(elements.size()) + " bytes of " + DtypeName(as) +
                                   " is not a whole number of rows of dim " + std::to_string(dim));
  }
  const uint64_t n = elements.size() / (dim * esize);
  if (n > header_.rows - rows_written_) {
    return Status::InvalidArgument("append: " + std::to_string(n) + " rows would exceed the table's " +
                                   std::to_string(header_.rows) + " rows (" + std::to_string(rows_written_) +
                                   " already written)");
  }
  const Dtype stored = static_cast<Dtype>(header_.dtype);
  if (as == stored) return AppendStored(elements.data(), n);
  // Converted a piece at a time (at least one row), so memory stays small.
  const uint64_t in_row = dim * esize, out_row = header_.row_stride;
  const uint64_t piece = std::max<uint64_t>(1, kBufferSize / out_row);
  for (uint64_t r = 0; r < n; r += piece) {
    const uint64_t m = std::min(piece, n - r);
    convert_.resize(m * out_row);
    ConvertElements(as, elements.data() + r * in_row, stored, convert_.data(), m * dim);
    EMB_RETURN_IF_ERROR(AppendStored(convert_.data(), m));
  }
  return Status::OK();
}

Status TableWriter::AppendStored(const uint8_t* src, uint64_t n) {
  uint64_t left = n * header_.row_stride;  // row_stride == dim * element size for files we write
  const uint64_t block_bytes = uint64_t{header_.checksum_block_rows} * header_.row_stride;
  while (left > 0) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(
        {left, uint64_t{kBufferSize - buffer_.size()}, block_bytes - block_bytes_done_}));
    hash_.Update(src, take);
    buffer_.insert(buffer_.end(), src, src + take);
    src += take;
    left -= take;
    block_bytes_done_ += take;
    if (block_bytes_done_ == block_bytes) {
      block_hashes_.push_back(hash_.Digest());
      hash_.Reset();
      block_bytes_done_ = 0;
    }
    if (buffer_.size() == kBufferSize) {
      if (Status st = FlushBuffer(); !st.ok()) return Fail(st);
    }
  }
  rows_written_ += n;
  return Status::OK();
}

Status TableWriter::Finish() {
  if (dead_) return Status::InvalidArgument(path_ + ": writer already finished or failed");
  if (mapping_ != nullptr) return Status::InvalidArgument(path_ + ": a mapped writer ends with FinishMapped");
  if (rows_written_ != header_.rows) {
    return Fail(Status::InvalidArgument(path_ + ": only " + std::to_string(rows_written_) + " of " +
                                        std::to_string(header_.rows) + " rows were written"));
  }
  if (block_bytes_done_ > 0) {  // the short last block
    block_hashes_.push_back(hash_.Digest());
    block_bytes_done_ = 0;
  }
  if (Status st = FlushBuffer(); !st.ok()) return Fail(st);
  return Commit();
}

Result<std::span<float>> TableWriter::MapRows() {
  if (header_.dtype != static_cast<uint32_t>(Dtype::kFloat32)) {
    return Status::InvalidArgument(path_ + ": MapRows on a " + DtypeName(header_.dtype) + " table");
  }
  EMB_ASSIGN_OR_RETURN(auto bytes, MapRowBytes());
  return std::span<float>(reinterpret_cast<float*>(bytes.data()), header_.rows * header_.dim);
}

Result<std::span<uint8_t>> TableWriter::MapRowBytes() {
  if (dead_) return Status::InvalidArgument(path_ + ": writer already finished or failed");
  if (rows_written_ != 0 || mapping_ != nullptr) {
    return Status::InvalidArgument(path_ + ": MapRows after rows were appended or mapped");
  }
  EMB_ASSIGN_OR_RETURN(auto bytes, file_->Map(header_.data_offset, header_.data_size));
  mapping_ = bytes.data();
  return bytes;
}

Status TableWriter::FinishMapped(std::span<const uint64_t> block_hashes) {
  if (dead_ || mapping_ == nullptr) return Status::InvalidArgument(path_ + ": FinishMapped without MapRows");
  if (block_hashes.size() != header_.checksum_count) {
    return Fail(Status::InvalidArgument(path_ + ": " + std::to_string(block_hashes.size()) +
                                        " block checksums given, the table has " +
                                        std::to_string(header_.checksum_count) + " blocks"));
  }
  block_hashes_.assign(block_hashes.begin(), block_hashes.end());
  mapping_ = nullptr;  // AtomicFile::Commit unmaps
  rows_written_ = header_.rows;
  return Commit();
}

Status TableWriter::WriteDataAt(uint64_t offset, std::span<const uint8_t> bytes) const {
  if (dead_ || mapping_ != nullptr || rows_written_ != 0) {
    return Status::InvalidArgument(path_ + ": WriteDataAt on a finished, mapped or appending writer");
  }
  if (offset > header_.data_size || bytes.size() > header_.data_size - offset) {
    return Status::InvalidArgument(path_ + ": write past the row data");
  }
  return file_->WriteAt(bytes.data(), bytes.size(), header_.data_offset + offset);
}

Status TableWriter::ReadDataAt(uint64_t offset, std::span<uint8_t> bytes) const {
  if (dead_) return Status::InvalidArgument(path_ + ": writer already finished or failed");
  if (offset > header_.data_size || bytes.size() > header_.data_size - offset) {
    return Status::InvalidArgument(path_ + ": read past the row data");
  }
  return file_->ReadAt(bytes.data(), bytes.size(), header_.data_offset + offset);
}

Status TableWriter::FinishWritten(std::span<const uint64_t> block_hashes) {
  if (dead_ || mapping_ != nullptr || rows_written_ != 0) {
    return Status::InvalidArgument(path_ + ": FinishWritten on a finished, mapped or appending writer");
  }
  if (block_hashes.size() != header_.checksum_count) {
    return Fail(Status::InvalidArgument(path_ + ": " + std::to_string(block_hashes.size()) +
                                        " block checksums given, the table has " +
                                        std::to_string(header_.checksum_count) + " blocks"));
  }
  block_hashes_.assign(block_hashes.begin(), block_hashes.end());
  rows_written_ = header_.rows;
  return Commit();
}

Status TableWriter::ReplaceMetadata(const Metadata& metadata) {
  if (dead_) return Status::InvalidArgument(path_ + ": writer already finished or failed");
  EMB_ASSIGN_OR_RETURN(std::string bytes, EncodeMetadata(metadata));
  if (bytes.size() != metadata_bytes_.size()) {
    return Status::InvalidArgument(path_ + ": new metadata is " + std::to_string(bytes.size()) + " bytes, the layout has " +
                                   std::to_string(metadata_bytes_.size()));
  }
  metadata_bytes_ = std::move(bytes);
  header_.metadata_checksum = Hash64(metadata_bytes_.data(), metadata_bytes_.size());
  return Status::OK();
}

Status TableWriter::Commit() {
  std::vector<uint8_t> table(block_hashes_.size() * 8);
  for (size_t i = 0; i < block_hashes_.size(); ++i) StoreLE64(&table[8 * i], block_hashes_[i]);
  const auto head = EncodeHeader(header_);
  Status st = file_->WriteAt(metadata_bytes_.data(), metadata_bytes_.size(), header_.metadata_offset);
  if (st.ok()) st = file_->WriteAt(table.data(), table.size(), header_.checksum_offset);
  if (st.ok()) st = file_->WriteAt(head.data(), head.size(), 0);
  if (st.ok()) st = file_->Commit();
  if (!st.ok()) return Fail(st);
  dead_ = true;
  return Status::OK();
}

}  // namespace embstore
