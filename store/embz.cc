#include "store/embz.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>
#include <cstring>

#include "format/checked_math.h"
#include "format/checksum.h"
#include "store/atomic_file.h"
#include "store/parallel.h"

namespace embstore {

namespace {

std::string Rows(uint64_t first, uint64_t count) {
  return "rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ")";
}

}  // namespace

bool FileIsEmbz(const std::string& path) {
  uint8_t magic[8];
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  const size_t n = std::fread(magic, 1, sizeof(magic), f);
  std::fclose(f);
  return LooksLikeEmbz(std::span<const uint8_t>(magic, n));
}

Status CompressTable(const TableReader& table, const std::string& dst, const CompressOptions& options) {
  const Header& h = table.header();
  if (options.level < kMinLevel || options.level > kMaxLevel) {
    return Status::InvalidArgument("level " + std::to_string(options.level) + " is outside [1, 19]");
  }
  uint64_t frame_rows = options.frame_rows;
  if (frame_rows == 0) frame_rows = std::max<uint64_t>(1, kDefaultFrameBytes / h.row_stride);
  uint64_t frame_bytes;
  if (!CheckedMul(frame_rows, h.row_stride, &frame_bytes) || frame_bytes > kEmbzMaxFrameBytes) {
    return Status::InvalidArgument("frame rows " + std::to_string(frame_rows) + ": a frame would exceed " +
                                   std::to_string(kEmbzMaxFrameBytes >> 20) + " MiB");
  }
  const uint64_t frames = CeilDiv(h.rows, frame_rows);

  // The seek table will vouch for these bytes, so check them against the
  // table's own checksums first (a few percent of the work: hashing runs
  // at memory speed).
  VerifyOptions vo;
  vo.threads = options.threads;
  EMB_ASSIGN_OR_RETURN(VerifyReport source, table.Verify(vo));
  if (!source.ok()) {
    return Status::Corruption(table.path() + ": the table to compress fails verification (" +
                              std::to_string(source.bad_block_count) + " corrupt blocks" +
                              (source.bad_regions.empty() ? "" : ", nonzero padding") + "); see embstore verify");
  }

  EmbzHeader eh;
  eh.table_size = table.file_size();
  eh.prefix_size = h.data_offset;
  eh.frame_rows = frame_rows;
  eh.frame_count = frames;
  eh.level = static_cast<uint32_t>(options.level);
  std::vector<uint8_t> prefix;
  const auto raw_prefix = table.file_bytes().first(h.data_offset);
  eh.prefix_checksum = Hash64(raw_prefix.data(), raw_prefix.size());
  EMB_RETURN_IF_ERROR(ZstdCompress(raw_prefix, options.level, &prefix));
  eh.prefix_coded_size = prefix.size();

  AtomicFileOptions fo;
  fo.sync = options.sync;
  EMB_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(dst, 0, fo));
  EMB_RETURN_IF_ERROR(out->WriteAt(prefix.data(), prefix.size(), kEmbzHeaderSize));
  uint64_t offset = kEmbzHeaderSize + prefix.size();

  // An ordered pipeline: workers code frames in any order into a ring of
  // slots at most `window` frames ahead; this thread appends them in order
  // as they complete, so writing overlaps coding.
  const unsigned threads = ResolveThreads(options.threads, frames);
  const uint64_t window = 16 * uint64_t{threads};
  std::vector<EmbzSeekEntry> seek(frames);
  std::vector<std::vector<uint8_t>> slot(window);
  std::vector<Status> slot_status(window);
  std::vector<char> ready(window, 0);
  std::mutex mu;
  std::condition_variable cv;
  uint64_t next_frame = 0, written = 0;
  bool abort = false;
  auto worker = [&] {
    for (;;) {
      uint64_t f;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return abort || next_frame >= frames || next_frame < written + window; });
        if (abort || next_frame >= frames) return;
        f = next_frame++;
      }
      const uint64_t r0 = f * frame_rows, n = std::min(frame_rows, h.rows - r0);
      auto bytes = table.row_bytes(r0, n);
      std::vector<uint8_t>& out_slot = slot[f % window];
      out_slot.clear();
      Status st = EncodeFrame(bytes, options.level, &out_slot);
      seek[f].checksum = Hash64(bytes.data(), bytes.size());
      std::lock_guard<std::mutex> lock(mu);
      slot_status[f % window] = st;
      ready[f % window] = 1;
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  Status status;
  try {
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  } catch (const std::system_error& e) {
    status = Status::IOError(std::string("cannot start worker threads: ") + e.what());
  }
  auto last_report = std::chrono::steady_clock::now();
  while (status.ok() && !pool.empty() && written < frames) {
    const uint64_t k = written % window;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return ready[k] != 0; });
    }
    status = slot_status[k];
    if (status.ok()) status = out->WriteAt(slot[k].data(), slot[k].size(), offset);
    if (!status.ok()) break;
    seek[written].offset = offset;
    seek[written].coded_size = slot[k].size();
    offset += slot[k].size();
    {
      std::lock_guard<std::mutex> lock(mu);
      ready[k] = 0;
      ++written;
      cv.notify_all();
    }
    if (options.progress && std::chrono::steady_clock::now() - last_report > std::chrono::milliseconds(100)) {
      options.progress(std::min(written * frame_bytes, h.data_size), h.data_size);
      last_report = std::chrono::steady_clock::now();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    abort = true;
    cv.notify_all();
  }
  for (auto& t : pool) t.join();
  EMB_RETURN_IF_ERROR(status);
  if (options.progress) options.progress(h.data_size, h.data_size);
  std::vector<uint8_t> table_bytes(frames * kEmbzSeekEntrySize);
  for (uint64_t f = 0; f < frames; ++f) EncodeEmbzSeekEntry(seek[f], &table_bytes[f * kEmbzSeekEntrySize]);
  eh.seek_offset = offset;
  eh.seek_checksum = Hash64(table_bytes.data(), table_bytes.size());
  EMB_RETURN_IF_ERROR(out->WriteAt(table_bytes.data(), table_bytes.size(), offset));
  const auto head = EncodeEmbzHeader(eh);
  EMB_RETURN_IF_ERROR(out->WriteAt(head.data(), head.size(), 0));
  return out->Commit();
}

EmbzReader::EmbzReader(MappedFile file, EmbzHeader embz, std::vector<uint8_t> head, Header table,
                       Metadata metadata, std::vector<EmbzSeekEntry> seek, size_t cache_frames)
    : file_(std::move(file)),
      embz_(embz),
      head_(std::move(head)),
      table_(table),
      metadata_(std::move(metadata)),
      seek_(std::move(seek)),
      cache_frames_(std::max<size_t>(cache_frames, 1)) {}

Result<std::unique_ptr<EmbzReader>> EmbzReader::Open(const std::string& path, uint64_t cache_bytes) {
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  auto fail = [&](const Status& st) { return st.WithContext(path); };
  auto eh = DecodeEmbzHeader(file.bytes(), file.size());
  if (!eh.ok()) return fail(eh.status());
  // The table's own header, metadata and checksum table: streamed through
  // the checksum, keeping only the first bytes (header and metadata), so no
  // allocation follows the sizes the file claims. Then checked exactly as a
  // .emb file's would be.
  const uint64_t keep = std::min(eh->prefix_size, kPrefixKeep);
  std::vector<uint8_t> prefix;
  prefix.reserve(keep);
  StreamingHash hash;
  Status st = ZstdDecompressStream(file.bytes().subspan(kEmbzHeaderSize, eh->prefix_coded_size), eh->prefix_size,
                                   [&](std::span<const uint8_t> piece) {
                                     hash.Update(piece.data(), piece.size());
                                     const size_t take = std::min<size_t>(piece.size(), keep - prefix.size());
                                     prefix.insert(prefix.end(), piece.begin(), piece.begin() + take);
                                     return Status::OK();
                                   });
  if (!st.ok()) return fail(Status::Corruption("table prefix: " + st.message()));
  if (hash.Digest() != eh->prefix_checksum) return fail(Status::Corruption("table prefix: checksum mismatch"));
  auto table = DecodeHeader(prefix, eh->table_size);
  if (!table.ok()) return fail(table.status().WithContext("table inside"));
  if (table->data_offset != eh->prefix_size) {
    return fail(Status::Corruption("prefix_size " + std::to_string(eh->prefix_size) + " != the table's data_offset " +
                                   std::to_string(table->data_offset)));
  }
  if (table->metadata_offset + table->metadata_size > keep) {
    return fail(Status::NotSupported("table inside keeps its metadata past the first " + std::to_string(keep) +
                                     " bytes"));
  }
  std::span<const uint8_t> meta = std::span(prefix).subspan(table->metadata_offset, table->metadata_size);
  if (Hash64(meta.data(), meta.size()) != table->metadata_checksum) {
    return fail(Status::Corruption("table inside: corrupt metadata: checksum mismatch"));
  }
  auto metadata = DecodeMetadata(meta);
  if (!metadata.ok()) return fail(metadata.status().WithContext("table inside"));
  uint64_t frame_bytes;
  if (!CheckedMul(eh->frame_rows, table->row_stride, &frame_bytes) || frame_bytes > kEmbzMaxFrameBytes) {
    return fail(Status::Corruption("frame_rows " + std::to_string(eh->frame_rows) + " makes frames over 64 MiB"));
  }
  if (eh->frame_count != CeilDiv(table->rows, eh->frame_rows)) {
    return fail(Status::Corruption("frame_count " + std::to_string(eh->frame_count) + " != ceil(rows " +
                                   std::to_string(table->rows) + " / frame_rows " + std::to_string(eh->frame_rows) +
                                   ")"));
  }
  // The seek table: its checksum, then frames back to back from the end of
  // the prefix to the seek table (DecodeEmbzHeader bounded its size).
  auto seek_bytes = file.bytes().subspan(eh->seek_offset, eh->frame_count * kEmbzSeekEntrySize);
  if (Hash64(seek_bytes.data(), seek_bytes.size()) != eh->seek_checksum) {
    return fail(Status::Corruption("seek table checksum mismatch"));
  }
  std::vector<EmbzSeekEntry> seek(eh->frame_count);
  uint64_t expect = kEmbzHeaderSize + eh->prefix_coded_size;
  for (uint64_t f = 0; f < eh->frame_count; ++f) {
    seek[f] = DecodeEmbzSeekEntry(seek_bytes.data() + f * kEmbzSeekEntrySize);
    uint64_t end;
    if (seek[f].offset != expect || !CheckedAdd(expect, seek[f].coded_size, &end) || end > eh->seek_offset) {
      return fail(Status::Corruption("seek table: frame " + std::to_string(f) + " at offset " +
                                     std::to_string(seek[f].offset) + " size " + std::to_string(seek[f].coded_size) +
                                     " does not follow the previous frame inside the file"));
    }
    expect = end;
  }
  if (expect != eh->seek_offset) return fail(Status::Corruption("seek table: frames do not reach the seek table"));
  const size_t cache_frames = static_cast<size_t>(std::max<uint64_t>(1, cache_bytes / frame_bytes));
  return std::unique_ptr<EmbzReader>(new EmbzReader(std::move(file), *eh, std::move(prefix), *table,
                                                    std::move(metadata).value(), std::move(seek), cache_frames));
}

uint64_t EmbzReader::FrameRows(uint64_t f) const {
  return std::min(embz_.frame_rows, table_.rows - f * embz_.frame_rows);
}

Status EmbzReader::DecodeFrameAt(uint64_t f, std::span<uint8_t> out) const {
  const EmbzSeekEntry& e = seek_[f];
  const uint64_t r0 = f * embz_.frame_rows;
  auto where = [&] { return "frame " + std::to_string(f) + " (" + Rows(r0, FrameRows(f)) + ")"; };
  Status st = DecodeFrame(file_.bytes().subspan(e.offset, e.coded_size), out, embz_.codec);
  if (!st.ok()) return Status::Corruption(where() + ": " + st.message());
  if (Hash64(out.data(), out.size()) != e.checksum) return Status::Corruption(where() + ": checksum mismatch");
  return Status::OK();
}

Result<std::shared_ptr<const std::vector<uint8_t>>> EmbzReader::Frame(uint64_t f) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(f);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      return it->second.first;
    }
  }
  // Decode outside the lock; two threads may both decode a cold frame.
  // Buffers of evicted frames are reused: a fresh 128 KiB allocation costs
  // more in page faults than decoding does.
  std::shared_ptr<std::vector<uint8_t>> frame;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!spare_.empty()) {
      frame = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  if (!frame) frame = std::make_shared<std::vector<uint8_t>>();
  frame->resize(FrameRows(f) * table_.row_stride);
  EMB_RETURN_IF_ERROR(DecodeFrameAt(f, *frame));
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.find(f) == cache_.end()) {
    lru_.push_front(f);
    cache_.emplace(f, std::make_pair(frame, lru_.begin()));
    if (cache_.size() > cache_frames_) {
      auto old = cache_.find(lru_.back());
      // Reusable once no reader holds it (use_count: the cache's copy only;
      // the fence orders the last reader's copy-out before our reuse).
      if (old->second.first.use_count() == 1 && spare_.size() < 4) {
        std::atomic_thread_fence(std::memory_order_acquire);
        spare_.push_back(std::const_pointer_cast<std::vector<uint8_t>>(old->second.first));
      }
      cache_.erase(old);
      lru_.pop_back();
    }
  }
  return std::shared_ptr<const std::vector<uint8_t>>(frame);
}

Status EmbzReader::ReadRow(uint64_t id, std::span<float> out) const {
  if (id >= table_.rows) return Status::OutOfRange(OutOfRangeMessage(id, table_.rows));
  if (out.size() != table_.dim) return Status::InvalidArgument("ReadRow: output holds " + std::to_string(out.size()) + " floats, a row " + std::to_string(table_.dim));
  const uint64_t f = id / embz_.frame_rows;
  EMB_ASSIGN_OR_RETURN(auto frame, Frame(f));
  std::memcpy(out.data(), frame->data() + (id - f * embz_.frame_rows) * table_.row_stride, table_.dim * sizeof(float));
  return Status::OK();
}

Status EmbzReader::Gather(std::span<const uint64_t> ids, std::span<float> out) const {
  if (out.size() / table_.dim != ids.size() || out.size() % table_.dim != 0) {
    return Status::InvalidArgument("gather: output holds " + std::to_string(out.size()) + " floats, " +
                                   std::to_string(ids.size()) + " rows of dim " + std::to_string(table_.dim) +
                                   " need " + std::to_string(ids.size() * table_.dim));
  }
  for (uint64_t id : ids)
    if (id >= table_.rows) return Status::OutOfRange(OutOfRangeMessage(id, table_.rows));
  for (size_t k = 0; k < ids.size(); ++k) {
    EMB_RETURN_IF_ERROR(ReadRow(ids[k], out.subspan(k * table_.dim, table_.dim)));
  }
  return Status::OK();
}

Result<EmbzVerifyReport> EmbzReader::Verify(unsigned threads,
                                            const std::function<void(uint64_t, uint64_t)>& progress) const {
  const uint64_t frames = embz_.frame_count;
  const unsigned n = ResolveThreads(threads, frames);
  std::vector<std::vector<BadFrame>> bad(n);
  std::atomic<uint64_t> next{0}, done{0};
  auto work = [&](unsigned w) {
    std::vector<uint8_t> buf;
    for (uint64_t f; (f = next.fetch_add(1)) < frames;) {
      buf.resize(FrameRows(f) * table_.row_stride);
      Status st = DecodeFrameAt(f, buf);
      if (!st.ok() && bad[w].size() < kMaxReportedBadBlocks) {
        bad[w].push_back({f, f * embz_.frame_rows, FrameRows(f), st.message()});
      }
      done.fetch_add(buf.size(), std::memory_order_relaxed);
    }
  };
  EMB_RETURN_IF_ERROR(RunParallel(n, work, &done, table_.data_size, progress));
  EmbzVerifyReport report;
  report.frames_checked = frames;
  for (auto& v : bad) report.bad_frames.insert(report.bad_frames.end(), v.begin(), v.end());
  std::sort(report.bad_frames.begin(), report.bad_frames.end(),
            [](const BadFrame& a, const BadFrame& b) { return a.frame < b.frame; });
  return report;
}

Status EmbzReader::Decompress(const std::string& dst, unsigned threads, bool sync,
                              const std::function<void(uint64_t, uint64_t)>& progress) const {
  AtomicFileOptions fo;
  fo.sync = sync;
  EMB_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(dst, embz_.table_size, fo));
  EMB_RETURN_IF_ERROR(DecompressInto(out.get(), threads, progress));
  return out->Commit();
}

Status EmbzReader::DecompressInto(AtomicFile* out, unsigned threads,
                                  const std::function<void(uint64_t, uint64_t)>& progress) const {
  if (out->size() != embz_.table_size) {
    return Status::InvalidArgument(out->path() + ": " + std::to_string(out->size()) + " bytes for a table of " +
                                   std::to_string(embz_.table_size));
  }
  uint64_t at = 0;
  EMB_RETURN_IF_ERROR(ZstdDecompressStream(file_.bytes().subspan(kEmbzHeaderSize, embz_.prefix_coded_size),
                                           embz_.prefix_size, [&](std::span<const uint8_t> piece) {
                                             Status w = out->WriteAt(piece.data(), piece.size(), at);
                                             at += piece.size();
                                             return w;
                                           }));
  // Each worker decodes a run of consecutive frames (about 1 MiB) into its
  // own buffer and writes it with one pwrite. (Decoding straight into a
  // mapping of the new file measured 2x slower: two threads faulting in
  // neighbouring pages contend.)
  const uint64_t frames = embz_.frame_count;
  const uint64_t frame_bytes = embz_.frame_rows * table_.row_stride;
  const uint64_t run = std::max<uint64_t>(1, (uint64_t{1} << 20) / frame_bytes);
  const uint64_t runs = (frames + run - 1) / run;
  const unsigned n = ResolveThreads(threads, runs);
  std::vector<Status> errors(n);
  std::atomic<uint64_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  auto work = [&](unsigned w) {
    std::vector<uint8_t> buf;
    for (uint64_t r; !failed && (r = next.fetch_add(1)) < runs;) {
      const uint64_t f0 = r * run, f1 = std::min(frames, f0 + run);
      const uint64_t row0 = f0 * embz_.frame_rows, row1 = std::min(table_.rows, f1 * embz_.frame_rows);
      buf.resize((row1 - row0) * table_.row_stride);
      Status st;
      for (uint64_t f = f0; f < f1 && st.ok(); ++f) {
        st = DecodeFrameAt(f, std::span<uint8_t>(buf).subspan((f - f0) * frame_bytes, FrameRows(f) * table_.row_stride));
      }
      if (st.ok()) st = out->WriteAt(buf.data(), buf.size(), table_.data_offset + row0 * table_.row_stride);
      if (!st.ok()) {
        errors[w] = st;
        failed = true;
        return;
      }
      done.fetch_add(buf.size(), std::memory_order_relaxed);
    }
  };
  EMB_RETURN_IF_ERROR(RunParallel(n, work, &done, table_.data_size, progress));
  for (const Status& st : errors) EMB_RETURN_IF_ERROR(st.WithContext(path()));
  return Status::OK();
}

}  // namespace embstore
