// The table file's speed on a GPT-2 x GPT-3 table (50,257 x 12,288 float32,
// 2,470,232,064 bytes of data): open, zero-copy row lookup, gather of random
// ids next to a plain memcpy of the same number of bytes, and verify on 1 and
// 2 threads. Warm page cache throughout (the table is read once first).
//
// Sharded tables (issue 19): opening a 1,000-shard table (its manifest
// only) against opening one file of the same rows, the first lookup after
// opening (which opens and checks one shard), the first row of each further
// shard (opening it) on its own, and a warm single-row lookup
// through the Table interface (Gather of one id: the copy every kind of
// table makes) in each. Both tables are 1,000,000 x 64 float32 (256 MB),
// the sharded one in shards of 1,000 rows; tests/bench/shard_bench.py runs
// these one per process beside its Python figures.
//
// The tables are written once to $EMBSTORE_BENCH_DIR (default /tmp) and
// reused (the lookup pair whatever shape is found there: shard_bench.py
// --quick puts smaller ones under the same names).

#include <benchmark/benchmark.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/core/mapped_file.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/interop/open_table.h"
#include "store/interop/shards.h"
#include "store/torch/generate.h"

namespace embstore {
namespace {

constexpr uint64_t kRows = 50257;
constexpr uint64_t kDim = 12288;

std::string Dir() {
  const char* d = std::getenv("EMBSTORE_BENCH_DIR");
  return d && *d ? d : "/tmp";
}

std::string BigPath() { return Dir() + "/embstore-bench-50257x12288.emb"; }
std::string SmallPath() { return Dir() + "/embstore-bench-6x4.emb"; }

void MakeTable(const std::string& path, uint64_t rows, uint64_t dim) {
  auto existing = TableReader::Open(path);
  if (existing.ok() && existing->rows() == rows && existing->dim() == dim) return;
  WriterOptions o;
  o.sync = false;
  auto w = TableWriter::Create(path, rows, dim, o);
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", w.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<float> chunk(64 * dim);
  for (uint64_t r = 0; r < rows; r += 64) {
    const uint64_t n = std::min<uint64_t>(64, rows - r);
    for (uint64_t i = 0; i < n * dim; ++i) chunk[i] = static_cast<float>(r * dim + i) * 1e-9f;
    if (!(*w)->Append({chunk.data(), n * dim}).ok()) std::exit(1);
  }
  if (!(*w)->Finish().ok()) std::exit(1);
}

// One shared, warm reader for the lookup, gather and verify benchmarks.
const TableReader& Big() {
  static std::unique_ptr<TableReader> reader = [] {
    MakeTable(BigPath(), kRows, kDim);
    auto r = TableReader::Open(BigPath());
    if (!r.ok()) std::exit(1);
    auto p = std::make_unique<TableReader>(std::move(r).value());
    volatile float sink = 0;
    for (uint64_t i = 0; i < kRows; ++i)
      for (uint64_t c = 0; c < kDim; c += 1024) sink = sink + p->row(i)[c];  // fault every page in
    return p;
  }();
  return *reader;
}

std::vector<uint64_t> RandomIds(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> pick(0, kRows - 1);
  std::vector<uint64_t> ids(n);
  for (auto& id : ids) id = pick(rng);
  return ids;
}

void BM_OpenBig(benchmark::State& state) {
  MakeTable(BigPath(), kRows, kDim);
  for (auto _ : state) {
    auto r = TableReader::Open(BigPath());
    benchmark::DoNotOptimize(r.ok());
  }
  state.SetLabel("2.47 GB table");
}
BENCHMARK(BM_OpenBig);

void BM_OpenSmall(benchmark::State& state) {
  MakeTable(SmallPath(), 6, 4);
  for (auto _ : state) {
    auto r = TableReader::Open(SmallPath());
    benchmark::DoNotOptimize(r.ok());
  }
  state.SetLabel("4 KB table (size independence)");
}
BENCHMARK(BM_OpenSmall);

// row(id): the pointer arithmetic a lookup costs, ids from a random list.
void BM_RowLookup(benchmark::State& state) {
  const TableReader& t = Big();
  const auto ids = RandomIds(4096, 1);
  size_t i = 0;
  for (auto _ : state) {
    auto row = t.row(ids[i++ & 4095]);
    benchmark::DoNotOptimize(row.data());
  }
}
BENCHMARK(BM_RowLookup);

// The same, plus reading the row's first float (a cache or TLB miss: what a
// lookup costs when the row is actually used). DoNotOptimize(f) let the
// compiler name the float's address without loading it; a volatile store
// does not.
void BM_RowLookupAndTouch(benchmark::State& state) {
  const TableReader& t = Big();
  const auto ids = RandomIds(4096, 2);
  size_t i = 0;
  [[maybe_unused]] volatile float sink = 0;  // a volatile store needs the value: the load happens
  for (auto _ : state) {
    sink = t.row(ids[i++ & 4095])[0];
  }
}
BENCHMARK(BM_RowLookupAndTouch);

constexpr size_t kBatch = 256;  // 256 rows x 48 KiB = 12 MiB per gather

void BM_Gather(benchmark::State& state) {
  const TableReader& t = Big();
  std::vector<float> out(kBatch * kDim);
  std::vector<std::vector<uint64_t>> batches;
  for (uint32_t s = 0; s < 16; ++s) batches.push_back(RandomIds(kBatch, 100 + s));
  size_t b = 0;
  for (auto _ : state) {
    if (!t.Gather(batches[b++ & 15], out).ok()) state.SkipWithError("gather failed");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBatch * kDim * sizeof(float)));
}
BENCHMARK(BM_Gather);

// Baseline: one memcpy of the same number of bytes from the same mapping,
// starting at random rows.
void BM_MemcpyBaseline(benchmark::State& state) {
  const TableReader& t = Big();
  std::vector<float> out(kBatch * kDim);
  const auto starts = RandomIds(16, 7);
  size_t b = 0;
  for (auto _ : state) {
    const uint64_t first = std::min<uint64_t>(starts[b++ & 15], kRows - kBatch);
    auto src = t.row_bytes(first, kBatch);
    std::memcpy(out.data(), src.data(), src.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBatch * kDim * sizeof(float)));
}
BENCHMARK(BM_MemcpyBaseline);

void BM_Verify(benchmark::State& state) {
  const TableReader& t = Big();
  VerifyOptions o;
  o.threads = static_cast<unsigned>(state.range(0));
  for (auto _ : state) {
    auto rep = t.Verify(o);
    if (!rep.ok() || !rep->ok()) state.SkipWithError("verify failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * t.header().data_size));
}
BENCHMARK(BM_Verify)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// --- Sharded tables --------------------------------------------------------------------------------

constexpr uint64_t kLookupRows = 1000000;
constexpr uint64_t kLookupDim = 64;
constexpr uint64_t kLookupShardRows = 1000;  // 1,000 shards

std::string LookupSinglePath() { return Dir() + "/embstore-bench-lookup.emb"; }
std::string LookupShardedPath() { return Dir() + "/embstore-bench-lookup-shards/manifest.json"; }

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

void Die(const Status& s) {
  std::fprintf(stderr, "%s\n", s.ToString().c_str());
  std::exit(1);
}

// Both lookup tables, the same generated rows (seed 0), made if absent.
void MakeLookupTables() {
  GenerateSpec spec;
  spec.rows = kLookupRows;
  spec.dim = kLookupDim;
  spec.sync = false;
  if (!Exists(LookupSinglePath())) {
    if (Status s = GenerateTable(LookupSinglePath(), spec); !s.ok()) Die(s);
  }
  if (!Exists(LookupShardedPath())) {
    ShardWorkOptions o;
    o.sync = false;
    auto m = GenerateSharded(Dir() + "/embstore-bench-lookup-shards", spec, kLookupShardRows, o);
    if (!m.ok()) Die(m.status());
  }
}

std::unique_ptr<Table> OpenOrDie(const std::string& path) {
  auto t = OpenTable(path);
  if (!t.ok()) Die(t.status());
  return std::move(*t);
}

std::vector<uint64_t> RandomIdsOf(uint64_t rows, size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> pick(0, rows - 1);
  std::vector<uint64_t> ids(n);
  for (auto& id : ids) id = pick(rng);
  return ids;
}

// range(0): 0 the single file, 1 the 1,000-shard table.
std::string LookupPath(const benchmark::State& state) {
  return state.range(0) ? LookupShardedPath() : LookupSinglePath();
}

// OpenTable by name, as the commands and Python do: a file's header and
// metadata, or a manifest read and checked (no shard opened).
void BM_OpenLookupTable(benchmark::State& state) {
  MakeLookupTables();
  const std::string path = LookupPath(state);
  for (auto _ : state) {
    auto t = OpenTable(path);
    if (!t.ok()) state.SkipWithError(t.status().ToString().c_str());
    benchmark::DoNotOptimize(t.ok());
  }
  state.SetLabel(state.range(0) ? "1,000-shard manifest" : "one file");
}
BENCHMARK(BM_OpenLookupTable)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// The baseline for the manifest's open: reading the same manifest file and
// parsing it as JSON (nlohmann-json, into a document), checking nothing.
void BM_ReadManifestJson(benchmark::State& state) {
  MakeLookupTables();
  for (auto _ : state) {
    auto file = MappedFile::Open(LookupShardedPath());
    if (!file.ok()) state.SkipWithError(file.status().ToString().c_str());
    auto j = nlohmann::json::parse(file->bytes().begin(), file->bytes().end());
    benchmark::DoNotOptimize(j.size());
  }
  state.SetLabel("read + nlohmann::json::parse of the 1,000-shard manifest");
}
BENCHMARK(BM_ReadManifestJson)->Unit(benchmark::kMicrosecond);

// Open, then one row at a random id: for the sharded table, also opening
// and checking the shard that holds it (lstat, map, header, metadata, its
// checksum of checksums against the manifest's).
void BM_OpenAndFirstLookup(benchmark::State& state) {
  MakeLookupTables();
  const std::string path = LookupPath(state);
  const uint64_t rows = OpenOrDie(path)->rows();
  const auto ids = RandomIdsOf(rows, 4096, 3);
  std::vector<float> out(kLookupDim);
  size_t i = 0;
  for (auto _ : state) {
    auto t = OpenTable(path);
    if (!t.ok()) state.SkipWithError(t.status().ToString().c_str());
    out.resize((*t)->dim());
    if (!(*t)->Gather({&ids[i++ & 4095], 1}, out).ok()) state.SkipWithError("gather failed");
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_OpenAndFirstLookup)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// The first row read from a shard: opening and checking it. The table is
// opened once; each iteration reads one row of the next shard not yet
// opened (the shards in a random order); when all are open, the table is
// closed and opened again, untimed.
void BM_FirstRowInShard(benchmark::State& state) {
  MakeLookupTables();
  std::unique_ptr<Table> t = OpenOrDie(LookupShardedPath());
  const Manifest* m = t->manifest();
  if (m == nullptr) Die(Status::InvalidArgument(LookupShardedPath() + ": not a sharded table"));
  std::vector<uint64_t> ids;
  for (const ShardEntry& e : m->shards) ids.push_back(e.first_row + e.rows / 2);
  std::shuffle(ids.begin(), ids.end(), std::mt19937_64(5));
  std::vector<float> out(t->dim());
  size_t i = 0;
  for (auto _ : state) {
    if (i == ids.size()) {
      state.PauseTiming();
      t.reset();
      t = OpenOrDie(LookupShardedPath());
      i = 0;
      state.ResumeTiming();
    }
    if (!t->Gather({&ids[i++], 1}, out).ok()) state.SkipWithError("gather failed");
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::to_string(ids.size()) + " shards");
}
BENCHMARK(BM_FirstRowInShard)->Unit(benchmark::kMicrosecond);

// One row at a random id, warm: every shard already opened (one row of
// each read first) and the 4,096 ids' pages mapped (one pass first).
void BM_LookupOneRow(benchmark::State& state) {
  MakeLookupTables();
  const std::unique_ptr<Table> t = OpenOrDie(LookupPath(state));
  std::vector<float> out(t->dim());
  if (const Manifest* m = t->manifest()) {
    for (const ShardEntry& e : m->shards) {
      if (!t->Gather({&e.first_row, 1}, out).ok()) Die(Status::IOError("gather failed"));
    }
  }
  const auto ids = RandomIdsOf(t->rows(), 4096, 4);
  for (const uint64_t& id : ids) {
    if (!t->Gather({&id, 1}, out).ok()) Die(Status::IOError("gather failed"));
  }
  size_t i = 0;
  for (auto _ : state) {
    if (!t->Gather({&ids[i++ & 4095], 1}, out).ok()) state.SkipWithError("gather failed");
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_LookupOneRow)->Arg(0)->Arg(1);

}  // namespace
}  // namespace embstore

BENCHMARK_MAIN();
