// Shared by the fuzz targets: the input as a file, since the readers map
// files. A memfd lives in memory and vanishes with its descriptor.
#ifndef EMBSTORE_TESTS_FUZZ_FUZZ_UTIL_H_
#define EMBSTORE_TESTS_FUZZ_FUZZ_UTIL_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace embstore::fuzz {

class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("embstore-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }
  ~MemFile() { ::close(fd_); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

}  // namespace embstore::fuzz

#endif  // EMBSTORE_TESTS_FUZZ_FUZZ_UTIL_H_
