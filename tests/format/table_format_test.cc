#include "format/table_format.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "format/checksum.h"
#include "format/endian.h"
#include "tests/test_util.h"

namespace embstore {
namespace table_format_test {

Header Plan(uint64_t rows, uint64_t dim, uint64_t meta = 4, uint64_t block_rows = 0) {
  TableShape s;
  s.rows = rows;
  s.dim = dim;
  s.metadata_size = meta;
  s.block_rows = block_rows;
  auto h = PlanLayout(s);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  return *h;
}

TEST(PlanLayoutTest, NotebookTable) {
  const Header h = Plan(6, 4, 181);
  EXPECT_EQ(h.row_stride, 16u);
  EXPECT_EQ(h.data_size, 96u);
  EXPECT_EQ(h.metadata_offset, 128u);
  EXPECT_EQ(h.checksum_offset, 312u);  // 128 + 181 rounded up to 8
  EXPECT_EQ(h.checksum_block_rows, 65536u);
  EXPECT_EQ(h.checksum_count, 1u);
  EXPECT_EQ(h.data_offset, 4096u);
  EXPECT_EQ(h.file_size(), 4192u);
}

TEST(PlanLayoutTest, Gpt2ByGpt3IsBeyondTwoToThe31) {
  const Header h = Plan(50257, 12288, 200);
  EXPECT_EQ(h.row_stride, 49152u);
  EXPECT_EQ(h.data_size, 2470232064ull);
  EXPECT_EQ(h.checksum_block_rows, 21u);  // floor(2^20 / 49152)
  EXPECT_EQ(h.checksum_count, 2394u);     // ceil(50257 / 21)
  EXPECT_EQ(h.data_offset % kDataAlignment, 0u);
  EXPECT_EQ(h.data_offset, 20480u);  // 128 + 200 -> 328, + 2394*8 = 19480 -> 20480
}

TEST(PlanLayoutTest, RowLargerThanABlockGetsOneRowBlocks) {
  const Header h = Plan(3, kMaxDim, 4);
  EXPECT_EQ(h.checksum_block_rows, 1u);
  EXPECT_EQ(h.checksum_count, 3u);
}

TEST(PlanLayoutTest, RejectsShapesOutsideTheLimits) {
  TableShape s;
  s.rows = 0;
  s.dim = 4;
  EXPECT_TRUE(PlanLayout(s).status().IsInvalidArgument());
  s.rows = kMaxRows + 1;
  EXPECT_NE(PlanLayout(s).status().message().find("rows 4294967297"), std::string::npos);
  s.rows = 1;
  s.dim = 0;
  EXPECT_TRUE(PlanLayout(s).status().IsInvalidArgument());
  s.dim = kMaxDim + 1;
  EXPECT_TRUE(PlanLayout(s).status().IsInvalidArgument());
  s.dim = 4;
  s.metadata_size = kMaxMetadataSize + 1;
  EXPECT_TRUE(PlanLayout(s).status().IsInvalidArgument());
  s.metadata_size = 0;
  s.dtype = 4;
  EXPECT_TRUE(PlanLayout(s).status().IsNotSupported());
}

// 1.1: the 2-byte dtypes, dense rows of dim * 2 bytes, version 1.1; float32
// tables stay 1.0 (every 1.0 reader opens them).
TEST(PlanLayoutTest, HalfTablesAreVersion1_1) {
  for (uint32_t dtype : {2u, 3u}) {
    TableShape s;
    s.rows = 37;
    s.dim = 5;
    s.dtype = dtype;
    s.metadata_size = 4;
    auto h = PlanLayout(s);
    ASSERT_OK(h.status());
    EXPECT_EQ(h->row_stride, 10u);
    EXPECT_EQ(h->data_size, 370u);
    EXPECT_EQ(h->version_minor, 1u);
    EXPECT_EQ(h->dtype, dtype);
  }
  EXPECT_EQ(Plan(6, 4, 4).version_minor, 0u);
}

TEST(PlanLayoutTest, LargestTableHasNoOverflow) {
  const Header h = Plan(kMaxRows, kMaxDim, 4);
  EXPECT_EQ(h.data_size, kMaxRows * kMaxDim * 4);
  EXPECT_EQ(h.checksum_count, kMaxRows);
}

// A valid 6x4 header plus the bytes of a file that big (contents beyond
// the header do not matter to DecodeHeader).
struct FileImage {
  Header h = Plan(6, 4, 4);
  std::vector<uint8_t> bytes;
  FileImage() {
    auto head = EncodeHeader(h);
    bytes.assign(h.file_size(), 0);
    std::memcpy(bytes.data(), head.data(), head.size());
  }
  void Put64(size_t off, uint64_t v) { StoreLE64(&bytes[off], v); }
  void Put32(size_t off, uint32_t v) { StoreLE32(&bytes[off], v); }
  void Put16(size_t off, uint16_t v) { StoreLE16(&bytes[off], v); }
  void Reseal() { StoreLE64(&bytes[120], Hash64(bytes.data(), 120)); }
  Result<Header> Decode() const { return DecodeHeader(bytes, bytes.size()); }
};

void ExpectError(const Result<Header>& r, Status::Code code, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "expected: " << needle;
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

TEST(DecodeHeaderTest, RoundTrip) {
  FileImage f;
  auto r = f.Decode();
  ASSERT_OK(r.status());
  EXPECT_EQ(r->rows, 6u);
  EXPECT_EQ(r->dim, 4u);
  EXPECT_EQ(r->data_offset, f.h.data_offset);
  EXPECT_EQ(r->checksum_count, 1u);
  EXPECT_EQ(r->metadata_size, 4u);
}

TEST(DecodeHeaderTest, FieldOffsetsMatchTheSpec) {
  // FORMAT.md, "Header": spot-check the byte positions independently of the code.
  FileImage f;
  EXPECT_EQ(std::memcmp(f.bytes.data(), "\x89" "EMB\r\n\x1a\n", 8), 0);
  EXPECT_EQ(LoadLE32(&f.bytes[8]), 0x01020304u);
  EXPECT_EQ(f.bytes[8], 0x04);
  EXPECT_EQ(LoadLE16(&f.bytes[12]), 1u);
  EXPECT_EQ(LoadLE16(&f.bytes[14]), 0u);
  EXPECT_EQ(LoadLE32(&f.bytes[16]), 128u);
  EXPECT_EQ(LoadLE32(&f.bytes[20]), 1u);
  EXPECT_EQ(LoadLE64(&f.bytes[40]), 6u);
  EXPECT_EQ(LoadLE64(&f.bytes[48]), 4u);
  EXPECT_EQ(LoadLE64(&f.bytes[56]), 16u);
  EXPECT_EQ(LoadLE64(&f.bytes[64]), 4096u);
  EXPECT_EQ(LoadLE64(&f.bytes[72]), 96u);
  EXPECT_EQ(LoadLE64(&f.bytes[80]), 128u);
  EXPECT_EQ(LoadLE32(&f.bytes[88]), 4u);
  EXPECT_EQ(LoadLE32(&f.bytes[92]), 65536u);
  EXPECT_EQ(LoadLE64(&f.bytes[96]), 136u);
  EXPECT_EQ(LoadLE64(&f.bytes[104]), 1u);
  EXPECT_EQ(LoadLE64(&f.bytes[120]), Hash64(f.bytes.data(), 120));
}

TEST(DecodeHeaderTest, NamedErrors) {
  using C = Status::Code;
  {
    FileImage f;
    f.bytes[1] = 'X';
    ExpectError(f.Decode(), C::kCorruption, "bad magic");
  }
  {
    std::vector<uint8_t> empty;
    ExpectError(DecodeHeader(empty, 0), C::kCorruption, "empty file");
  }
  {
    FileImage f;
    f.Put32(8, 0x04030201);  // written big-endian
    ExpectError(f.Decode(), C::kNotSupported, "big-endian");
  }
  {
    FileImage f;
    f.Put32(8, 0x11223344);
    ExpectError(f.Decode(), C::kCorruption, "byte-order mark");
  }
  {
    FileImage f;
    f.Put16(12, 2);
    f.Reseal();
    ExpectError(f.Decode(), C::kNotSupported, "unsupported version 2.0");
  }
  {
    FileImage f;
    f.Put16(12, 0);
    ExpectError(f.Decode(), C::kNotSupported, "unsupported version 0.0");
  }
  {
    FileImage f;
    f.Put32(16, 136);  // 1.0 headers are exactly 128 bytes
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "header_size 136");
  }
  {
    FileImage f;
    f.Put64(40, 7);  // rows changed, checksum not updated
    ExpectError(f.Decode(), C::kCorruption, "header checksum mismatch");
  }
  {
    FileImage f;
    f.Put64(24, 1);
    f.Reseal();
    ExpectError(f.Decode(), C::kNotSupported, "unknown required feature flags 0x0000000000000001");
  }
  {
    FileImage f;
    f.Put64(32, 0xFE);  // unknown optional flags are ignored
    f.Reseal();
    EXPECT_OK(f.Decode().status());
  }
  {
    FileImage f;
    f.Put64(32, 0x1);  // bit 0 (1.2) says keys, which a 128-byte 1.0 header cannot place
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "the keys flag is set in a 128-byte header of version 1.0");
  }
  {
    // A float16 table (its rows padded to 16 bytes) opens here; a 1.0
    // reader refuses it by its dtype.
    FileImage f;
    f.Put32(20, 2);
    f.Reseal();
    EXPECT_OK(f.Decode().status());
    ExpectError(DecodeHeader(f.bytes, f.bytes.size(), kReadableDtypesV1_0), C::kNotSupported,
                "dtype 2 (float16) is not supported: this reader reads float32 tables");
  }
  {
    FileImage f;  // dim 4 of bfloat16: a stride of 7 splits an element
    f.Put32(20, 3);
    f.Put64(56, 7);
    f.Put64(72, 42);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "row_stride 7 must be a multiple of 2 (the bfloat16 element size)");
  }
  {
    FileImage f;  // dim 4 of float16 needs 8 bytes a row
    f.Put32(20, 2);
    f.Put64(56, 6);
    f.Put64(72, 36);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "row_stride 6 must be a multiple of 2 (the float16 element size) in [dim*2 = 8");
  }
  {
    FileImage f;
    f.Put32(20, 77);
    f.Reseal();
    ExpectError(f.Decode(), C::kNotSupported, "dtype 77 (unknown)");
  }
  {
    FileImage f;
    f.Put64(40, uint64_t{1} << 62);  // rows*row_stride overflows
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "rows*row_stride overflows");
  }
  {
    FileImage f;
    f.Put64(48, uint64_t{1} << 63);  // dim*4 overflows
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "dim*4 overflows");
  }
  {
    FileImage f;
    f.Put64(40, 0);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "rows 0 out of range");
  }
  {
    FileImage f;
    f.Put64(48, kMaxDim + 1);
    f.Put64(56, (kMaxDim + 1) * 4);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "dim 1048577 out of range");
  }
  {
    FileImage f;
    f.Put64(56, 12);  // below dim*4
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "row_stride 12");
  }
  {
    FileImage f;
    f.Put64(72, 100);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "data_size 100 != rows*row_stride = 96");
  }
  {
    FileImage f;
    f.Put64(64, 4100);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "data_offset 4100 is not a multiple of 4096");
  }
  {
    FileImage f;
    f.Put32(88, 70000);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "metadata_size 70000 exceeds the limit of 65536");
  }
  {
    FileImage f;
    f.Put64(80, 64);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "overlaps the 128-byte header");
  }
  {
    FileImage f;
    f.Put32(88, 4000);  // metadata would run into the checksum table
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "runs past checksum_offset");
  }
  {
    FileImage f;
    f.Put32(92, 0);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "checksum_block_rows is 0");
  }
  {
    FileImage f;
    f.Put64(104, 2);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "checksum_count 2 != ceil(rows/checksum_block_rows) = 1");
  }
  {
    FileImage f;
    f.Put64(96, 137);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "checksum_offset 137 is not a multiple of 8");
  }
  {
    FileImage f;
    f.Put64(96, 4096);
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "checksum table");
  }
  {
    FileImage f;
    f.Put64(40, 1000);
    f.Put64(72, 16000);
    f.Put64(64, 0xFFFFFFFFFFFFF000ull);  // data_offset + data_size overflows
    f.Reseal();
    ExpectError(f.Decode(), C::kCorruption, "data_offset + data_size overflows");
  }
  {
    FileImage f;
    ExpectError(DecodeHeader(f.bytes, f.bytes.size() + 1), C::kCorruption, "trailing bytes");
    ExpectError(DecodeHeader(std::span(f.bytes).first(f.bytes.size() - 1), f.bytes.size() - 1),
                C::kCorruption, "truncated data: file is 4191 bytes, the header says 4192");
    ExpectError(DecodeHeader(std::span(f.bytes).first(100), 100), C::kCorruption, "truncated header");
    ExpectError(DecodeHeader(std::span(f.bytes).first(5), 5), C::kCorruption, "truncated header");
  }
}

TEST(DecodeHeaderTest, NewerMinorWithLongerHeaderIsAccepted) {
  // A 1.1 writer may append fields; the checksum moves to the new end.
  FileImage f;
  f.Put16(14, 1);
  f.Put32(16, 136);
  StoreLE64(&f.bytes[120], 0xABCDEF);  // some new field
  StoreLE64(&f.bytes[128], Hash64(f.bytes.data(), 128));
  f.Put64(80, 136);  // metadata after the longer header
  f.Put64(96, 144);
  StoreLE64(&f.bytes[128], Hash64(f.bytes.data(), 128));
  auto r = f.Decode();
  ASSERT_OK(r.status());
  EXPECT_EQ(r->version_minor, 1u);
  EXPECT_EQ(r->header_size, 136u);
}

TEST(DecodeHeaderTest, EveryTruncationAndEveryFlipIsCaught) {
  FileImage f;
  for (size_t cut = 0; cut < 128; ++cut) {
    EXPECT_FALSE(DecodeHeader(std::span(f.bytes).first(cut), f.bytes.size()).ok()) << cut;
  }
  for (size_t i = 0; i < 128; ++i) {
    for (const uint8_t mask : std::initializer_list<uint8_t>{0x01, 0x80, 0xFF}) {
      FileImage g;
      g.bytes[i] ^= mask;
      EXPECT_FALSE(g.Decode().ok()) << "byte " << i << " mask " << int(mask);
    }
  }
}

}  // namespace table_format_test
}  // namespace embstore
