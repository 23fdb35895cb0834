// CancelToken: every long operation stops on it, returns a cancelled status
// naming the signal, and leaves its folder as it was: no destination, no
// temporary file, an old destination untouched. (Signals at random points,
// from the command line and Python: tests/tools/interrupt_test.py.)

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>

#include "format/checksum.h"
#include "store/core/atomic_file.h"
#include "store/core/cancel.h"
#include "store/core/table_reader.h"
#include "store/embz/embz.h"
#include "store/interop/convert.h"
#include "store/interop/shared_table.h"
#include "store/torch/generate.h"
#include "tests/test_util.h"

namespace embstore {
namespace cancel_test {

using testing::TempDir;

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

GenerateSpec Spec(uint64_t rows, uint64_t dim, uint64_t seed) {
  GenerateSpec spec;
  spec.rows = rows;
  spec.dim = dim;
  spec.seed = seed;
  spec.sync = false;
  return spec;
}

TEST(CancelTest, TokenStates) {
  CancelToken t;
  EXPECT_FALSE(t.cancelled());
  EXPECT_FALSE(IsCancelled(nullptr));
  EXPECT_TRUE(t.Error().IsCancelled());
  t.Cancel();
  EXPECT_TRUE(t.cancelled());
  EXPECT_EQ(t.signal(), 0);
  EXPECT_EQ(t.Error().message(), "cancelled");
  t.Reset();
  EXPECT_FALSE(IsCancelled(&t));
  t.Cancel(SIGINT);
  EXPECT_EQ(t.signal(), SIGINT);
  EXPECT_EQ(t.Error().message(), "interrupted by SIGINT");
  EXPECT_EQ(t.Error().ToString(), "cancelled: interrupted by SIGINT");
  t.Cancel(SIGTERM);
  EXPECT_EQ(t.Error().message(), "interrupted by SIGTERM");
}

// A token cancelled before the work: every operation returns at once with
// the token's error, and nothing in the folder changes (the destinations
// exist from before, and keep their bytes).
TEST(CancelTest, EveryLongOperationStopsAndLeavesNothing) {
  TempDir dir;
  const std::string src = dir.File("src.emb"), z = dir.File("src.embz"), npy = dir.File("src.npy");
  ASSERT_OK(GenerateTable(src, Spec(3000, 64, 1)));
  auto table = TableReader::Open(src);
  ASSERT_OK(table.status());
  ASSERT_OK(CompressTable(*table, z, {}));
  ASSERT_OK(ExportTable(*table, npy, {}));
  auto zr = EmbzReader::Open(z);
  ASSERT_OK(zr.status());
  // Old destinations, to be left as they are.
  const std::string out_emb = dir.File("out.emb"), out_embz = dir.File("out.embz"), out_npy = dir.File("out.npy");
  ASSERT_OK(GenerateTable(out_emb, Spec(10, 4, 9)));
  ASSERT_OK(CompressTable(*table, out_embz, {}));
  ASSERT_OK(ExportTable(*table, out_npy, {}));
  const std::string shm = dir.File("shm");
  std::filesystem::create_directory(shm);
  ::setenv("EMBSTORE_SHM_DIR", shm.c_str(), 1);

  const auto before = Listing(dir.path());
  const auto bytes_before = ReadFile(out_emb);
  CancelToken token;
  token.Cancel(SIGINT);
  auto expect_cancelled = [&](const char* what, const Status& st) {
    EXPECT_TRUE(st.IsCancelled()) << what << ": " << st.ToString();
    EXPECT_NE(st.message().find("interrupted by SIGINT"), std::string::npos) << what << ": " << st.ToString();
    EXPECT_EQ(Listing(dir.path()), before) << what;
    EXPECT_TRUE(Listing(shm).empty()) << what;
  };

  GenerateSpec spec = Spec(3000, 64, 2);
  spec.cancel = &token;
  expect_cancelled("generate", GenerateTable(out_emb, spec));
  std::vector<float> memory(3000 * 64);
  expect_cancelled("generate into memory", GenerateRows(spec, memory));

  CompressOptions co;
  co.cancel = &token;
  expect_cancelled("compress", CompressTable(*table, out_embz, co));
  DecompressOptions dop;
  dop.cancel = &token;
  expect_cancelled("decompress", (*zr)->Decompress(out_emb, dop));
  VerifyOptions vo;
  vo.cancel = &token;
  expect_cancelled("verify", table->Verify(vo).status());
  expect_cancelled("verify .embz", (*zr)->Verify(vo).status());
  ImportOptions io;
  io.cancel = &token;
  expect_cancelled("import", ImportTable(npy, out_emb, io));
  ExportOptions eo;
  eo.cancel = &token;
  expect_cancelled("export", ExportTable(*table, out_npy, eo));
  expect_cancelled("export .embz", ExportTable(**zr, out_npy, eo));
  ShareOptions so;
  so.cancel = &token;
  expect_cancelled("share", ShareTable(src, "t", so));
  expect_cancelled("share .embz", ShareTable(z, "t", so));
  EXPECT_EQ(ReadFile(out_emb), bytes_before);

  // An uncancelled token changes nothing.
  token.Reset();
  ASSERT_OK(GenerateTable(out_emb, spec));
  ASSERT_OK(ShareTable(z, "t", so));
  EXPECT_EQ(Listing(shm), std::set<std::string>{"embstore-t"});
  ::unsetenv("EMBSTORE_SHM_DIR");
}

// Cancelled while the workers run (from the progress report, which the
// calling thread makes as soon as they start, and from another thread):
// they stop midway, leaving most of the rows unwritten, and a table file
// being written is not left behind.
TEST(CancelTest, StopsWorkersMidway) {
  CancelToken token;
  GenerateSpec spec = Spec(100000, 256, 3);  // 100 MB
  spec.threads = 2;
  spec.cancel = &token;
  auto cancel_now = [&](uint64_t, uint64_t) {
    if (!token.cancelled()) std::thread([&] { token.Cancel(); }).join();
  };
  std::vector<float> rows(spec.rows * spec.dim, -7.0f);
  Status st = GenerateRows(spec, rows, OutputMemory::kResident, 0, nullptr, cancel_now);
  EXPECT_TRUE(st.IsCancelled()) << st.ToString();
  EXPECT_EQ(st.message(), "cancelled");
  const auto untouched = std::count(rows.begin(), rows.end(), -7.0f);
  EXPECT_GT(untouched, static_cast<long>(rows.size() / 2)) << "the workers went on after the token was cancelled";

  TempDir dir;
  token.Reset();
  st = GenerateTable(dir.File("big.emb"), spec, cancel_now);
  EXPECT_TRUE(st.IsCancelled()) << st.ToString();
  EXPECT_TRUE(Listing(dir.path()).empty());
}

// The last look is after the fsync (which may take seconds on a large
// file): a cancel that came during it discards the file instead of putting
// it in place.
TEST(CancelTest, CommitDiscardsOnceCancelled) {
  TempDir dir;
  CancelToken token;
  AtomicFileOptions fo;
  fo.cancel = &token;
  auto f = AtomicFile::Create(dir.File("x"), 4, fo);
  ASSERT_OK(f.status());
  ASSERT_OK((*f)->WriteAt("abcd", 4, 0));
  token.Cancel(SIGTERM);
  Status st = (*f)->Commit();
  EXPECT_TRUE(st.IsCancelled()) << st.ToString();
  EXPECT_EQ(st.message(), "interrupted by SIGTERM");
  EXPECT_TRUE(Listing(dir.path()).empty());
}

// Spans of gigabytes (a huge checksum block, a whole Fortran-order source)
// are hashed in pieces with a look at the token between them.
TEST(CancelTest, HashInPiecesEqualsHash64) {
  std::vector<uint8_t> bytes((uint64_t{64} << 20) + 12345);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  CancelToken token;
  auto h = Hash64Cancellable(bytes.data(), bytes.size(), &token);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(*h, Hash64(bytes.data(), bytes.size()));
  EXPECT_EQ(Hash64Cancellable(bytes.data(), 100, nullptr), Hash64(bytes.data(), 100));
  token.Cancel();
  EXPECT_FALSE(Hash64Cancellable(bytes.data(), bytes.size(), &token).has_value());
}

}  // namespace cancel_test
}  // namespace embstore
