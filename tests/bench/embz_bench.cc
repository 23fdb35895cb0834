// Random row access on a .embz: one row from a frame that is not in the
// frame cache (the cache holds one frame and ids are random, so nearly every
// read decodes a whole frame), next to the same read from the .emb.
// The files are made in $EMBSTORE_BENCH_DIR (default /tmp).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "store/embz.h"
#include "store/generate.h"

namespace embstore {
namespace {

constexpr uint64_t kRows = 50257, kDim = 768;

std::string Dir() {
  const char* d = std::getenv("EMBSTORE_BENCH_DIR");
  return d && *d ? d : "/tmp";
}

const EmbzReader& Packed() {
  static std::unique_ptr<EmbzReader> reader = [] {
    const std::string emb = Dir() + "/embstore-embzbench.emb", embz = Dir() + "/embstore-embzbench.embz";
    GenerateSpec spec;
    spec.rows = kRows;
    spec.dim = kDim;
    spec.sync = false;
    if (!GenerateTable(emb, spec).ok()) std::abort();
    auto table = TableReader::Open(emb);
    CompressOptions o;
    o.sync = false;
    if (!table.ok() || !CompressTable(*table, embz, o).ok()) std::abort();
    auto z = EmbzReader::Open(embz, 1);  // one frame: nearly every read is cold
    if (!z.ok()) std::abort();
    return std::move(z).value();
  }();
  return *reader;
}

void BM_EmbzColdRow(benchmark::State& state) {
  const EmbzReader& z = Packed();
  std::mt19937_64 rng(1);
  std::vector<float> row(kDim);
  for (auto _ : state) {
    if (!z.ReadRow(rng() % kRows, row).ok()) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(row.data());
  }
  state.SetLabel(std::to_string(z.embz_header().frame_rows) + " rows (" +
                 std::to_string(z.embz_header().frame_rows * kDim * 4 / 1024) + " KiB) per frame");
}
BENCHMARK(BM_EmbzColdRow)->Unit(benchmark::kMicrosecond);

void BM_EmbzWarmRow(benchmark::State& state) {
  const EmbzReader& z = Packed();
  std::vector<float> row(kDim);
  for (auto _ : state) {
    if (!z.ReadRow(12345, row).ok()) state.SkipWithError("read failed");  // same frame: cached
    benchmark::DoNotOptimize(row.data());
  }
}
BENCHMARK(BM_EmbzWarmRow)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace embstore

BENCHMARK_MAIN();
