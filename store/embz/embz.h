// Compressed tables (.embz) that keep random row access (FORMAT.md, ".embz
// container"): the table's own header, metadata and checksum table
// (compressed), then frames of K rows each coded independently
// (embz_codec.h), then a seek table with each frame's offset, size and the
// XXH3-64 of its decoded bytes, protected by its own checksum.
//
// Every row a reader hands out has been checked twice: its frame against
// the seek table's checksum (each time it is decoded), and the rows of its
// checksum block against the table's own block checksum, which the prefix
// carries (once per block and reader). A frame spliced in from another
// table, with the container's checksums recomputed to match it, therefore
// still fails: its rows do not hash to the table's checksums.
//
// CompressTable and EmbzReader::Decompress run on several threads; a
// decompressed table is the original .emb byte for byte. Outputs are
// AtomicFiles: never half-written under their name.
//
// Memory, beyond the file's mapping (F: the file's decoded frame size, 128
// KiB by default and at most 64 MiB): a reader holds the table's prefix
// (header, metadata, block checksums: at most kMaxEmbzPrefix) and a bit per
// frame; its frame cache holds at most cache_bytes, counting each frame's
// bookkeeping (and at least one frame); checking a frame's blocks may
// decode up to two neighbours, one at a time, into one more frame buffer;
// the codec needs F/4 of scratch per decoding thread; up to four buffers of
// small frames (at most 1 MiB each) are kept for reuse. Verify and Decompress
// limit their threads so that all their buffers fit in kDecodeBudget (one
// thread when a single one needs more).

#ifndef EMBSTORE_STORE_EMBZ_EMBZ_H_
#define EMBSTORE_STORE_EMBZ_EMBZ_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/embz_format.h"
#include "format/keys.h"
#include "format/metadata.h"
#include "format/status.h"
#include "format/table_format.h"
#include "store/core/mapped_file.h"
#include "store/core/table.h"
#include "store/core/table_reader.h"
#include "store/embz/embz_codec.h"

namespace embstore {

class AtomicFile;

// Frames aim for this many decoded bytes: small enough that one row from a
// cold frame decodes in well under 200 us, large enough that per-frame
// overhead stays under 0.1%.
inline constexpr uint64_t kDefaultFrameBytes = 128 * 1024;
// A reader holds the table's prefix (header, metadata and checksum table)
// to check rows against the table's own checksums. A table whose prefix is
// larger (more than about two million checksum blocks: 2 TiB of rows in
// the 1 MiB blocks writers make) cannot be compressed or read as a .embz.
inline constexpr uint64_t kMaxEmbzPrefix = uint64_t{16} << 20;
// ... besides the table's keys section (FORMAT.md 1.2), also held in memory:
// about 20 bytes a key plus the keys' own bytes, so 1 GiB is tens of
// millions of keys.
inline constexpr uint64_t kMaxEmbzKeys = uint64_t{1} << 30;
// Beyond kMaxEmbzPrefix, a prefix inflates at most this many times its
// coded size (a keys section's hash slots are near-random: real ones
// compress 2-4x), so a small file cannot make a reader hold a large one.
inline constexpr uint64_t kMaxEmbzKeysRatio = 64;
// Verify and Decompress keep their decoding threads' buffers within this.
inline constexpr uint64_t kDecodeBudget = uint64_t{64} << 20;
// A reader's frame cache by default.
inline constexpr uint64_t kDefaultFrameCache = uint64_t{64} << 20;

struct CompressOptions {
  int level = kDefaultLevel;  // zstd level for the mantissa stream and the prefix
  unsigned threads = 0;       // 0: all cores
  // 0: about kDefaultFrameBytes per frame, chosen so that frames tile the
  // table's checksum blocks where its block size allows.
  uint64_t frame_rows = 0;
  bool sync = true;
  // Replace a file at dst. false: fail with an already-exists error if one
  // is there when the new file is put in place (atomically, however late it
  // appeared), and leave it as it is.
  bool replace = true;
  std::function<void(uint64_t, uint64_t)> progress;  // (bytes read, total), calling thread
  const CancelToken* cancel = nullptr;               // stops the work early (store/core/cancel.h)
};

// The default frame_rows for a table of this layout.
uint64_t DefaultFrameRows(const Header& table);

Status CompressTable(const TableReader& table, const std::string& dst, const CompressOptions& options = {});

struct DecompressOptions {
  unsigned threads = 0;  // 0: all cores
  bool sync = true;
  bool replace = true;  // as CompressOptions::replace
  std::function<void(uint64_t, uint64_t)> progress;  // (bytes done, total), calling thread
  const CancelToken* cancel = nullptr;               // stops the work early (store/core/cancel.h)
};

// A .embz opened for random access: the Table (one read interface) of
// compressed tables. Open validates the container header, the table's own
// header and metadata (inflated from the prefix) and the whole seek table;
// rows are decoded a frame at a time through a bounded cache, and checked
// (embz.h, top). All const methods are safe from many threads at once.
class EmbzReader final : public Table {
 public:
  // The frame cache holds at most cache_bytes of decoded frames (and at
  // least one frame).
  static Result<std::unique_ptr<EmbzReader>> Open(const std::string& path,
                                                  uint64_t cache_bytes = kDefaultFrameCache);
  // The same for a file already opened and mapped (the caller looked at its
  // magic to decide that it is a .embz).
  static Result<std::unique_ptr<EmbzReader>> Open(MappedFile file, uint64_t cache_bytes = kDefaultFrameCache);

  const EmbzHeader& embz_header() const { return embz_; }
  const Header& header() const override { return table_; }  // of the table inside
  const Metadata& metadata() const override { return metadata_; }
  uint64_t file_size() const override { return file_.size(); }
  const std::string& path() const override { return file_.path(); }
  uint64_t frame_bytes() const { return embz_.frame_rows * table_.row_stride; }

  // Copies row id into out (dim() floats). Errors name the id and range, or
  // the frame (or checksum block) and its rows when the data is damaged.
  Status ReadRow(uint64_t id, std::span<float> out) const;
  using Table::Gather;
  using Table::ReadRows;
  Status Gather(std::span<const uint64_t> ids, Dtype as, std::span<uint8_t> out) const override;
  Status ReadRows(uint64_t first, uint64_t count, Dtype as, std::span<uint8_t> out) const override;
  // Advises the kernel about the coded frames that hold the rows.
  Status Advise(AccessHint hint, uint64_t first_row, uint64_t row_count) const override;

  // Decodes every frame, checks it against the seek table, and checks every
  // checksum block of the table against the table's own checksums; bad
  // frames and bad blocks are both in the report, by row.
  Result<VerifyReport> Verify(const VerifyOptions& options = {}) const override;
  bool checks_rows_on_read() const override { return true; }
  uint64_t emb_size() const override { return embz_.table_size; }
  // The original .emb bytes (as DecompressInto).
  Status WriteEmb(AtomicFile* out, unsigned threads, const Progress& progress = {},
                  const CancelToken* cancel = nullptr) const override {
    return DecompressInto(out, threads, progress, cancel);
  }
  const EmbzHeader* embz() const override { return &embz_; }
  const KeysView* keys() const override { return keys_ ? &*keys_ : nullptr; }
  std::span<const uint8_t> table_prefix() const override { return prefix_; }
  // Writes the original .emb; fails (leaving nothing) on any damaged frame
  // or any block that does not match the table's checksums.
  Status Decompress(const std::string& dst, const DecompressOptions& options = {}) const;
  // The same bytes into a new file the caller commits (out->size() must be
  // the table's size): shared-memory tables are made this way.
  Status DecompressInto(AtomicFile* out, unsigned threads = 0,
                        const std::function<void(uint64_t, uint64_t)>& progress = {},
                        const CancelToken* cancel = nullptr) const;

 private:
  using FramePtr = std::shared_ptr<const std::vector<uint8_t>>;
  EmbzReader(MappedFile file, EmbzHeader embz, std::vector<uint8_t> prefix, Header table, Metadata metadata,
             size_t cache_frames);
  // Decodes frame f into out (its exact size) and checks its checksum; the
  // error names the frame and its rows (DecodeFrameRaw's only what failed).
  Status DecodeFrameAt(uint64_t f, std::span<uint8_t> out) const;
  // One stored row at src into dst as elements of `as`.
  void CopyRow(const uint8_t* src, Dtype as, uint8_t* dst) const;
  Status DecodeFrameRaw(uint64_t f, std::span<uint8_t> out) const;
  // Frame f from the cache, or decoded into it; its blocks checked.
  Result<FramePtr> Frame(uint64_t f) const;
  // Frame f from the cache, or decoded into it; not checked against blocks.
  Result<FramePtr> CachedOrDecoded(uint64_t f) const;
  // A buffer of `bytes` for a frame, from the pool when one is there.
  std::shared_ptr<std::vector<uint8_t>> NewFrame(uint64_t bytes) const;
  FramePtr Cached(uint64_t f) const;
  // Checks the blocks that hold frame f's rows (decoding the neighbours that
  // share them) against the table's checksums; marks the frames covered.
  Status CheckBlocksOf(uint64_t f, const FramePtr& frame) const;
  // Decodes every frame once, in row order per worker, checking frames and
  // blocks; writes the rows into out when it is given (else only checks).
  Status Walk(AtomicFile* out, unsigned threads, const std::function<void(uint64_t, uint64_t)>& progress,
              VerifyReport* report, const CancelToken* cancel) const;
  uint64_t FrameRows(uint64_t f) const;
  EmbzSeekEntry Seek(uint64_t f) const;  // from the mapping (checked at Open)
  bool Checked(uint64_t f) const;        // frame f's rows all lie in checked blocks
  uint64_t BlockChecksum(uint64_t b) const;
  std::string BlockMismatch(uint64_t b, uint64_t stored, uint64_t computed) const;

  MappedFile file_;
  EmbzHeader embz_;
  std::optional<KeysView> keys_;  // into prefix_
  std::span<const uint8_t> KeysBytes() const {
    return std::span<const uint8_t>(prefix_).subspan(table_.keys_offset, table_.keys_size);
  }
  std::vector<uint8_t> prefix_;  // the table's bytes before its data: header, metadata, checksum table
  Header table_;
  Metadata metadata_;
  size_t cache_frames_;
  struct FramePool {
    std::mutex mu;
    std::vector<std::unique_ptr<std::vector<uint8_t>>> spare;  // buffers of small frames no one holds
  };
  std::shared_ptr<FramePool> pool_;
  std::unique_ptr<std::atomic<uint64_t>[]> frame_checked_;  // a bit per frame: Checked()
  mutable std::mutex mu_;
  mutable std::list<uint64_t> lru_;  // most recent first
  mutable std::unordered_map<uint64_t, std::pair<FramePtr, std::list<uint64_t>::iterator>> cache_;
};

}  // namespace embstore

#endif  // EMBSTORE_STORE_EMBZ_EMBZ_H_
