// A whole file mapped read-only and shared (MAP_SHARED, PROT_READ), so every
// process that maps the same file reads the same page-cache pages. The one
// place that includes Boost.Interprocess; its exceptions stop here and come
// back as a Status naming the path.
//
// Open opens the path once and everything else follows from that one
// descriptor: it must be a regular file (a FIFO or a device is refused
// without being read, so opening never blocks), its size and owner are read
// from it, and it is what gets mapped. A caller that looks at bytes() to
// decide what kind of file it has therefore decides from the same file it
// reads, even while another process renames files over the path.
//
// Mapping is lazy: Open touches no data pages, whatever the file's size.
// The bytes stay valid while the MappedFile is alive. All const methods are
// safe to call from many threads at once.
//
// If another program truncates the file in place while it is mapped, reads
// past the new end fault (SIGBUS), as with any memory map; embstore's own
// writers never do that (they write a new file and rename it over the old
// one, and readers keep the old file).

#ifndef EMBSTORE_STORE_CORE_MAPPED_FILE_H_
#define EMBSTORE_STORE_CORE_MAPPED_FILE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "format/status.h"

namespace embstore {

// How the kernel should expect the pages to be read (madvise).
enum class AccessHint {
  kNormal,      // the kernel's default read-ahead
  kRandom,      // scattered token lookups: no read-ahead
  kSequential,  // a full scan: aggressive read-ahead, pages may be dropped after use
  kWillNeed,    // start reading the pages in now (warm-up for serving)
};

struct MapOptions {
  // A symlink at the path is followed. Off where anyone may plant one
  // (shared-memory segments in /dev/shm): a symlink is then refused.
  bool follow_symlinks = true;
  // Keep the file descriptor open while mapped (PageResident asks the page
  // cache through it). false: closed once mapped, for a reader holding
  // many files at once (a sharded table's shards), which would otherwise
  // run out of descriptors; PageResident then asks mincore().
  bool keep_descriptor = true;
};

class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path, const MapOptions& options = {});

  MappedFile(MappedFile&&) noexcept;
  MappedFile& operator=(MappedFile&&) noexcept;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // The file's owner and permission bits, as the descriptor saw them at Open.
  uint32_t owner_uid() const { return owner_uid_; }
  uint32_t mode() const { return mode_; }

  // Advises the kernel for bytes [offset, offset + length) (clipped to the
  // file). Returns an I/O error if the kernel refuses.
  Status Advise(AccessHint hint, uint64_t offset, uint64_t length) const;

  // True when the page holding byte `offset` is in memory (the page cache,
  // or RAM for a shared-memory table), so reading it needs no disk; false
  // when it is not. A hint: the answer may change the next moment.
  bool PageResident(uint64_t offset) const;

 private:
  struct Impl;
  MappedFile(std::unique_ptr<Impl> impl, std::string path);
  std::unique_ptr<Impl> impl_;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  uint32_t owner_uid_ = 0;
  uint32_t mode_ = 0;
};

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_MAPPED_FILE_H_
