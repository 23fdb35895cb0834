#include "store/core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <cerrno>
#include <cstring>

#include "store/core/file_util.h"

namespace embstore {

namespace bip = boost::interprocess;

namespace {

// A descriptor we opened, as Boost's mapped_region takes a mappable object:
// the file is mapped from the descriptor that was checked, not reopened by
// name.
struct DescriptorMapping {
  int fd;
  bip::mapping_handle_t get_mapping_handle() const { return bip::ipcdetail::mapping_handle_from_file_handle(fd); }
  bip::mode_t get_mode() const { return bip::read_only; }
};

}  // namespace

struct MappedFile::Impl {
  int fd = -1;
  bip::mapped_region region;  // empty for an empty file
  ~Impl() {
    if (fd >= 0) ::close(fd);  // the mapping does not need the descriptor
  }
};

MappedFile::MappedFile(std::unique_ptr<Impl> impl, std::string path)
    : impl_(std::move(impl)), path_(std::move(path)) {
  if (impl_ && impl_->region.get_size() > 0) {
    data_ = static_cast<const uint8_t*>(impl_->region.get_address());
    size_ = impl_->region.get_size();
  }
}
MappedFile::MappedFile(MappedFile&&) noexcept = default;
MappedFile& MappedFile::operator=(MappedFile&&) noexcept = default;
MappedFile::~MappedFile() = default;

Result<MappedFile> MappedFile::Open(const std::string& path, const MapOptions& options) {
  auto failed = [&](const std::string& what) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound(path + ": " + std::strerror(err));
    if (err == ELOOP && !options.follow_symlinks) return Status::IOError(path + ": is a symlink, which is not followed here");
    return Status::IOError(path + ": " + what + std::strerror(err));
  };
  // Look before opening: opening a FIFO blocks until a writer comes, and
  // opening a device can act on it (a tape rewinds, a watchdog arms).
  struct stat st;
  if ((options.follow_symlinks ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) return failed("");
  if (!S_ISREG(st.st_mode)) {
    if (S_ISLNK(st.st_mode)) return Status::IOError(path + ": is a symlink, which is not followed here");
    return NotRegularFile(path, st.st_mode);
  }
  // The path may change between the look and the open: O_NONBLOCK keeps a
  // FIFO swapped in from blocking the open, and fstat decides on what was
  // actually opened.
  auto impl = std::make_unique<Impl>();
  impl->fd = ::open(path.c_str(),
                    O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (options.follow_symlinks ? 0 : O_NOFOLLOW));
  if (impl->fd < 0) return failed("cannot open: ");
  if (::fstat(impl->fd, &st) != 0) return failed("fstat: ");
  if (!S_ISREG(st.st_mode)) return NotRegularFile(path, st.st_mode);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > 0) {
    // Nothing is mapped for an empty file; callers see an empty span and
    // report the bad magic.
    try {
      impl->region = bip::mapped_region(DescriptorMapping{impl->fd}, bip::read_only, 0, static_cast<size_t>(size));
    } catch (const std::exception& e) {
      return Status::IOError(path + ": cannot map: " + e.what());
    }
  }
  if (!options.keep_descriptor) {  // the mapping does not need it
    ::close(impl->fd);
    impl->fd = -1;
  }
  MappedFile file(std::move(impl), path);
  file.owner_uid_ = st.st_uid;
  file.mode_ = st.st_mode & 07777;
  return file;
}

Status MappedFile::Advise(AccessHint hint, uint64_t offset, uint64_t length) const {
  if (size_ == 0 || offset >= size_) return Status::OK();
  if (length > size_ - offset) length = size_ - offset;
  // madvise wants a page-aligned start.
  const uint64_t page = static_cast<uint64_t>(bip::mapped_region::get_page_size());
  const uint64_t aligned = offset - offset % page;
  length += offset - aligned;
  int advice = MADV_NORMAL;
  switch (hint) {
    case AccessHint::kNormal: advice = MADV_NORMAL; break;
    case AccessHint::kRandom: advice = MADV_RANDOM; break;
    case AccessHint::kSequential: advice = MADV_SEQUENTIAL; break;
    case AccessHint::kWillNeed: advice = MADV_WILLNEED; break;
  }
  void* addr = const_cast<uint8_t*>(data_ + aligned);
  if (::madvise(addr, length, advice) != 0) {
    return Status::IOError(path_ + ": madvise: " + std::strerror(errno));
  }
  return Status::OK();
}

bool MappedFile::PageResident(uint64_t offset) const {
  if (!impl_ || offset >= size_) return false;
  // A one-byte read that may not wait (RWF_NOWAIT) fails with EAGAIN when
  // the byte is not in the page cache. It answers for any file we can read,
  // where mincore() answers only for files we own or could write (since
  // Linux 5.0 it says "in memory" for every page of any other file).
  unsigned char byte;
  struct iovec iov = {&byte, 1};
  const ssize_t n = impl_->fd < 0 ? -1 : ::preadv2(impl_->fd, &iov, 1, static_cast<off_t>(offset), RWF_NOWAIT);
  if (n == 1) return true;
  if (n < 0 && impl_->fd >= 0 && errno == EAGAIN) return false;
  // No RWF_NOWAIT here (an old kernel, a file system without it): mincore.
  const uint64_t page = static_cast<uint64_t>(bip::mapped_region::get_page_size());
  unsigned char in_core = 0;
  void* addr = const_cast<uint8_t*>(data_ + (offset - offset % page));
  return ::mincore(addr, 1, &in_core) == 0 && (in_core & 1) != 0;
}

}  // namespace embstore
