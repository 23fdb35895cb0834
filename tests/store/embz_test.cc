// .embz: byte-identical round trips, random access, and damage named by
// frame and rows, never a crash or a partial output.

#include "store/embz/embz.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <cstring>
#include <vector>

#include "format/checksum.h"
#include "format/endian.h"
#include "store/core/table_writer.h"
#include "store/torch/generate.h"
#include "tests/test_util.h"

namespace embstore {
namespace embz_test {

using testing::NoSync;

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
  auto rep = (*z)->Verify(testing::Threads(2));
  ASSERT_OK(rep.status());
  EXPECT_TRUE(rep->ok());
  ASSERT_OK((*z)->Decompress(dir.File("back.emb"), NoSync(2)));
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
  EXPECT_NE(st.message().find("fails verification (1 of 1 blocks corrupt"), std::string::npos) << st.ToString();
  EXPECT_TRUE(dir.List().empty());
}

TEST(EmbzTest, HighlyCompressiblePrefixOpens) {
  // 200,000 zero rows in one-row checksum blocks: a 1.6 MB checksum table of
  // one repeated value compresses to almost nothing. The reader holds the
  // prefix it inflates (within its 16 MiB bound, whatever the compressed
  // size), so the file opens.
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
  ASSERT_OK((*z)->Decompress(dir.File("back.emb"), NoSync(2)));
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
  // Advise checks its rows as a .emb does (it answered OK to any range, and
  // first + count could wrap to a negative length).
  EXPECT_OK((*z)->Advise(AccessHint::kWillNeed, 10, 90));
  EXPECT_OK((*z)->Advise(AccessHint::kWillNeed, 100, 0));
  EXPECT_TRUE((*z)->Advise(AccessHint::kWillNeed, 100, 1).IsOutOfRange());
  EXPECT_TRUE((*z)->Advise(AccessHint::kWillNeed, 0, 101).IsOutOfRange());
  EXPECT_TRUE((*z)->Advise(AccessHint::kWillNeed, 70, UINT64_MAX - 50).IsOutOfRange());
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
  Status st = (*m)->ReadRow(17, row);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("frame 2 (rows [16, 24))"), std::string::npos) << st.ToString();
  // All 40 rows are one checksum block: rows of intact frames in it cannot
  // be checked against it either, and are not served.
  st = (*m)->ReadRow(15, row);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("frame 1 (rows [8, 16)) cannot be checked"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("frame 2 (rows [16, 24))"), std::string::npos) << st.ToString();
  auto rep = (*m)->Verify();
  ASSERT_OK(rep.status());
  ASSERT_EQ(rep->bad.size(), 1u);
  EXPECT_EQ(rep->bad[0].unit, BadRows::Unit::kFrame);
  EXPECT_EQ(rep->bad[0].index, 2u);
  EXPECT_EQ(rep->bad[0].first_row, 16u);
  st = (*m)->Decompress(f.dir.File("out.emb"), NoSync(2));
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
    auto rep = (*z)->Verify(testing::Threads(1));
    ASSERT_OK(rep.status());
    if (!rep->ok()) {
      ++verify_failed;
      continue;
    }
    // Every flip must be caught somewhere: a clean verify would mean the
    // flip did not change what the file decodes to; check that it did not.
    ASSERT_OK((*z)->Decompress(f.dir.File("back.emb"), NoSync(1)));
    ASSERT_EQ(ReadBytes(f.dir.File("back.emb")), original) << "byte " << i << " changed the table unnoticed";
  }
  EXPECT_GT(open_failed, 0u);
  EXPECT_GT(verify_failed, 0u);
  for (size_t len = 0; len < f.bytes.size(); ++len) {
    EXPECT_FALSE(EmbzReader::Open(f.Write(std::vector<uint8_t>(f.bytes.begin(), f.bytes.begin() + len))).ok())
        << len;
  }
}

// A table file with checksum blocks of block_rows rows.
void MakeBlocks(const std::string& path, uint64_t rows, uint64_t dim, uint64_t block_rows, float salt) {
  WriterOptions o;
  o.block_rows = block_rows;
  o.sync = false;
  auto w = TableWriter::Create(path, rows, dim, o);
  ASSERT_OK(w.status());
  std::vector<float> v(rows * dim);
  for (size_t i = 0; i < v.size(); ++i) v[i] = salt + static_cast<float>(i % 977) * 0.25f;
  ASSERT_OK((*w)->Append(v));
  ASSERT_OK((*w)->Finish());
}

// `into` with frame f replaced by `from`'s frame f, and every checksum of
// the container (seek table, header) recomputed to match: what an attacker,
// or a tool that mixes up two files, would produce.
std::vector<uint8_t> SpliceFrame(const std::vector<uint8_t>& into, const std::vector<uint8_t>& from, uint64_t f) {
  auto hi = DecodeEmbzHeader(into, into.size());
  auto hf = DecodeEmbzHeader(from, from.size());
  EXPECT_TRUE(hi.ok() && hf.ok());
  std::vector<uint8_t> out(into.begin(), into.begin() + kEmbzHeaderSize + hi->prefix_coded_size);
  std::vector<uint8_t> seek;
  for (uint64_t g = 0; g < hi->frame_count; ++g) {
    const auto& src = g == f ? from : into;
    const uint64_t at = (g == f ? hf->seek_offset : hi->seek_offset) + g * kEmbzSeekEntrySize;
    EmbzSeekEntry e = DecodeEmbzSeekEntry(&src[at]);
    const uint64_t offset = out.size();
    out.insert(out.end(), src.begin() + e.offset, src.begin() + e.offset + e.coded_size);
    e.offset = offset;
    uint8_t entry[kEmbzSeekEntrySize];
    EncodeEmbzSeekEntry(e, entry);
    seek.insert(seek.end(), entry, entry + kEmbzSeekEntrySize);
  }
  EmbzHeader h = *hi;
  h.seek_offset = out.size();
  h.seek_checksum = Hash64(seek.data(), seek.size());
  out.insert(out.end(), seek.begin(), seek.end());
  const auto head = EncodeEmbzHeader(h);
  std::copy(head.begin(), head.end(), out.begin());
  return out;
}

TEST(EmbzTest, AFrameSplicedFromAnotherTableIsRefusedEverywhere) {
  // Two tables of the same shape; 64 rows in frames of 8, checksum blocks
  // of 16 rows: frame 3 (rows [24, 32)) lies in block 1 (rows [16, 32)).
  TempDir dir;
  MakeBlocks(dir.File("a.emb"), 64, 8, 16, 1.0f);
  MakeBlocks(dir.File("b.emb"), 64, 8, 16, -7.0f);
  CompressOptions co;
  co.frame_rows = 8;
  co.sync = false;
  for (const char* n : {"a", "b"}) {
    auto t = TableReader::Open(dir.File(std::string(n) + ".emb"));
    ASSERT_OK(t.status());
    ASSERT_OK(CompressTable(*t, dir.File(std::string(n) + ".embz"), co));
  }
  const auto spliced = SpliceFrame(ReadBytes(dir.File("a.embz")), ReadBytes(dir.File("b.embz")), 3);
  WriteBytes(dir.File("s.embz"), spliced);
  auto z = EmbzReader::Open(dir.File("s.embz"));
  ASSERT_OK(z.status());  // every container checksum matches

  // Rows of other blocks are served; rows of block 1 are not, and the error
  // names the block, its rows and its frames.
  std::vector<float> row(8), want(8);
  auto a = TableReader::Open(dir.File("a.emb"));
  ASSERT_OK((*z)->ReadRow(0, row));
  EXPECT_TRUE(std::equal(row.begin(), row.end(), a->row(0).begin()));
  ASSERT_OK((*z)->ReadRow(40, row));
  for (uint64_t id : {16u, 24u, 31u}) {
    Status st = (*z)->ReadRow(id, row);
    ASSERT_TRUE(st.IsCorruption()) << id << ": " << st.ToString();
    EXPECT_NE(st.message().find("block 1 (rows [16, 32), in frames 2-3)"), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find("does not match the table's checksum"), std::string::npos) << st.ToString();
  }
  // Verify names the block; no frame is damaged as such.
  auto rep = (*z)->Verify(testing::Threads(2));
  ASSERT_OK(rep.status());
  EXPECT_FALSE(rep->ok());
  EXPECT_EQ(rep->bad_frame_count, 0u);
  ASSERT_EQ(rep->bad_block_count, 1u);
  ASSERT_EQ(rep->bad.size(), 1u);
  EXPECT_EQ(rep->bad[0].unit, BadRows::Unit::kBlock);
  EXPECT_EQ(rep->bad[0].index, 1u);
  EXPECT_EQ(rep->bad[0].first_row, 16u);
  EXPECT_EQ(rep->bad[0].row_count, 16u);
  EXPECT_EQ(rep->blocks_checked, 4u);
  // Decompress refuses and leaves nothing.
  Status st = (*z)->Decompress(dir.File("out.emb"), NoSync(2));
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("block 1"), std::string::npos) << st.ToString();
  EXPECT_FALSE(std::filesystem::exists(dir.File("out.emb")));
  // A gather that touches the block fails before copying anything wrong.
  std::vector<uint64_t> ids = {0, 25};
  std::vector<float> out(16, 0.0f);
  EXPECT_TRUE((*z)->Gather(ids, out).IsCorruption());
}

TEST(EmbzTest, BlocksAreCheckedWhateverHowFramesAndBlocksAlign) {
  // Frames smaller than blocks, larger, and straddling them: every row
  // reads back, verify checks every block once, decompress is exact; and a
  // splice is caught in each layout.
  for (const auto& [block_rows, frame_rows] : std::vector<std::pair<uint64_t, uint64_t>>{
           {16, 8}, {16, 5}, {5, 16}, {7, 3}, {64, 64}, {1, 9}, {100, 7}}) {
    TempDir dir;
    MakeBlocks(dir.File("a.emb"), 61, 4, block_rows, 0.5f);
    MakeBlocks(dir.File("b.emb"), 61, 4, block_rows, 3.5f);
    CompressOptions co;
    co.frame_rows = frame_rows;
    co.sync = false;
    co.threads = 3;
    for (const char* n : {"a", "b"}) {
      auto t = TableReader::Open(dir.File(std::string(n) + ".emb"));
      ASSERT_OK(CompressTable(*t, dir.File(std::string(n) + ".embz"), co));
    }
    auto a = TableReader::Open(dir.File("a.emb"));
    {
      auto z = EmbzReader::Open(dir.File("a.embz"), 1);  // a one-frame cache: neighbours decoded on the side
      ASSERT_OK(z.status());
      std::vector<float> row(4);
      for (uint64_t id = 0; id < 61; ++id) {
        const Status st = (*z)->ReadRow(60 - id, row);
        ASSERT_TRUE(st.ok()) << block_rows << "/" << frame_rows << ": " << st.ToString();
        ASSERT_TRUE(std::equal(row.begin(), row.end(), a->row(60 - id).begin()));
      }
      auto rep = (*z)->Verify(testing::Threads(2));
      ASSERT_OK(rep.status());
      EXPECT_TRUE(rep->ok());
      EXPECT_EQ(rep->blocks_checked, (61 + block_rows - 1) / block_rows);
      ASSERT_OK((*z)->Decompress(dir.File("back.emb"), NoSync(3)));
      EXPECT_EQ(ReadBytes(dir.File("back.emb")), ReadBytes(dir.File("a.emb")));
    }
    const uint64_t frames = (61 + frame_rows - 1) / frame_rows;
    WriteBytes(dir.File("s.embz"),
               SpliceFrame(ReadBytes(dir.File("a.embz")), ReadBytes(dir.File("b.embz")), frames / 2));
    auto z = EmbzReader::Open(dir.File("s.embz"));
    ASSERT_OK(z.status());
    auto rep = (*z)->Verify(testing::Threads(2));
    ASSERT_OK(rep.status());
    EXPECT_GT(rep->bad_block_count, 0u) << block_rows << "/" << frame_rows;
    EXPECT_FALSE((*z)->Decompress(dir.File("out.emb"), NoSync(2)).ok());
    std::vector<float> row(4);
    EXPECT_TRUE((*z)->ReadRow(frames / 2 * frame_rows, row).IsCorruption());
  }
}

TEST(EmbzTest, DefaultFramesTileTheChecksumBlocks) {
  Header h;
  h.row_stride = 3072;  // dim 768: blocks of 341 rows, frames of 42 would straddle them
  h.checksum_block_rows = 341;
  EXPECT_EQ(341 % DefaultFrameRows(h), 0u);
  h.row_stride = 16;  // dim 4: blocks of 65536 rows, frames of 8192
  h.checksum_block_rows = 65536;
  EXPECT_EQ(DefaultFrameRows(h), 8192u);
  h.row_stride = 1 << 20;  // rows larger than a frame: a block of 1 row, frames of 1
  h.checksum_block_rows = 1;
  EXPECT_EQ(DefaultFrameRows(h), 1u);
  h.row_stride = 4096;  // blocks of 5 rows, smaller than a frame of 32: whole blocks per frame
  h.checksum_block_rows = 5;
  EXPECT_EQ(DefaultFrameRows(h) % 5, 0u);
}

}  // namespace embz_test
}  // namespace embstore
