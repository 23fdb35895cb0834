#include "store/table_writer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <filesystem>

#include "format/endian.h"

namespace embstore {

namespace {

constexpr size_t kBufferSize = 1 << 20;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

Status IoError(const std::string& path, const std::string& what) {
  if (errno == ENOSPC || errno == EDQUOT) {
    return Status::IOError(path + ": no space left on device (" + what + ")");
  }
  return Status::IOError(path + ": " + Errno(what));
}

// Short and independent of the destination's name, so it fits NAME_MAX
// whenever the destination does.
std::string TempName() {
  static std::atomic<unsigned> counter{0};
  return ".embstore-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

TableWriter::TableWriter(std::string path, int dir_fd, int fd, std::string tmp_name, Header header,
                         std::string metadata, bool sync)
    : path_(std::move(path)),
      sync_(sync),
      dir_fd_(dir_fd),
      fd_(fd),
      tmp_name_(std::move(tmp_name)),
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
  shape.metadata_size = metadata.size();
  shape.block_rows = options.block_rows;
  EMB_ASSIGN_OR_RETURN(Header header, PlanLayout(shape));
  header.metadata_checksum = Hash64(metadata.data(), metadata.size());

  // A symlink at the destination is followed: the table it points to is
  // replaced and the link kept (a dangling link is replaced itself).
  std::string target = path;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (char* real = ::realpath(path.c_str(), nullptr)) {
      target = real;
      std::free(real);
    }
  }
  const std::filesystem::path p(target);
  const std::string base = p.filename().string();
  if (base.empty() || base == "." || base == "..") {
    return Status::InvalidArgument(path + ": not a file name");
  }
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  int dir_fd = ::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dir_fd < 0) return IoError(path, "cannot open folder " + dir);
  if (::fstatat(dir_fd, base.c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode)) {
    ::close(dir_fd);
    return Status::IOError(path + ": is a folder");
  }

  // An unnamed file vanishes by itself if we die before Finish. Finish names
  // it through /proc/self/fd, so use it only where that works.
  std::string tmp_name;
  int fd = options.unnamed_temp ? ::openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0666) : -1;
  if (fd >= 0 && ::access(("/proc/self/fd/" + std::to_string(fd)).c_str(), F_OK) != 0) {
    ::close(fd);
    fd = -1;
  }
  if (fd < 0) {
    tmp_name = TempName();
    fd = ::openat(dir_fd, tmp_name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0666);
    if (fd < 0) {
      Status failed = IoError(path, "cannot create a temporary file in " + dir);
      ::close(dir_fd);
      return failed;
    }
  }
  std::unique_ptr<TableWriter> w(
      new TableWriter(target, dir_fd, fd, tmp_name, header, std::move(metadata), options.sync));

  // Reserve every block now: a full disk fails here, cleanly, instead of
  // after gigabytes of work.
  const uint64_t total = header.file_size();
  if (::fallocate(fd, 0, 0, static_cast<off_t>(total)) == 0) {
    w->reserved_ = true;
  } else {
    if (errno != EOPNOTSUPP && errno != ENOSYS) {
      return w->Fail(IoError(path, "cannot reserve " + std::to_string(total) + " bytes"));
    }
    if (::ftruncate(fd, static_cast<off_t>(total)) != 0) {
      return w->Fail(IoError(path, "cannot size the file to " + std::to_string(total) + " bytes"));
    }
  }
  return w;
}

Status TableWriter::Fail(Status status) {
  Discard();
  return status;
}

void TableWriter::Discard() {
  if (mapping_ != nullptr) ::munmap(mapping_, header_.data_size);
  mapping_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_name_.empty()) ::unlinkat(dir_fd_, tmp_name_.c_str(), 0);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  fd_ = dir_fd_ = -1;
  tmp_name_.clear();
  dead_ = true;
}

Status TableWriter::WriteAt(const void* data, size_t size, uint64_t offset) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(path_, "write");
    }
    if (n == 0) {
      errno = ENOSPC;
      return IoError(path_, "write");
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

Status TableWriter::FlushBuffer() {
  if (buffer_.empty()) return Status::OK();
  EMB_RETURN_IF_ERROR(WriteAt(buffer_.data(), buffer_.size(), write_offset_));
  write_offset_ += buffer_.size();
  buffer_.clear();
  return Status::OK();
}

Status TableWriter::Append(std::span<const float> values) {
  if (dead_) return Status::InvalidArgument(path_ + ": writer already finished or failed");
  if (mapping_ != nullptr) return Status::InvalidArgument(path_ + ": Append on a mapped writer");
  const uint64_t dim = header_.dim;
  if (values.size() % dim != 0) {
    return Status::InvalidArgument("append: " + std::to_string(values.size()) +
                                   " floats is not a whole number of rows of dim " + std::to_string(dim));
  }
  const uint64_t n = values.size() / dim;
  if (n > header_.rows - rows_written_) {
    return Status::InvalidArgument("append: " + std::to_string(n) + " rows would exceed the table's " +
                                   std::to_string(header_.rows) + " rows (" + std::to_string(rows_written_) +
                                   " already written)");
  }
  const uint8_t* src = reinterpret_cast<const uint8_t*>(values.data());
  uint64_t left = n * header_.row_stride;  // row_stride == dim * 4 for files we write
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
  if (dead_) return Status::InvalidArgument(path_ + ": writer already finished or failed");
  if (rows_written_ != 0 || mapping_ != nullptr) {
    return Status::InvalidArgument(path_ + ": MapRows after rows were appended or mapped");
  }
  if (!reserved_) return Status::NotSupported(path_ + ": the filesystem cannot reserve space for a mapped write");
  void* p = ::mmap(nullptr, header_.data_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                   static_cast<off_t>(header_.data_offset));
  if (p == MAP_FAILED) return IoError(path_, "cannot map the new table");
  mapping_ = p;
  return std::span<float>(static_cast<float*>(p), header_.rows * header_.dim);
}

Status TableWriter::FinishMapped(std::span<const uint64_t> block_hashes) {
  if (dead_ || mapping_ == nullptr) return Status::InvalidArgument(path_ + ": FinishMapped without MapRows");
  if (block_hashes.size() != header_.checksum_count) {
    return Fail(Status::InvalidArgument(path_ + ": " + std::to_string(block_hashes.size()) +
                                        " block checksums given, the table has " +
                                        std::to_string(header_.checksum_count) + " blocks"));
  }
  block_hashes_.assign(block_hashes.begin(), block_hashes.end());
  ::munmap(mapping_, header_.data_size);  // dirty pages stay in the page cache; fsync writes them
  mapping_ = nullptr;
  rows_written_ = header_.rows;
  return Commit();
}

Status TableWriter::Commit() {
  std::vector<uint8_t> table(block_hashes_.size() * 8);
  for (size_t i = 0; i < block_hashes_.size(); ++i) StoreLE64(&table[8 * i], block_hashes_[i]);
  const auto head = EncodeHeader(header_);
  Status st = WriteAt(metadata_bytes_.data(), metadata_bytes_.size(), header_.metadata_offset);
  if (st.ok()) st = WriteAt(table.data(), table.size(), header_.checksum_offset);
  if (st.ok()) st = WriteAt(head.data(), head.size(), 0);
  if (!st.ok()) return Fail(st);
  if (sync_ && ::fsync(fd_) != 0) return Fail(IoError(path_, "fsync"));

  const std::string base = std::filesystem::path(path_).filename().string();
  if (tmp_name_.empty()) {
    // Give the unnamed file a hidden name, then rename it over the
    // destination: rename is atomic, linkat cannot replace a file.
    const std::string name = TempName();
    const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, proc.c_str(), dir_fd_, name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return Fail(IoError(path_, "cannot link the temporary file"));
    }
    tmp_name_ = name;
  }
  if (::renameat(dir_fd_, tmp_name_.c_str(), dir_fd_, base.c_str()) != 0) {
    return Fail(IoError(path_, "cannot rename the temporary file into place"));
  }
  tmp_name_.clear();  // it is the destination now
  // The table is in place. Some filesystems refuse fsync on a folder; that
  // weakens durability of the rename but is no reason to report failure.
  if (sync_) ::fsync(dir_fd_);
  Discard();  // closes the descriptors; nothing is left to unlink
  return Status::OK();
}

}  // namespace embstore
