#include "store/shared_table.h"

#include <dirent.h>
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
#include "store/atomic_file.h"
#include "store/embz.h"
#include "store/parallel.h"
#include "store/table_reader.h"

namespace embstore {

namespace {

constexpr char kPrefix[] = "embstore-";
constexpr char kSharedScheme[] = "shm:";

std::string Quoted(const std::string& name) { return "shared table '" + name + "'"; }

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Copies a whole table file into out on several threads, in 4 MiB pieces.
Status CopyInto(const TableReader& table, AtomicFile* out, unsigned threads,
                const std::function<void(uint64_t, uint64_t)>& progress) {
  const std::span<const uint8_t> bytes = table.file_bytes();
  constexpr uint64_t kPiece = uint64_t{4} << 20;
  const uint64_t pieces = (bytes.size() + kPiece - 1) / kPiece;
  const unsigned n = ResolveThreads(threads, pieces);
  std::vector<Status> errors(n);
  std::atomic<uint64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  auto work = [&](unsigned w) {
    for (uint64_t p; !failed && (p = next.fetch_add(1)) < pieces;) {
      const uint64_t at = p * kPiece, len = std::min<uint64_t>(kPiece, bytes.size() - at);
      Status st = out->WriteAt(bytes.data() + at, len, at);
      if (!st.ok()) {
        errors[w] = st;
        failed = true;
        return;
      }
      done.fetch_add(len, std::memory_order_relaxed);
    }
  };
  EMB_RETURN_IF_ERROR(RunParallel(n, work, &done, bytes.size(), progress));
  for (const Status& st : errors) EMB_RETURN_IF_ERROR(st);
  return Status::OK();
}

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

Result<TableReader> TableReader::OpenShared(const std::string& name) {
  EMB_RETURN_IF_ERROR(ValidateSharedName(name));
  const std::string path = SharedPath(name);
  // The name may be unshared, or shared again, at any moment: a name that
  // is absent when looked at is "not found", and one that came back in the
  // meantime is opened again.
  auto gone = [&] {
    return Status::NotFound("no " + Quoted(name) + " in " + SharedDir() + " ('embstore shared' lists them)");
  };
  Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto table = Open(path);
    if (table.ok()) return table;
    last = table.status().WithContext(Quoted(name));
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return errno == ENOENT ? gone() : Status::IOError(Quoted(name) + ": " + path + ": " + std::strerror(errno));
    }
    if (::access(path.c_str(), R_OK) != 0) {
      if (errno == ENOENT) return gone();
      return Status::IOError(Quoted(name) + ": " + path + ": " + std::strerror(errno) + " (owner uid " +
                             std::to_string(st.st_uid) + ", mode " + OctalMode(st.st_mode & 0777) + ")");
    }
    if (!last.IsIOError() && !last.IsNotFound()) return last;  // it opened and is not a valid table
  }
  return last;
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
  std::unique_ptr<TableReader> plain;
  std::unique_ptr<EmbzReader> packed;
  if (StartsWith(source, kSharedScheme)) {
    EMB_ASSIGN_OR_RETURN(TableReader t, TableReader::OpenShared(source.substr(std::strlen(kSharedScheme))));
    plain = std::make_unique<TableReader>(std::move(t));
  } else if (FileIsEmbz(source)) {
    EMB_ASSIGN_OR_RETURN(packed, EmbzReader::Open(source));
  } else {
    EMB_ASSIGN_OR_RETURN(TableReader t, TableReader::Open(source));
    plain = std::make_unique<TableReader>(std::move(t));
  }
  const uint64_t size = plain ? plain->file_size() : packed->embz_header().table_size;
  AtomicFileOptions fo;
  fo.sync = false;  // memory: nothing to make durable
  fo.mode = static_cast<int>(options.mode & 0444u);
  fo.no_replace = !options.replace;
  fo.follow_symlinks = false;  // /dev/shm is writable by everyone
  auto out = AtomicFile::Create(path, size, fo);
  if (!out.ok()) return out.status().WithContext(Quoted(name));
  if (plain) {
    EMB_RETURN_IF_ERROR(CopyInto(*plain, out->get(), options.threads, options.progress).WithContext(Quoted(name)));
  } else {
    EMB_RETURN_IF_ERROR(packed->DecompressInto(out->get(), options.threads, options.progress));
  }
  // Check what readers will map, not what we meant to write.
  auto copy = TableReader::Open((*out)->temp_path());
  if (!copy.ok()) return copy.status().WithContext(Quoted(name) + ": the copy of " + source + " does not open");
  VerifyOptions vo;
  vo.threads = options.threads;
  EMB_ASSIGN_OR_RETURN(VerifyReport report, copy->Verify(vo));
  if (!report.ok()) {
    std::string first;
    if (!report.bad_blocks.empty()) {
      const BadBlock& b = report.bad_blocks.front();
      first = ", the first rows [" + std::to_string(b.first_row) + ", " + std::to_string(b.first_row + b.row_count) + ")";
    } else if (!report.bad_regions.empty()) {
      first = ", " + report.bad_regions.front();
    }
    return Status::Corruption(source + ": " + std::to_string(report.bad_block_count) + " corrupt blocks" + first +
                              "; nothing was shared ('embstore verify' lists them all)");
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
    struct stat st;
    if (::stat((dir + "/" + file).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    info.bytes = static_cast<uint64_t>(st.st_size);
    info.mode = st.st_mode & 0777;
    info.uid = st.st_uid;
    auto t = TableReader::OpenShared(info.name);
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
