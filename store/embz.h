// Compressed tables (.embz) that keep random row access (FORMAT.md, ".embz
// container"): the table's own header, metadata and checksum table
// (compressed), then frames of K rows each coded independently
// (embz_codec.h), then a seek table with each frame's offset, size and the
// XXH3-64 of its decoded bytes, protected by its own checksum.
//
// CompressTable and EmbzReader::Decompress run on several threads; a
// decompressed table is the original .emb byte for byte. Outputs are
// AtomicFiles: never half-written under their name.

#ifndef EMBSTORE_STORE_EMBZ_H_
#define EMBSTORE_STORE_EMBZ_H_

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/embz_format.h"
#include "format/metadata.h"
#include "format/status.h"
#include "format/table_format.h"
#include "store/embz_codec.h"
#include "store/mapped_file.h"
#include "store/table_reader.h"

namespace embstore {

class AtomicFile;

// True when the file at `path` starts with the .embz magic (false when it
// cannot be read: opening it then reports why).
bool FileIsEmbz(const std::string& path);

// Frames aim for this many decoded bytes: small enough that one row from a
// cold frame decodes in well under 200 us, large enough that per-frame
// overhead stays under 0.1%.
inline constexpr uint64_t kDefaultFrameBytes = 128 * 1024;
// A reader keeps this much of the table prefix (header and metadata) in
// memory; the checksum table after it is streamed, never held.
inline constexpr uint64_t kPrefixKeep = uint64_t{1} << 20;

struct CompressOptions {
  int level = kDefaultLevel;  // zstd level for the mantissa stream and the prefix
  unsigned threads = 0;       // 0: all cores
  uint64_t frame_rows = 0;    // 0: about kDefaultFrameBytes per frame
  bool sync = true;
  std::function<void(uint64_t, uint64_t)> progress;  // (bytes read, total), calling thread
};

Status CompressTable(const TableReader& table, const std::string& dst, const CompressOptions& options = {});

// One frame that failed to decode or whose bytes do not match the seek
// table's checksum.
struct BadFrame {
  uint64_t frame;
  uint64_t first_row;
  uint64_t row_count;
  std::string error;
};

struct EmbzVerifyReport {
  uint64_t frames_checked = 0;
  std::vector<BadFrame> bad_frames;  // in frame order
  bool ok() const { return bad_frames.empty(); }
};

// A .embz opened for random access. Open validates the container header,
// the table's own header and metadata (inflated from the prefix) and the
// whole seek table; rows are decoded a frame at a time through a bounded
// cache. All const methods are safe from many threads at once.
class EmbzReader {
 public:
  // The frame cache holds at most cache_bytes of decoded frames (and at
  // least one frame).
  static Result<std::unique_ptr<EmbzReader>> Open(const std::string& path, uint64_t cache_bytes = uint64_t{64} << 20);

  const EmbzHeader& embz_header() const { return embz_; }
  const Header& header() const { return table_; }  // of the table inside
  const Metadata& metadata() const { return metadata_; }
  uint64_t rows() const { return table_.rows; }
  uint64_t dim() const { return table_.dim; }
  uint64_t file_size() const { return file_.size(); }
  const std::string& path() const { return file_.path(); }

  // Copies row id into out (dim() floats). Errors name the id and range, or
  // the frame and its rows when the frame is damaged.
  Status ReadRow(uint64_t id, std::span<float> out) const;
  Status Gather(std::span<const uint64_t> ids, std::span<float> out) const;

  Result<EmbzVerifyReport> Verify(unsigned threads = 0,
                                  const std::function<void(uint64_t, uint64_t)>& progress = {}) const;
  // Writes the original .emb; fails (leaving nothing) on any damaged frame.
  Status Decompress(const std::string& dst, unsigned threads = 0, bool sync = true,
                    const std::function<void(uint64_t, uint64_t)>& progress = {}) const;
  // The same bytes into a new file the caller commits (out->size() must be
  // the table's size): shared-memory tables are made this way.
  Status DecompressInto(AtomicFile* out, unsigned threads = 0,
                        const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

 private:
  EmbzReader(MappedFile file, EmbzHeader embz, std::vector<uint8_t> head, Header table, Metadata metadata,
             std::vector<EmbzSeekEntry> seek, size_t cache_frames);
  // Decodes frame f into out (its exact size) and checks its checksum.
  Status DecodeFrameAt(uint64_t f, std::span<uint8_t> out) const;
  Result<std::shared_ptr<const std::vector<uint8_t>>> Frame(uint64_t f) const;
  uint64_t FrameRows(uint64_t f) const;

  MappedFile file_;
  EmbzHeader embz_;
  std::vector<uint8_t> head_;  // the table's first bytes: header and metadata
  Header table_;
  Metadata metadata_;
  std::vector<EmbzSeekEntry> seek_;
  size_t cache_frames_;
  mutable std::mutex mu_;
  mutable std::list<uint64_t> lru_;  // most recent first
  mutable std::unordered_map<uint64_t, std::pair<std::shared_ptr<const std::vector<uint8_t>>,
                                                 std::list<uint64_t>::iterator>> cache_;
  mutable std::vector<std::shared_ptr<std::vector<uint8_t>>> spare_;  // buffers of evicted frames
};

}  // namespace embstore

#endif  // EMBSTORE_STORE_EMBZ_H_
