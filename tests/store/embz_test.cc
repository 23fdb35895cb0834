// .embz: byte-identical round trips, random access, and damage named by
// frame and rows, never a crash or a partial output.

#include "store/embz.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <cstring>
#include <vector>

#include "format/checksum.h"
#include "format/endian.h"
#include "store/generate.h"
#include "store/table_writer.h"
#include "tests/test_util.h"

namespace embstore {
namespace {

using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

void Make(const std::string& path, uint64_t rows, uint64_t dim, Init init = Init::kNormal) {
  GenerateSpec s;
  s.rows = rows;
  s.dim = dim;
  s.seed = rows * 31 + dim;
  s.init = init;
  s.sync = false;
  ASSERT_OK(GenerateTable(path, s));
}

void ExpectRoundTrip(uint64_t rows, uint64_t dim, uint64_t frame_rows, int level = 3, Init init = Init::kNormal) {
  TempDir dir;
  Make(dir.File("t.emb"), rows, dim, init);
  auto table = TableReader::Open(dir.File("t.emb"));
  ASSERT_OK(table.status());
  CompressOptions o;
  o.frame_rows = frame_rows;
  o.level = level;
  o.sync = false;
  o.threads = 3;
  ASSERT_OK(CompressTable(*table, dir.File("t.embz"), o));
  auto z = EmbzReader::Open(dir.File("t.embz"));
  ASSERT_OK(z.status());
  EXPECT_EQ((*z)->rows(), rows);
  EXPECT_EQ((*z)->metadata(), table->metadata());
  std::vector<float> row(dim);
  for (uint64_t id = 0; id < rows; id += std::max<uint64_t>(1, rows / 50)) {
    ASSERT_OK((*z)->ReadRow(id, row));
    ASSERT_EQ(std::memcmp(row.data(), table->row(id).data(), dim * 4), 0) << "row " << id;
  }
  ASSERT_OK((*z)->ReadRow(rows - 1, row));
  EXPECT_EQ(std::memcmp(row.data(), table->row(rows - 1).data(), dim * 4), 0);
  auto rep = (*z)->Verify(2);
  ASSERT_OK(rep.status());
  EXPECT_TRUE(rep->ok());
  ASSERT_OK((*z)->Decompress(dir.File("back.emb"), 2, false));
  EXPECT_EQ(ReadBytes(dir.File("back.emb")), ReadBytes(dir.File("t.emb"))) << rows << "x" << dim;
}

TEST(EmbzTest, RoundTripsManyShapes) {
  ExpectRoundTrip(1, 1, 0);
  ExpectRoundTrip(1, 300, 0);
  ExpectRoundTrip(300, 1, 7);       // rows not a multiple of K
  ExpectRoundTrip(1000, 33, 64);
  ExpectRoundTrip(50, 4096, 1);     // one row per frame
  ExpectRoundTrip(777, 24, 0, 19);
  ExpectRoundTrip(500, 64, 0, 1, Init::kUniform);
}

TEST(EmbzTest, RefusesToCompressACorruptTable) {
  TempDir dir;
  auto table = TableReader::Open(std::string(EMBSTORE_GOLDEN_DIR) + "/bad/corrupt-data-row3.emb");
  ASSERT_OK(table.status());  // opens: the damage is in the data
  CompressOptions o;
  o.sync = false;
  Status st = CompressTable(*table, dir.File("t.embz"), o);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("fails verification (1 corrupt blocks"), std::string::npos) << st.ToString();
  EXPECT_TRUE(dir.List().empty());
}

TEST(EmbzTest, HighlyCompressiblePrefixOpens) {
  // 200,000 zero rows in one-row checksum blocks: a 1.6 MB checksum table of
  // one repeated value compresses to almost nothing. The reader streams the
  // prefix instead of trusting a size bound, so the file opens.
  TempDir dir;
  WriterOptions w;
  w.block_rows = 1;
  w.sync = false;
  auto writer = TableWriter::Create(dir.File("z.emb"), 200000, 1, w);
  ASSERT_OK(writer.status());
  std::vector<float> zeros(200000, 0.0f);
  ASSERT_OK((*writer)->Append(zeros));
  ASSERT_OK((*writer)->Finish());
  auto table = TableReader::Open(dir.File("z.emb"));
  CompressOptions o;
  o.sync = false;
  ASSERT_OK(CompressTable(*table, dir.File("z.embz"), o));
  auto z = EmbzReader::Open(dir.File("z.embz"));
  ASSERT_OK(z.status());
  EXPECT_GT((*z)->header().data_offset, uint64_t{1} << 20);  // the prefix is larger than what is kept
  ASSERT_OK((*z)->Decompress(dir.File("back.emb"), 2, false));
  EXPECT_EQ(ReadBytes(dir.File("back.emb")), ReadBytes(dir.File("z.emb")));
}

TEST(EmbzTest, GatherAndRangeErrors) {
  TempDir dir;
  Make(dir.File("t.emb"), 100, 8);
  auto table = TableReader::Open(dir.File("t.emb"));
  CompressOptions o;
  o.frame_rows = 9;
  o.sync = false;
  ASSERT_OK(CompressTable(*table, dir.File("t.embz"), o));
  auto z = EmbzReader::Open(dir.File("t.embz"), 2 * 9 * 8 * 4);  // two frames of 9 rows: evictions
  ASSERT_OK(z.status());
  std::vector<uint64_t> ids = {99, 0, 50, 9, 8, 99};
  std::vector<float> out(ids.size() * 8);
  ASSERT_OK((*z)->Gather(ids, out));
  for (size_t k = 0; k < ids.size(); ++k) EXPECT_EQ(std::memcmp(&out[k * 8], table->row(ids[k]).data(), 32), 0);
  std::vector<float> row(8);
  Status st = (*z)->ReadRow(100, row);
  EXPECT_TRUE(st.IsOutOfRange());
  EXPECT_EQ(st.message(), "id 100 out of range: the table has rows [0, 100)");
}

struct Fixture {
  TempDir dir;
  std::vector<uint8_t> bytes;
  Fixture() {
    Make(dir.File("t.emb"), 40, 16);
    auto table = TableReader::Open(dir.File("t.emb"));
    CompressOptions o;
    o.frame_rows = 8;  // 5 frames
    o.sync = false;
    EXPECT_OK(CompressTable(*table, dir.File("t.embz"), o));
    bytes = ReadBytes(dir.File("t.embz"));
  }
  std::string Write(const std::vector<uint8_t>& b) {
    WriteBytes(dir.File("m.embz"), b);
    return dir.File("m.embz");
  }
};

TEST(EmbzTest, DamagedFrameIsNamedByVerifyReadsAndDecompress) {
  Fixture f;
  auto z = EmbzReader::Open(f.dir.File("t.embz"));
  ASSERT_OK(z.status());
  // Flip a byte in the middle of frame 2 (rows [16, 24)).
  const uint64_t seek = (*z)->embz_header().seek_offset;
  const auto e2 = DecodeEmbzSeekEntry(&f.bytes[seek + 2 * kEmbzSeekEntrySize]);
  auto bad = f.bytes;
  bad[e2.offset + e2.coded_size - 3] ^= 0x40;
  auto m = EmbzReader::Open(f.Write(bad));
  ASSERT_OK(m.status());  // frames are checked when read
  std::vector<float> row(16);
  EXPECT_OK((*m)->ReadRow(15, row));
  Status st = (*m)->ReadRow(17, row);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("frame 2 (rows [16, 24))"), std::string::npos) << st.ToString();
  auto rep = (*m)->Verify();
  ASSERT_OK(rep.status());
  ASSERT_EQ(rep->bad_frames.size(), 1u);
  EXPECT_EQ(rep->bad_frames[0].frame, 2u);
  EXPECT_EQ(rep->bad_frames[0].first_row, 16u);
  st = (*m)->Decompress(f.dir.File("out.emb"), 2, false);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_FALSE(std::filesystem::exists(f.dir.File("out.emb")));
}

TEST(EmbzTest, StructuralDamageFailsAtOpenWithItsName) {
  Fixture f;
  const auto& b = f.bytes;
  auto expect = [&](std::vector<uint8_t> m, const std::string& needle) {
    auto r = EmbzReader::Open(f.Write(m));
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  };
  expect(std::vector<uint8_t>(b.begin(), b.end() - 1), "truncated .embz");
  auto longer = b;
  longer.push_back(0);
  expect(longer, "trailing bytes");
  auto m = b;
  m[1] = 'X';
  expect(m, "bad magic");
  m = b;
  m[40] ^= 1;  // table_size, header checksum not updated
  expect(m, "header checksum mismatch");
  m = b;
  m[b.size() - 5] ^= 1;  // inside the seek table
  expect(m, "seek table checksum mismatch");
  m = b;
  StoreLE16(&m[12], 2);
  StoreLE16(&m[14], 0);
  StoreLE64(&m[120], Hash64(m.data(), 120));
  expect(m, "unsupported .embz version 2.0");
  m = b;
  StoreLE32(&m[20], 3);  // a codec from the future
  StoreLE64(&m[120], Hash64(m.data(), 120));
  expect(m, "unknown .embz codec 3");
  m = b;
  StoreLE64(&m[64], 1000);  // frame_rows no longer matches frame_count
  StoreLE64(&m[120], Hash64(m.data(), 120));
  expect(m, "frame_count");
  m = b;
  StoreLE64(&m[48], uint64_t{1} << 40);  // an absurd prefix size: refused before any allocation
  StoreLE64(&m[120], Hash64(m.data(), 120));
  expect(m, "prefix_size");
  m = b;
  m[kEmbzHeaderSize + 5] ^= 0xFF;  // inside the compressed table prefix
  expect(m, "prefix");
}

TEST(EmbzTest, FlipEveryByteAndCutEveryLength) {
  Fixture f;
  auto good = TableReader::Open(f.dir.File("t.emb"));
  const auto original = ReadBytes(f.dir.File("t.emb"));
  size_t open_failed = 0, verify_failed = 0;
  for (size_t i = 0; i < f.bytes.size(); ++i) {
    auto m = f.bytes;
    m[i] ^= 0x21;
    auto z = EmbzReader::Open(f.Write(m));
    if (!z.ok()) {
      ++open_failed;
      continue;
    }
    auto rep = (*z)->Verify(1);
    ASSERT_OK(rep.status());
    if (!rep->ok()) {
      ++verify_failed;
      continue;
    }
    // Every flip must be caught somewhere: a clean verify would mean the
    // flip did not change what the file decodes to; check that it did not.
    ASSERT_OK((*z)->Decompress(f.dir.File("back.emb"), 1, false));
    ASSERT_EQ(ReadBytes(f.dir.File("back.emb")), original) << "byte " << i << " changed the table unnoticed";
  }
  EXPECT_GT(open_failed, 0u);
  EXPECT_GT(verify_failed, 0u);
  for (size_t len = 0; len < f.bytes.size(); ++len) {
    EXPECT_FALSE(EmbzReader::Open(f.Write(std::vector<uint8_t>(f.bytes.begin(), f.bytes.begin() + len))).ok())
        << len;
  }
}

}  // namespace
}  // namespace embstore
