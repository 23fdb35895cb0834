#include "format/embz_format.h"

#include <cstring>
#include <string>

#include "format/checked_math.h"
#include "format/checksum.h"
#include "format/endian.h"

namespace embstore {

namespace {

// FORMAT.md, ".embz header": byte offsets.
constexpr size_t kOffByteOrder = 8, kOffMajor = 12, kOffMinor = 14, kOffHeaderSize = 16, kOffCodec = 20,
                 kOffRequired = 24, kOffOptional = 32, kOffTableSize = 40, kOffPrefixSize = 48,
                 kOffPrefixCoded = 56, kOffFrameRows = 64, kOffFrameCount = 72, kOffSeekOffset = 80,
                 kOffSeekChecksum = 88, kOffLevel = 96, kOffPrefixChecksum = 104, kOffChecksum = 120;

Status Bad(const std::string& what) { return Status::Corruption("corrupt .embz header: " + what); }

}  // namespace

bool LooksLikeEmbz(std::span<const uint8_t> prefix) {
  return prefix.size() >= sizeof(kEmbzMagic) && std::memcmp(prefix.data(), kEmbzMagic, sizeof(kEmbzMagic)) == 0;
}

std::array<uint8_t, kEmbzHeaderSize> EncodeEmbzHeader(const EmbzHeader& h) {
  std::array<uint8_t, kEmbzHeaderSize> out{};
  uint8_t* p = out.data();
  std::memcpy(p, kEmbzMagic, sizeof(kEmbzMagic));
  StoreLE32(p + kOffByteOrder, 0x01020304);
  StoreLE16(p + kOffMajor, h.version_major);
  StoreLE16(p + kOffMinor, h.version_minor);
  StoreLE32(p + kOffHeaderSize, kEmbzHeaderSize);
  StoreLE32(p + kOffCodec, h.codec);
  StoreLE64(p + kOffRequired, h.required_flags);
  StoreLE64(p + kOffOptional, h.optional_flags);
  StoreLE64(p + kOffTableSize, h.table_size);
  StoreLE64(p + kOffPrefixSize, h.prefix_size);
  StoreLE64(p + kOffPrefixCoded, h.prefix_coded_size);
  StoreLE64(p + kOffFrameRows, h.frame_rows);
  StoreLE64(p + kOffFrameCount, h.frame_count);
  StoreLE64(p + kOffSeekOffset, h.seek_offset);
  StoreLE64(p + kOffSeekChecksum, h.seek_checksum);
  StoreLE32(p + kOffLevel, h.level);
  StoreLE64(p + kOffPrefixChecksum, h.prefix_checksum);
  StoreLE64(p + kOffChecksum, Hash64(p, kOffChecksum));
  return out;
}

Result<EmbzHeader> DecodeEmbzHeader(std::span<const uint8_t> prefix, uint64_t file_size) {
  const uint8_t* p = prefix.data();
  const uint64_t avail = prefix.size() < file_size ? prefix.size() : file_size;
  if (file_size == 0) return Status::Corruption("empty file: 0 bytes, not an .embz table");
  if (!LooksLikeEmbz(prefix.first(avail < 8 ? avail : 8)) || avail < 8) {
    return Status::Corruption("bad magic: not an .embz file");
  }
  if (avail < kEmbzHeaderSize) {
    return Status::Corruption("truncated .embz header: file is " + std::to_string(file_size) + " bytes, the header needs 128");
  }
  const uint32_t bom = LoadLE32(p + kOffByteOrder);
  if (bom == 0x04030201) return Status::NotSupported("big-endian .embz: this reader reads little-endian files only");
  if (bom != 0x01020304) return Bad("byte-order mark");
  EmbzHeader h;
  h.version_major = LoadLE16(p + kOffMajor);
  h.version_minor = LoadLE16(p + kOffMinor);
  if (h.version_major != 1) {
    return Status::NotSupported("unsupported .embz version " + std::to_string(h.version_major) + "." +
                                std::to_string(h.version_minor) + ": this reader reads version 1.x");
  }
  const uint64_t stored = LoadLE64(p + kOffChecksum), computed = Hash64(p, kOffChecksum);
  if (stored != computed) return Bad("header checksum mismatch");
  if (LoadLE32(p + kOffHeaderSize) != kEmbzHeaderSize) return Bad("header_size is not 128");
  h.codec = LoadLE32(p + kOffCodec);
  h.required_flags = LoadLE64(p + kOffRequired);
  h.optional_flags = LoadLE64(p + kOffOptional);
  h.table_size = LoadLE64(p + kOffTableSize);
  h.prefix_size = LoadLE64(p + kOffPrefixSize);
  h.prefix_coded_size = LoadLE64(p + kOffPrefixCoded);
  h.frame_rows = LoadLE64(p + kOffFrameRows);
  h.frame_count = LoadLE64(p + kOffFrameCount);
  h.seek_offset = LoadLE64(p + kOffSeekOffset);
  h.seek_checksum = LoadLE64(p + kOffSeekChecksum);
  h.level = LoadLE32(p + kOffLevel);
  h.prefix_checksum = LoadLE64(p + kOffPrefixChecksum);
  if (h.required_flags != 0) return Status::NotSupported("unknown required .embz feature flags");
  if (h.codec != kEmbzCodecSplitRans && h.codec != kEmbzCodecSplitRans32) {
    return Status::NotSupported("unknown .embz codec " + std::to_string(h.codec));
  }
  if (h.frame_rows == 0) return Bad("frame_rows is 0");
  if (h.prefix_size == 0 || h.prefix_size > h.table_size) {
    return Bad("prefix_size " + std::to_string(h.prefix_size) + " outside [1, table_size " +
               std::to_string(h.table_size) + "]");
  }
  uint64_t prefix_end, seek_size, end;
  if (!CheckedAdd(kEmbzHeaderSize, h.prefix_coded_size, &prefix_end) || prefix_end > h.seek_offset) {
    return Bad("table prefix runs past the seek table");
  }
  if (!CheckedMul(h.frame_count, kEmbzSeekEntrySize, &seek_size) || !CheckedAdd(h.seek_offset, seek_size, &end)) {
    return Bad("seek table size overflows");
  }
  if (end != file_size) {
    return Status::Corruption((end > file_size ? "truncated .embz: file is " : "trailing bytes in .embz: file is ") +
                              std::to_string(file_size) + " bytes, the header says " + std::to_string(end));
  }
  return h;
}

void EncodeEmbzSeekEntry(const EmbzSeekEntry& e, uint8_t* out) {
  StoreLE64(out, e.offset);
  StoreLE64(out + 8, e.coded_size);
  StoreLE64(out + 16, e.checksum);
}

EmbzSeekEntry DecodeEmbzSeekEntry(const uint8_t* in) {
  return {LoadLE64(in), LoadLE64(in + 8), LoadLE64(in + 16)};
}

}  // namespace embstore
