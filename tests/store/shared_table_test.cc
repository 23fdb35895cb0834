#include "store/interop/shared_table.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "store/core/table_reader.h"
#include "store/embz/embz.h"
#include "store/torch/generate.h"
#include "tests/test_util.h"

namespace embstore {
namespace shared_table_test {

using testing::ReadBytes;
using testing::TempDir;

// Segments go to a scratch folder ($EMBSTORE_SHM_DIR) instead of /dev/shm.
class SharedTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("EMBSTORE_SHM_DIR", shm_.path().c_str(), 1);
    ASSERT_OK(Make(files_.File("a.emb"), 300, 16, 1));
    ASSERT_OK(Make(files_.File("b.emb"), 300, 16, 2));
  }
  void TearDown() override { ::unsetenv("EMBSTORE_SHM_DIR"); }

  static Status Make(const std::string& path, uint64_t rows, uint64_t dim, uint64_t seed) {
    GenerateSpec spec;
    spec.rows = rows;
    spec.dim = dim;
    spec.seed = seed;
    spec.sync = false;
    return GenerateTable(path, spec);
  }

  TempDir shm_, files_;
};

TEST_F(SharedTableTest, NamesCannotLeaveTheNamespace) {
  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "../x", "a/b", "/abs", ".hidden", "sp ace",
                                                          "tab\t", "x\n", std::string(201, 'a')}) {
    Status st = ValidateSharedName(bad);
    EXPECT_TRUE(st.IsInvalidArgument()) << "'" << bad << "'";
    EXPECT_TRUE(OpenSharedTable(bad).status().IsInvalidArgument()) << bad;
    EXPECT_TRUE(ShareTable(files_.File("a.emb"), bad).IsInvalidArgument()) << bad;
    EXPECT_TRUE(UnshareTable(bad).IsInvalidArgument()) << bad;
  }
  for (const std::string& good : std::vector<std::string>{"a", "gpt2.wte", "model_v2-final", std::string(200, 'z')}) {
    EXPECT_OK(ValidateSharedName(good));
  }
  EXPECT_TRUE(shm_.List().empty());
}

TEST_F(SharedTableTest, ShareOpenUnshare) {
  ASSERT_OK(ShareTable(files_.File("a.emb"), "t"));
  // Exactly the .emb's bytes, owner-read-only.
  EXPECT_EQ(ReadBytes(SharedPath("t")), ReadBytes(files_.File("a.emb")));
  struct stat st;
  ASSERT_EQ(::stat(SharedPath("t").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  auto t = OpenSharedTable("t");
  ASSERT_OK(t.status());
  auto a = TableReader::Open(files_.File("a.emb"));
  ASSERT_OK(a.status());
  EXPECT_EQ(t->rows(), 300u);
  for (uint64_t id : {0, 7, 299}) {
    EXPECT_EQ(std::vector<float>(t->row(id).begin(), t->row(id).end()),
              std::vector<float>(a->row(id).begin(), a->row(id).end()));
  }
  auto list = ListShared();
  ASSERT_OK(list.status());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "t");
  EXPECT_TRUE((*list)[0].valid);
  EXPECT_EQ((*list)[0].dim, 16u);
  // Unsharing removes the name; an open reader keeps its rows.
  ASSERT_OK(UnshareTable("t"));
  EXPECT_TRUE(OpenSharedTable("t").status().IsNotFound());
  EXPECT_TRUE(UnshareTable("t").IsNotFound());
  auto report = t->Verify();
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok());
  EXPECT_TRUE(shm_.List().empty());
}

TEST_F(SharedTableTest, ExistingNamesNeedReplaceAndOldReadersKeepTheOldTable) {
  ASSERT_OK(ShareTable(files_.File("a.emb"), "t"));
  auto old_reader = OpenSharedTable("t");
  ASSERT_OK(old_reader.status());
  const float first_a = old_reader->row(0)[0];
  Status st = ShareTable(files_.File("b.emb"), "t");
  EXPECT_TRUE(st.IsAlreadyExists()) << st.ToString();
  ShareOptions o;
  o.replace = true;
  o.mode = 0640;
  ASSERT_OK(ShareTable(files_.File("b.emb"), "t", o));
  auto new_reader = OpenSharedTable("t");
  ASSERT_OK(new_reader.status());
  EXPECT_NE(new_reader->row(0)[0], first_a);
  EXPECT_EQ(old_reader->row(0)[0], first_a);  // the old segment, whole, until it is closed
  auto report = old_reader->Verify();
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok());
  struct stat s;
  ASSERT_EQ(::stat(SharedPath("t").c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0440u);  // 0640 without its write bit
  EXPECT_EQ(shm_.List().size(), 1u);   // no temporary left behind
}

TEST_F(SharedTableTest, CompressedAndSharedSources) {
  auto a = TableReader::Open(files_.File("a.emb"));
  ASSERT_OK(a.status());
  CompressOptions co;
  co.sync = false;
  co.frame_rows = 7;
  ASSERT_OK(CompressTable(*a, files_.File("a.embz"), co));
  ASSERT_OK(ShareTable(files_.File("a.embz"), "from-embz"));
  EXPECT_EQ(ReadBytes(SharedPath("from-embz")), ReadBytes(files_.File("a.emb")));
  ASSERT_OK(ShareTable("shm:from-embz", "copy"));
  EXPECT_EQ(ReadBytes(SharedPath("copy")), ReadBytes(files_.File("a.emb")));
}

TEST_F(SharedTableTest, BadSegmentsAndSourcesAreRefusedByName) {
  // A foreign file under the embstore prefix, and a truncated table.
  testing::WriteBytes(SharedPath("foreign"), std::vector<uint8_t>(4096, 0x41));
  Status st = OpenSharedTable("foreign").status();
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("shared table 'foreign'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("bad magic"), std::string::npos) << st.ToString();
  auto bytes = ReadBytes(files_.File("a.emb"));
  bytes.resize(bytes.size() - 100);
  testing::WriteBytes(SharedPath("short"), bytes);
  st = OpenSharedTable("short").status();
  EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.ToString();
  auto list = ListShared();
  ASSERT_OK(list.status());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_FALSE((*list)[0].valid);
  EXPECT_NE((*list)[0].error.find("bad magic"), std::string::npos);

  // A source with a flipped data bit is refused and nothing is shared.
  bytes = ReadBytes(files_.File("a.emb"));
  bytes[bytes.size() - 5] ^= 0x10;
  testing::WriteBytes(files_.File("bad.emb"), bytes);
  st = ShareTable(files_.File("bad.emb"), "bad");
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("nothing was shared"), std::string::npos) << st.ToString();
  EXPECT_TRUE(OpenSharedTable("bad").status().IsNotFound());
  EXPECT_EQ(shm_.List().size(), 2u);  // foreign and short only

  ShareOptions o;
  o.mode = 0200;  // the owner could not read it
  EXPECT_TRUE(ShareTable(files_.File("a.emb"), "m", o).IsInvalidArgument());
  o.mode = 01600;
  EXPECT_TRUE(ShareTable(files_.File("a.emb"), "m", o).IsInvalidArgument());
  EXPECT_TRUE(ShareTable(files_.File("missing.emb"), "m").IsNotFound());
}

TEST_F(SharedTableTest, ListingShowsWhatIsAtTheNameNotWhatALinkPointsTo) {
  ASSERT_EQ(::symlink(files_.File("a.emb").c_str(), SharedPath("leak").c_str()), 0);
  ASSERT_EQ(::mkfifo(SharedPath("pipe").c_str(), 0644), 0);
  auto list = ListShared();
  ASSERT_OK(list.status());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "leak");
  EXPECT_FALSE((*list)[0].valid);
  EXPECT_NE((*list)[0].error.find("is a symlink"), std::string::npos) << (*list)[0].error;
  EXPECT_EQ((*list)[0].bytes, 0u);  // not a.emb's size
  EXPECT_NE((*list)[1].error.find("is a FIFO"), std::string::npos) << (*list)[1].error;
  EXPECT_FALSE(OpenSharedTable("leak").ok());
}

TEST_F(SharedTableTest, APlantedSymlinkIsNotFollowed) {
  ASSERT_EQ(::symlink(files_.File("victim").c_str(), SharedPath("t").c_str()), 0);
  testing::WriteBytes(files_.File("victim"), {1, 2, 3});
  EXPECT_TRUE(ShareTable(files_.File("a.emb"), "t").IsAlreadyExists());
  ShareOptions o;
  o.replace = true;
  ASSERT_OK(ShareTable(files_.File("a.emb"), "t", o));
  EXPECT_EQ(ReadBytes(files_.File("victim")), std::vector<uint8_t>({1, 2, 3}));  // untouched
  struct stat st;
  ASSERT_EQ(::lstat(SharedPath("t").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

}  // namespace shared_table_test
}  // namespace embstore
