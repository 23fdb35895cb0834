// The committed golden files: good/ must open and give pinned rows; bad/
// must fail with the named error. Kept forever (FORMAT.md, "Versioning").

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "store/table_reader.h"
#include "tests/test_util.h"

namespace embstore {
namespace {

const std::string kGolden = EMBSTORE_GOLDEN_DIR;

std::vector<uint32_t> Bits(const TableReader& r) {
  std::vector<uint32_t> out;
  for (uint64_t i = 0; i < r.rows(); ++i)
    for (float f : r.row(i)) out.push_back(testing::FloatBits(f));
  return out;
}

// torch-rng.md 12.4, DEF: manual_seed(123); nn.Embedding(6, 4).weight.
const std::vector<uint32_t> kNotebookDefault = {
    0x3eacbbc8, 0xbe360b3b, 0xbe9b67f6, 0xbf1687fc, 0x3eb27c61, 0x3f290c1b, 0xbe60e8ac, 0xbec2228a,
    0xbe246ad6, 0xbecd8fd3, 0x3f321afa, 0xbfe72cbb, 0x3ff2af0f, 0xbe333dec, 0x3faf3863, 0xbfcd37f5,
    0xbf48ec26, 0xbfb46cde, 0xbed0b478, 0x3f4b9a7e, 0x3f7fa07b, 0x3e628f31, 0x3fea7b7f, 0xbeacf935};

TEST(GoldenTest, NotebookTable) {
  auto r = TableReader::Open(kGolden + "/good/notebook-6x4-seed123.emb");
  ASSERT_OK(r.status());
  EXPECT_EQ(Bits(*r), kNotebookDefault);
  EXPECT_EQ(r->metadata().at("generator.seed"), "123");
  EXPECT_EQ(r->metadata().at("generator.kernel"), "scalar");
  EXPECT_TRUE(r->Verify()->ok());
}

TEST(GoldenTest, MultiBlockTable) {
  auto r = TableReader::Open(kGolden + "/good/blocks-37x5.emb");
  ASSERT_OK(r.status());
  ASSERT_EQ(r->rows(), 37u);
  EXPECT_EQ(r->header().checksum_count, 10u);
  for (uint64_t i = 0; i < 37; ++i)
    for (uint64_t c = 0; c < 5; ++c) EXPECT_EQ(r->row(i)[c], float(i) * 1000.0f + float(c) * 0.25f);
  EXPECT_TRUE(r->Verify()->ok());
}

TEST(GoldenTest, NewerMinorVersionOpens) {
  auto r = TableReader::Open(kGolden + "/good/minor-1.1-longer-header.emb");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->header().version_minor, 1u);
  EXPECT_EQ(Bits(*r), kNotebookDefault);
  EXPECT_EQ(r->metadata().at("generator.seed"), "123");
  EXPECT_TRUE(r->Verify()->ok());
}

TEST(GoldenTest, BadFilesFailWithTheirNamedError) {
  using C = Status::Code;
  const std::map<std::string, std::pair<C, std::string>> want = {
      {"bad-magic.emb", {C::kCorruption, "bad magic: not an embstore table"}},
      {"big-endian.emb", {C::kNotSupported, "big-endian table"}},
      {"newer-major-version.emb", {C::kNotSupported, "unsupported version 2.0"}},
      {"unknown-required-flag.emb", {C::kNotSupported, "unknown required feature flags 0x0000000000000020"}},
      {"header-checksum-mismatch.emb", {C::kCorruption, "header checksum mismatch"}},
      {"unsupported-dtype-float16.emb", {C::kNotSupported, "dtype 2 (float16) is not supported"}},
      {"misaligned-data-offset.emb", {C::kCorruption, "data_offset 4100 is not a multiple of 4096"}},
      {"rows-times-dim-overflow.emb", {C::kCorruption, "rows*row_stride overflows 64 bits"}},
      {"data-size-mismatch.emb", {C::kCorruption, "data_size 4104 != rows*row_stride = 96"}},
      {"oversized-metadata.emb", {C::kCorruption, "metadata_size 70000 exceeds the limit of 65536"}},
      {"metadata-checksum-mismatch.emb", {C::kCorruption, "corrupt metadata: checksum mismatch"}},
      {"truncated-data.emb", {C::kCorruption, "truncated data: file is 4182 bytes, the header says 4192"}},
      {"trailing-bytes.emb", {C::kCorruption, "trailing bytes: file is 4193 bytes"}},
      {"truncated-header.emb", {C::kCorruption, "truncated header: file is 60 bytes, the header needs 128"}},
      {"empty.emb", {C::kCorruption, "empty file"}},
  };
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kGolden + "/bad")) {
    const std::string name = entry.path().filename().string();
    if (name == "corrupt-data-row3.emb") continue;
    ++seen;
    auto it = want.find(name);
    ASSERT_NE(it, want.end()) << "no expectation for bad/" << name;
    auto r = TableReader::Open(entry.path().string());
    ASSERT_FALSE(r.ok()) << name << " opened";
    EXPECT_EQ(r.status().code(), it->second.first) << name << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find(it->second.second), std::string::npos)
        << name << ": " << r.status().ToString();
    // Every message names the file.
    EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().ToString();
  }
  EXPECT_EQ(seen, want.size());
}

TEST(GoldenTest, CorruptDataIsFoundByVerifyWithItsRows) {
  auto r = TableReader::Open(kGolden + "/bad/corrupt-data-row3.emb");
  ASSERT_OK(r.status());
  auto rep = r->Verify();
  ASSERT_OK(rep.status());
  ASSERT_EQ(rep->bad_blocks.size(), 1u);
  EXPECT_EQ(rep->bad_blocks[0].first_row, 0u);
  EXPECT_EQ(rep->bad_blocks[0].row_count, 6u);
}

}  // namespace
}  // namespace embstore
