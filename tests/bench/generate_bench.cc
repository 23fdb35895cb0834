// Generation speed on the GPT-2 x GPT-3 table (50,257 x 12,288 float32,
// 2.47 GB) into warm memory, next to a memset of the same bytes (the floor)
// in the same run. tests/bench/generate_bench.py adds PyTorch and the
// end-to-end file comparisons.

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <span>

#include "store/torch/generate.h"

namespace embstore {
namespace {

constexpr uint64_t kRows = 50257, kDim = 12288;

// Page-aligned like a file mapping, allocated and touched once: warm.
std::span<float> Buffer() {
  static float* p = [] {
    void* mem = nullptr;
    if (posix_memalign(&mem, 4096, kRows * kDim * sizeof(float)) != 0) std::abort();
    std::memset(mem, 1, kRows * kDim * sizeof(float));
    return static_cast<float*>(mem);
  }();
  return {p, kRows * kDim};
}

void BM_MemsetFloor(benchmark::State& state) {
  auto buf = Buffer();
  for (auto _ : state) {
    std::memset(buf.data(), 0, buf.size() * sizeof(float));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size() * sizeof(float)));
}
BENCHMARK(BM_MemsetFloor)->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: threads, kernel (0 avx2, 1 scalar).
void BM_GenerateWarm(benchmark::State& state) {
  auto buf = Buffer();
  GenerateSpec spec;
  spec.rows = kRows;
  spec.dim = kDim;
  spec.seed = 123;
  spec.threads = static_cast<unsigned>(state.range(0));
  spec.kernel = state.range(1) == 0 ? TorchKernel::kAvx2 : TorchKernel::kScalar;
  for (auto _ : state) {
    if (!GenerateRows(spec, buf).ok()) state.SkipWithError("generate failed");
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size() * sizeof(float)));
  state.SetLabel(std::string(TorchKernelName(spec.kernel)) + " kernel, " + IsaName(DetectIsa()));
}
BENCHMARK(BM_GenerateWarm)->Args({1, 0})->Args({2, 0})->Args({2, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace embstore

BENCHMARK_MAIN();
