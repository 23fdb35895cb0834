#include "format/table_format.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "format/checked_math.h"
#include "format/checksum.h"
#include "format/endian.h"
#include "format/keys.h"

namespace embstore {

namespace {

// FORMAT.md, "Header": byte offsets of the 1.0 fields.
constexpr size_t kOffMagic = 0;
constexpr size_t kOffByteOrder = 8;
constexpr size_t kOffVersionMajor = 12;
constexpr size_t kOffVersionMinor = 14;
constexpr size_t kOffHeaderSize = 16;
constexpr size_t kOffDtype = 20;
constexpr size_t kOffRequiredFlags = 24;
constexpr size_t kOffOptionalFlags = 32;
constexpr size_t kOffRows = 40;
constexpr size_t kOffDim = 48;
constexpr size_t kOffRowStride = 56;
constexpr size_t kOffDataOffset = 64;
constexpr size_t kOffDataSize = 72;
constexpr size_t kOffMetadataOffset = 80;
constexpr size_t kOffMetadataSize = 88;
constexpr size_t kOffBlockRows = 92;
constexpr size_t kOffChecksumOffset = 96;
constexpr size_t kOffChecksumCount = 104;
constexpr size_t kOffMetadataChecksum = 112;
// 1.2, tables with keys (header_size >= 152).
constexpr size_t kOffKeysOffset = 120;
constexpr size_t kOffKeysSize = 128;
constexpr size_t kOffKeysChecksum = 136;
// The header checksum always occupies the header's last 8 bytes, so a newer
// minor version with a longer header is still checked by this reader.

std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

Status BadHeader(const std::string& what) { return Status::Corruption("corrupt header: " + what); }

}  // namespace

const char* DtypeName(uint32_t dtype) {
  switch (dtype) {
    case static_cast<uint32_t>(Dtype::kFloat32): return "float32";
    case static_cast<uint32_t>(Dtype::kFloat16): return "float16";
    case static_cast<uint32_t>(Dtype::kBFloat16): return "bfloat16";
  }
  return "unknown";
}

const char* DtypeName(Dtype dtype) { return DtypeName(static_cast<uint32_t>(dtype)); }

Result<Dtype> ParseDtype(const std::string& name) {
  if (name == "float32" || name == "f32") return Dtype::kFloat32;
  if (name == "float16" || name == "f16" || name == "half") return Dtype::kFloat16;
  if (name == "bfloat16" || name == "bf16") return Dtype::kBFloat16;
  return Status::InvalidArgument("unknown dtype '" + name + "': expected float32, float16 or bfloat16");
}

uint16_t MinorVersionFor(Dtype dtype) { return dtype == Dtype::kFloat32 ? 0 : 1; }

uint64_t DtypeSize(uint32_t dtype) {
  switch (dtype) {
    case static_cast<uint32_t>(Dtype::kFloat32): return 4;
    case static_cast<uint32_t>(Dtype::kFloat16): return 2;
    case static_cast<uint32_t>(Dtype::kBFloat16): return 2;
  }
  return 0;
}

BlockRange BlockAt(const Header& h, uint64_t block) {
  BlockRange r;
  r.first_row = block * h.checksum_block_rows;
  uint64_t end = r.first_row + h.checksum_block_rows;
  if (end > h.rows) end = h.rows;
  r.row_count = end - r.first_row;
  r.byte_offset = h.data_offset + r.first_row * h.row_stride;
  r.byte_size = r.row_count * h.row_stride;
  return r;
}

Result<Header> PlanLayout(const TableShape& shape) {
  const uint64_t esize = DtypeSize(shape.dtype);
  if (esize == 0) {
    return Status::NotSupported(Fmt("dtype %u (%s): only float32, float16 and bfloat16 tables can be written",
                                    shape.dtype, DtypeName(shape.dtype)));
  }
  if (shape.rows == 0 || shape.rows > kMaxRows) {
    return Status::InvalidArgument(
        Fmt("rows %" PRIu64 " out of range [1, %" PRIu64 "]", shape.rows, kMaxRows));
  }
  if (shape.dim == 0 || shape.dim > kMaxDim) {
    return Status::InvalidArgument(
        Fmt("dim %" PRIu64 " out of range [1, %" PRIu64 "]", shape.dim, kMaxDim));
  }
  if (shape.metadata_size < 4 || shape.metadata_size > kMaxMetadataSize) {
    return Status::InvalidArgument(Fmt("metadata is %" PRIu64 " bytes, outside [4, %" PRIu64 "]",
                                       shape.metadata_size, kMaxMetadataSize));
  }
  Header h;
  h.dtype = shape.dtype;
  h.version_minor = MinorVersionFor(static_cast<Dtype>(shape.dtype));
  if (shape.keys_size > 0) {
    h.version_minor = 2;
    h.header_size = kHeaderSizeV1_2;
    h.optional_flags |= kOptionalFlagKeys;
  }
  h.rows = shape.rows;
  h.dim = shape.dim;
  h.row_stride = shape.dim * esize;  // dense rows; both factors are capped
  h.data_size = h.rows * h.row_stride;
  uint64_t block_rows = shape.block_rows;
  if (block_rows == 0) {
    block_rows = kTargetBlockBytes / h.row_stride;
    if (block_rows == 0) block_rows = 1;
  }
  if (block_rows > UINT32_MAX) block_rows = UINT32_MAX;
  h.checksum_block_rows = static_cast<uint32_t>(block_rows);
  h.checksum_count = CeilDiv(h.rows, block_rows);
  h.metadata_offset = h.header_size;
  h.metadata_size = static_cast<uint32_t>(shape.metadata_size);
  // All inputs are capped above, so these sums are far from overflowing.
  const uint64_t after_meta = h.metadata_offset + h.metadata_size;
  h.checksum_offset = (after_meta + kChecksumAlignment - 1) / kChecksumAlignment * kChecksumAlignment;
  const uint64_t after_table = h.checksum_offset + h.checksum_count * 8;
  uint64_t data_from = after_table;
  if (shape.keys_size > 0) {
    if (shape.rows > kMaxKeyedRows) {
      return Status::InvalidArgument(Fmt("a table with keys has at most %" PRIu64 " rows", kMaxKeyedRows));
    }
    // The keys section comes after the checksum table (8-aligned already).
    h.keys_offset = after_table;
    h.keys_size = shape.keys_size;
    if (!CheckedAdd(h.keys_offset, h.keys_size, &data_from) || data_from > (uint64_t{1} << 62)) {
      return Status::InvalidArgument(Fmt("keys section of %" PRIu64 " bytes is too large", shape.keys_size));
    }
  }
  h.data_offset = (data_from + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  return h;
}

std::vector<uint8_t> EncodeHeader(const Header& h) {
  std::vector<uint8_t> out(h.header_size);
  uint8_t* p = out.data();
  std::memcpy(p + kOffMagic, kMagic, sizeof(kMagic));
  StoreLE32(p + kOffByteOrder, kByteOrderMark);
  StoreLE16(p + kOffVersionMajor, h.version_major);
  StoreLE16(p + kOffVersionMinor, h.version_minor);
  StoreLE32(p + kOffHeaderSize, h.header_size);
  StoreLE32(p + kOffDtype, h.dtype);
  StoreLE64(p + kOffRequiredFlags, h.required_flags);
  StoreLE64(p + kOffOptionalFlags, h.optional_flags);
  StoreLE64(p + kOffRows, h.rows);
  StoreLE64(p + kOffDim, h.dim);
  StoreLE64(p + kOffRowStride, h.row_stride);
  StoreLE64(p + kOffDataOffset, h.data_offset);
  StoreLE64(p + kOffDataSize, h.data_size);
  StoreLE64(p + kOffMetadataOffset, h.metadata_offset);
  StoreLE32(p + kOffMetadataSize, h.metadata_size);
  StoreLE32(p + kOffBlockRows, h.checksum_block_rows);
  StoreLE64(p + kOffChecksumOffset, h.checksum_offset);
  StoreLE64(p + kOffChecksumCount, h.checksum_count);
  StoreLE64(p + kOffMetadataChecksum, h.metadata_checksum);
  if (h.header_size >= kHeaderSizeV1_2) {
    StoreLE64(p + kOffKeysOffset, h.keys_offset);
    StoreLE64(p + kOffKeysSize, h.keys_size);
    StoreLE64(p + kOffKeysChecksum, h.keys_checksum);
  }
  StoreLE64(p + h.header_size - 8, Hash64(p, h.header_size - 8));
  return out;
}

Result<Header> DecodeHeader(std::span<const uint8_t> prefix, uint64_t file_size, uint32_t readable) {
  const uint8_t* p = prefix.data();
  const uint64_t avail = prefix.size() < file_size ? prefix.size() : file_size;

  if (file_size == 0) return Status::Corruption("empty file: 0 bytes, not an embstore table");
  if (avail < sizeof(kMagic) || std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    if (avail < sizeof(kMagic) && std::memcmp(p, kMagic, avail) == 0) {
      return Status::Corruption(
          Fmt("truncated header: file is %" PRIu64 " bytes, the header needs %u", file_size,
              kHeaderSizeV1_0));
    }
    std::string seen;
    for (uint64_t i = 0; i < avail && i < 8; ++i) seen += Fmt("%s%02x", i ? " " : "", p[i]);
    return Status::Corruption("bad magic: not an embstore table (starts with " +
                              seen +
                              "; expected 89 45 4d 42 0d 0a 1a 0a)");
  }
  if (avail < kOffHeaderSize + 4) {
    return Status::Corruption(Fmt("truncated header: file is %" PRIu64 " bytes, the header needs %u",
                                  file_size, kHeaderSizeV1_0));
  }
  const uint32_t bom = LoadLE32(p + kOffByteOrder);
  if (bom == 0x04030201) {
    return Status::NotSupported(
        "big-endian table (byte-order mark 01 02 03 04): this reader reads little-endian tables only");
  }
  if (bom != kByteOrderMark) {
    return BadHeader(Fmt("byte-order mark 0x%08x != 0x%08x", bom, kByteOrderMark));
  }
  Header h;
  h.version_major = LoadLE16(p + kOffVersionMajor);
  h.version_minor = LoadLE16(p + kOffVersionMinor);
  if (h.version_major != kVersionMajor) {
    return Status::NotSupported(Fmt("unsupported version %u.%u: this reader reads version %u.x",
                                    h.version_major, h.version_minor, kVersionMajor));
  }
  h.header_size = LoadLE32(p + kOffHeaderSize);
  if (h.version_minor == 0 ? h.header_size != kHeaderSizeV1_0
                           : (h.header_size < kHeaderSizeV1_0 || h.header_size > kMaxHeaderSize ||
                              h.header_size % 8 != 0)) {
    return BadHeader(Fmt("header_size %u is not valid for version %u.%u (1.0 headers are %u bytes)",
                         h.header_size, h.version_major, h.version_minor, kHeaderSizeV1_0));
  }
  if (avail < h.header_size) {
    return Status::Corruption(Fmt("truncated header: file is %" PRIu64 " bytes, the header needs %u",
                                  file_size, h.header_size));
  }
  const uint64_t stored = LoadLE64(p + h.header_size - 8);
  const uint64_t computed = Hash64(p, h.header_size - 8);
  if (stored != computed) {
    return BadHeader(Fmt("header checksum mismatch: stored 0x%016" PRIx64 ", computed 0x%016" PRIx64,
                         stored, computed));
  }

  h.dtype = LoadLE32(p + kOffDtype);
  h.required_flags = LoadLE64(p + kOffRequiredFlags);
  h.optional_flags = LoadLE64(p + kOffOptionalFlags);
  h.rows = LoadLE64(p + kOffRows);
  h.dim = LoadLE64(p + kOffDim);
  h.row_stride = LoadLE64(p + kOffRowStride);
  h.data_offset = LoadLE64(p + kOffDataOffset);
  h.data_size = LoadLE64(p + kOffDataSize);
  h.metadata_offset = LoadLE64(p + kOffMetadataOffset);
  h.metadata_size = LoadLE32(p + kOffMetadataSize);
  h.checksum_block_rows = LoadLE32(p + kOffBlockRows);
  h.checksum_offset = LoadLE64(p + kOffChecksumOffset);
  h.checksum_count = LoadLE64(p + kOffChecksumCount);
  h.metadata_checksum = LoadLE64(p + kOffMetadataChecksum);

  if (uint64_t unknown = h.required_flags & ~kKnownRequiredFlags) {
    return Status::NotSupported(
        Fmt("unknown required feature flags 0x%016" PRIx64 ": the table needs a newer reader", unknown));
  }
  const uint64_t esize = DtypeSize(h.dtype);
  if (esize == 0 || h.dtype >= 32 || (readable & (uint32_t{1} << h.dtype)) == 0) {
    std::string names;
    for (uint32_t d = 1; d < 32; ++d) {
      if (readable & (uint32_t{1} << d)) names += std::string(names.empty() ? "" : ", ") + DtypeName(d);
    }
    return Status::NotSupported(Fmt("dtype %u (%s) is not supported: this reader reads %s tables", h.dtype,
                                    DtypeName(h.dtype), names.c_str()));
  }

  // Products first, so an absurd field is reported as the overflow it causes.
  uint64_t min_stride, data_size;
  if (!CheckedMul(h.dim, esize, &min_stride)) {
    return BadHeader(Fmt("dim*%" PRIu64 " overflows 64 bits (dim = %" PRIu64 ")", esize, h.dim));
  }
  if (!CheckedMul(h.rows, h.row_stride, &data_size)) {
    return BadHeader(Fmt("rows*row_stride overflows 64 bits (rows = %" PRIu64 ", row_stride = %" PRIu64 ")",
                         h.rows, h.row_stride));
  }
  if (h.rows == 0 || h.rows > kMaxRows) {
    return BadHeader(Fmt("rows %" PRIu64 " out of range [1, %" PRIu64 "]", h.rows, kMaxRows));
  }
  if (h.dim == 0 || h.dim > kMaxDim) {
    return BadHeader(Fmt("dim %" PRIu64 " out of range [1, %" PRIu64 "]", h.dim, kMaxDim));
  }
  if (h.row_stride < min_stride || h.row_stride % esize != 0 || h.row_stride > kMaxRowStride) {
    return BadHeader(Fmt("row_stride %" PRIu64 " must be a multiple of %" PRIu64 " (the %s element size) in [dim*%" PRIu64
                         " = %" PRIu64 ", %" PRIu64 "]",
                         h.row_stride, esize, DtypeName(h.dtype), esize, min_stride, kMaxRowStride));
  }
  if (h.data_size != data_size) {
    return BadHeader(Fmt("data_size %" PRIu64 " != rows*row_stride = %" PRIu64, h.data_size, data_size));
  }
  if (h.data_offset % kDataAlignment != 0) {
    return BadHeader(Fmt("data_offset %" PRIu64 " is not a multiple of %" PRIu64, h.data_offset,
                         kDataAlignment));
  }
  if (h.metadata_size > kMaxMetadataSize) {
    return BadHeader(Fmt("metadata_size %u exceeds the limit of %" PRIu64, h.metadata_size,
                         kMaxMetadataSize));
  }
  if (h.metadata_size < 4) {
    return BadHeader(Fmt("metadata_size %u is below the 4 bytes of its entry count", h.metadata_size));
  }
  if (h.metadata_offset < h.header_size) {
    return BadHeader(Fmt("metadata_offset %" PRIu64 " overlaps the %u-byte header", h.metadata_offset,
                         h.header_size));
  }
  if (h.checksum_block_rows == 0) return BadHeader("checksum_block_rows is 0");
  const uint64_t want_count = CeilDiv(h.rows, h.checksum_block_rows);
  if (h.checksum_count != want_count) {
    return BadHeader(Fmt("checksum_count %" PRIu64 " != ceil(rows/checksum_block_rows) = %" PRIu64,
                         h.checksum_count, want_count));
  }
  if (h.checksum_offset % kChecksumAlignment != 0) {
    return BadHeader(Fmt("checksum_offset %" PRIu64 " is not a multiple of 8", h.checksum_offset));
  }
  uint64_t meta_end, table_end, end;
  if (!CheckedAdd(h.metadata_offset, h.metadata_size, &meta_end) || meta_end > h.checksum_offset) {
    return BadHeader(Fmt("metadata [%" PRIu64 ", +%u) runs past checksum_offset %" PRIu64,
                         h.metadata_offset, h.metadata_size, h.checksum_offset));
  }
  // checksum_count <= kMaxRows, so *8 cannot overflow.
  if (!CheckedAdd(h.checksum_offset, h.checksum_count * 8, &table_end) || table_end > h.data_offset) {
    return BadHeader(Fmt("checksum table [%" PRIu64 ", +%" PRIu64 ") runs past data_offset %" PRIu64,
                         h.checksum_offset, h.checksum_count * 8, h.data_offset));
  }
  if (!CheckedAdd(h.data_offset, h.data_size, &end)) {
    return BadHeader(Fmt("data_offset + data_size overflows 64 bits (%" PRIu64 " + %" PRIu64 ")",
                         h.data_offset, h.data_size));
  }
  if (file_size < end) {
    return Status::Corruption(Fmt("truncated data: file is %" PRIu64 " bytes, the header says %" PRIu64
                                  " (data_offset %" PRIu64 " + data_size %" PRIu64 ")",
                                  file_size, end, h.data_offset, h.data_size));
  }
  if (file_size > end) {
    return Status::Corruption(Fmt("trailing bytes: file is %" PRIu64 " bytes, the header says %" PRIu64
                                  " (data_offset %" PRIu64 " + data_size %" PRIu64 ")",
                                  file_size, end, h.data_offset, h.data_size));
  }
  if (h.has_keys()) {
    // R24 (1.2): the keys section lies between the checksum table and the
    // data. Its contents are checked as they are read (format/keys.h).
    if (h.version_minor < 2 || h.header_size < kHeaderSizeV1_2) {
      return BadHeader(Fmt("the keys flag is set in a %u-byte header of version %u.%u (keys need 1.2, %u bytes)",
                           h.header_size, h.version_major, h.version_minor, kHeaderSizeV1_2));
    }
    h.keys_offset = LoadLE64(p + kOffKeysOffset);
    h.keys_size = LoadLE64(p + kOffKeysSize);
    h.keys_checksum = LoadLE64(p + kOffKeysChecksum);
    uint64_t keys_end;
    if (h.keys_offset % 8 != 0 || h.keys_offset < table_end) {
      return BadHeader(Fmt("keys_offset %" PRIu64 " is not a multiple of 8 at or after the checksum table's end %" PRIu64,
                           h.keys_offset, table_end));
    }
    if (!CheckedAdd(h.keys_offset, h.keys_size, &keys_end) || keys_end > h.data_offset) {
      return BadHeader(Fmt("keys section [%" PRIu64 ", +%" PRIu64 ") runs past data_offset %" PRIu64,
                           h.keys_offset, h.keys_size, h.data_offset));
    }
    if (h.rows > kMaxKeyedRows) {
      return BadHeader(Fmt("a table with keys has at most %" PRIu64 " rows, not %" PRIu64, kMaxKeyedRows, h.rows));
    }
  }
  return h;
}

}  // namespace embstore
