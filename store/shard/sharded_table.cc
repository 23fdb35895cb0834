#include "store/shard/sharded_table.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "format/checksum.h"
#include "store/core/atomic_file.h"
#include "store/core/file_util.h"

namespace embstore {

// A shard once opened and checked. A failure is not kept: the next call
// tries again (a descriptor limit, a file restored meanwhile).
struct ShardedTable::Slot {
  std::mutex mu;
  std::atomic<const Table*> ready{nullptr};
  std::unique_ptr<Table> table;  // guarded by mu until ready is set
};

namespace {

std::string Rows(uint64_t first, uint64_t count) {
  return "rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ")";
}

}  // namespace

std::string ManifestFolder(const std::string& manifest_path) {
  struct stat st;
  if (::lstat(manifest_path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    std::error_code ec;
    const std::filesystem::path real = std::filesystem::canonical(manifest_path, ec);
    if (!ec) return real.parent_path().string();
  }
  return FolderOf(manifest_path);
}

std::string ShardFileName(uint64_t index, const std::string& extension) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "shard-%06llu", static_cast<unsigned long long>(index));
  return buf + extension;
}

ShardedTable::ShardedTable(std::string path, Manifest manifest, Metadata metadata, ShardOpener opener)
    : path_(std::move(path)),
      folder_(ManifestFolder(path_)),
      manifest_(std::move(manifest)),
      metadata_(std::move(metadata)),
      opener_(std::move(opener)),
      slots_(std::make_unique<Slot[]>(manifest_.shards.size())) {
  starts_.reserve(manifest_.shards.size() + 1);
  for (const ShardEntry& e : manifest_.shards) starts_.push_back(e.first_row);
  starts_.push_back(manifest_.rows);
  header_.dtype = static_cast<uint32_t>(manifest_.dtype);
  header_.version_minor = 0;
  header_.header_size = 0;
  header_.rows = manifest_.rows;
  header_.dim = manifest_.dim;
  header_.row_stride = manifest_.dim * DtypeSize(header_.dtype);
  header_.data_size = header_.rows * header_.row_stride;  // < 2^52 * 2^22: no overflow
  if (manifest_.keys) header_.optional_flags = kOptionalFlagKeys;
}

ShardedTable::~ShardedTable() = default;

Result<std::unique_ptr<ShardedTable>> ShardedTable::Open(const std::string& manifest_path,
                                                         std::span<const uint8_t> manifest_bytes, ShardOpener opener) {
  auto decoded = DecodeManifest(manifest_bytes);
  if (!decoded.ok()) return decoded.status().WithContext(manifest_path);
  Metadata metadata = decoded->metadata;
  return std::unique_ptr<ShardedTable>(
      new ShardedTable(manifest_path, std::move(*decoded), std::move(metadata), std::move(opener)));
}

std::string ShardedTable::ShardPath(uint64_t i) const { return folder_ + "/" + manifest_.shards[i].path; }

std::string ShardedTable::ShardName(uint64_t i) const {
  const ShardEntry& s = manifest_.shards[i];
  return "shard " + std::to_string(i) + " (" + EscapeForDisplay(s.path) + ", " + Rows(s.first_row, s.rows) + ")";
}

Result<std::unique_ptr<Table>> ShardedTable::OpenShard(uint64_t i) const {
  const ShardEntry& e = manifest_.shards[i];
  const std::string file = ShardPath(i);
  const std::string what = path_ + ": " + ShardName(i);
  struct stat st;
  if (::lstat(file.c_str(), &st) != 0) {
    const int err = errno;
    const std::string why = std::strerror(err);
    if (err == ENOENT) return Status::NotFound(what + " is missing: " + file + ": " + why);
    return Status::IOError(what + ": " + file + ": " + why);
  }
  if (S_ISLNK(st.st_mode)) {
    return Status::Corruption(what + " is a symbolic link: a shard must be a regular file in the manifest's folder");
  }
  if (!S_ISREG(st.st_mode)) return Status::Corruption(what + " is not a regular file");
  auto opened = opener_(file);
  if (!opened.ok()) return opened.status().WithContext(what);
  std::unique_ptr<Table> t = std::move(*opened);
  const Header& h = t->header();
  if (h.dim != manifest_.dim || t->dtype() != manifest_.dtype) {
    return Status::Corruption(what + " is " + std::to_string(h.rows) + " x " + std::to_string(h.dim) + " " +
                              DtypeName(h.dtype) + ", the table " + std::to_string(manifest_.dim) + "-dimensional " +
                              DtypeName(manifest_.dtype));
  }
  if (h.rows != e.rows) {
    return Status::Corruption(what + " has " + std::to_string(h.rows) + " rows, the manifest says " +
                              std::to_string(e.rows));
  }
  if (h.has_keys() != manifest_.keys) {
    return Status::Corruption(what + (manifest_.keys ? " has no keys; the table's shards all have keys"
                                                      : " has keys; the table's shards have none"));
  }
  EMB_RETURN_IF_ERROR(CheckShardMetadata(t->metadata(), manifest_.table_id, i, e.first_row, what));
  const std::span<const uint8_t> prefix = t->table_prefix();
  if (prefix.size() < h.checksum_offset + 8 * h.checksum_count) {
    return Status::NotSupported(what + ": this kind of table has no checksums to check against the manifest");
  }
  const uint64_t sum = ShardChecksum(prefix, h);
  if (sum != e.checksum) {
    return Status::Corruption(what + ": its checksums are not the ones the manifest records (manifest " +
                              Hex64(e.checksum) + ", shard " + Hex64(sum) +
                              "): another version of this shard, or a damaged one");
  }
  return t;
}

Result<const Table*> ShardedTable::Shard(uint64_t i) const {
  if (i >= manifest_.shards.size()) {
    return Status::OutOfRange("shard " + std::to_string(i) + " out of range: the table has " +
                              std::to_string(manifest_.shards.size()));
  }
  Slot& slot = slots_[i];
  if (const Table* t = slot.ready.load(std::memory_order_acquire)) return t;
  std::lock_guard<std::mutex> lock(slot.mu);
  if (const Table* t = slot.ready.load(std::memory_order_acquire)) return t;
  EMB_ASSIGN_OR_RETURN(slot.table, OpenShard(i));
  slot.ready.store(slot.table.get(), std::memory_order_release);
  return static_cast<const Table*>(slot.table.get());
}

uint64_t ShardedTable::ShardOf(uint64_t row) const {
  return static_cast<uint64_t>(std::upper_bound(starts_.begin(), starts_.end(), row) - starts_.begin()) - 1;
}

uint64_t ShardedTable::file_size() const {
  uint64_t total = 0;
  for (uint64_t i = 0; i < manifest_.shards.size(); ++i) {
    struct stat st;
    if (::stat(ShardPath(i).c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_size);
  }
  return total;
}

Status ShardedTable::Gather(std::span<const uint64_t> ids, Dtype as, std::span<uint8_t> out) const {
  EMB_RETURN_IF_ERROR(CheckRowsOut(ids.size(), header_.dim, as, out));
  for (uint64_t id : ids) {
    if (id >= header_.rows) return Status::OutOfRange(OutOfRangeMessage(id, header_.rows));
  }
  const uint64_t row = header_.dim * DtypeSize(as);
  uint64_t local[64];
  for (size_t i = 0; i < ids.size();) {
    // A run of ids in one shard (up to 64) goes to it in one call.
    const uint64_t s = ShardOf(ids[i]);
    const uint64_t first = starts_[s], end = starts_[s + 1];
    size_t n = 0;
    while (i + n < ids.size() && n < 64 && ids[i + n] >= first && ids[i + n] < end) {
      local[n] = ids[i + n] - first;
      ++n;
    }
    EMB_ASSIGN_OR_RETURN(const Table* t, Shard(s));
    EMB_RETURN_IF_ERROR(t->Gather(std::span<const uint64_t>(local, n), as, out.subspan(i * row, n * row)));
    i += n;
  }
  return Status::OK();
}

Status ShardedTable::ReadRows(uint64_t first, uint64_t count, Dtype as, std::span<uint8_t> out) const {
  EMB_RETURN_IF_ERROR(CheckRowRange(first, count, header_.rows));
  EMB_RETURN_IF_ERROR(CheckRowsOut(count, header_.dim, as, out));
  const uint64_t row = header_.dim * DtypeSize(as);
  uint64_t done = 0;
  while (done < count) {
    const uint64_t r = first + done;
    const uint64_t s = ShardOf(r);
    const ShardEntry& e = manifest_.shards[s];
    const uint64_t n = std::min(count - done, e.first_row + e.rows - r);
    EMB_ASSIGN_OR_RETURN(const Table* t, Shard(s));
    EMB_RETURN_IF_ERROR(t->ReadRows(r - e.first_row, n, as, out.subspan(done * row, n * row)));
    done += n;
  }
  return Status::OK();
}

Status ShardedTable::Advise(AccessHint hint, uint64_t first_row, uint64_t row_count) const {
  EMB_RETURN_IF_ERROR(CheckRowRange(first_row, row_count, header_.rows));
  for (uint64_t r = first_row, end = first_row + row_count; r < end;) {
    const uint64_t s = ShardOf(r);
    const ShardEntry& e = manifest_.shards[s];
    const uint64_t n = std::min(end - r, e.first_row + e.rows - r);
    EMB_ASSIGN_OR_RETURN(const Table* t, Shard(s));
    EMB_RETURN_IF_ERROR(t->Advise(hint, r - e.first_row, n));
    r += n;
  }
  return Status::OK();
}

Result<VerifyReport> ShardedTable::Verify(const VerifyOptions& options) const {
  VerifyReport report;
  const uint64_t row_bytes = header_.row_stride;
  for (uint64_t i = 0; i < manifest_.shards.size(); ++i) {
    if (IsCancelled(options.cancel)) return options.cancel->Error();
    const ShardEntry& e = manifest_.shards[i];
    ++report.shards_checked;
    auto t = Shard(i);
    if (!t.ok()) {
      if (t.status().IsCancelled()) return t.status();
      // The message already starts with this table's path.
      std::string msg = t.status().message();
      if (msg.rfind(path_ + ": ", 0) == 0) msg.erase(0, path_.size() + 2);
      report.bad_shards.push_back(msg);
      continue;
    }
    VerifyOptions vo = options;
    const uint64_t base = e.first_row * row_bytes;  // progress in bytes of the whole table
    if (options.progress) {
      vo.progress = [&](uint64_t done, uint64_t) { options.progress(base + done, header_.data_size); };
    }
    EMB_ASSIGN_OR_RETURN(VerifyReport r, (*t)->Verify(vo));
    report.blocks_checked += r.blocks_checked;
    report.frames_checked += r.frames_checked;
    report.bytes_checked += r.bytes_checked;
    report.bad_block_count += r.bad_block_count;
    report.bad_frame_count += r.bad_frame_count;
    for (BadRows& b : r.bad) {
      if (report.bad.size() >= kMaxReportedBadRows) break;
      b.first_row += e.first_row;
      b.shard = e.path;
      report.bad.push_back(std::move(b));
    }
    for (const std::string& region : r.bad_regions) report.bad_regions.push_back("shard " + e.path + ": " + region);
    if (!r.bad_keys.empty()) {
      report.bad_keys += (report.bad_keys.empty() ? "" : "; ") + ("shard " + e.path + ": " + r.bad_keys);
    }
  }
  if (options.progress) options.progress(header_.data_size, header_.data_size);
  return report;
}

Status ShardedTable::WriteEmb(AtomicFile*, unsigned, const Progress&, const CancelToken*) const {
  return Status::NotSupported(path_ + ": a sharded table is not one file; its shards are tables of their own "
                              "(work on them one by one, or export the whole table)");
}

ShardEntry DescribeShard(const Table& shard, const std::string& name, uint64_t first_row) {
  ShardEntry e;
  e.path = name;
  e.first_row = first_row;
  e.rows = shard.rows();
  e.checksum = ShardChecksum(shard.table_prefix(), shard.header());
  return e;
}

Status WriteManifest(const std::string& path, const Manifest& manifest, bool sync, bool replace) {
  EMB_RETURN_IF_ERROR(CheckManifest(manifest));
  const std::string text = EncodeManifest(manifest);
  AtomicFileOptions o;
  o.sync = sync;
  o.no_replace = !replace;
  EMB_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, text.size(), o));
  EMB_RETURN_IF_ERROR(file->WriteAt(text.data(), text.size(), 0));
  return file->Commit();
}

}  // namespace embstore
