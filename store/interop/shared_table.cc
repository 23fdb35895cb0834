#include "store/interop/shared_table.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "format/embz_format.h"
#include "format/metadata.h"
#include "store/core/atomic_file.h"
#include "store/core/parallel.h"
#include "store/core/table_reader.h"
#include "store/embz/embz.h"
#include "store/interop/open_table.h"

namespace embstore {

namespace {

constexpr char kPrefix[] = "embstore-";

std::string Quoted(const std::string& name) { return "shared table '" + name + "'"; }

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::string OctalMode(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0%03o", mode);
  return buf;
}

Status ValidateSharedName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("shared table name '" + name + "': " + why);
  };
  if (name.empty()) return bad("empty");
  if (name.size() > kMaxSharedNameLength) {
    return bad(std::to_string(name.size()) + " characters, at most " + std::to_string(kMaxSharedNameLength));
  }
  if (name[0] == '.') return bad("starts with '.'");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return bad("only letters, digits, '.', '_' and '-' are allowed");
  }
  return Status::OK();
}

std::string SharedDir() {
  const char* dir = std::getenv("EMBSTORE_SHM_DIR");
  return dir != nullptr && *dir != '\0' ? dir : "/dev/shm";
}

std::string SharedPath(const std::string& name) { return SharedDir() + "/" + kPrefix + name; }

std::string UserText(uint32_t uid) {
  std::string text = "uid " + std::to_string(uid);
  std::vector<char> buf(16384);
  struct passwd pw, *found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    text += " (" + std::string(found->pw_name) + ")";
  }
  return text;
}

Result<uint32_t> ParseOwner(const std::string& user) {
  if (!user.empty() && user.find_first_not_of("0123456789") == std::string::npos && user.size() <= 10) {
    const uint64_t uid = std::stoull(user);
    if (uid < (uint64_t{1} << 32) - 1) return static_cast<uint32_t>(uid);
  }
  std::vector<char> buf(16384);
  struct passwd pw, *found = nullptr;
  if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return static_cast<uint32_t>(found->pw_uid);
  }
  return Status::InvalidArgument("owner '" + EscapeForDisplay(user) + "' is neither a user name nor a uid");
}

bool OwnerTrusted(uint32_t uid, std::span<const uint32_t> trusted_owners) {
  return uid == ::geteuid() || uid == 0 ||
         std::find(trusted_owners.begin(), trusted_owners.end(), uid) != trusted_owners.end();
}

Result<TableReader> OpenSharedTable(const std::string& name, std::span<const uint32_t> trusted_owners) {
  EMB_RETURN_IF_ERROR(ValidateSharedName(name));
  const std::string path = SharedPath(name);
  // One open decides everything: a name unshared meanwhile is "not found",
  // one shared again meanwhile gives the old segment or the new one, whole.
  // A symlink planted at the name is not followed.
  MapOptions mo;
  mo.follow_symlinks = false;
  auto file = MappedFile::Open(path, mo);
  if (!file.ok()) {
    if (file.status().IsNotFound()) {
      return Status::NotFound("no " + Quoted(name) + " in " + SharedDir() + " ('embstore shared' lists them)");
    }
    Status st = file.status().WithContext(Quoted(name));
    struct stat s;
    if (::lstat(path.c_str(), &s) == 0 && S_ISREG(s.st_mode) && ::access(path.c_str(), R_OK) != 0 &&
        errno == EACCES) {
      st = Status::IOError(st.message() + " (owner " + UserText(s.st_uid) + ", mode " + OctalMode(s.st_mode & 0777) +
                           ")");
    }
    return st;
  }
  // Anyone may create a name in /dev/shm. A segment of another user is read
  // only when that user is trusted: otherwise whoever took the name first
  // would serve their rows to our workers.
  if (!OwnerTrusted(file->owner_uid(), trusted_owners)) {
    return Status::IOError(Quoted(name) + " (" + path + ") belongs to " + UserText(file->owner_uid()) +
                           ", not to you (" + UserText(::geteuid()) +
                           ") or root: another user may have taken the name first; read it only if you trust "
                           "that user (--trust-owner " + std::to_string(file->owner_uid()) + ", or trust_owner= in Python)");
  }
  auto table = TableReader::Open(std::move(*file));
  if (!table.ok()) return table.status().WithContext(Quoted(name));
  return table;
}

Status ShareTable(const std::string& source, const std::string& name, const ShareOptions& options) {
  EMB_RETURN_IF_ERROR(ValidateSharedName(name));
  if ((options.mode & ~0777u) != 0 || (options.mode & 0400u) == 0) {
    return Status::InvalidArgument("mode " + OctalMode(options.mode) +
                                   ": permission bits must be within 0777 and let the owner read (0400)");
  }
  const std::string path = SharedPath(name);
  struct stat st;
  if (!options.replace && ::lstat(path.c_str(), &st) == 0) {
    return Status::AlreadyExists(Quoted(name) + " already exists (unshare it first, or replace it)");
  }
  // The source: a table file, a .embz, or another segment.
  OpenOptions oo;
  oo.trusted_owners = options.trusted_owners;
  EMB_ASSIGN_OR_RETURN(std::unique_ptr<Table> table, OpenTable(source, oo));
  if (table->manifest() != nullptr) {
    // Refused before its whole size is reserved in shared memory.
    return Status::InvalidArgument(source + ": is a sharded table, not one file; a shared table is one table "
                                   "(share its shards one by one)");
  }
  AtomicFileOptions fo;
  fo.sync = false;  // memory: nothing to make durable
  fo.mode = static_cast<int>(options.mode & 0444u);
  fo.no_replace = !options.replace;
  fo.follow_symlinks = false;  // /dev/shm is writable by everyone
  fo.cancel = options.cancel;
  auto out = AtomicFile::Create(path, table->emb_size(), fo);
  if (!out.ok()) return out.status().WithContext(Quoted(name));
  EMB_RETURN_IF_ERROR(
      table->WriteEmb(out->get(), options.threads, options.progress, options.cancel).WithContext(Quoted(name)));
  // Check what readers will map, not what we meant to write.
  auto copy = TableReader::Open((*out)->temp_path());
  if (!copy.ok()) return copy.status().WithContext(Quoted(name) + ": the copy of " + source + " does not open");
  VerifyOptions vo;
  vo.threads = options.threads;
  vo.cancel = options.cancel;
  EMB_ASSIGN_OR_RETURN(VerifyReport report, copy->Verify(vo));
  if (!report.ok()) {
    return Status::Corruption(source + ": " + report.Summary() + "; nothing was shared ('embstore verify' lists them all)");
  }
  return (*out)->Commit().WithContext(Quoted(name));
}

Status UnshareTable(const std::string& name) {
  EMB_RETURN_IF_ERROR(ValidateSharedName(name));
  const std::string path = SharedPath(name);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::NotFound("no " + Quoted(name) + " in " + SharedDir());
    return Status::IOError(Quoted(name) + ": cannot remove " + path + ": " + std::strerror(errno));
  }
  return Status::OK();
}

Result<std::vector<SharedSegmentInfo>> ListShared() {
  const std::string dir = SharedDir();
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return Status::IOError(dir + ": " + std::strerror(errno));
  std::vector<SharedSegmentInfo> out;
  while (const dirent* e = ::readdir(d.get())) {
    const std::string file = e->d_name;
    if (!StartsWith(file, kPrefix)) continue;
    SharedSegmentInfo info;
    info.name = file.substr(std::strlen(kPrefix));
    if (!ValidateSharedName(info.name).ok()) continue;  // not one embstore made
    // What is at the name itself: a symlink is listed as one (readers do not
    // follow it), never as what it points to.
    struct stat st;
    if (::lstat((dir + "/" + file).c_str(), &st) != 0) continue;
    info.bytes = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
    info.mode = st.st_mode & 0777;
    info.uid = st.st_uid;
    if (!S_ISREG(st.st_mode)) {
      info.error = "is " + FileTypeText(st.st_mode) + ", not a table (not read)";
      out.push_back(std::move(info));
      continue;
    }
    auto t = OpenSharedTable(info.name);
    if (t.ok()) {
      info.valid = true;
      info.rows = t->rows();
      info.dim = t->dim();
    } else {
      info.error = t.status().message();
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace embstore
