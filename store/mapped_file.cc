#include "store/mapped_file.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <cerrno>
#include <cstring>

namespace embstore {

namespace bip = boost::interprocess;

struct MappedFile::Impl {
  bip::file_mapping mapping;
  bip::mapped_region region;
};

MappedFile::MappedFile(std::unique_ptr<Impl> impl, std::string path)
    : impl_(std::move(impl)), path_(std::move(path)) {
  if (impl_) {
    data_ = static_cast<const uint8_t*>(impl_->region.get_address());
    size_ = impl_->region.get_size();
  }
}
MappedFile::MappedFile(MappedFile&&) noexcept = default;
MappedFile& MappedFile::operator=(MappedFile&&) noexcept = default;
MappedFile::~MappedFile() = default;

Result<MappedFile> MappedFile::Open(const std::string& path) {
  // stat first: Boost cannot map an empty file, and mapping a directory or a
  // FIFO would fail with a less helpful message.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    const std::string message = path + ": " + std::strerror(err);
    return err == ENOENT ? Status::NotFound(message) : Status::IOError(message);
  }
  if (!S_ISREG(st.st_mode)) return Status::IOError(path + ": not a regular file");
  if (st.st_size == 0) {
    // Nothing to map; callers see an empty span and report the bad magic.
    return MappedFile(nullptr, path);
  }
  try {
    auto impl = std::make_unique<Impl>();
    impl->mapping = bip::file_mapping(path.c_str(), bip::read_only);
    impl->region = bip::mapped_region(impl->mapping, bip::read_only);
    return MappedFile(std::move(impl), path);
  } catch (const bip::interprocess_exception& e) {
    return Status::IOError(path + ": cannot map: " + e.what());
  } catch (const std::exception& e) {
    return Status::IOError(path + ": cannot map: " + e.what());
  }
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
  const ssize_t n = ::preadv2(impl_->mapping.get_mapping_handle().handle, &iov, 1, static_cast<off_t>(offset),
                              RWF_NOWAIT);
  if (n == 1) return true;
  if (n < 0 && errno == EAGAIN) return false;
  // No RWF_NOWAIT here (an old kernel, a file system without it): mincore.
  const uint64_t page = static_cast<uint64_t>(bip::mapped_region::get_page_size());
  unsigned char in_core = 0;
  void* addr = const_cast<uint8_t*>(data_ + (offset - offset % page));
  return ::mincore(addr, 1, &in_core) == 0 && (in_core & 1) != 0;
}

}  // namespace embstore
