// For small valid files: flip every byte (three ways) and cut at every
// length. The reader must return an error or the right rows, never crash or
// read out of bounds (the sanitizer build checks that), and verify must
// catch every flip the header checks let through.

#include <gtest/gtest.h>

#include "store/table_reader.h"
#include "tests/test_util.h"

namespace embstore {
namespace {

using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

const std::string kGolden = EMBSTORE_GOLDEN_DIR;

void MutateEveryByte(const std::string& golden) {
  const auto original = ReadBytes(golden);
  ASSERT_FALSE(original.empty());
  auto good = TableReader::Open(golden);
  ASSERT_OK(good.status());
  TempDir dir;
  const std::string path = dir.File("m.emb");
  size_t open_failed = 0, verify_failed = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xFF}) {
      auto bytes = original;
      bytes[i] ^= mask;
      WriteBytes(path, bytes);
      auto r = TableReader::Open(path);
      if (!r.ok()) {
        ++open_failed;
        EXPECT_FALSE(r.status().message().empty());
        continue;
      }
      // Opened: the shape is the original's, so reading every row is in bounds.
      ASSERT_EQ(r->rows(), good->rows()) << "byte " << i;
      ASSERT_EQ(r->dim(), good->dim()) << "byte " << i;
      float sum = 0;
      for (uint64_t k = 0; k < r->rows(); ++k)
        for (float f : r->row(k)) sum += f;
      (void)sum;
      auto rep = r->Verify();
      ASSERT_OK(rep.status());
      EXPECT_FALSE(rep->ok()) << "flip of byte " << i << " with mask " << int(mask) << " went unnoticed";
      ++verify_failed;
    }
  }
  // Both layers did real work.
  EXPECT_GT(open_failed, 0u);
  EXPECT_GT(verify_failed, 0u);
}

void CutAtEveryLength(const std::string& golden) {
  const auto original = ReadBytes(golden);
  TempDir dir;
  const std::string path = dir.File("c.emb");
  for (size_t len = 0; len < original.size(); ++len) {
    WriteBytes(path, std::vector<uint8_t>(original.begin(), original.begin() + len));
    auto r = TableReader::Open(path);
    ASSERT_FALSE(r.ok()) << "a file cut to " << len << " bytes opened";
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  }
}

TEST(MutationTest, FlipEveryByteOfTheNotebookTable) { MutateEveryByte(kGolden + "/good/notebook-6x4-seed123.emb"); }
TEST(MutationTest, FlipEveryByteOfTheMultiBlockTable) { MutateEveryByte(kGolden + "/good/blocks-37x5.emb"); }
TEST(MutationTest, FlipEveryByteOfTheNewerMinorTable) {
  // Gaps in a 1.1 file may hold sections a 1.0 reader does not know, so
  // flips there are legitimately invisible to it; run the crash half only.
  const auto original = ReadBytes(kGolden + "/good/minor-1.1-longer-header.emb");
  TempDir dir;
  for (size_t i = 0; i < original.size(); ++i) {
    auto bytes = original;
    bytes[i] ^= 0xFF;
    WriteBytes(dir.File("m"), bytes);
    auto r = TableReader::Open(dir.File("m"));
    if (r.ok()) ASSERT_OK(r->Verify().status());
  }
}
TEST(MutationTest, CutTheNotebookTableAtEveryLength) { CutAtEveryLength(kGolden + "/good/notebook-6x4-seed123.emb"); }
TEST(MutationTest, CutTheMultiBlockTableAtEveryLength) { CutAtEveryLength(kGolden + "/good/blocks-37x5.emb"); }

}  // namespace
}  // namespace embstore
