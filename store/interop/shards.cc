#include "store/interop/shards.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>

#include "format/checksum.h"
#include "store/core/file_util.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/interop/convert.h"
#include "store/interop/open_table.h"

namespace embstore {

namespace {

std::string Stem(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

Status MakeFolder(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(dir + ": cannot make the folder: " + ec.message());
  if (!std::filesystem::is_directory(dir, ec)) return Status::InvalidArgument(dir + ": is not a folder");
  return Status::OK();
}

// A shard is a regular file in its manifest's folder: a symlink at the
// name a shard is written to would be written through (its target
// replaced, perhaps outside the folder), and the shard then refused by
// every reader; a symlink where a new table's manifest goes would put the
// manifest in another folder than its shards. Refused instead, before any
// work.
Status CheckShardDestination(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    return Status::InvalidArgument(path + ": is a symbolic link; a sharded table's manifest and shards are written "
                                   "as regular files in one folder (remove the link)");
  }
  return Status::OK();
}

// Opens a shard just written and checks every row of it.
Result<std::unique_ptr<Table>> OpenChecked(const std::string& path, const CancelToken* cancel) {
  EMB_ASSIGN_OR_RETURN(auto t, OpenTable(path));
  const Header& h = t->header();
  if (t->manifest() != nullptr || t->table_prefix().size() < h.checksum_offset + 8 * h.checksum_count ||
      h.header_size < 8 || t->table_prefix().size() < h.header_size) {
    return Status::Corruption(path + ": is not the table file just written there (replaced meanwhile?)");
  }
  VerifyOptions vo;
  vo.threads = 1;
  vo.cancel = cancel;
  EMB_ASSIGN_OR_RETURN(VerifyReport report, t->Verify(vo));
  if (!report.ok()) {
    return Status::Corruption(path + ": the shard just written fails verification (" + report.Summary() +
                              "): the disk or memory is damaging data");
  }
  return t;
}

// An exclusive lock on a file beside a manifest, held while it lives.
class FolderLock {
 public:
  static Result<FolderLock> Take(const std::string& folder) {
    const std::string path = folder + "/.embstore-manifest.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return Status::IOError(path + ": cannot open the lock file: " + std::strerror(errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        const int err = errno;
        ::close(fd);
        return Status::IOError(path + ": cannot lock: " + std::strerror(err));
      }
    }
    return FolderLock(fd);
  }
  FolderLock(FolderLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~FolderLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FolderLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

void RemoveOtherTablesManifest(const std::string& manifest, const std::string& table_id) {
  auto old = OpenTable(manifest);
  if (old.ok() && (*old)->manifest() != nullptr && (*old)->manifest()->table_id == table_id) return;
  struct stat st;
  if (::lstat(manifest.c_str(), &st) == 0 && S_ISREG(st.st_mode)) ::unlink(manifest.c_str());
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> PlanShards(uint64_t rows, uint64_t shard_rows) {
  if (shard_rows == 0 || shard_rows > kMaxRows) {
    return Status::InvalidArgument("shard rows " + std::to_string(shard_rows) + " is outside [1, 2^32]");
  }
  const uint64_t count = rows / shard_rows + (rows % shard_rows != 0);
  if (count > kMaxShards) {
    return Status::InvalidArgument(std::to_string(rows) + " rows in shards of " + std::to_string(shard_rows) +
                                   " make " + std::to_string(count) + " shards, over the limit of " +
                                   std::to_string(kMaxShards) + " (take larger shards)");
  }
  std::vector<std::pair<uint64_t, uint64_t>> plan;
  for (uint64_t first = 0; first < rows; first += shard_rows) plan.emplace_back(first, std::min(shard_rows, rows - first));
  return plan;
}

std::string GeneratedTableId(const GenerateSpec& spec, uint64_t shard_rows) {
  GenerateSpec whole = spec;
  whole.first_row = 0;
  whole.row_count = 0;
  std::string seed = "embstore generate\n" + std::to_string(spec.rows) + "x" + std::to_string(spec.dim) + " " +
                     DtypeName(spec.dtype) + " in shards of " + std::to_string(shard_rows) + "\n";
  // Not the writer's version or a creation time: every process that
  // writes a shard must derive the same id.
  for (const auto& [k, v] : GenerateMetadata(whole)) {
    if (k != "embstore.version" && k != "created") seed += k + "=" + v + "\n";
  }
  return TableIdFrom(seed);
}

Manifest GeneratedManifest(const GenerateSpec& spec, const std::string& table_id, std::vector<ShardEntry> shards) {
  GenerateSpec whole = spec;
  whole.first_row = 0;
  whole.row_count = 0;
  Manifest m;
  m.table_id = table_id;
  m.rows = spec.rows;
  m.dim = spec.dim;
  m.dtype = spec.dtype;
  m.metadata = GenerateMetadata(whole);
  m.shards = std::move(shards);
  return m;
}

Result<ShardEntry> GenerateShard(const std::string& path, const GenerateSpec& spec, const std::string& table_id,
                                 uint64_t index, uint64_t count) {
  EMB_RETURN_IF_ERROR(ValidateGenerateSpec(spec));
  if (!IsTableId(table_id)) return Status::InvalidArgument("table id '" + table_id + "' is not 32 lowercase hex digits");
  if (index >= count) {
    return Status::InvalidArgument("shard index " + std::to_string(index) + " is not below the shard count " +
                                   std::to_string(count));
  }
  EMB_RETURN_IF_ERROR(CheckShardPath(NameOf(path)));
  EMB_RETURN_IF_ERROR(MakeFolder(FolderOf(path)));  // a cluster's first task may find none
  GenerateSpec s = spec;
  AddShardMetadata(&s.extra_metadata, table_id, index, count, spec.first_row);
  EMB_RETURN_IF_ERROR(CheckShardDestination(path));
  EMB_RETURN_IF_ERROR(GenerateTable(path, s));
  EMB_ASSIGN_OR_RETURN(auto t, OpenChecked(path, spec.cancel));
  return DescribeShard(*t, NameOf(path), spec.first_row);
}

Result<std::string> GenerateSharded(const std::string& dir, const GenerateSpec& spec, uint64_t shard_rows,
                                    const ShardWorkOptions& options) {
  if (spec.first_row != 0 || (spec.row_count != 0 && spec.row_count != spec.rows)) {
    return Status::InvalidArgument("a sharded table is generated whole (no row range)");
  }
  EMB_ASSIGN_OR_RETURN(auto plan, PlanShards(spec.rows, shard_rows));
  // Checked as its first shard: the whole table may have more rows than a
  // table file takes (2^32), each shard may not.
  GenerateSpec first = spec;
  first.row_count = std::min(spec.rows, shard_rows);
  EMB_RETURN_IF_ERROR(ValidateGenerateSpec(first));
  EMB_RETURN_IF_ERROR(MakeFolder(dir));
  EMB_RETURN_IF_ERROR(CheckShardDestination(dir + "/" + kManifestFileName));
  const std::string id = GeneratedTableId(spec, shard_rows);
  RemoveOtherTablesManifest(dir + "/" + kManifestFileName, id);
  std::vector<ShardEntry> entries;
  for (uint64_t i = 0; i < plan.size(); ++i) {
    GenerateSpec s = spec;
    s.first_row = plan[i].first;
    s.row_count = plan[i].second;
    s.threads = options.threads;
    s.sync = options.sync;
    s.cancel = options.cancel;
    EMB_ASSIGN_OR_RETURN(ShardEntry e, GenerateShard(dir + "/" + ShardFileName(i), s, id, i, plan.size()));
    entries.push_back(std::move(e));
    if (options.progress) options.progress(plan[i].first + plan[i].second, spec.rows);
  }
  const std::string manifest = dir + "/" + kManifestFileName;
  EMB_RETURN_IF_ERROR(WriteManifest(manifest, GeneratedManifest(spec, id, std::move(entries)), options.sync));
  return manifest;
}

Result<ShardEntry> AppendShard(const std::string& manifest_spec, const std::string& source,
                               const ShardWorkOptions& options) {
  const std::string manifest_path = ResolveTableSpec(manifest_spec);
  const std::string folder = ManifestFolder(manifest_path);  // through a symlink: the real manifest's
  {
    // A look before the lock, so that no lock file is left beside a
    // manifest that is not one (or not there).
    EMB_ASSIGN_OR_RETURN(auto first, OpenTable(manifest_path));
    if (first->manifest() == nullptr) {
      return Status::InvalidArgument(manifest_path + ": is a table file, not a sharded table's manifest");
    }
  }
  EMB_ASSIGN_OR_RETURN(FolderLock lock, FolderLock::Take(folder));
  // Read under the lock: another appender's manifest is the one to extend.
  EMB_ASSIGN_OR_RETURN(auto opened, OpenTable(manifest_path));
  const auto* table = dynamic_cast<const ShardedTable*>(opened.get());
  if (table == nullptr) return Status::InvalidArgument(manifest_path + ": is a table file, not a sharded table's manifest");
  const Manifest& m = table->shards();
  EMB_ASSIGN_OR_RETURN(auto src, OpenTable(source));
  if (src->manifest() != nullptr) {
    return Status::InvalidArgument(source + ": is a sharded table; append adds one table file (append its shards one by one)");
  }
  if (src->dim() != m.dim || src->dtype() != m.dtype) {
    return Status::InvalidArgument(source + ": is " + std::to_string(src->rows()) + " x " + std::to_string(src->dim()) +
                                   " " + DtypeName(src->dtype()) + "; the sharded table's rows are " +
                                   std::to_string(m.dim) + "-dimensional " + DtypeName(m.dtype) +
                                   (src->dtype() != m.dtype ? "; embstore convert --dtype makes another dtype" : ""));
  }
  const KeysView* keys = src->keys();
  if ((keys != nullptr) != m.keys) {
    return Status::InvalidArgument(source + (m.keys ? ": has no keys, and every shard of the table has keys"
                                                    : ": has keys, and the table's shards have none"));
  }
  if (m.shards.size() + 1 > kMaxShards) {
    return Status::InvalidArgument(manifest_path + ": has " + std::to_string(m.shards.size()) +
                                   " shards, the most a manifest may list");
  }
  if (src->rows() > kMaxShardedRows - m.rows) {
    return Status::InvalidArgument(source + ": its rows would take the table over " + std::to_string(kMaxShardedRows));
  }
  EMB_RETURN_IF_ERROR(CheckBeforeCopy(*src, options.cancel, "append", true));
  if (keys != nullptr) {
    // A key must name one row of the whole table.
    for (uint64_t s = 0; s < m.shards.size(); ++s) {
      EMB_ASSIGN_OR_RETURN(const Table* shard, table->Shard(s));
      const KeysView* theirs = shard->keys();
      for (uint64_t i = 0; i < keys->size(); ++i) {
        if (IsCancelled(options.cancel)) return options.cancel->Error();
        EMB_ASSIGN_OR_RETURN(std::string_view k, keys->Key(i));
        EMB_ASSIGN_OR_RETURN(auto found, theirs->Find(k));
        if (found) {
          return Status::InvalidArgument(source + ": key '" + EscapeForDisplay(std::string(k)) + "' (its row " +
                                         std::to_string(i) + ") is already row " +
                                         std::to_string(m.shards[s].first_row + *found) + " of the table");
        }
      }
    }
  }
  // The next shard name that the manifest does not list and that no other
  // table's shard holds (another manifest in the folder may list it): a
  // file there is replaced only when it is what a killed append of this
  // very shard left (this table's, this index, this first row).
  const uint64_t first_row = m.rows;
  uint64_t index = m.shards.size();
  std::string name;
  bool replace = false;
  for (;; ++index) {
    name = ShardFileName(index);
    bool listed = false;
    for (const ShardEntry& e : m.shards) listed = listed || e.path == name;
    if (listed) continue;
    struct stat st;
    if (::lstat((folder + "/" + name).c_str(), &st) != 0) break;  // free
    if (!S_ISREG(st.st_mode)) continue;  // a symlink, a folder: never written through or over
    auto there = OpenTable(folder + "/" + name);
    if (there.ok() && (*there)->manifest() == nullptr &&
        CheckShardMetadata((*there)->metadata(), m.table_id, m.shards.size(), first_row, name).ok()) {
      replace = true;
      break;
    }
  }
  WriterOptions wo;
  wo.dtype = m.dtype;
  wo.metadata = src->metadata();
  AddShardMetadata(&wo.metadata, m.table_id, m.shards.size(), m.shards.size() + 1, first_row);
  wo.sync = options.sync;
  wo.cancel = options.cancel;
  wo.replace = replace;  // else a file that appeared meanwhile is kept: the append fails
  if (keys != nullptr) wo.keys = keys->bytes();
  const std::string shard_path = folder + "/" + name;
  EMB_RETURN_IF_ERROR(CheckShardDestination(shard_path));
  EMB_ASSIGN_OR_RETURN(auto writer, TableWriter::Create(shard_path, src->rows(), src->dim(), wo));
  const uint64_t row = src->row_size();
  const uint64_t step = std::max<uint64_t>(1, (uint64_t{4} << 20) / row);
  std::vector<uint8_t> buf(std::min(step, src->rows()) * row);
  for (uint64_t r = 0; r < src->rows(); r += step) {
    if (IsCancelled(options.cancel)) return options.cancel->Error();
    const uint64_t n = std::min(step, src->rows() - r);
    const std::span<uint8_t> rows(buf.data(), n * row);
    EMB_RETURN_IF_ERROR(src->ReadRows(r, n, m.dtype, rows));
    EMB_RETURN_IF_ERROR(writer->Append(rows, m.dtype));
    if (options.progress) options.progress(r + n, src->rows());
  }
  EMB_RETURN_IF_ERROR(writer->Finish());
  EMB_ASSIGN_OR_RETURN(auto written, OpenChecked(shard_path, options.cancel));
  // The manifest's index for it is its position, whatever its name says.
  ShardEntry entry = DescribeShard(*written, name, first_row);
  Manifest next = m;
  next.shards.push_back(entry);
  next.rows += entry.rows;
  // Generated rows stay described as the generated table's first rows (the
  // appended ones are not PyTorch's rows of a larger table).
  if (next.metadata.count("generator") != 0 && next.metadata.count("generator.rows") == 0) {
    next.metadata["generator.rows"] = std::to_string(m.rows);
    next.metadata["generator.first_row"] = "0";
  }
  EMB_RETURN_IF_ERROR(WriteManifest(manifest_path, next, options.sync));
  return entry;
}

namespace {

std::string ConvertedTableId(const std::string& id, Dtype dtype) {
  return TableIdFrom("embstore convert\n" + id + "\n" + DtypeName(dtype) + "\n");
}

}  // namespace

Result<ShardEntry> ShardOpOne(const ShardedTable& table, uint64_t index, const std::string& out_dir,
                              const ShardOpOptions& options) {
  EMB_ASSIGN_OR_RETURN(const Table* shard, table.Shard(index));
  const ShardEntry& e = table.shards().shards[index];
  const std::string stem = Stem(e.path);
  const std::string name = stem + (options.op == ShardOp::kCompress ? ".embz" : ".emb");
  EMB_RETURN_IF_ERROR(CheckShardDestination(out_dir + "/" + name));
  switch (options.op) {
    case ShardOp::kCompress: {
      const TableReader* mapped = shard->mapped();
      if (mapped == nullptr) {
        return Status::InvalidArgument(table.path() + ": " + table.ShardName(index) + " is already compressed");
      }
      CompressOptions co;
      co.level = options.level;
      co.frame_rows = options.frame_rows;
      co.threads = options.threads;
      co.sync = options.sync;
      co.replace = options.replace;
      co.cancel = options.cancel;
      EMB_RETURN_IF_ERROR(CompressTable(*mapped, out_dir + "/" + name, co));
      break;
    }
    case ShardOp::kDecompress: {
      const auto* z = dynamic_cast<const EmbzReader*>(shard);
      if (z == nullptr) {
        return Status::InvalidArgument(table.path() + ": " + table.ShardName(index) + " is not compressed");
      }
      DecompressOptions d;
      d.threads = options.threads;
      d.sync = options.sync;
      d.replace = options.replace;
      d.cancel = options.cancel;
      EMB_RETURN_IF_ERROR(z->Decompress(out_dir + "/" + name, d));
      break;
    }
    case ShardOp::kConvert: {
      std::error_code ec;
      if (std::filesystem::equivalent(out_dir, table.folder(), ec)) {
        return Status::InvalidArgument(out_dir + ": converted shards would replace the source's; write them to another folder");
      }
      ConvertOptions c;
      c.dtype = options.dtype;
      c.sync = options.sync;
      c.replace = options.replace;
      c.cancel = options.cancel;
      AddShardMetadata(&c.metadata_overrides, ConvertedTableId(table.shards().table_id, options.dtype), index,
                       table.shards().shards.size(), e.first_row);
      EMB_RETURN_IF_ERROR(ConvertTable(*shard, out_dir + "/" + name, c));
      break;
    }
  }
  EMB_ASSIGN_OR_RETURN(auto written, OpenChecked(out_dir + "/" + name, options.cancel));
  ShardEntry out = DescribeShard(*written, name, e.first_row);
  if (options.op != ShardOp::kConvert && out.checksum != e.checksum) {
    return Status::Corruption(out_dir + "/" + name + ": its checksums differ from the source shard's");
  }
  return out;
}

Manifest ShardOpManifest(const ShardedTable& table, const ShardOpOptions& options, std::vector<ShardEntry> shards) {
  Manifest m = table.shards();
  m.shards = std::move(shards);
  if (options.op == ShardOp::kConvert) {
    m.metadata["convert.dtype"] = DtypeName(m.dtype);
    m.metadata["convert.source"] = NameOf(table.path());
    m.table_id = ConvertedTableId(m.table_id, options.dtype);
    m.dtype = options.dtype;
  }
  return m;
}

Result<std::string> WriteShardOpManifest(const ShardedTable& table, const std::string& out_dir,
                                         const ShardOpOptions& options, std::vector<ShardEntry> entries) {
  const std::string manifest = out_dir + "/" + kManifestFileName;
  EMB_RETURN_IF_ERROR(CheckShardDestination(manifest));
  // Manifest writers take turns (FORMAT.md, "Writing"), and in the source's
  // own folder the manifest must still list what the work started from: an
  // append meanwhile would otherwise be dropped from it.
  std::error_code ec;
  std::optional<FolderLock> lock;
  if (std::filesystem::equivalent(out_dir, table.folder(), ec)) {
    EMB_ASSIGN_OR_RETURN(FolderLock taken, FolderLock::Take(out_dir));
    lock.emplace(std::move(taken));
    auto now = OpenTable(table.path());
    const Manifest* was = &table.shards();
    const Manifest* is = now.ok() ? (*now)->manifest() : nullptr;
    if (is == nullptr || is->table_id != was->table_id || is->shards.size() != was->shards.size()) {
      return Status::InvalidArgument(table.path() + ": changed while its shards were worked on (an append?); "
                                     "nothing was listed: run it again");
    }
  }
  EMB_RETURN_IF_ERROR(WriteManifest(manifest, ShardOpManifest(table, options, std::move(entries)), options.sync,
                                    options.replace));
  return manifest;
}

Result<std::string> ShardOpAll(const ShardedTable& table, const std::string& out_dir, const ShardOpOptions& options) {
  EMB_RETURN_IF_ERROR(MakeFolder(out_dir));
  std::error_code ec;
  if (options.op == ShardOp::kConvert && std::filesystem::equivalent(out_dir, table.folder(), ec)) {
    return Status::InvalidArgument(out_dir + ": converted shards would replace the source's; write them to another folder");
  }
  const std::string manifest = out_dir + "/" + kManifestFileName;
  EMB_RETURN_IF_ERROR(CheckShardDestination(manifest));
  if (!options.replace && std::filesystem::exists(manifest, ec)) {
    return Status::AlreadyExists(manifest + ": exists (replacing it was not asked for)");
  }
  std::vector<ShardEntry> entries;
  const uint64_t n = table.shards().shards.size();
  {
    // Shards named a.emb and a.embz would be written to one name.
    std::set<std::string> stems;
    for (const ShardEntry& e : table.shards().shards) {
      if (!stems.insert(Stem(e.path)).second) {
        return Status::InvalidArgument(table.path() + ": two shards are named " + Stem(e.path) +
                                       ".*; their outputs would have one name");
      }
    }
  }
  for (uint64_t i = 0; i < n; ++i) {
    EMB_ASSIGN_OR_RETURN(ShardEntry e, ShardOpOne(table, i, out_dir, options));
    if (options.progress) options.progress(e.first_row + e.rows, table.rows());
    entries.push_back(std::move(e));
  }
  return WriteShardOpManifest(table, out_dir, options, std::move(entries));
}

}  // namespace embstore
