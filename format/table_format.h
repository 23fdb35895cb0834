// The embstore table file, version 1.2, as code: constants, the fixed
// 128-byte header, its encoder and its validating decoder, and the layout
// planner writers use. FORMAT.md is the normative text; each constant here
// cites it.
//
// Pure functions over bytes: no files, no mapping, no threads, no
// exceptions. Everything here is safe to call from any thread.

#ifndef EMBSTORE_FORMAT_TABLE_FORMAT_H_
#define EMBSTORE_FORMAT_TABLE_FORMAT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "format/status.h"

namespace embstore {

// FORMAT.md, "Header".
inline constexpr uint8_t kMagic[8] = {0x89, 'E', 'M', 'B', '\r', '\n', 0x1A, '\n'};
inline constexpr uint32_t kByteOrderMark = 0x01020304;  // stored little-endian: 04 03 02 01
inline constexpr uint16_t kVersionMajor = 1;
// The newest minor version this code knows. Writers write the oldest minor
// that can hold the table: 0 for float32 (a 1.0 reader opens it), 1 for the
// 2-byte dtypes 1.1 added (MinorVersionFor), 2 for a table with keys.
inline constexpr uint16_t kVersionMinor = 2;
inline constexpr uint32_t kHeaderSizeV1_0 = 128;
// 1.2 headers of tables with keys: three more fields from offset 120.
inline constexpr uint32_t kHeaderSizeV1_2 = 152;
inline constexpr uint32_t kMaxHeaderSize = 4096;
inline constexpr uint64_t kDataAlignment = 4096;
inline constexpr uint64_t kChecksumAlignment = 8;

// FORMAT.md, "Limits".
inline constexpr uint64_t kMaxRows = uint64_t{1} << 32;
inline constexpr uint64_t kMaxDim = uint64_t{1} << 20;
inline constexpr uint64_t kMaxRowStride = uint64_t{1} << 26;
inline constexpr uint64_t kMaxMetadataSize = 64 * 1024;
inline constexpr uint64_t kMaxMetadataEntries = 1024;
inline constexpr uint64_t kMaxMetadataKeySize = 255;

// Writers aim for checksum blocks of about this many bytes (FORMAT.md,
// "Checksum table"): small enough to name a corrupt region precisely, large
// enough that the table stays tiny and hashing runs at full speed.
inline constexpr uint64_t kTargetBlockBytes = uint64_t{1} << 20;

// FORMAT.md, "Feature flags": no required flags; optional bit 0 (1.2)
// says the table has a keys section.
inline constexpr uint64_t kKnownRequiredFlags = 0;
inline constexpr uint64_t kOptionalFlagKeys = 1;

// FORMAT.md, "Dtypes". 1.0 reads only kFloat32; 1.1 adds the two 2-byte
// types. Elements are little-endian.
enum class Dtype : uint32_t {
  kFloat32 = 1,   // IEEE 754 binary32
  kFloat16 = 2,   // IEEE 754 binary16 (1.1)
  kBFloat16 = 3,  // bfloat16: the top 16 bits of a binary32 (1.1)
};
const char* DtypeName(uint32_t dtype);  // "float32", "float16", "bfloat16", or "unknown"
const char* DtypeName(Dtype dtype);
// Element size in bytes; 0 for an unknown dtype.
uint64_t DtypeSize(uint32_t dtype);
inline uint64_t DtypeSize(Dtype dtype) { return DtypeSize(static_cast<uint32_t>(dtype)); }
// The dtype named "float32", "float16" or "bfloat16" (also "f32", "f16",
// "bf16", "half"), or an invalid-argument error listing the names.
Result<Dtype> ParseDtype(const std::string& name);
// The version_minor a writer gives a table of this dtype.
uint16_t MinorVersionFor(Dtype dtype);

// A set of dtypes, bit (1 << dtype) for each: the ones a reader can read.
inline constexpr uint32_t DtypeBit(Dtype d) { return uint32_t{1} << static_cast<uint32_t>(d); }
inline constexpr uint32_t kReadableDtypes =
    DtypeBit(Dtype::kFloat32) | DtypeBit(Dtype::kFloat16) | DtypeBit(Dtype::kBFloat16);
// What a 1.0 reader could read; only tests pass it, to show the error such
// a reader gives a 1.1 half table (rule R9).
inline constexpr uint32_t kReadableDtypesV1_0 = DtypeBit(Dtype::kFloat32);

// The decoded header. Field order and meaning follow FORMAT.md, "Header".
struct Header {
  uint16_t version_major = kVersionMajor;
  uint16_t version_minor = kVersionMinor;
  uint32_t header_size = kHeaderSizeV1_0;
  uint32_t dtype = static_cast<uint32_t>(Dtype::kFloat32);
  uint64_t required_flags = 0;
  uint64_t optional_flags = 0;
  uint64_t rows = 0;
  uint64_t dim = 0;
  uint64_t row_stride = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
  uint64_t metadata_offset = 0;
  uint32_t metadata_size = 0;
  uint32_t checksum_block_rows = 0;
  uint64_t checksum_offset = 0;
  uint64_t checksum_count = 0;
  uint64_t metadata_checksum = 0;
  // 1.2, when optional_flags has kOptionalFlagKeys (else all 0): the keys
  // section [keys_offset, keys_offset + keys_size) and its XXH3-64.
  uint64_t keys_offset = 0;
  uint64_t keys_size = 0;
  uint64_t keys_checksum = 0;

  // Total file size the header describes: data_offset + data_size.
  uint64_t file_size() const { return data_offset + data_size; }
  bool has_keys() const { return (optional_flags & kOptionalFlagKeys) != 0; }
};

// One checksum block: rows [first_row, first_row + row_count), stored at
// bytes [byte_offset, byte_offset + byte_size) of the file.
struct BlockRange {
  uint64_t first_row;
  uint64_t row_count;
  uint64_t byte_offset;
  uint64_t byte_size;
};

// REQUIRES: h passed DecodeHeader or came from PlanLayout; block < checksum_count.
BlockRange BlockAt(const Header& h, uint64_t block);

// What a writer knows before it writes: the shape and the metadata size.
struct TableShape {
  uint64_t rows = 0;
  uint64_t dim = 0;
  uint32_t dtype = static_cast<uint32_t>(Dtype::kFloat32);
  uint64_t metadata_size = 0;
  uint64_t block_rows = 0;  // 0: pick so that a block is about kTargetBlockBytes
  uint64_t keys_size = 0;   // bytes of the keys section; 0: no keys
};

// Lays out a new file (version 1.MinorVersionFor(dtype), or 1.2 with keys):
// header, metadata, checksum table, the keys section if any, zero padding,
// then data at the next 4096-byte boundary. Rejects shapes outside the limits
// with a message naming the field. metadata_checksum and keys_checksum are
// left 0.
Result<Header> PlanLayout(const TableShape& shape);

// Writes h as a header of h.header_size bytes (128, or 152 with keys),
// computing the header checksum.
// REQUIRES: h came from PlanLayout (with the checksums filled in).
std::vector<uint8_t> EncodeHeader(const Header& h);

// Decodes and validates a header. `prefix` is the start of the file (at
// least the header; more is fine), `file_size` the whole file's size. Checks,
// in order: magic, byte order, version, header size, header checksum, flags,
// dtype, shape and stride, overflow, limits, section placement and alignment,
// and that the file is exactly as long as the header says. Touches only the
// header bytes, so it runs in O(1).
// `readable` is the set of dtypes to accept (R9).
Result<Header> DecodeHeader(std::span<const uint8_t> prefix, uint64_t file_size,
                            uint32_t readable = kReadableDtypes);

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_TABLE_FORMAT_H_
