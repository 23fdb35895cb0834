// Keys inside tables: the C++ figures issue 17 names, each beside its
// baseline in the same run. tests/bench/keys_bench.py makes the tables
// (a synthetic vocabulary imported from word2vec binary) and adds Python,
// gensim, import and memory.
//   - open of the keyed table (default 3,000,000 x 300, 3.6 GB), next to a
//     table of the same shape without keys and a 3 x 4 keyed one; and open
//     plus a first lookup (nothing is built at open, nor deferred to it).
//     Each iteration also destroys the reader (unmaps), as half_bench's do;
//   - key -> row id (KeysView::Find) of random existing keys and of missing
//     ones (an existing key with "~" appended; the vocabulary has no "~"),
//     next to std::unordered_map<std::string, uint32_t> of every key, built
//     in memory; also key -> the row's first float, and row id -> key.
// Lookups cycle through 2^20 keys drawn uniformly over the rows (the
// cache-unfriendly case: a real vocabulary is looked up Zipf-wise). Warm
// page cache: every key is looked up once (and checked) before timing, and
// the rows of the drawn keys are touched.
//
// Tables, made by keys_bench.py in $EMBSTORE_BENCH_DIR (default /tmp):
//   embstore-keysbench-NxD.emb, embstore-keysbench-NxD-nokeys.emb,
//   embstore-keysbench-3x4.emb, with NxD from $EMBSTORE_KEYS_BENCH_SHAPE
//   (default 3000000x300).

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/keys.h"
#include "store/core/table_reader.h"

namespace embstore {
namespace {

constexpr uint64_t kLookups = uint64_t{1} << 20;  // keys cycled through by the lookup benchmarks

std::string Dir() {
  const char* d = std::getenv("EMBSTORE_BENCH_DIR");
  return d && *d ? d : "/tmp";
}

std::string Shape() {
  const char* s = std::getenv("EMBSTORE_KEYS_BENCH_SHAPE");
  return s && *s ? s : "3000000x300";
}

std::string KeyedPath() { return Dir() + "/embstore-keysbench-" + Shape() + ".emb"; }
std::string PlainPath() { return Dir() + "/embstore-keysbench-" + Shape() + "-nokeys.emb"; }
std::string TinyPath() { return Dir() + "/embstore-keysbench-3x4.emb"; }

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "keys_bench: %s (make the tables with tests/bench/keys_bench.py)\n", what.c_str());
  std::exit(1);
}

TableReader OpenOrFail(const std::string& path) {
  auto r = TableReader::Open(path);
  if (!r.ok()) Fail(path + ": " + r.status().ToString());
  return std::move(r).value();
}

// The keyed table, its lookup keys and the in-memory baseline, made once.
struct Fixture {
  std::unique_ptr<TableReader> reader;
  const KeysView* keys = nullptr;
  std::vector<std::string> existing, missing;  // kLookups each
  std::vector<uint64_t> ids;                   // existing[i] is the key of row ids[i]
  std::unordered_map<std::string, uint32_t> map;
};

const Fixture& Keyed() {
  static std::unique_ptr<Fixture> f = [] {
    auto p = std::make_unique<Fixture>();
    p->reader = std::make_unique<TableReader>(OpenOrFail(KeyedPath()));
    p->keys = p->reader->keys();
    if (p->keys == nullptr) Fail(KeyedPath() + " has no keys");
    const uint64_t n = p->keys->size();
    // Every key once: warms the offsets, the blob and the hash table, and
    // checks that Find answers every row (the baseline gets the same keys).
    p->map.reserve(n);
    for (uint64_t id = 0; id < n; ++id) {
      auto k = p->keys->Key(id);
      if (!k.ok()) Fail(k.status().ToString());
      auto found = p->keys->Find(*k);
      if (!found.ok() || !found->has_value() || **found != id) Fail("Find disagrees at row " + std::to_string(id));
      p->map.emplace(std::string(*k), static_cast<uint32_t>(id));
    }
    if (p->map.size() != n) Fail("duplicate keys");
    std::mt19937_64 rng(17);
    std::uniform_int_distribution<uint64_t> pick(0, n - 1);
    volatile float sink = 0;
    for (uint64_t i = 0; i < kLookups; ++i) {
      const uint64_t id = pick(rng);
      std::string k(*p->keys->Key(id));
      p->ids.push_back(id);
      p->missing.push_back(k + "~");
      p->existing.push_back(std::move(k));
      sink = sink + p->reader->row(id)[0];  // the row's page, mapped and warm
      auto miss = p->keys->Find(p->missing.back());
      if (!miss.ok() || miss->has_value() || p->map.count(p->missing.back()) != 0) Fail("a missing key was found");
    }
    return p;
  }();
  return *f;
}

// --- open -------------------------------------------------------------------

void OpenLoop(benchmark::State& state, const std::string& path) {
  for (auto _ : state) {
    auto r = TableReader::Open(path);
    if (!r.ok()) {
      state.SkipWithError("open failed");
      break;
    }
    benchmark::DoNotOptimize(r->keys());
  }
}

void BM_OpenKeyed(benchmark::State& state) {
  const std::string path = KeyedPath();
  {
    auto r = OpenOrFail(path);  // fail before timing, not inside
    if (r.keys() == nullptr) Fail(path + " has no keys");
    state.SetLabel(std::to_string(r.rows()) + " keys, " + std::to_string(r.file_size()) + " bytes");
  }
  OpenLoop(state, path);
}
BENCHMARK(BM_OpenKeyed);

void BM_OpenNoKeys(benchmark::State& state) {
  const std::string path = PlainPath();
  {
    auto r = OpenOrFail(path);
    if (r.keys() != nullptr) Fail(path + " has keys");
    state.SetLabel("same shape, no keys, " + std::to_string(r.file_size()) + " bytes");
  }
  OpenLoop(state, path);
}
BENCHMARK(BM_OpenNoKeys);

void BM_OpenTiny(benchmark::State& state) {
  const std::string path = TinyPath();
  {
    auto r = OpenOrFail(path);
    state.SetLabel(std::to_string(r.rows()) + " keys, " + std::to_string(r.file_size()) + " bytes");
  }
  OpenLoop(state, path);
}
BENCHMARK(BM_OpenTiny);

// Open, then look one key up: what a process does before its first answer.
void BM_OpenFindFirst(benchmark::State& state) {
  const Fixture& f = Keyed();
  const std::string path = KeyedPath();
  size_t i = 0;
  for (auto _ : state) {
    auto r = TableReader::Open(path);
    if (!r.ok()) {
      state.SkipWithError("open failed");
      break;
    }
    auto id = r->keys()->Find(f.existing[i++ & (kLookups - 1)]);
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_OpenFindFirst);

// --- key -> row -------------------------------------------------------------

void BM_FindExisting(benchmark::State& state) {
  const Fixture& f = Keyed();
  size_t i = 0;
  for (auto _ : state) {
    auto id = f.keys->Find(f.existing[i++ & (kLookups - 1)]);
    benchmark::DoNotOptimize(id);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel("KeysView::Find, random existing keys");
}
BENCHMARK(BM_FindExisting);

void BM_FindMissing(benchmark::State& state) {
  const Fixture& f = Keyed();
  size_t i = 0;
  for (auto _ : state) {
    auto id = f.keys->Find(f.missing[i++ & (kLookups - 1)]);
    benchmark::DoNotOptimize(id);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel("KeysView::Find, missing keys");
}
BENCHMARK(BM_FindMissing);

// Key -> the row's first float (the lookup a caller makes, through to data).
void BM_FindRow(benchmark::State& state) {
  const Fixture& f = Keyed();
  size_t i = 0;
  for (auto _ : state) {
    auto id = f.keys->Find(f.existing[i++ & (kLookups - 1)]);
    float v = id.ok() && id->has_value() ? f.reader->row(**id)[0] : 0.0f;
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel("Find + row(id)[0]");
}
BENCHMARK(BM_FindRow);

// Row id -> key (the offsets array), random ids.
void BM_KeyOfId(benchmark::State& state) {
  const Fixture& f = Keyed();
  size_t i = 0;
  for (auto _ : state) {
    auto k = f.keys->Key(f.ids[i++ & (kLookups - 1)]);
    benchmark::DoNotOptimize(k);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel("KeysView::Key, random ids");
}
BENCHMARK(BM_KeyOfId);

// Baselines: the same keys in a std::unordered_map built in memory.
void BM_UnorderedMapExisting(benchmark::State& state) {
  const Fixture& f = Keyed();
  size_t i = 0;
  for (auto _ : state) {
    auto it = f.map.find(f.existing[i++ & (kLookups - 1)]);
    benchmark::DoNotOptimize(it);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel("std::unordered_map<std::string, uint32_t>, existing keys");
}
BENCHMARK(BM_UnorderedMapExisting);

void BM_UnorderedMapMissing(benchmark::State& state) {
  const Fixture& f = Keyed();
  size_t i = 0;
  for (auto _ : state) {
    auto it = f.map.find(f.missing[i++ & (kLookups - 1)]);
    benchmark::DoNotOptimize(it);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel("std::unordered_map<std::string, uint32_t>, missing keys");
}
BENCHMARK(BM_UnorderedMapMissing);

}  // namespace
}  // namespace embstore

BENCHMARK_MAIN();
