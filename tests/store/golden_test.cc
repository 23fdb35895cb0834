// The committed golden files: good/ must open and give pinned rows; bad/
// must fail with the named error. Kept forever (FORMAT.md, "Versioning").

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <tuple>

#include "store/core/table_reader.h"
#include "store/embz/embz.h"
#include "tests/test_util.h"

namespace embstore {
namespace golden_test {

using testing::NoSync;

const std::string kGolden = EMBSTORE_GOLDEN_DIR;

std::vector<uint32_t> Bits(const TableReader& r) {
  std::vector<uint32_t> out;
  for (uint64_t i = 0; i < r.rows(); ++i)
    for (float f : r.row(i)) out.push_back(testing::FloatBits(f));
  return out;
}

// store/torch/torch-rng.md 12.4, DEF: manual_seed(123); nn.Embedding(6, 4).weight.
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

// torch.manual_seed(123); nn.Embedding(6, 4, dtype=...).weight, as bits
// (PyTorch 1.13.1; row 3 is the issue's [0.5547, -0.0850, -0.3711, 0.2617]
// in bfloat16 and [0.8335, -0.7471, -0.3142, 0.3052] in float16).
const std::vector<uint16_t> kNotebookBFloat16 = {
    0xbfb1, 0xbf69, 0xbf94, 0x3e08, 0x3f81, 0x3f37, 0xbfc3, 0xbeb1, 0x3e46, 0x3d70, 0x403f, 0xbf2d,
    0x3f0e, 0xbdae, 0xbebe, 0x3e86, 0x3f5e, 0xbf59, 0x3e16, 0x3fa2, 0x3f4a, 0x3fea, 0x3f31, 0x3f19};
const std::vector<uint16_t> kNotebookFloat16 = {
    0x36bf, 0x3db5, 0xbdaa, 0x340f, 0xc081, 0x3a6a, 0x3f9f, 0x3c7b, 0x3cd6, 0x3224, 0x3d97, 0x3576,
    0x3aab, 0xb9fa, 0xb507, 0x34e2, 0xbad6, 0x3c0f, 0x2064, 0x38af, 0x2e69, 0xbc87, 0x3cc6, 0xc03d};

TEST(GoldenTest, HalfTables) {
  for (const auto& [dtype, want] : {std::make_pair(Dtype::kBFloat16, kNotebookBFloat16),
                                   std::make_pair(Dtype::kFloat16, kNotebookFloat16)}) {
    const std::string path = kGolden + "/good/notebook-6x4-seed123-" + DtypeName(dtype) + ".emb";
    auto r = TableReader::Open(path);
    ASSERT_OK(r.status());
    EXPECT_EQ(r->dtype(), dtype);
    EXPECT_EQ(r->header().version_minor, 1u);
    EXPECT_EQ(r->header().row_stride, 8u);
    std::vector<uint16_t> bits;
    for (uint64_t i = 0; i < 6; ++i)
      for (uint16_t v : r->row_as<uint16_t>(i)) bits.push_back(v);
    EXPECT_EQ(bits, want) << DtypeName(dtype);
    EXPECT_EQ(r->metadata().at("generator.dtype"), DtypeName(dtype));
    EXPECT_TRUE(r->Verify()->ok());
    // A reader that predates 1.1 reads only float32 and refuses the table
    // with its "dtype not supported" error (FORMAT.md, R9).
    const auto bytes = testing::ReadBytes(path);
    auto old = DecodeHeader(bytes, bytes.size(), kReadableDtypesV1_0);
    ASSERT_FALSE(old.ok());
    EXPECT_EQ(old.status().code(), Status::Code::kNotSupported);
    EXPECT_EQ(old.status().message(), std::string("dtype ") + (dtype == Dtype::kFloat16 ? "2 (float16)" : "3 (bfloat16)") +
                                          " is not supported: this reader reads float32 tables");
  }
  // The compressed bfloat16 table: frames of 2-byte elements.
  auto z = EmbzReader::Open(kGolden + "/good/notebook-6x4-seed123-bfloat16.embz");
  ASSERT_OK(z.status());
  std::vector<uint16_t> bits(24);
  ASSERT_OK((*z)->ReadRows(0, 6, Dtype::kBFloat16, std::span<uint8_t>(reinterpret_cast<uint8_t*>(bits.data()), 48)));
  EXPECT_EQ(bits, kNotebookBFloat16);
  std::vector<float> row(4);
  ASSERT_OK((*z)->ReadRow(3, row));
  EXPECT_EQ(row, (std::vector<float>{0.5546875f, -0.0849609375f, -0.37109375f, 0.26171875f}));
  testing::TempDir dir;
  ASSERT_OK((*z)->Decompress(dir.File("t.emb"), NoSync(1)));
  EXPECT_EQ(testing::ReadBytes(dir.File("t.emb")),
            testing::ReadBytes(kGolden + "/good/notebook-6x4-seed123-bfloat16.emb"));
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
      {"unsupported-dtype-4.emb", {C::kNotSupported, "dtype 4 (unknown) is not supported"}},
      {"half-stride-odd.emb", {C::kCorruption, "row_stride 9 must be a multiple of 2 (the bfloat16 element size)"}},
      {"half-stride-below-dim.emb", {C::kCorruption, "row_stride 4 must be a multiple of 2 (the bfloat16 element size) in [dim*2 = 8"}},
      {"half-data-size-as-float32.emb", {C::kCorruption, "data_size 96 != rows*row_stride = 48"}},
      {"half-dtype-as-float32.emb", {C::kCorruption, "row_stride 8 must be a multiple of 4 (the float32 element size) in [dim*4 = 16"}},
      {"misaligned-data-offset.emb", {C::kCorruption, "data_offset 4100 is not a multiple of 4096"}},
      {"rows-times-dim-overflow.emb", {C::kCorruption, "rows*row_stride overflows 64 bits"}},
      {"data-size-mismatch.emb", {C::kCorruption, "data_size 4104 != rows*row_stride = 96"}},
      {"oversized-metadata.emb", {C::kCorruption, "metadata_size 70000 exceeds the limit of 65536"}},
      {"metadata-checksum-mismatch.emb", {C::kCorruption, "corrupt metadata: checksum mismatch"}},
      {"truncated-data.emb", {C::kCorruption, "truncated data: file is 4182 bytes, the header says 4192"}},
      {"trailing-bytes.emb", {C::kCorruption, "trailing bytes: file is 4193 bytes"}},
      {"truncated-header.emb", {C::kCorruption, "truncated header: file is 60 bytes, the header needs 128"}},
      {"empty.emb", {C::kCorruption, "empty file"}},
      {"keys-flag-in-1.1-header.emb", {C::kCorruption, "the keys flag is set in a 152-byte header of version 1.1"}},
      {"keys-section-past-data.emb", {C::kCorruption, "keys section [184, +4096) runs past data_offset 4096"}},
      {"keys-count-mismatch.emb", {C::kCorruption, "corrupt keys section: it holds 7 keys, the table has 6 rows"}},
      {"keys-unknown-hash-scheme.emb", {C::kNotSupported, "unknown hash scheme 2"}},
  };
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kGolden + "/bad")) {
    const std::string name = entry.path().filename().string();
    if (name == "corrupt-data-row3.emb" || name.rfind("keys-corrupt-", 0) == 0 || entry.path().extension() == ".embz" ||
        entry.is_directory()) {
      continue;
    }
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

TEST(GoldenTest, KeyedTable) {
  auto r = TableReader::Open(kGolden + "/good/words-6x3-keys.emb");
  ASSERT_OK(r.status());
  EXPECT_EQ(r->header().version_minor, 2u);
  ASSERT_NE(r->keys(), nullptr);
  const char* words[] = {"king", "queen", "na\u00efve", "\u65e5\u672c", "\U0001F642", "kong"};
  for (uint64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(*r->keys()->Key(i), words[i]);
    EXPECT_EQ(r->keys()->Find(words[i])->value_or(99), i);
    EXPECT_EQ(r->row(i)[2], static_cast<float>(i * 10 + 2));
  }
  EXPECT_TRUE(r->Verify()->ok());
}

// Keyed tables that open (their damage is past what open reads) and fail
// where the damage is read, naming it, and in verify.
TEST(GoldenTest, CorruptKeysAreFoundWhereRead) {
  auto open = [](const char* name) {
    auto r = TableReader::Open(kGolden + "/bad/" + name);
    EXPECT_OK(r.status());
    return r;
  };
  auto offsets = open("keys-corrupt-offsets.emb");
  ASSERT_OK(offsets.status());
  EXPECT_NE(offsets->keys()->Key(1).status().message().find("key of row 1 spans [4, 1048576)"), std::string::npos);
  EXPECT_EQ(*offsets->keys()->Key(0), "king");
  EXPECT_NE(offsets->Verify()->bad_keys.find("key of row 1 spans"), std::string::npos);

  auto sum = open("keys-corrupt-checksum.emb");
  ASSERT_OK(sum.status());
  EXPECT_FALSE(sum->keys()->Find("king")->has_value());  // the key reads "kinf" now
  EXPECT_NE(sum->Verify()->bad_keys.find("checksum mismatch"), std::string::npos);

  auto dup = open("keys-corrupt-duplicate.emb");
  ASSERT_OK(dup.status());
  EXPECT_NE(dup->keys()->Find("king").status().message().find("'king' is stored for rows 0 and 5"), std::string::npos);
  EXPECT_EQ(dup->keys()->Find("queen")->value_or(99), 1u);
  const std::string bad = dup->Verify()->bad_keys;
  EXPECT_NE(bad.find("'king' is stored for rows 0 and 5"), std::string::npos) << bad;
}

TEST(GoldenTest, CorruptDataIsFoundByVerifyWithItsRows) {
  auto r = TableReader::Open(kGolden + "/bad/corrupt-data-row3.emb");
  ASSERT_OK(r.status());
  auto rep = r->Verify();
  ASSERT_OK(rep.status());
  ASSERT_EQ(rep->bad.size(), 1u);
  EXPECT_EQ(rep->bad[0].unit, BadRows::Unit::kBlock);
  EXPECT_EQ(rep->bad[0].first_row, 0u);
  EXPECT_EQ(rep->bad[0].row_count, 6u);
}

// Every .embz version keeps opening: 1.0 (codec 1, four rANS states) and
// 1.1 (codec 2, 32 states).
class CompressedGoldenTest : public ::testing::TestWithParam<std::tuple<std::string, uint16_t, uint32_t>> {};

TEST_P(CompressedGoldenTest, NotebookTableReadsAndInflatesToTheOriginal) {
  const auto& [name, minor, codec] = GetParam();
  auto z = EmbzReader::Open(kGolden + "/good/" + name);
  ASSERT_OK(z.status());
  EXPECT_EQ((*z)->embz_header().version_minor, minor);
  EXPECT_EQ((*z)->embz_header().codec, codec);
  EXPECT_EQ((*z)->embz_header().frame_count, 3u);
  std::vector<uint32_t> bits;
  std::vector<float> row(4);
  for (uint64_t i = 0; i < 6; ++i) {
    ASSERT_OK((*z)->ReadRow(i, row));
    for (float f : row) bits.push_back(testing::FloatBits(f));
  }
  EXPECT_EQ(bits, kNotebookDefault);
  testing::TempDir dir;
  ASSERT_OK((*z)->Decompress(dir.File("t.emb"), NoSync(1)));
  EXPECT_EQ(testing::ReadBytes(dir.File("t.emb")), testing::ReadBytes(kGolden + "/good/notebook-6x4-seed123.emb"));
  auto rep = (*z)->Verify();
  ASSERT_OK(rep.status());
  EXPECT_TRUE(rep->ok());
}

INSTANTIATE_TEST_SUITE_P(GoldenTest, CompressedGoldenTest,
                         ::testing::Values(std::make_tuple("notebook-6x4-seed123.embz", 0, kEmbzCodecSplitRans),
                                           std::make_tuple("notebook-6x4-seed123-embz1.1.embz", 1,
                                                           kEmbzCodecSplitRans32)));

TEST(GoldenTest, BadCompressedFilesFailWithTheirNamedError) {
  const std::map<std::string, std::string> want = {
      {"truncated.embz", "truncated .embz"},
      {"seek-table-corrupt.embz", "seek table checksum mismatch"},
      {"newer-major-version.embz", "unsupported .embz version 2.0"},
      {"absurd-prefix-size.embz", "prefix_size 35184372088832 is more than any table's header, metadata and checksum table take"},
  };
  for (const auto& [name, needle] : want) {
    auto z = EmbzReader::Open(kGolden + "/bad/" + name);
    ASSERT_FALSE(z.ok()) << name;
    EXPECT_NE(z.status().message().find(needle), std::string::npos) << z.status().ToString();
  }
  auto z = EmbzReader::Open(kGolden + "/bad/corrupt-frame1.embz");
  ASSERT_OK(z.status());
  auto rep = (*z)->Verify();
  ASSERT_OK(rep.status());
  // The frame that does not decode; its block cannot be checked, and is
  // not reported a second time.
  ASSERT_EQ(rep->bad.size(), 1u);
  EXPECT_EQ(rep->bad[0].unit, BadRows::Unit::kFrame);
  EXPECT_EQ(rep->bad[0].index, 1u);
  EXPECT_EQ(rep->bad[0].first_row, 2u);
  EXPECT_EQ(rep->bad[0].row_count, 2u);

  // Every container checksum matches, but frame 1 comes from another table:
  // the table's own block checksum refuses it, and every row of its block.
  z = EmbzReader::Open(kGolden + "/bad/spliced-frame1.embz");
  ASSERT_OK(z.status());
  rep = (*z)->Verify();
  ASSERT_OK(rep.status());
  EXPECT_EQ(rep->bad_frame_count, 0u);
  ASSERT_EQ(rep->bad_block_count, 1u);
  EXPECT_EQ(rep->bad[0].first_row, 0u);
  EXPECT_EQ(rep->bad[0].row_count, 6u);
  std::vector<float> row(4);
  Status st = (*z)->ReadRow(0, row);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("does not match the table's checksum"), std::string::npos) << st.ToString();
}

}  // namespace golden_test
}  // namespace embstore
