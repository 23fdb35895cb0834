#include "store/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace embstore {

namespace {

// Short and independent of the destination's name, so it fits NAME_MAX
// whenever the destination does.
std::string TempName() {
  static std::atomic<unsigned> counter{0};
  return ".embstore-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// Removes hidden temporary files that killed writers left in the folder:
// ".embstore-tmp-PID-N" whose process no longer exists. (Unnamed temporary
// files need no cleaning: the kernel drops them with their last descriptor.)
void RemoveStaleTemps(int dir_fd) {
  const int fd = ::dup(dir_fd);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return;
  }
  constexpr char kPrefix[] = ".embstore-tmp-";
  while (const dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    if (std::strncmp(name, kPrefix, sizeof(kPrefix) - 1) != 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(name + sizeof(kPrefix) - 1, &end, 10);
    if (pid <= 0 || end == nullptr || *end != '-') continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    ::unlinkat(dir_fd, name, 0);
  }
  ::closedir(d);
}

}  // namespace

Status IoErrorFromErrno(const std::string& path, const std::string& what) {
  if (errno == ENOSPC || errno == EDQUOT) {
    return Status::IOError(path + ": no space left on device (" + what + ")");
  }
  if (errno == EFBIG) return Status::IOError(path + ": file too large for the file-size limit, ulimit -f (" + what + ")");
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path, uint64_t size,
                                                       const AtomicFileOptions& options) {
  // A symlink at the destination is followed: the file it points to is
  // replaced and the link kept (a dangling link is replaced itself).
  std::string target = path;
  struct stat st;
  if (options.follow_symlinks && ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (char* real = ::realpath(path.c_str(), nullptr)) {
      target = real;
      std::free(real);
    }
  }
  const std::filesystem::path p(target);
  const std::string base = p.filename().string();
  if (base.empty() || base == "." || base == "..") return Status::InvalidArgument(path + ": not a file name");
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";

  std::unique_ptr<AtomicFile> f(new AtomicFile());
  f->path_ = target;
  f->size_ = size;
  f->sync_ = options.sync;
  f->no_replace_ = options.no_replace;
  f->dir_fd_ = ::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (f->dir_fd_ < 0) return IoErrorFromErrno(path, "cannot open folder " + dir);
  if (::fstatat(f->dir_fd_, base.c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode)) {
    return Status::IOError(path + ": is a folder");
  }
  // An unnamed file vanishes by itself if we die before Commit. Commit names
  // it through /proc/self/fd, so use it only where that works.
  RemoveStaleTemps(f->dir_fd_);
  // EMBSTORE_NAMED_TEMP=1 forces the named fallback (tests of filesystems
  // without O_TMPFILE).
  const char* named = std::getenv("EMBSTORE_NAMED_TEMP");
  if (options.unnamed_temp && !(named != nullptr && std::strcmp(named, "1") == 0)) {
    f->fd_ = ::openat(f->dir_fd_, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
    if (f->fd_ >= 0 && ::access(("/proc/self/fd/" + std::to_string(f->fd_)).c_str(), F_OK) != 0) {
      ::close(f->fd_);
      f->fd_ = -1;
    }
  }
  if (f->fd_ < 0) {
    f->tmp_name_ = TempName();
    f->fd_ = ::openat(f->dir_fd_, f->tmp_name_.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0666);
    if (f->fd_ < 0) {
      f->tmp_name_.clear();
      return IoErrorFromErrno(path, "cannot create a temporary file in " + dir);
    }
  }
  if (options.mode >= 0 && ::fchmod(f->fd_, static_cast<mode_t>(options.mode)) != 0) {
    return IoErrorFromErrno(path, "cannot set the new file's permissions");
  }
  // Reserve every block now: a full disk fails here, cleanly, instead of
  // after gigabytes of work.
  if (size > 0 && ::fallocate(f->fd_, 0, 0, static_cast<off_t>(size)) == 0) {
    f->reserved_ = true;
  } else if (size > 0) {
    if (errno != EOPNOTSUPP && errno != ENOSYS) {
      return IoErrorFromErrno(path, "cannot reserve " + std::to_string(size) + " bytes");
    }
    if (::ftruncate(f->fd_, static_cast<off_t>(size)) != 0) {
      return IoErrorFromErrno(path, "cannot size the file to " + std::to_string(size) + " bytes");
    }
  }
  return f;
}

AtomicFile::~AtomicFile() { Discard(); }

Result<std::span<uint8_t>> AtomicFile::Map(uint64_t offset, uint64_t length) {
  if (done_ || mapping_ != nullptr) return Status::InvalidArgument(path_ + ": cannot map now");
  if (!reserved_) return Status::NotSupported(path_ + ": the filesystem cannot reserve space for a mapped write");
  if (length == 0) return std::span<uint8_t>();
  void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return IoErrorFromErrno(path_, "cannot map the new file");
  mapping_ = p;
  mapping_length_ = length;
  return std::span<uint8_t>(static_cast<uint8_t*>(p), length);
}

void AtomicFile::Discard() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_length_);
  mapping_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_name_.empty()) ::unlinkat(dir_fd_, tmp_name_.c_str(), 0);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  fd_ = dir_fd_ = -1;
  tmp_name_.clear();
  done_ = true;
}

std::string AtomicFile::temp_path() const {
  if (!tmp_name_.empty()) return (std::filesystem::path(path_).parent_path() / tmp_name_).string();
  return "/proc/self/fd/" + std::to_string(fd_);
}

Status AtomicFile::WriteAt(const void* data, size_t size, uint64_t offset) {
  if (done_) return Status::InvalidArgument(path_ + ": file already committed or discarded");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoErrorFromErrno(path_, "write");
    }
    if (n == 0) {
      errno = ENOSPC;
      return IoErrorFromErrno(path_, "write");
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

Status AtomicFile::Resize(uint64_t size) {
  if (done_) return Status::InvalidArgument(path_ + ": file already committed or discarded");
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return IoErrorFromErrno(path_, "resize");
  size_ = size;
  return Status::OK();
}

Status AtomicFile::Commit() {
  if (done_) return Status::InvalidArgument(path_ + ": file already committed or discarded");
  auto fail = [&](Status st) {
    Discard();
    return st;
  };
  if (mapping_ != nullptr) {  // dirty pages stay in the page cache; fsync writes them
    ::munmap(mapping_, mapping_length_);
    mapping_ = nullptr;
  }
  if (sync_ && ::fsync(fd_) != 0) return fail(IoErrorFromErrno(path_, "fsync"));
  const std::string base = std::filesystem::path(path_).filename().string();
  if (no_replace_) {
    // Publish only if the name is free, atomically: linkat never replaces,
    // and RENAME_NOREPLACE makes rename refuse too.
    int rc;
    if (tmp_name_.empty()) {
      const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
      rc = ::linkat(AT_FDCWD, proc.c_str(), dir_fd_, base.c_str(), AT_SYMLINK_FOLLOW);
    } else {
      rc = ::renameat2(dir_fd_, tmp_name_.c_str(), dir_fd_, base.c_str(), RENAME_NOREPLACE);
      if (rc == 0) tmp_name_.clear();
    }
    if (rc != 0) {
      if (errno == EEXIST) return fail(Status::AlreadyExists(path_ + ": already exists"));
      return fail(IoErrorFromErrno(path_, "cannot put the new file in place"));
    }
    if (sync_) ::fsync(dir_fd_);
    Discard();
    return Status::OK();
  }
  if (tmp_name_.empty()) {
    // Give the unnamed file a hidden name, then rename it over the
    // destination: rename is atomic, linkat cannot replace a file.
    const std::string name = TempName();
    const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, proc.c_str(), dir_fd_, name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return fail(IoErrorFromErrno(path_, "cannot link the temporary file"));
    }
    tmp_name_ = name;
  }
  if (::renameat(dir_fd_, tmp_name_.c_str(), dir_fd_, base.c_str()) != 0) {
    return fail(IoErrorFromErrno(path_, "cannot rename the temporary file into place"));
  }
  tmp_name_.clear();  // it is the destination now
  // The file is in place. Some filesystems refuse fsync on a folder; that
  // weakens durability of the rename but is no reason to report failure.
  if (sync_) ::fsync(dir_fd_);
  Discard();  // closes the descriptors; nothing is left to unlink
  return Status::OK();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace embstore
