#include "store/core/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <utility>

namespace embstore {

namespace {

constexpr size_t kTempRandomChars = 16;

// ".embstore-tmp-" and 16 random hex digits: short and independent of the
// destination's name, so it fits NAME_MAX whenever the destination does,
// and unique without saying anything about the process that made it.
std::string TempName() {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof(r), GRND_NONBLOCK) != static_cast<ssize_t>(sizeof(r))) {
    static std::atomic<uint64_t> counter{0};
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    r = (static_cast<uint64_t>(::getpid()) << 40) ^ (static_cast<uint64_t>(ts.tv_nsec) << 8) ^
        (static_cast<uint64_t>(ts.tv_sec) << 20) ^ counter++;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string name = kTempPrefix;
  for (size_t i = 0; i < kTempRandomChars; ++i) name.push_back(kHex[(r >> (4 * i)) & 15]);
  return name;
}

bool IsTempName(const char* name) {
  const size_t prefix = sizeof(kTempPrefix) - 1;
  if (std::strncmp(name, kTempPrefix, prefix) != 0 || std::strlen(name) != prefix + kTempRandomChars) return false;
  for (const char* p = name + prefix; *p != '\0'; ++p) {
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  }
  return true;
}

// The temporary files this process is writing, by (device, inode). Where
// locks are per process (NFS emulates flock with POSIX locks), our own lock
// would not keep our own cleaner out, and merely opening and closing the
// file would drop it: such files are never opened by the cleaner.
std::mutex g_live_mu;
std::set<std::pair<uint64_t, uint64_t>> g_live;

void AddLive(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return;
  std::lock_guard<std::mutex> lock(g_live_mu);
  g_live.emplace(st.st_dev, st.st_ino);
}

void RemoveLive(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return;
  std::lock_guard<std::mutex> lock(g_live_mu);
  g_live.erase({st.st_dev, st.st_ino});
}

bool IsLive(const struct stat& st) {
  std::lock_guard<std::mutex> lock(g_live_mu);
  return g_live.count({st.st_dev, st.st_ino}) != 0;
}

// Removes hidden temporary files that ended writers left in the folder: a
// file is stale when its writer's lock is free (a lock dies with its
// process, whatever PID namespace or NFS client the process was in).
// Anything else is left alone: a file we cannot open or lock, a name that
// changed under us, an old-style name.
//
// A large folder (a sharded table's thousands of shards) is scanned at most
// once a second by a process: a scan reads every name, and a scan per file
// written made writing n shards cost n^2 names (70,000 one-row shards: 15
// minutes). Stale files are only wasted space until the next scan; they are
// never read.
constexpr uint64_t kLargeFolder = 1024;
std::mutex g_scans_mu;
std::map<std::pair<uint64_t, uint64_t>, int64_t> g_large_scans;  // folder (dev, ino) -> last scan, ns

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void RemoveStaleTemps(int dir_fd) {
  struct stat folder;
  const bool known = ::fstat(dir_fd, &folder) == 0;
  const std::pair<uint64_t, uint64_t> key{known ? folder.st_dev : 0, known ? folder.st_ino : 0};
  if (known) {
    std::lock_guard<std::mutex> lock(g_scans_mu);
    auto it = g_large_scans.find(key);
    if (it != g_large_scans.end() && NowNs() - it->second < 1000000000) return;
  }
  uint64_t names = 0;
  const int fd = ::dup(dir_fd);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return;
  }
  while (const dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    ++names;
    if (!IsTempName(name)) continue;
    struct stat before, opened, after;
    if (::fstatat(dir_fd, name, &before, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(before.st_mode) || IsLive(before)) {
      continue;
    }
    const int t = ::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (t < 0) continue;
    if (::fstat(t, &opened) == 0 && S_ISREG(opened.st_mode) && opened.st_ino == before.st_ino &&
        opened.st_dev == before.st_dev && ::flock(t, LOCK_EX | LOCK_NB) == 0 &&
        ::fstatat(dir_fd, name, &after, AT_SYMLINK_NOFOLLOW) == 0 && after.st_ino == opened.st_ino &&
        after.st_dev == opened.st_dev) {
      ::unlinkat(dir_fd, name, 0);
    }
    ::close(t);  // drops our lock
  }
  ::closedir(d);
  if (known && names > kLargeFolder) {
    std::lock_guard<std::mutex> lock(g_scans_mu);
    g_large_scans[key] = NowNs();
  }
}

// Takes the writer's lock on a new temporary file. False only when another
// process holds it already (a cleaner that found the file before we locked
// it, and will remove it); true, unlocked, where the file system has no
// locks (no cleaner can lock it either, so none removes it).
bool LockTemp(int fd) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
  return errno != EWOULDBLOCK;
}

// A hidden named temporary file, locked, that is still ours under its name.
Result<int> CreateNamedTemp(int dir_fd, std::string* name) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    *name = TempName();
    const int fd = ::openat(dir_fd, name->c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0666);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return Status::IOError(std::strerror(errno));
    }
    struct stat mine, there;
    if (LockTemp(fd) && ::fstat(fd, &mine) == 0 && ::fstatat(dir_fd, name->c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 &&
        mine.st_ino == there.st_ino && mine.st_dev == there.st_dev) {
      return fd;
    }
    ::close(fd);  // a cleaner took it between our create and our lock: it removes it
  }
  return Status::IOError("no free temporary name after 64 attempts");
}

// Links the (locked) unnamed file fd into the folder under a fresh hidden name.
Status LinkTemp(int fd, int dir_fd, std::string* name) {
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  for (int attempt = 0; attempt < 64; ++attempt) {
    *name = TempName();
    if (::linkat(AT_FDCWD, proc.c_str(), dir_fd, name->c_str(), AT_SYMLINK_FOLLOW) == 0) return Status::OK();
    if (errno != EEXIST) return Status::IOError(std::strerror(errno));
  }
  return Status::IOError("no free temporary name after 64 attempts");
}

// The folder a path names its last component in.
std::string FolderOf(const std::string& path) {
  const std::filesystem::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : ".";
}

// Follows the symlinks that make up the destination's last component, one
// hop at a time, the way the kernel's fs.protected_symlinks would (which a
// machine may have off, and which a rename never consults): a symlink in a
// sticky world-writable folder (/tmp, /dev/shm) is followed only if it
// belongs to this process's user or to the folder's owner. Anyone may put a
// symlink there, and following theirs would let them choose which of our
// files (for root: any file) gets replaced. A link to nowhere is replaced
// itself.
Result<std::string> FollowDestination(const std::string& path) {
  std::string cur = path;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat link;
    const int rc = ::lstat(cur.c_str(), &link);
    if (rc != 0 && errno == ENOENT && hops > 0) return path;  // dangling: the link itself is replaced
    if (rc != 0 || !S_ISLNK(link.st_mode)) return cur;
    const std::string folder = FolderOf(cur);
    struct stat dir;
    if (::stat(folder.c_str(), &dir) == 0 && (dir.st_mode & S_ISVTX) != 0 && (dir.st_mode & S_IWOTH) != 0 &&
        link.st_uid != ::geteuid() && link.st_uid != dir.st_uid) {
      return Status::IOError(path + ": " + (hops ? "leads to " + cur + ", " : std::string()) +
                             "a symlink of uid " + std::to_string(link.st_uid) + " in the world-writable folder " +
                             folder + ", which another user may have planted: embstore does not follow it");
    }
    std::string to(static_cast<size_t>(link.st_size > 0 ? link.st_size : 255) + 1, '\0');
    const ssize_t n = ::readlink(cur.c_str(), to.data(), to.size());
    if (n < 0) return IoErrorFromErrno(path, "cannot read the symlink " + cur);
    if (static_cast<size_t>(n) >= to.size()) return Status::IOError(path + ": the symlink " + cur + " changed while read");
    to.resize(static_cast<size_t>(n));
    cur = to[0] == '/' ? to : (std::filesystem::path(folder) / to).lexically_normal().string();
  }
  return Status::IOError(path + ": too many levels of symlinks");
}

}  // namespace

Status AtomicFile::CheckDestination() const {
  struct stat st;
  if (::fstatat(dir_fd_, base_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::OK();
    return IoErrorFromErrno(path_, "cannot look at the destination");
  }
  if (S_ISREG(st.st_mode)) {
    if (no_replace_) return Status::AlreadyExists(path_ + ": already exists");
    return Status::OK();
  }
  // A symlink here is one not to follow (or a dangling one): replacing the
  // link itself is what was asked.
  if (S_ISLNK(st.st_mode)) {
    if (no_replace_) return Status::AlreadyExists(path_ + ": already exists (a symlink)");
    return Status::OK();
  }
  return NotRegularDestination(path_, st.st_mode);
}

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path, uint64_t size,
                                                       const AtomicFileOptions& options) {
  // A symlink at the destination is followed: the file it points to is
  // replaced and the link kept (a dangling link is replaced itself).
  std::string target = path;
  if (options.follow_symlinks) {
    EMB_ASSIGN_OR_RETURN(target, FollowDestination(path));
  }
  const std::filesystem::path p(target);
  const std::string base = p.filename().string();
  if (base.empty() || base == "." || base == "..") return Status::InvalidArgument(path + ": not a file name");
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";

  std::unique_ptr<AtomicFile> f(new AtomicFile());
  f->path_ = target;
  f->base_ = base;
  f->size_ = size;
  f->sync_ = options.sync;
  f->no_replace_ = options.no_replace;
  f->cancel_ = options.cancel;
  f->follow_symlinks_ = options.follow_symlinks;
  f->dir_fd_ = ::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (f->dir_fd_ < 0) return IoErrorFromErrno(path, "cannot open folder " + dir);
  // Names the folder cannot hold fail now, not at the rename after the work.
  const long name_max = ::fpathconf(f->dir_fd_, _PC_NAME_MAX);
  const size_t limit = name_max > 0 ? static_cast<size_t>(name_max) : NAME_MAX;
  if (base.size() > limit) {
    return Status::InvalidArgument(path + ": the name is " + std::to_string(base.size()) + " bytes; " + dir +
                                   " allows at most " + std::to_string(limit));
  }
  EMB_RETURN_IF_ERROR(f->CheckDestination());
  RemoveStaleTemps(f->dir_fd_);
  // An unnamed file vanishes by itself if we die before Commit. Commit names
  // it through /proc/self/fd, so use it only where that works.
  // EMBSTORE_NAMED_TEMP=1 forces the named fallback (tests of filesystems
  // without O_TMPFILE).
  const char* named = std::getenv("EMBSTORE_NAMED_TEMP");
  if (options.unnamed_temp && !(named != nullptr && std::strcmp(named, "1") == 0)) {
    f->fd_ = ::openat(f->dir_fd_, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
    if (f->fd_ >= 0 && ::access(("/proc/self/fd/" + std::to_string(f->fd_)).c_str(), F_OK) != 0) {
      ::close(f->fd_);
      f->fd_ = -1;
    }
    // Locked before it can have a name, so that no cleaner ever sees it
    // unlocked.
    if (f->fd_ >= 0) (void)LockTemp(f->fd_);
  }
  if (f->fd_ < 0) {
    auto fd = CreateNamedTemp(f->dir_fd_, &f->tmp_name_);
    if (!fd.ok()) {
      f->tmp_name_.clear();
      return Status::IOError(path + ": cannot create a temporary file in " + dir + ": " + fd.status().message());
    }
    f->fd_ = *fd;
  }
  AddLive(f->fd_);
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
  // Unlink before closing: while we hold the lock, no cleaner touches it.
  if (!tmp_name_.empty()) ::unlinkat(dir_fd_, tmp_name_.c_str(), 0);
  if (fd_ >= 0) {
    RemoveLive(fd_);
    ::close(fd_);
  }
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

Status AtomicFile::ReadAt(void* data, size_t size, uint64_t offset) const {
  if (done_) return Status::InvalidArgument(path_ + ": file already committed or discarded");
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::pread(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoErrorFromErrno(path_, "read");
    }
    if (n == 0) return Status::IOError(path_ + ": read past the end of the file being written");
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
  if (IsCancelled(cancel_)) return fail(cancel_->Error());
  if (no_replace_) {
    // Publish only if the name is free, atomically: linkat never replaces,
    // and RENAME_NOREPLACE makes rename refuse too.
    int rc;
    if (tmp_name_.empty()) {
      const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
      rc = ::linkat(AT_FDCWD, proc.c_str(), dir_fd_, base_.c_str(), AT_SYMLINK_FOLLOW);
    } else {
      rc = ::renameat2(dir_fd_, tmp_name_.c_str(), dir_fd_, base_.c_str(), RENAME_NOREPLACE);
      if (rc != 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        // No RENAME_NOREPLACE here (NFS, many FUSE file systems): a hard
        // link never replaces either; then the temporary name goes.
        rc = ::linkat(dir_fd_, tmp_name_.c_str(), dir_fd_, base_.c_str(), 0);
        if (rc == 0) ::unlinkat(dir_fd_, tmp_name_.c_str(), 0);
      }
      if (rc == 0) tmp_name_.clear();
    }
    if (rc != 0) {
      if (errno == EEXIST) {
        return fail(Status::AlreadyExists(path_ + ": already exists (it appeared while the new file was being "
                                                  "written); it was left as it is and nothing was written there"));
      }
      return fail(IoErrorFromErrno(path_, "cannot put the new file in place"));
    }
    if (sync_) ::fsync(dir_fd_);
    Discard();
    return Status::OK();
  }
  // What is at the destination may have changed since Create: a device or
  // a FIFO put there meanwhile is still never replaced.
  if (Status st = CheckDestination(); !st.ok()) return fail(st);
  if (tmp_name_.empty()) {
    // Give the unnamed file a hidden name, then rename it over the
    // destination: rename is atomic, linkat cannot replace a file. The file
    // is locked, so no cleaner removes the name in between; if we are
    // killed in between, the next writer here removes it.
    if (Status st = LinkTemp(fd_, dir_fd_, &tmp_name_); !st.ok()) {
      tmp_name_.clear();
      return fail(Status::IOError(path_ + ": cannot link the temporary file: " + st.message()));
    }
  }
  if (::renameat(dir_fd_, tmp_name_.c_str(), dir_fd_, base_.c_str()) != 0) {
    return fail(IoErrorFromErrno(path_, "cannot rename the temporary file into place"));
  }
  tmp_name_.clear();  // it is the destination now
  // The file is in place. Some filesystems refuse fsync on a folder; that
  // weakens durability of the rename but is no reason to report failure.
  if (sync_) ::fsync(dir_fd_);
  Discard();  // closes the descriptors; nothing is left to unlink
  return Status::OK();
}

}  // namespace embstore
