// Readers on many threads while tables are replaced and segments removed,
// the .embz frame cache under contention, and a sharded table's shards
// opened lazily by whichever of many threads asks first. Run under
// ThreadSanitizer in CI (build-tsan); here they also check every row read
// is a whole row of one version.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "store/core/table_reader.h"
#include "store/embz/embz.h"
#include "store/interop/open_table.h"
#include "store/interop/shared_table.h"
#include "store/interop/shards.h"
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

// Eight threads start reading random rows of a freshly opened sharded
// table at once, so that several ask for the same unopened shard together:
// each shard is opened once, and every row read is right. A shard that
// fails to open gives every thread the same error.
TEST(ConcurrencyTest, ShardedTableOpenedLazilyByManyThreads) {
  TempDir dir;
  GenerateSpec spec;
  spec.rows = kRows;
  spec.dim = kDim;
  spec.seed = 4;
  spec.sync = false;
  spec.threads = 1;
  ShardWorkOptions o;
  o.sync = false;
  o.threads = 1;
  auto manifest = GenerateSharded(dir.File("t"), spec, 125, o);  // 16 shards
  ASSERT_OK(manifest.status());
  std::vector<float> whole(kRows * kDim);
  ASSERT_OK(GenerateRows(spec, std::span<float>(whole)));
  std::filesystem::copy(dir.File("t"), dir.File("u"));
  ASSERT_TRUE(std::filesystem::remove(dir.File("u/shard-000005.emb")));  // rows [625, 750)
  constexpr int kThreads = 8, kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    const bool broken = round % 2 == 1;
    auto t = OpenTable(dir.File(broken ? "u" : "t"));
    ASSERT_OK(t.status());
    const Table& table = **t;
    std::atomic<int> ready{0}, wrong{0}, unexpected{0};
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> readers;
    for (int r = 0; r < kThreads; ++r) {
      readers.emplace_back([&, r] {
        std::mt19937_64 rng(static_cast<uint64_t>(round * kThreads + r));
        ready.fetch_add(1);
        while (ready.load() < kThreads) {
        }
        std::vector<uint64_t> ids(8);
        std::vector<float> out(ids.size() * kDim);
        for (int k = 0; k < 60; ++k) {
          for (auto& id : ids) id = rng() % kRows;
          const Status st = table.Gather(ids, std::span<float>(out));
          bool hits_missing = false;
          for (uint64_t id : ids) hits_missing = hits_missing || (id >= 625 && id < 750);
          if (broken && hits_missing) {
            if (!st.IsNotFound()) unexpected.fetch_add(1);
            if (errors[r].empty()) errors[r] = st.message();
            if (st.message() != errors[r]) unexpected.fetch_add(1);
            continue;
          }
          if (!st.ok()) {
            unexpected.fetch_add(1);
            continue;
          }
          for (size_t i = 0; i < ids.size(); ++i) {
            if (std::memcmp(out.data() + i * kDim, whole.data() + ids[i] * kDim, kDim * sizeof(float)) != 0) {
              wrong.fetch_add(1);
            }
          }
        }
      });
    }
    for (auto& th : readers) th.join();
    EXPECT_EQ(wrong.load(), 0) << "round " << round;
    EXPECT_EQ(unexpected.load(), 0) << "round " << round;
    if (broken) {
      std::string first;
      for (const std::string& e : errors) {
        if (first.empty()) first = e;
        if (!e.empty()) {
          EXPECT_EQ(e, first);
        }
      }
      EXPECT_NE(first.find("shard 5 (shard-000005.emb, rows [625, 750)) is missing"), std::string::npos) << first;
    }
  }
}

}  // namespace concurrency_test
}  // namespace embstore
