// The table file's speed on a GPT-2 x GPT-3 table (50,257 x 12,288 float32,
// 2,470,232,064 bytes of data): open, zero-copy row lookup, gather of random
// ids next to a plain memcpy of the same number of bytes, and verify on 1 and
// 2 threads. Warm page cache throughout (the table is read once first).
//
// The table is written once to $EMBSTORE_BENCH_DIR (default /tmp) and reused.

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "store/core/table_reader.h"
#include "store/core/table_writer.h"

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

}  // namespace
}  // namespace embstore

BENCHMARK_MAIN();
