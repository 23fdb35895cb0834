#include "store/core/table_reader.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>

#include "format/checksum.h"
#include "format/endian.h"
#include "store/core/atomic_file.h"
#include "store/core/half.h"
#include "store/core/parallel.h"

namespace embstore {

// Rows are handed out as floats straight from the mapping, which holds
// little-endian IEEE floats (FORMAT.md, "Conventions"). A big-endian host
// would need a copy, and this reader never copies.
static_assert(std::endian::native == std::endian::little, "embstore reads tables zero-copy: little-endian hosts only");

// Gather checks whether rows are in memory when it copies at least
// kGatherCheckBytes (the check, a few syscalls, is then under 2% of the
// copy), sampling kGatherSamples rows; cold rows are advised
// kGatherAdviseWindow rows ahead of the copy.
constexpr uint64_t kGatherCheckBytes = uint64_t{1} << 20;
constexpr size_t kGatherSamples = 8;
constexpr size_t kGatherAdviseWindow = 512;
// A gather that widens half rows into more float32 bytes than this writes
// them with non-temporal stores: an output that size leaves the caches
// anyway, and skipping the read for ownership saves a third of the memory
// traffic. (glibc's memcpy switches at a similar size; smaller outputs stay
// in cache for the caller.)
constexpr uint64_t kGatherStreamBytes = uint64_t{4} << 20;

TableReader::TableReader(MappedFile file, Header header, Metadata metadata)
    : file_(std::move(file)), header_(header), metadata_(std::move(metadata)) {
  data_ = file_.data() + header_.data_offset;
}

Result<TableReader> TableReader::Open(const std::string& path) {
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  return Open(std::move(file));
}

Result<TableReader> TableReader::Open(MappedFile file) {
  const std::string path = file.path();
  auto header = DecodeHeader(file.bytes(), file.size());
  if (!header.ok()) return header.status().WithContext(path);
  const Header& h = *header;
  // DecodeHeader proved the metadata section lies inside the file.
  std::span<const uint8_t> meta = file.bytes().subspan(h.metadata_offset, h.metadata_size);
  const uint64_t computed = Hash64(meta.data(), meta.size());
  if (computed != h.metadata_checksum) {
    char buf[160];
    snprintf(buf, sizeof(buf), "corrupt metadata: checksum mismatch: stored 0x%016llx, computed 0x%016llx",
             static_cast<unsigned long long>(h.metadata_checksum), static_cast<unsigned long long>(computed));
    return Status::Corruption(buf).WithContext(path);
  }
  auto metadata = DecodeMetadata(meta);
  if (!metadata.ok()) return metadata.status().WithContext(path);
  std::optional<KeysView> keys;
  if (h.has_keys()) {  // O(1): the section's header; keys are checked as they are read
    auto view = KeysView::Open(file.bytes().subspan(h.keys_offset, h.keys_size), h.rows);
    if (!view.ok()) return view.status().WithContext(path);
    keys = *view;
  }
  TableReader reader(std::move(file), h, std::move(metadata).value());
  reader.keys_ = keys;  // the mapping does not move with the MappedFile
  return reader;
}

Result<std::span<const float>> TableReader::RowChecked(uint64_t id) const {
  if (id >= header_.rows) return Status::OutOfRange(OutOfRangeMessage(id, header_.rows));
  if (dtype() != Dtype::kFloat32) {
    return Status::InvalidArgument(std::string("a row of a ") + DtypeName(dtype()) + " table is not float32");
  }
  return row(id);
}

Status TableReader::Gather(std::span<const uint64_t> ids, Dtype as, std::span<uint8_t> out) const {
  const uint64_t dim = header_.dim;
  EMB_RETURN_IF_ERROR(CheckRowsOut(ids.size(), dim, as, out).WithContext("gather"));
  const uint64_t rows = header_.rows;
  for (uint64_t id : ids) {
    if (id >= rows) return Status::OutOfRange(OutOfRangeMessage(id, rows));
  }
  const size_t row_bytes = row_size();  // as stored
  const size_t out_bytes = dim * DtypeSize(as);
  const Dtype stored = dtype();
  const uint64_t stride = header_.row_stride;
  uint8_t* dst = out.data();
  // Rows not in the page cache fault in one at a time, each waiting for its
  // own disk read. A large gather therefore first asks whether a few of its
  // rows are in memory (MappedFile::PageResident); if one is not, it tells the
  // kernel which rows come next (MADV_WILLNEED, a window ahead of the copy)
  // so that their reads overlap. Small gathers and warm tables skip it.
  bool cold = false;
  if (ids.size() >= 2 && ids.size() * row_bytes >= kGatherCheckBytes) {
    const size_t samples = std::min(ids.size(), kGatherSamples);
    for (size_t i = 0; i < samples && !cold; ++i) {
      cold = !file_.PageResident(header_.data_offset + ids[i * ids.size() / samples] * stride);
    }
  }
  // Widening into an output beyond the caches: non-temporal stores.
  const bool stream = as == Dtype::kFloat32 && stored != Dtype::kFloat32 && out.size() >= kGatherStreamBytes;
  const size_t line_step = row_bytes >= 4096 ? 4096 : 64;
  size_t advised = 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    if (cold) {
      for (; advised < ids.size() && advised < k + kGatherAdviseWindow; ++advised) {
        // Advice only: a failure costs speed, never rows.
        (void)file_.Advise(AccessHint::kWillNeed, header_.data_offset + ids[advised] * stride, row_bytes);
      }
    }
    // Random rows defeat the hardware prefetcher. Touch the next row so its
    // TLB walk and first misses overlap this row's copy: one line of every
    // page of a row of a page or more (the prefetcher streams the rest of
    // each page), every line of a smaller one (measured on 1.5 KB rows: 13%
    // faster; prefetching rows further ahead was slower).
    if (k + 1 < ids.size()) {
      const uint8_t* next = data_ + ids[k + 1] * stride;
      for (size_t off = 0; off < row_bytes; off += line_step) __builtin_prefetch(next + off);
    }
    if (as == stored) {
      std::memcpy(dst, data_ + ids[k] * stride, row_bytes);
    } else if (stream) {
      WidenStreaming(stored, data_ + ids[k] * stride, reinterpret_cast<float*>(dst), dim);
    } else {
      ConvertElements(stored, data_ + ids[k] * stride, as, dst, dim);
    }
    dst += out_bytes;
  }
  if (stream) StoreFence();
  return Status::OK();
}

Status TableReader::ReadRows(uint64_t first, uint64_t count, Dtype as, std::span<uint8_t> out) const {
  EMB_RETURN_IF_ERROR(CheckRowRange(first, count, header_.rows));
  EMB_RETURN_IF_ERROR(CheckRowsOut(count, header_.dim, as, out).WithContext("read rows"));
  if (count == 0) return Status::OK();  // out may be empty, its data() null: no memcpy
  const uint64_t row_bytes = row_size(), stride = header_.row_stride, out_row = header_.dim * DtypeSize(as);
  const Dtype stored = dtype();
  if (stride == row_bytes) {  // dense: one copy or one conversion
    if (as == stored) {
      std::memcpy(out.data(), data_ + first * row_bytes, count * row_bytes);
    } else {
      ConvertElements(stored, data_ + first * row_bytes, as, out.data(), count * header_.dim);
    }
    return Status::OK();
  }
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* src = data_ + (first + i) * stride;
    if (as == stored) {
      std::memcpy(out.data() + i * out_row, src, row_bytes);
    } else {
      ConvertElements(stored, src, as, out.data() + i * out_row, header_.dim);
    }
  }
  return Status::OK();
}

Status TableReader::WriteEmb(AtomicFile* out, unsigned threads, const Progress& progress,
                             const CancelToken* cancel) const {
  // The file's bytes, a 4 MiB piece per step, on several threads.
  const std::span<const uint8_t> bytes = file_bytes();
  if (out->size() != bytes.size()) {
    return Status::InvalidArgument(out->path() + ": " + std::to_string(out->size()) + " bytes for a table of " +
                                   std::to_string(bytes.size()));
  }
  constexpr uint64_t kPiece = uint64_t{4} << 20;
  const uint64_t pieces = (bytes.size() + kPiece - 1) / kPiece;
  const unsigned n = ResolveThreads(threads, pieces);
  std::vector<Status> errors(n);
  std::atomic<uint64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  auto work = [&](unsigned w) {
    for (uint64_t p; !failed && !IsCancelled(cancel) && (p = next.fetch_add(1)) < pieces;) {
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
  EMB_RETURN_IF_ERROR(RunParallel(n, work, &done, bytes.size(), progress, cancel));
  for (const Status& st : errors) EMB_RETURN_IF_ERROR(st);
  return Status::OK();
}

Status TableReader::Advise(AccessHint hint) const { return Advise(hint, 0, header_.rows); }

Status TableReader::Advise(AccessHint hint, uint64_t first_row, uint64_t row_count) const {
  EMB_RETURN_IF_ERROR(CheckRowRange(first_row, row_count, header_.rows).WithContext("advise"));
  return file_.Advise(hint, header_.data_offset + first_row * header_.row_stride, row_count * header_.row_stride);
}

namespace {

// Byte ranges [begin, end) a 1.0 file requires to be zero (FORMAT.md,
// "Layout": the gaps between sections).
void CheckZero(const uint8_t* file, uint64_t begin, uint64_t end, const char* what,
               std::vector<std::string>* bad) {
  for (uint64_t i = begin; i < end; ++i) {
    if (file[i] != 0) {
      bad->push_back(std::string("nonzero padding ") + what + " at byte " + std::to_string(i) + " (range [" +
                     std::to_string(begin) + ", " + std::to_string(end) + "))");
      return;
    }
  }
}

}  // namespace

Result<VerifyReport> TableReader::Verify(const VerifyOptions& options) const {
  const Header& h = header_;
  const uint8_t* base = file_.data();
  VerifyReport report;
  // Gaps are zero in every minor version this reader knows (1.1 added
  // dtypes, 1.2 the keys section); a later one may put sections there.
  if (h.version_minor <= kVersionMinor) {
    CheckZero(base, h.header_size, h.metadata_offset, "before the metadata", &report.bad_regions);
    CheckZero(base, h.metadata_offset + h.metadata_size, h.checksum_offset, "after the metadata",
              &report.bad_regions);
    const uint64_t table_end = h.checksum_offset + 8 * h.checksum_count;
    if (h.has_keys()) {
      CheckZero(base, table_end, h.keys_offset, "before the keys", &report.bad_regions);
      CheckZero(base, h.keys_offset + h.keys_size, h.data_offset, "before the data", &report.bad_regions);
    } else {
      CheckZero(base, table_end, h.data_offset, "before the data", &report.bad_regions);
    }
  }
  if (keys_) report.bad_keys = CheckKeysSection(h, file_.bytes().subspan(h.keys_offset, h.keys_size), *keys_);

  // Each worker takes a few neighbouring blocks at a time (keeps all threads
  // busy to the end and helps read-ahead), hashes them and compares on the
  // spot: memory use does not depend on the block count a file claims.
  const unsigned threads = ResolveThreads(options.threads, h.checksum_count);
  std::vector<std::vector<BadRows>> bad(threads);
  std::atomic<uint64_t> next_block{0};
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> bad_count{0};
  constexpr uint64_t kBatch = 4;
  const uint8_t* table = base + h.checksum_offset;
  auto work = [&](unsigned worker) {
    while (!IsCancelled(options.cancel)) {
      const uint64_t first = next_block.fetch_add(kBatch, std::memory_order_relaxed);
      if (first >= h.checksum_count) return;
      const uint64_t last = std::min(first + kBatch, h.checksum_count);
      uint64_t bytes = 0;
      for (uint64_t b = first; b < last; ++b) {
        const BlockRange r = BlockAt(h, b);
        const auto hashed = Hash64Cancellable(base + r.byte_offset, r.byte_size, options.cancel);
        if (!hashed) return;  // cancelled: RunParallel says so
        const uint64_t computed = *hashed;
        const uint64_t stored = LoadLE64(table + 8 * b);
        if (computed != stored) {
          bad_count.fetch_add(1, std::memory_order_relaxed);
          if (bad[worker].size() < kMaxReportedBadRows) {
            BadRows br;
            br.unit = BadRows::Unit::kBlock;
            br.index = b;
            br.first_row = r.first_row;
            br.row_count = r.row_count;
            br.stored = stored;
            br.computed = computed;
            bad[worker].push_back(br);
          }
        }
        bytes += r.byte_size;
      }
      bytes_done.fetch_add(bytes, std::memory_order_relaxed);
    }
  };
  EMB_RETURN_IF_ERROR(RunParallel(threads, work, &bytes_done, h.data_size, options.progress, options.cancel));
  for (auto& v : bad) report.bad.insert(report.bad.end(), v.begin(), v.end());
  std::sort(report.bad.begin(), report.bad.end(),
            [](const BadRows& x, const BadRows& y) { return x.first_row < y.first_row; });
  if (report.bad.size() > kMaxReportedBadRows) report.bad.resize(kMaxReportedBadRows);
  report.bad_block_count = bad_count.load();
  report.blocks_checked = h.checksum_count;
  report.bytes_checked = h.data_size;
  return report;
}

}  // namespace embstore
