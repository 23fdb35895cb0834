// AtomicFile: a new file that appears at its path whole or not at all.
//
// Create checks the destination first: if something is there that is not a
// regular file (a device such as /dev/null, a FIFO, a socket, a folder;
// through a symlink, its target), it is refused and never replaced; a name
// too long for the folder fails at once, not after the work. Then it makes
// an unnamed temporary file (O_TMPFILE; a hidden ".embstore-tmp-XXXXXXXX"
// file where the filesystem lacks it) in the destination's folder and
// reserves its full size, so a full disk fails at Create. Commit fsyncs,
// then puts the file in place and fsyncs the folder; until then the
// destination is untouched, and readers that map an old file there keep
// the old inode. Destroying an uncommitted AtomicFile, or a failed Commit,
// removes the temporary file. A symlink at the destination is followed: its
// target is replaced.
//
// Putting a file in place: without no_replace, an unnamed file is first
// linked to a hidden name and then renamed over the destination (Linux can
// link a file only to a free name); a process killed between the two
// leaves that hidden file. With no_replace the file is linked (linkat) or
// renamed (RENAME_NOREPLACE) only to a free name, atomically, so a file
// that appeared at the destination while the work ran is never replaced.
//
// Hidden temporary files: each is locked (flock) by its writer for as long
// as the writer lives. Create removes those in its folder whose lock is
// free, that is whose writer has ended: a lock is held across PID
// namespaces and (through NFS locks) across clients, where a process id
// would say nothing. A file that cannot be locked is left alone. A folder
// of more than 1,024 names is scanned at most once a second by a process
// (a sharded table's shards would otherwise cost a scan each).
//
// Used by TableWriter, the .embz writers, export and shared tables. Not
// thread-safe, except that WriteAt may be called from several threads for
// disjoint ranges.

#ifndef EMBSTORE_STORE_CORE_ATOMIC_FILE_H_
#define EMBSTORE_STORE_CORE_ATOMIC_FILE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "format/status.h"
#include "store/core/cancel.h"
#include "store/core/file_util.h"

namespace embstore {

// Hidden temporary files start with this.
inline constexpr char kTempPrefix[] = ".embstore-tmp-";

struct AtomicFileOptions {
  bool sync = true;          // fsync file and folder in Commit
  bool unnamed_temp = true;  // O_TMPFILE where possible (false: always a hidden named file; for tests)
  // Permission bits of the new file (fchmod at Create, so they hold before
  // a byte is written); -1: 0666 less the umask.
  int mode = -1;
  // Commit fails with an already-exists error instead of replacing a file
  // at the destination (atomically: linkat or RENAME_NOREPLACE).
  bool no_replace = false;
  // A symlink at the destination is followed (its target replaced). Off in
  // world-writable folders such as /dev/shm, where anyone may plant one.
  bool follow_symlinks = true;
  // Commit checks it last, after the fsync (which may take seconds): once
  // cancelled, the new file is discarded instead of put in place.
  const CancelToken* cancel = nullptr;
};

class AtomicFile {
 public:
  // `size` bytes are reserved (fallocate) or, where the filesystem cannot,
  // the file is sized sparsely (reserved() is then false).
  static Result<std::unique_ptr<AtomicFile>> Create(const std::string& path, uint64_t size,
                                                    const AtomicFileOptions& options = {});
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& path() const { return path_; }  // the destination (symlinks resolved)
  uint64_t size() const { return size_; }
  bool reserved() const { return reserved_; }
  int fd() const { return fd_; }

  // A path that opens the file being written, for reading it back before
  // Commit (/proc/self/fd/N for an unnamed file).
  std::string temp_path() const;

  // pwrite/pread: safe from several threads at once (on distinct ranges).
  Status WriteAt(const void* data, size_t size, uint64_t offset);
  Status ReadAt(void* data, size_t size, uint64_t offset) const;
  // Maps bytes [offset, offset + length) writable (offset a multiple of the
  // page size), for producing data in place. Only where reserved(): a write
  // through a mapping cannot report a full disk. Unmapped by Commit/Discard.
  Result<std::span<uint8_t>> Map(uint64_t offset, uint64_t length);
  // Changes the final size (for writers that learn it at the end).
  Status Resize(uint64_t size);
  Status Commit();
  // Closes and removes the temporary file; the destination is untouched.
  void Discard();

 private:
  AtomicFile() = default;
  Status CheckDestination() const;
  std::string path_;
  std::string base_;  // the destination's name in its folder
  uint64_t size_ = 0;
  bool sync_ = true;
  bool no_replace_ = false;
  const CancelToken* cancel_ = nullptr;
  bool follow_symlinks_ = true;
  bool reserved_ = false;
  int dir_fd_ = -1;
  int fd_ = -1;
  std::string tmp_name_;  // empty while the file is unnamed (O_TMPFILE)
  void* mapping_ = nullptr;
  uint64_t mapping_length_ = 0;
  bool done_ = false;
};

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_ATOMIC_FILE_H_
