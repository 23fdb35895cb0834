#include "store/embz/embz.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "format/checked_math.h"
#include "format/checksum.h"
#include "format/endian.h"
#include "store/core/atomic_file.h"
#include "store/core/half.h"
#include "store/core/parallel.h"

namespace embstore {

namespace {

std::string Rows(uint64_t first, uint64_t count) {
  return "rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ")";
}

std::string Hex(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A worker of Verify or Decompress takes this many bytes of whole checksum
// blocks at a time (at least one block): large enough that the frames it
// shares with its neighbours (decoded by both) cost little.
constexpr uint64_t kWalkUnitBytes = uint64_t{8} << 20;
// Decompress gathers rows into writes of about this size.
constexpr uint64_t kWriteBytes = uint64_t{1} << 20;
// What one frame in a reader's cache costs beside its bytes (the cache's
// map and list nodes, the buffer's own header and allocation).
constexpr uint64_t kCachedFrameCost = 256;
// Compress keeps at most this many bytes of frames in flight (coded and
// waiting to be written, and its workers' scratch).
constexpr uint64_t kCompressBudget = uint64_t{256} << 20;

}  // namespace

uint64_t DefaultFrameRows(const Header& h) {
  const uint64_t target = std::max<uint64_t>(1, kDefaultFrameBytes / h.row_stride);
  const uint64_t b = h.checksum_block_rows;
  if (b == 0) return target;
  // Frames that tile the checksum blocks let a reader check a block by
  // decoding exactly its frames: a divisor of the block near the target,
  // or, for blocks smaller than a frame, a whole number of blocks.
  if (b <= target) return std::max<uint64_t>(1, (target + b / 2) / b) * b;
  uint64_t best = 0;
  for (uint64_t d = 1; d * d <= b; ++d) {
    if (b % d != 0) continue;
    for (uint64_t c : {d, b / d}) {
      if (c * 2 < target || c > target * 2) continue;
      const uint64_t dist = c > target ? c - target : target - c;
      const uint64_t best_dist = best > target ? best - target : target - best;
      if (best == 0 || dist < best_dist || (dist == best_dist && c > best)) best = c;
    }
  }
  return best != 0 ? best : target;
}

Status CompressTable(const TableReader& table, const std::string& dst, const CompressOptions& options) {
  const Header& h = table.header();
  if (options.level < kMinLevel || options.level > kMaxLevel) {
    return Status::InvalidArgument("level " + std::to_string(options.level) + " is outside [1, 19]");
  }
  if (h.keys_size > kMaxEmbzKeys) {
    return Status::NotSupported(table.path() + ": its keys take " + std::to_string(h.keys_size) +
                                " bytes; a .embz holds at most " + std::to_string(kMaxEmbzKeys >> 20) + " MiB of keys");
  }
  if (h.data_offset - h.keys_size > kMaxEmbzPrefix) {
    return Status::NotSupported(table.path() + ": its header, metadata and " + std::to_string(h.checksum_count) +
                                " block checksums take " + std::to_string(h.data_offset) + " bytes; a .embz holds at most " +
                                std::to_string(kMaxEmbzPrefix >> 20) + " MiB of them");
  }
  uint64_t frame_rows = options.frame_rows;
  if (frame_rows == 0) frame_rows = DefaultFrameRows(h);
  uint64_t frame_bytes;
  if (!CheckedMul(frame_rows, h.row_stride, &frame_bytes) || frame_bytes > kEmbzMaxFrameBytes) {
    return Status::InvalidArgument("frame rows " + std::to_string(frame_rows) + ": a frame would exceed " +
                                   std::to_string(kEmbzMaxFrameBytes >> 20) + " MiB");
  }
  const uint64_t frames = CeilDiv(h.rows, frame_rows);
  // The destination first: a name it cannot take fails before any work.
  AtomicFileOptions fo;
  fo.sync = options.sync;
  fo.no_replace = !options.replace;
  fo.cancel = options.cancel;
  EMB_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(dst, 0, fo));

  // The seek table will vouch for these bytes, so check them against the
  // table's own checksums first (a few percent of the work: hashing runs
  // at memory speed).
  VerifyOptions vo;
  vo.threads = options.threads;
  vo.cancel = options.cancel;
  EMB_ASSIGN_OR_RETURN(VerifyReport source, table.Verify(vo));
  if (!source.ok()) {
    return Status::Corruption(table.path() + ": the table to compress fails verification (" + source.Summary() +
                              "); see embstore verify");
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
  if (eh.prefix_size > kMaxEmbzPrefix && (eh.prefix_size - kMaxEmbzPrefix) / kMaxEmbzKeysRatio > eh.prefix_coded_size) {
    return Status::NotSupported(table.path() + ": its header, metadata, checksums and keys compress more than " +
                                std::to_string(kMaxEmbzKeysRatio) + "x, more than a .embz reader accepts");
  }

  EMB_RETURN_IF_ERROR(out->WriteAt(prefix.data(), prefix.size(), kEmbzHeaderSize));
  uint64_t offset = kEmbzHeaderSize + prefix.size();

  // An ordered pipeline: workers code frames in any order into a ring of
  // slots at most `window` frames ahead; this thread appends them in order
  // as they complete, so writing overlaps coding. Each worker needs about
  // three frames of scratch and each slot one coded frame: large frames
  // get fewer of both.
  const uint64_t fit = std::max<uint64_t>(1, kCompressBudget / (4 * frame_bytes));
  const unsigned threads = static_cast<unsigned>(std::min<uint64_t>(ResolveThreads(options.threads, frames), fit));
  const uint64_t window = std::max<uint64_t>(threads, std::min<uint64_t>(16 * uint64_t{threads}, fit));
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
      Status st = EncodeFrame(bytes, options.level, &out_slot, kEmbzCodecCurrent, table.dtype());
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
    if (IsCancelled(options.cancel)) {
      status = options.cancel->Error();
      break;
    }
    const uint64_t k = written % window;
    {
      // Waiting for the next frame, awake to a cancel (a large frame at a
      // high level may take seconds).
      std::unique_lock<std::mutex> lock(mu);
      while (!cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return ready[k] != 0; })) {
        if (IsCancelled(options.cancel)) break;
      }
      if (ready[k] == 0) {
        status = options.cancel->Error();
        break;
      }
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

EmbzReader::EmbzReader(MappedFile file, EmbzHeader embz, std::vector<uint8_t> prefix, Header table,
                       Metadata metadata, size_t cache_frames)
    : file_(std::move(file)),
      embz_(embz),
      prefix_(std::move(prefix)),
      table_(table),
      metadata_(std::move(metadata)),
      cache_frames_(std::max<size_t>(cache_frames, 1)),
      pool_(std::make_shared<FramePool>()),
      frame_checked_(new std::atomic<uint64_t>[(embz.frame_count + 63) / 64]()) {}

Result<std::unique_ptr<EmbzReader>> EmbzReader::Open(const std::string& path, uint64_t cache_bytes) {
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  return Open(std::move(file), cache_bytes);
}

Result<std::unique_ptr<EmbzReader>> EmbzReader::Open(MappedFile file, uint64_t cache_bytes) {
  const std::string path = file.path();
  auto fail = [&](const Status& st) { return st.WithContext(path); };
  auto eh = DecodeEmbzHeader(file.bytes(), file.size());
  if (!eh.ok()) return fail(eh.status());
  // The table's own header, metadata and checksum table, inflated and kept:
  // every frame's rows are checked against those checksums. The size the
  // file claims is bounded before anything grows to it.
  // No table's header, metadata and checksum table can be larger than this
  // (FORMAT.md, "Limits"): a larger claim is damage, a smaller one that is
  // still over kMaxEmbzPrefix a valid table this reader does not hold.
  constexpr uint64_t kLargestPrefix = kMaxHeaderSize + kMaxMetadataSize + 8 * kMaxRows + 3 * kDataAlignment;
  // (A table's keys are part of its prefix: up to kMaxEmbzKeys more.)
  if (eh->prefix_size > eh->table_size || eh->prefix_size > kLargestPrefix + kMaxEmbzKeys) {
    return fail(Status::Corruption("prefix_size " + std::to_string(eh->prefix_size) +
                                   " is more than any table's header, metadata and checksum table take"));
  }
  if (eh->prefix_size > kMaxEmbzPrefix + kMaxEmbzKeys) {
    return fail(Status::NotSupported("the table inside has a " + std::to_string(eh->prefix_size) +
                                     "-byte header, metadata, checksum table and keys; a .embz reader holds at most " +
                                     std::to_string(kMaxEmbzPrefix >> 20) + " MiB of it besides " +
                                     std::to_string(kMaxEmbzKeys >> 20) + " MiB of keys"));
  }
  if (eh->prefix_size > kMaxEmbzPrefix && (eh->prefix_size - kMaxEmbzPrefix) / kMaxEmbzKeysRatio > eh->prefix_coded_size) {
    return fail(Status::Corruption("the table prefix claims " + std::to_string(eh->prefix_size) + " bytes from " +
                                   std::to_string(eh->prefix_coded_size) + " coded ones; beyond " +
                                   std::to_string(kMaxEmbzPrefix >> 20) + " MiB a prefix inflates at most " +
                                   std::to_string(kMaxEmbzKeysRatio) + "x"));
  }
  std::vector<uint8_t> prefix;
  Status st = ZstdDecompressStream(file.bytes().subspan(kEmbzHeaderSize, eh->prefix_coded_size), eh->prefix_size,
                                   [&](std::span<const uint8_t> piece) {
                                     prefix.insert(prefix.end(), piece.begin(), piece.end());
                                     return Status::OK();
                                   });
  if (!st.ok()) return fail(Status::Corruption("table prefix: " + st.message()));
  if (Hash64(prefix.data(), prefix.size()) != eh->prefix_checksum) {
    return fail(Status::Corruption("table prefix: checksum mismatch"));
  }
  auto table = DecodeHeader(prefix, eh->table_size);
  if (!table.ok()) return fail(table.status().WithContext("table inside"));
  if (table->data_offset != eh->prefix_size) {
    return fail(Status::Corruption("prefix_size " + std::to_string(eh->prefix_size) + " != the table's data_offset " +
                                   std::to_string(table->data_offset)));
  }
  if (table->keys_size > kMaxEmbzKeys || table->data_offset - table->keys_size > kMaxEmbzPrefix) {
    return fail(Status::NotSupported("the table inside has " + std::to_string(table->keys_size) + " bytes of keys and " +
                                     std::to_string(table->data_offset - table->keys_size) +
                                     " of header, metadata and checksums; a .embz reader holds at most " +
                                     std::to_string(kMaxEmbzKeys >> 20) + " MiB and " +
                                     std::to_string(kMaxEmbzPrefix >> 20) + " MiB"));
  }
  std::optional<KeysView> keys;
  if (table->has_keys()) {
    // The prefix checksum (above) covers the keys; each key and slot is
    // still checked as it is read.
    auto view = KeysView::Open(std::span(prefix).subspan(table->keys_offset, table->keys_size), table->rows);
    if (!view.ok()) return fail(view.status().WithContext("table inside"));
    keys = *view;
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
  // Checked here once, then read from the mapping when needed (a copy
  // would be 24 bytes of memory per frame).
  uint64_t expect = kEmbzHeaderSize + eh->prefix_coded_size;
  for (uint64_t f = 0; f < eh->frame_count; ++f) {
    const EmbzSeekEntry e = DecodeEmbzSeekEntry(seek_bytes.data() + f * kEmbzSeekEntrySize);
    uint64_t end;
    if (e.offset != expect || !CheckedAdd(expect, e.coded_size, &end) || end > eh->seek_offset) {
      return fail(Status::Corruption("seek table: frame " + std::to_string(f) + " at offset " +
                                     std::to_string(e.offset) + " size " + std::to_string(e.coded_size) +
                                     " does not follow the previous frame inside the file"));
    }
    expect = end;
  }
  if (expect != eh->seek_offset) return fail(Status::Corruption("seek table: frames do not reach the seek table"));
  // The cache's budget counts each frame's bookkeeping too, so that tiny
  // frames (one float each) cannot make it hold millions of them.
  const size_t cache_frames = static_cast<size_t>(std::max<uint64_t>(1, cache_bytes / (frame_bytes + kCachedFrameCost)));
  auto reader = std::unique_ptr<EmbzReader>(new EmbzReader(std::move(file), *eh, std::move(prefix), *table,
                                                           std::move(metadata).value(), cache_frames));
  reader->keys_ = keys;  // points into prefix_, whose buffer moved, not copied
  return reader;
}

uint64_t EmbzReader::FrameRows(uint64_t f) const {
  return std::min(embz_.frame_rows, table_.rows - f * embz_.frame_rows);
}

EmbzSeekEntry EmbzReader::Seek(uint64_t f) const {
  return DecodeEmbzSeekEntry(file_.data() + embz_.seek_offset + f * kEmbzSeekEntrySize);
}

bool EmbzReader::Checked(uint64_t f) const {
  return (frame_checked_[f / 64].load(std::memory_order_acquire) >> (f % 64)) & 1;
}

uint64_t EmbzReader::BlockChecksum(uint64_t b) const {
  return LoadLE64(prefix_.data() + table_.checksum_offset + 8 * b);
}

std::string EmbzReader::BlockMismatch(uint64_t b, uint64_t stored, uint64_t computed) const {
  const uint64_t r0 = b * table_.checksum_block_rows;
  const uint64_t n = std::min<uint64_t>(table_.checksum_block_rows, table_.rows - r0);
  const uint64_t f0 = r0 / embz_.frame_rows, f1 = (r0 + n - 1) / embz_.frame_rows;
  return "block " + std::to_string(b) + " (" + Rows(r0, n) + ", in frame" + (f0 == f1 ? " " : "s ") +
         std::to_string(f0) + (f0 == f1 ? "" : "-" + std::to_string(f1)) +
         ") does not match the table's checksum (stored xxh3 " + Hex(stored) + ", computed " + Hex(computed) +
         "): the frames and the table they claim to hold disagree";
}

Status EmbzReader::DecodeFrameRaw(uint64_t f, std::span<uint8_t> out) const {
  const EmbzSeekEntry e = Seek(f);
  Status st = DecodeFrame(file_.bytes().subspan(e.offset, e.coded_size), out, embz_.codec, dtype());
  if (!st.ok()) return Status::Corruption(st.message());
  if (Hash64(out.data(), out.size()) != e.checksum) return Status::Corruption("checksum mismatch");
  return Status::OK();
}

Status EmbzReader::DecodeFrameAt(uint64_t f, std::span<uint8_t> out) const {
  Status st = DecodeFrameRaw(f, out);
  if (st.ok()) return st;
  return Status::Corruption("frame " + std::to_string(f) + " (" + Rows(f * embz_.frame_rows, FrameRows(f)) +
                            "): " + st.message());
}

EmbzReader::FramePtr EmbzReader::Cached(uint64_t f) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(f);
  if (it == cache_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.second);
  return it->second.first;
}

std::shared_ptr<std::vector<uint8_t>> EmbzReader::NewFrame(uint64_t bytes) const {
  // Buffers of small frames are kept for reuse when their last holder drops
  // them (a fresh 128 KiB allocation costs more in page faults than its
  // decoding does); the pool's mutex orders that holder's last read before
  // the next decode into the buffer. Large frames are freed.
  constexpr size_t kPooled = 4;
  constexpr uint64_t kPooledBytes = uint64_t{1} << 20;
  std::unique_ptr<std::vector<uint8_t>> buf;
  {
    std::lock_guard<std::mutex> lock(pool_->mu);
    if (!pool_->spare.empty()) {
      buf = std::move(pool_->spare.back());
      pool_->spare.pop_back();
    }
  }
  if (!buf) buf = std::make_unique<std::vector<uint8_t>>();
  buf->resize(bytes);
  std::shared_ptr<FramePool> pool = pool_;  // outlives the reader while a frame does
  return std::shared_ptr<std::vector<uint8_t>>(buf.release(), [pool](std::vector<uint8_t>* v) {
    std::unique_ptr<std::vector<uint8_t>> owned(v);
    if (owned->capacity() > kPooledBytes) return;
    std::lock_guard<std::mutex> lock(pool->mu);
    if (pool->spare.size() < kPooled) pool->spare.push_back(std::move(owned));
  });
}

Result<EmbzReader::FramePtr> EmbzReader::CachedOrDecoded(uint64_t f) const {
  if (FramePtr hit = Cached(f)) return hit;
  // Decode outside the lock; two threads may both decode a cold frame. A
  // full cache gives up its least recent frame first, so that it never
  // holds more than cache_frames_ plus the frames readers hold.
  FramePtr evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= cache_frames_ && !lru_.empty()) {
      auto old = cache_.find(lru_.back());
      evicted = std::move(old->second.first);
      cache_.erase(old);
      lru_.pop_back();
    }
  }
  evicted.reset();  // freed, or back in the pool, unless a reader holds it
  std::shared_ptr<std::vector<uint8_t>> frame = NewFrame(FrameRows(f) * table_.row_stride);
  EMB_RETURN_IF_ERROR(DecodeFrameAt(f, *frame));
  std::vector<FramePtr> dropped;  // released outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.find(f) == cache_.end()) {
    lru_.push_front(f);
    cache_.emplace(f, std::make_pair(frame, lru_.begin()));
    while (cache_.size() > cache_frames_) {  // other threads filled it meanwhile
      auto old = cache_.find(lru_.back());
      dropped.push_back(std::move(old->second.first));
      cache_.erase(old);
      lru_.pop_back();
    }
  }
  return FramePtr(frame);
}

Result<EmbzReader::FramePtr> EmbzReader::Frame(uint64_t f) const {
  EMB_ASSIGN_OR_RETURN(FramePtr frame, CachedOrDecoded(f));
  if (!Checked(f)) EMB_RETURN_IF_ERROR(CheckBlocksOf(f, frame));
  return frame;
}

Status EmbzReader::CheckBlocksOf(uint64_t f, const FramePtr& frame) const {
  const uint64_t fr = embz_.frame_rows, br = table_.checksum_block_rows, stride = table_.row_stride;
  // Rows [x0, x1): the whole blocks that hold frame f's rows; frames
  // [g0, g1] hold them.
  const uint64_t r0 = f * fr, r1 = r0 + FrameRows(f);
  const uint64_t b0 = r0 / br, b1 = (r1 - 1) / br;
  const uint64_t x0 = b0 * br, x1 = std::min(table_.rows, (b1 + 1) * br);
  const uint64_t g0 = x0 / fr, g1 = (x1 - 1) / fr;
  // Neighbours go through the cache when all of them fit in it beside f
  // (a sequential reader wants them next); otherwise through one buffer.
  const bool via_cache = g1 - g0 + 1 < cache_frames_;
  std::vector<uint8_t> scratch;
  StreamingHash hash;
  uint64_t b = b0;
  uint64_t block_end = std::min(table_.rows, (b + 1) * br);
  for (uint64_t g = g0; g <= g1; ++g) {
    const uint8_t* data;
    FramePtr held;
    if (g == f) {
      held = frame;
    } else {
      // A damaged neighbour leaves the block unchecked, so f's rows are not
      // served either: they could be the spliced ones.
      auto unchecked = [&](const Status& st) {
        return Status::Corruption("frame " + std::to_string(f) + " (" + Rows(r0, r1 - r0) +
                                  ") cannot be checked against the table's checksums: " + st.message());
      };
      if (via_cache) {
        auto got = CachedOrDecoded(g);
        if (!got.ok()) return unchecked(got.status());
        held = *got;
      } else if (!(held = Cached(g))) {
        scratch.resize(FrameRows(g) * stride);
        if (Status st = DecodeFrameAt(g, scratch); !st.ok()) return unchecked(st);
      }
    }
    data = held ? held->data() : scratch.data();
    // This frame's rows inside [x0, x1), fed block by block.
    uint64_t row = std::max(x0, g * fr);
    const uint64_t end = std::min(x1, g * fr + FrameRows(g));
    while (row < end) {
      const uint64_t take = std::min(end, block_end) - row;
      hash.Update(data + (row - g * fr) * stride, take * stride);
      row += take;
      if (row == block_end) {
        const uint64_t computed = hash.Digest(), stored = BlockChecksum(b);
        if (computed != stored) return Status::Corruption(BlockMismatch(b, stored, computed));
        hash.Reset();
        ++b;
        block_end = std::min(table_.rows, (b + 1) * br);
      }
    }
  }
  // Every frame whose rows all lie in the blocks just checked now matches
  // them: its bytes hash to its seek-table checksum whenever it is decoded.
  for (uint64_t g = g0; g <= g1; ++g) {
    if (g * fr >= x0 && g * fr + FrameRows(g) <= x1) {
      frame_checked_[g / 64].fetch_or(uint64_t{1} << (g % 64), std::memory_order_release);
    }
  }
  return Status::OK();
}

Status EmbzReader::ReadRow(uint64_t id, std::span<float> out) const {
  const uint64_t ids[1] = {id};
  return Gather(ids, out);
}

Status EmbzReader::Gather(std::span<const uint64_t> ids, Dtype as, std::span<uint8_t> out) const {
  EMB_RETURN_IF_ERROR(CheckRowsOut(ids.size(), table_.dim, as, out).WithContext("gather"));
  for (uint64_t id : ids)
    if (id >= table_.rows) return Status::OutOfRange(OutOfRangeMessage(id, table_.rows));
  const uint64_t out_row = table_.dim * DtypeSize(as);
  for (size_t k = 0; k < ids.size(); ++k) {
    const uint64_t f = ids[k] / embz_.frame_rows;
    EMB_ASSIGN_OR_RETURN(auto frame, Frame(f));
    CopyRow(frame->data() + (ids[k] - f * embz_.frame_rows) * table_.row_stride, as, out.data() + k * out_row);
  }
  return Status::OK();
}

void EmbzReader::CopyRow(const uint8_t* src, Dtype as, uint8_t* dst) const {
  if (as == dtype()) {
    std::memcpy(dst, src, row_size());
  } else {
    ConvertElements(dtype(), src, as, dst, table_.dim);
  }
}

Status EmbzReader::Walk(AtomicFile* out, unsigned threads, const std::function<void(uint64_t, uint64_t)>& progress,
                        VerifyReport* report, const CancelToken* cancel) const {
  const uint64_t fr = embz_.frame_rows, br = table_.checksum_block_rows, stride = table_.row_stride;
  const uint64_t rows = table_.rows;
  // Units of whole checksum blocks, so that each block is hashed by one
  // worker; a frame that straddles two units is decoded by both.
  const uint64_t unit_rows = std::max<uint64_t>(1, kWalkUnitBytes / (br * stride)) * br;
  const uint64_t units = CeilDiv(rows, unit_rows);
  const uint64_t fbytes = frame_bytes();
  const uint64_t per_thread = fbytes + fbytes / 4 + (out != nullptr ? kWriteBytes : 0);
  const unsigned n = static_cast<unsigned>(
      std::min<uint64_t>(ResolveThreads(threads, units), std::max<uint64_t>(1, kDecodeBudget / per_thread)));
  struct Found {
    std::vector<BadRows> bad;
    uint64_t blocks_checked = 0;
    Status error;
  };
  std::vector<Found> found(n);
  std::atomic<uint64_t> next{0}, done{0}, bad_frames{0}, bad_blocks{0};
  std::atomic<bool> failed{false};
  auto work = [&](unsigned w) {
    Found& mine = found[w];
    std::vector<uint8_t> fbuf, pend;
    if (out != nullptr) pend.resize(kWriteBytes);
    uint64_t pend_row = 0, pend_used = 0;
    auto flush = [&]() -> Status {
      if (pend_used == 0) return Status::OK();
      Status st = out->WriteAt(pend.data(), pend_used, table_.data_offset + pend_row * stride);
      pend_row += pend_used / stride;
      pend_used = 0;
      return st;
    };
    StreamingHash hash;
    for (uint64_t u; !failed.load(std::memory_order_relaxed) && !IsCancelled(cancel) && (u = next.fetch_add(1)) < units;) {
      const uint64_t u0 = u * unit_rows, u1 = std::min(rows, u0 + unit_rows);
      uint64_t b = u0 / br, block_end = std::min(rows, (b + 1) * br);
      bool poisoned = false;  // a frame of this block did not decode: its bad frame says so
      hash.Reset();
      pend_row = u0;
      pend_used = 0;
      Status st;
      for (uint64_t g = u0 / fr; g <= (u1 - 1) / fr && st.ok() && !IsCancelled(cancel); ++g) {
        const uint64_t g0 = g * fr, g1 = g0 + FrameRows(g);
        const uint64_t p0 = std::max(u0, g0), p1 = std::min(u1, g1);
        const uint64_t gbytes = (g1 - g0) * stride;
        // A whole frame that fits in the pending write is decoded straight
        // into it; anything else goes through fbuf.
        const bool direct = out != nullptr && g0 >= u0 && g1 <= u1 && gbytes <= kWriteBytes - pend_used;
        uint8_t* data;
        if (direct) {
          data = pend.data() + pend_used;
        } else {
          fbuf.resize(gbytes);
          data = fbuf.data();
        }
        Status frame_status = DecodeFrameRaw(g, std::span<uint8_t>(data, gbytes));
        if (!frame_status.ok()) {
          if (out != nullptr) {
            st = Status::Corruption("frame " + std::to_string(g) + " (" + Rows(g0, g1 - g0) + "): " +
                                    frame_status.message());
            break;
          }
          if (g0 >= u0) {  // the unit holding the frame's first row reports it
            bad_frames.fetch_add(1, std::memory_order_relaxed);
            if (mine.bad.size() < kMaxReportedBadRows) {
              BadRows frame_rows;
              frame_rows.unit = BadRows::Unit::kFrame;
              frame_rows.index = g;
              frame_rows.first_row = g0;
              frame_rows.row_count = g1 - g0;
              frame_rows.error = frame_status.message();
              mine.bad.push_back(frame_rows);
            }
          }
          data = nullptr;
        }
        // Rows [p0, p1) into the hashes of their blocks.
        for (uint64_t row = p0; row < p1;) {
          const uint64_t take = std::min(p1, block_end) - row;
          if (data != nullptr) {
            hash.Update(data + (row - g0) * stride, take * stride);
          } else {
            poisoned = true;
          }
          row += take;
          if (row == block_end) {
            if (!poisoned) {
              ++mine.blocks_checked;
              const uint64_t computed = hash.Digest(), stored = BlockChecksum(b);
              if (computed != stored) {
                if (out != nullptr) {
                  st = Status::Corruption(BlockMismatch(b, stored, computed));
                  break;
                }
                bad_blocks.fetch_add(1, std::memory_order_relaxed);
                if (mine.bad.size() < kMaxReportedBadRows) {
                  BadRows bad_rows;
                  bad_rows.unit = BadRows::Unit::kBlock;
                  bad_rows.index = b;
                  bad_rows.first_row = b * br;
                  bad_rows.row_count = block_end - b * br;
                  bad_rows.stored = stored;
                  bad_rows.computed = computed;
                  mine.bad.push_back(bad_rows);
                }
              }
            }
            hash.Reset();
            poisoned = false;
            ++b;
            block_end = std::min(rows, (b + 1) * br);
          }
        }
        if (!st.ok()) break;
        if (out != nullptr) {
          const uint64_t part = (p1 - p0) * stride;
          if (direct) {
            pend_used += part;
          } else if (part <= kWriteBytes) {
            if (part > kWriteBytes - pend_used) st = flush();
            if (st.ok()) {
              std::memcpy(pend.data() + pend_used, data + (p0 - g0) * stride, part);
              pend_used += part;
            }
          } else {
            st = flush();
            if (st.ok()) st = out->WriteAt(data + (p0 - g0) * stride, part, table_.data_offset + p0 * stride);
            pend_row = p1;
          }
        }
        done.fetch_add((p1 - p0) * stride, std::memory_order_relaxed);
      }
      if (st.ok() && out != nullptr) st = flush();
      if (!st.ok()) {
        mine.error = st;
        failed = true;
        return;
      }
    }
  };
  EMB_RETURN_IF_ERROR(RunParallel(n, work, &done, table_.data_size, progress, cancel));
  for (const Found& f : found) EMB_RETURN_IF_ERROR(f.error.WithContext(path()));
  if (report != nullptr) {
    report->frames_checked = embz_.frame_count;
    report->bad_frame_count = bad_frames.load();
    report->bad_block_count = bad_blocks.load();
    report->bytes_checked = table_.data_size;
    for (const Found& f : found) {
      report->blocks_checked += f.blocks_checked;
      report->bad.insert(report->bad.end(), f.bad.begin(), f.bad.end());
    }
    // By row; where a frame and a block start together, the frame first.
    std::sort(report->bad.begin(), report->bad.end(), [](const BadRows& a, const BadRows& b) {
      return a.first_row != b.first_row ? a.first_row < b.first_row : a.unit == BadRows::Unit::kFrame && b.unit != a.unit;
    });
    if (report->bad.size() > kMaxReportedBadRows) report->bad.resize(kMaxReportedBadRows);
  }
  return Status::OK();
}

Status EmbzReader::ReadRows(uint64_t first, uint64_t count, Dtype as, std::span<uint8_t> out) const {
  EMB_RETURN_IF_ERROR(CheckRowRange(first, count, table_.rows));
  EMB_RETURN_IF_ERROR(CheckRowsOut(count, table_.dim, as, out).WithContext("read rows"));
  const uint64_t fr = embz_.frame_rows, stride = table_.row_stride, out_row = table_.dim * DtypeSize(as);
  for (uint64_t row = first; row < first + count;) {
    const uint64_t f = row / fr;
    EMB_ASSIGN_OR_RETURN(auto frame, Frame(f));
    const uint64_t end = std::min(first + count, f * fr + FrameRows(f));
    for (; row < end; ++row) CopyRow(frame->data() + (row - f * fr) * stride, as, out.data() + (row - first) * out_row);
  }
  return Status::OK();
}

Status EmbzReader::Advise(AccessHint hint, uint64_t first_row, uint64_t row_count) const {
  EMB_RETURN_IF_ERROR(CheckRowRange(first_row, row_count, table_.rows).WithContext("advise"));
  if (row_count == 0) return Status::OK();
  const uint64_t last = first_row + row_count - 1;
  const EmbzSeekEntry a = Seek(first_row / embz_.frame_rows), b = Seek(last / embz_.frame_rows);
  return file_.Advise(hint, a.offset, b.offset + b.coded_size - a.offset);
}

Result<VerifyReport> EmbzReader::Verify(const VerifyOptions& options) const {
  VerifyReport report;
  EMB_RETURN_IF_ERROR(Walk(nullptr, options.threads, options.progress, &report, options.cancel));
  if (keys_) report.bad_keys = CheckKeysSection(table_, KeysBytes(), *keys_);
  return report;
}

Status EmbzReader::Decompress(const std::string& dst, const DecompressOptions& options) const {
  AtomicFileOptions fo;
  fo.sync = options.sync;
  fo.no_replace = !options.replace;
  fo.cancel = options.cancel;
  EMB_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(dst, embz_.table_size, fo));
  EMB_RETURN_IF_ERROR(DecompressInto(out.get(), options.threads, options.progress, options.cancel));
  return out->Commit();
}

Status EmbzReader::DecompressInto(AtomicFile* out, unsigned threads,
                                  const std::function<void(uint64_t, uint64_t)>& progress,
                                  const CancelToken* cancel) const {
  if (out->size() != embz_.table_size) {
    return Status::InvalidArgument(out->path() + ": " + std::to_string(out->size()) + " bytes for a table of " +
                                   std::to_string(embz_.table_size));
  }
  if (keys_) {  // a table whose keys do not check out is not written
    const std::string bad = CheckKeysSection(table_, KeysBytes(), *keys_);
    if (!bad.empty()) return Status::Corruption(path() + ": table inside: " + bad);
  }
  EMB_RETURN_IF_ERROR(out->WriteAt(prefix_.data(), prefix_.size(), 0));
  return Walk(out, threads, progress, nullptr, cancel);
}

}  // namespace embstore
