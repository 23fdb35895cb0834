#include "store/core/file_util.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace embstore {

Status IoErrorFromErrno(const std::string& path, const std::string& what) {
  if (errno == ENOSPC || errno == EDQUOT) {
    return Status::IOError(path + ": no space left on device (" + what + ")");
  }
  if (errno == EFBIG) return Status::IOError(path + ": file too large for the file-size limit, ulimit -f (" + what + ")");
  if (errno == ENAMETOOLONG) return Status::IOError(path + ": " + what + ": the name is too long for the file system");
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string FileTypeText(uint32_t st_mode) {
  switch (st_mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a folder";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symlink";
  }
  return "not a regular file";
}

Status NotRegularFile(const std::string& path, uint32_t st_mode) {
  return Status::IOError(path + ": is " + FileTypeText(st_mode) + ", not a regular file");
}

Status NotRegularDestination(const std::string& path, uint32_t st_mode) {
  return Status::IOError(path + ": is " + FileTypeText(st_mode) +
                         ", not a regular file; embstore writes regular files and never replaces anything else");
}

Status CheckOutputIsFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::OK();  // nothing there (or a dangling symlink)
  if (S_ISREG(st.st_mode)) return Status::OK();
  return NotRegularDestination(path, st.st_mode);
}

std::string FolderOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string NameOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace embstore
