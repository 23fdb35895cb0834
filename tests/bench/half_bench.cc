// Half-precision tables (float16, bfloat16): the figures issue 16 names,
// each beside its baseline in the same run. tests/bench/half_bench.py adds
// PyTorch, the file end to end and the .embz ratios.
//   - generation of the 50,257 x 12,288 table into warm memory, next to a
//     memset of its bytes (the floor);
//   - gather of 4,096 random rows of the 1.24 GB half table (and of a
//     50,257 x 768 one) into float32, next to a memcpy of as many float32
//     output bytes;
//   - open of the 1.24 GB half table, next to the 4 KB one.
// Warm page cache throughout. Tables live in $EMBSTORE_BENCH_DIR (/tmp).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "store/core/cpu.h"
#include "store/core/table_reader.h"
#include "store/torch/generate.h"

namespace embstore {
namespace {

constexpr uint64_t kRows = 50257, kBigDim = 12288, kDim = 768, kGatherRows = 4096;

Dtype DtypeArg(int64_t v) { return v == 2 ? Dtype::kFloat16 : Dtype::kBFloat16; }

std::string Dir() {
  const char* d = std::getenv("EMBSTORE_BENCH_DIR");
  return d && *d ? d : "/tmp";
}

// Page-aligned like a file mapping, allocated and touched once: warm.
std::span<uint8_t> Buffer(uint64_t bytes) {
  static uint8_t* p = nullptr;
  static uint64_t have = 0;
  if (have < bytes) {
    std::free(p);
    void* mem = nullptr;
    if (posix_memalign(&mem, 4096, bytes) != 0) std::abort();
    std::memset(mem, 1, bytes);
    p = static_cast<uint8_t*>(mem);
    have = bytes;
  }
  return {p, bytes};
}

void BM_MemsetHalfFloor(benchmark::State& state) {
  auto buf = Buffer(kRows * kBigDim * 2);
  for (auto _ : state) {
    std::memset(buf.data(), 0, buf.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size()));
}
BENCHMARK(BM_MemsetHalfFloor)->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: threads, dtype (2 float16, 3 bfloat16).
void BM_GenerateHalfWarm(benchmark::State& state) {
  auto buf = Buffer(kRows * kBigDim * 2);
  GenerateSpec spec;
  spec.rows = kRows;
  spec.dim = kBigDim;
  spec.seed = 123;
  spec.dtype = DtypeArg(state.range(1));
  spec.threads = static_cast<unsigned>(state.range(0));
  for (auto _ : state) {
    if (!GenerateRows(spec, buf).ok()) state.SkipWithError("generate failed");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size()));
  state.SetLabel(DtypeName(spec.dtype));
}
BENCHMARK(BM_GenerateHalfWarm)->Args({1, 3})->Args({2, 3})->Args({2, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

// A generated table file, made once and reused; read once (warm).
const TableReader& Table(Dtype dtype, uint64_t dim) {
  static std::unique_ptr<TableReader> cache[4][3];
  auto& slot = cache[static_cast<int>(dtype)][dim == kBigDim ? 2 : dim == kDim ? 1 : 0];
  if (!slot) {
    const std::string path = Dir() + "/embstore-bench-" + DtypeName(dtype) + "-50257x" + std::to_string(dim) + ".emb";
    auto existing = TableReader::Open(path);
    if (!existing.ok() || existing->dim() != dim || existing->dtype() != dtype) {
      GenerateSpec spec;
      spec.rows = kRows;
      spec.dim = dim;
      spec.seed = 7;
      spec.dtype = dtype;
      spec.sync = false;
      if (!GenerateTable(path, spec).ok()) std::exit(1);
    }
    auto r = TableReader::Open(path);
    if (!r.ok()) std::exit(1);
    slot = std::make_unique<TableReader>(std::move(r).value());
    if (!slot->Verify().ok()) std::exit(1);  // reads every page: warm
  }
  return *slot;
}

std::vector<uint64_t> RandomIds(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> pick(0, kRows - 1);
  std::vector<uint64_t> ids(n);
  for (auto& id : ids) id = pick(rng);
  return ids;
}

// Args: dtype, dim. 4,096 random rows, widened to float32: 201 MB out from
// the 1.24 GB table (dim 12,288), 12.6 MB from the 50,257 x 768 one.
void BM_GatherHalfToFloat32(benchmark::State& state) {
  const TableReader& t = Table(DtypeArg(state.range(0)), static_cast<uint64_t>(state.range(1)));
  std::vector<float> out(kGatherRows * t.dim());
  std::vector<std::vector<uint64_t>> batches;
  for (uint32_t s = 0; s < 8; ++s) batches.push_back(RandomIds(kGatherRows, 100 + s));
  size_t b = 0;
  for (auto _ : state) {
    if (!t.Gather(batches[b++ & 7], out).ok()) state.SkipWithError("gather failed");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size() * sizeof(float)));
  state.SetLabel(std::string(DtypeName(t.dtype())) + " -> float32, " + IsaName(DetectIsa()));
}
BENCHMARK(BM_GatherHalfToFloat32)->Args({3, kBigDim})->Args({3, kDim})->Args({2, kDim});

// The same rows in their stored type (a copy of half as many bytes).
void BM_GatherHalfStored(benchmark::State& state) {
  const TableReader& t = Table(DtypeArg(state.range(0)), static_cast<uint64_t>(state.range(1)));
  std::vector<uint8_t> out(kGatherRows * t.row_size());
  std::vector<std::vector<uint64_t>> batches;
  for (uint32_t s = 0; s < 8; ++s) batches.push_back(RandomIds(kGatherRows, 100 + s));
  size_t b = 0;
  for (auto _ : state) {
    if (!t.Gather(batches[b++ & 7], t.dtype(), out).ok()) state.SkipWithError("gather failed");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_GatherHalfStored)->Args({3, kBigDim})->Args({3, kDim});

// Baselines: a memcpy of as many bytes as the gather's float32 output,
// from the same mapping at random rows, as table_bench's baseline does
// (the source mostly beyond the caches, like the gather's); and, for the
// 12.6 MB case, from a buffer the caches hold (the ceiling). Arg: dim.
void BM_MemcpyFloat32Out(benchmark::State& state) {
  const TableReader& t = Table(Dtype::kBFloat16, static_cast<uint64_t>(state.range(0)));
  std::vector<float> out(kGatherRows * t.dim());
  const uint64_t rows = out.size() * sizeof(float) / t.row_size();  // 8,192 half rows
  const auto starts = RandomIds(16, 7);
  size_t b = 0;
  for (auto _ : state) {
    const uint64_t first = std::min<uint64_t>(starts[b++ & 15], kRows - rows);
    auto src = t.row_bytes(first, rows);
    std::memcpy(out.data(), src.data(), src.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size() * sizeof(float)));
  state.SetLabel("from the mapping");
}
BENCHMARK(BM_MemcpyFloat32Out)->Arg(kBigDim)->Arg(kDim);

void BM_MemcpyFloat32OutCached(benchmark::State& state) {
  std::vector<float> src(kGatherRows * kDim, 1.0f), out(kGatherRows * kDim);
  for (auto _ : state) {
    std::memcpy(out.data(), src.data(), out.size() * sizeof(float));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size() * sizeof(float)));
  state.SetLabel("from a cached buffer");
}
BENCHMARK(BM_MemcpyFloat32OutCached);

// Open of the 1.24 GB bfloat16 table, and of a 4 KB one (size independence).
void BM_OpenHalfBig(benchmark::State& state) {
  const std::string path = Table(Dtype::kBFloat16, kBigDim).path();
  for (auto _ : state) {
    auto r = TableReader::Open(path);
    benchmark::DoNotOptimize(r.ok());
  }
  state.SetLabel("1.24 GB bfloat16 table");
}
BENCHMARK(BM_OpenHalfBig);

// A float32 table of the same 1.24 GB (50,257 x 6,144): any table's open.
void BM_OpenFloat32SameBytes(benchmark::State& state) {
  const std::string path = Table(Dtype::kFloat32, kBigDim / 2).path();
  for (auto _ : state) {
    auto r = TableReader::Open(path);
    benchmark::DoNotOptimize(r.ok());
  }
  state.SetLabel("1.24 GB float32 table");
}
BENCHMARK(BM_OpenFloat32SameBytes);

void BM_OpenHalfSmall(benchmark::State& state) {
  const std::string path = Dir() + "/embstore-bench-bfloat16-6x4.emb";
  GenerateSpec spec;
  spec.rows = 6;
  spec.dim = 4;
  spec.dtype = Dtype::kBFloat16;
  spec.sync = false;
  if (!GenerateTable(path, spec).ok()) std::exit(1);
  for (auto _ : state) {
    auto r = TableReader::Open(path);
    benchmark::DoNotOptimize(r.ok());
  }
  state.SetLabel("48-byte bfloat16 table");
}
BENCHMARK(BM_OpenHalfSmall);

}  // namespace
}  // namespace embstore

BENCHMARK_MAIN();
