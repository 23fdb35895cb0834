// Readers on many threads while tables are replaced and segments removed,
// and the .embz frame cache under contention. Run under ThreadSanitizer in
// CI (build-tsan); here they also check every row read is a whole row of
// one version.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "store/core/table_reader.h"
#include "store/embz/embz.h"
#include "store/interop/shared_table.h"
#include "store/torch/generate.h"
#include "tests/test_util.h"

namespace embstore {
namespace concurrency_test {

using testing::TempDir;

constexpr uint64_t kRows = 2000, kDim = 64;

Status Make(const std::string& path, uint64_t seed) {
  GenerateSpec spec;
  spec.rows = kRows;
  spec.dim = kDim;
  spec.seed = seed;
  spec.sync = false;
  spec.threads = 1;
  return GenerateTable(path, spec);
}

// Row 0's first float for each seed: which version a reader has.
std::vector<float> FirstFloats(const TempDir& dir, std::initializer_list<uint64_t> seeds) {
  std::vector<float> v;
  for (uint64_t s : seeds) {
    const std::string p = dir.File(std::string("v").append(std::to_string(s)).append(".emb"));
    EXPECT_OK(Make(p, s));
    auto t = TableReader::Open(p);
    EXPECT_OK(t.status());
    v.push_back(t->row(0)[0]);
  }
  return v;
}

TEST(ConcurrencyTest, ReadersWhileTheFileIsReplaced) {
  TempDir dir;
  const auto firsts = FirstFloats(dir, {1, 2});
  const std::string path = dir.File("t.emb");
  ASSERT_OK(Make(path, 1));
  auto held = TableReader::Open(path);  // open across every replacement
  ASSERT_OK(held.status());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::vector<float> out(kDim * 4);
      std::mt19937_64 rng(static_cast<uint64_t>(r));
      while (!stop) {
        auto t = TableReader::Open(path);
        if (!t.ok()) {
          ++failures;  // a replacement is atomic: the name always opens
          continue;
        }
        const float first = t->row(0)[0];
        if (first != firsts[0] && first != firsts[1]) ++failures;
        const uint64_t ids[4] = {rng() % kRows, rng() % kRows, 0, kRows - 1};
        if (!t->Gather(ids, out).ok() || out[2 * kDim] != first) ++failures;
        auto report = t->Verify({.threads = 1, .progress = {}});
        if (!report.ok() || !report->ok()) ++failures;
        ++reads;
      }
    });
  }
  for (int i = 0; i < 20; ++i) ASSERT_OK(Make(path, 1 + (i + 1) % 2));
  while (reads < 10) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures, 0);
  auto report = held->Verify({.threads = 2, .progress = {}});
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok());
  EXPECT_EQ(held->row(0)[0], firsts[0]);
}

TEST(ConcurrencyTest, ReadersWhileASegmentIsReplacedAndRemoved) {
  TempDir dir, shm;
  ::setenv("EMBSTORE_SHM_DIR", shm.path().c_str(), 1);
  const auto firsts = FirstFloats(dir, {1, 2});
  ASSERT_OK(ShareTable(dir.File("v1.emb"), "c"));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        auto t = OpenSharedTable("c");
        if (!t.ok()) {
          if (!t.status().IsNotFound()) {  // between unshare and share: not found, nothing else
            ADD_FAILURE() << t.status().ToString();
            ++failures;
          }
          continue;
        }
        const float first = t->row(0)[0];
        if (first != firsts[0] && first != firsts[1]) ++failures;
        auto report = t->Verify({.threads = 1, .progress = {}});
        if (!report.ok() || !report->ok()) ++failures;
      }
    });
  }
  ShareOptions replace;
  replace.replace = true;
  replace.threads = 1;
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(ShareTable(dir.File(i % 2 ? "v1.emb" : "v2.emb"), "c", replace));
    if (i % 3 == 0) {
      ASSERT_OK(UnshareTable("c"));
      ASSERT_OK(ShareTable(dir.File("v1.emb"), "c", replace));
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures, 0);
  ASSERT_OK(UnshareTable("c"));
  ::unsetenv("EMBSTORE_SHM_DIR");
}

TEST(ConcurrencyTest, FrameCacheUnderContention) {
  TempDir dir;
  ASSERT_OK(Make(dir.File("t.emb"), 5));
  auto table = TableReader::Open(dir.File("t.emb"));
  ASSERT_OK(table.status());
  CompressOptions co;
  co.frame_rows = 16;
  co.sync = false;
  co.threads = 2;
  ASSERT_OK(CompressTable(*table, dir.File("t.embz"), co));
  // Room for two frames: nearly every read evicts and reuses a buffer.
  auto z = EmbzReader::Open(dir.File("t.embz"), 2 * 16 * kDim * 4);
  ASSERT_OK(z.status());
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937_64 rng(static_cast<uint64_t>(r) + 10);
      std::vector<float> row(kDim), rows(3 * kDim);
      for (int i = 0; i < 3000; ++i) {
        const uint64_t id = rng() % kRows;
        if (!(*z)->ReadRow(id, row).ok() ||
            !std::equal(row.begin(), row.end(), table->row(id).begin())) {
          ++failures;
        }
        const uint64_t ids[3] = {rng() % kRows, id, rng() % kRows};
        if (!(*z)->Gather(ids, rows).ok() ||
            !std::equal(rows.begin() + kDim, rows.begin() + 2 * kDim, table->row(id).begin())) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures, 0);
  auto report = (*z)->Verify(testing::Threads(2));
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok());
}

}  // namespace concurrency_test
}  // namespace embstore
