// The compressed container .embz as code (version 1.1; 1.0 files are read
// too): its fixed 128-byte header and 24-byte seek-table entries, encoders
// and validating decoders.
// FORMAT.md, ".embz container", is the normative text.
//
// Pure functions over bytes; safe from any thread.

#ifndef EMBSTORE_FORMAT_EMBZ_FORMAT_H_
#define EMBSTORE_FORMAT_EMBZ_FORMAT_H_

#include <array>
#include <cstdint>
#include <span>

#include "format/status.h"

namespace embstore {

inline constexpr uint8_t kEmbzMagic[8] = {0x89, 'E', 'M', 'Z', '\r', '\n', 0x1A, '\n'};
inline constexpr uint32_t kEmbzHeaderSize = 128;
// Codecs (FORMAT.md, ".embz frames"): exponent bytes rANS-coded over 4
// states (1, .embz 1.0, read only) or over 32 states (2, .embz 1.1).
inline constexpr uint32_t kEmbzCodecSplitRans = 1;
inline constexpr uint32_t kEmbzCodecSplitRans32 = 2;
inline constexpr uint32_t kEmbzCodecCurrent = kEmbzCodecSplitRans32;
inline constexpr uint64_t kEmbzSeekEntrySize = 24;
// A frame inflates to at most this many bytes (bounds every allocation a
// reader makes for one frame).
inline constexpr uint64_t kEmbzMaxFrameBytes = uint64_t{64} << 20;

struct EmbzHeader {
  uint16_t version_major = 1;
  uint16_t version_minor = 1;
  uint32_t codec = kEmbzCodecCurrent;
  uint64_t required_flags = 0;
  uint64_t optional_flags = 0;
  uint64_t table_size = 0;         // bytes of the .emb this decompresses to
  uint64_t prefix_size = 0;        // bytes of it before its data (its data_offset)
  uint64_t prefix_coded_size = 0;  // zstd frame at offset 128
  uint64_t frame_rows = 0;         // rows per frame (the last may have fewer)
  uint64_t frame_count = 0;
  uint64_t seek_offset = 0;        // seek table: frame_count entries, then end of file
  uint64_t seek_checksum = 0;      // XXH3-64 of the seek table
  uint64_t prefix_checksum = 0;    // XXH3-64 of the inflated table prefix
  uint32_t level = 0;              // zstd level used (informational)
};

struct EmbzSeekEntry {
  uint64_t offset;      // of the coded frame in the file
  uint64_t coded_size;  // bytes
  uint64_t checksum;    // XXH3-64 of the frame's decoded bytes
};

std::array<uint8_t, kEmbzHeaderSize> EncodeEmbzHeader(const EmbzHeader& h);

// Validates magic, byte order, version, header checksum, flags, codec and
// every size against the file size (no section overlaps or runs past the
// end; the file ends at the seek table's end). Touches only the header.
Result<EmbzHeader> DecodeEmbzHeader(std::span<const uint8_t> prefix, uint64_t file_size);

void EncodeEmbzSeekEntry(const EmbzSeekEntry& e, uint8_t* out);
EmbzSeekEntry DecodeEmbzSeekEntry(const uint8_t* in);

// True when the first bytes are the .embz magic (to tell .emb from .embz).
bool LooksLikeEmbz(std::span<const uint8_t> prefix);

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_EMBZ_FORMAT_H_
