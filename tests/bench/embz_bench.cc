// Random row access on a .embz: one row from a frame that is not in the
// frame cache (the cache holds one frame and ids are random, so nearly every
// read decodes a whole frame), next to the same read from the .emb.
// The files are made in $EMBSTORE_BENCH_DIR (default /tmp).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <vector>

#include "store/embz/embz.h"
#include "store/embz/embz_codec.h"
#include "store/torch/generate.h"

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

// One row from a reader that has not read its checksum block before: the
// first read of a block decodes every frame of it and checks the block
// against the table's own checksum (later reads of that block decode only
// their frame, as BM_EmbzColdRow does). A fresh reader per read; opening
// it is not timed.
void BM_EmbzFirstRowOfBlock(benchmark::State& state) {
  const std::string embz = Packed().path();
  std::mt19937_64 rng(2);
  std::vector<float> row(kDim);
  for (auto _ : state) {
    state.PauseTiming();
    auto z = EmbzReader::Open(embz, 1);
    if (!z.ok()) state.SkipWithError("open failed");
    state.ResumeTiming();
    if (!(*z)->ReadRow(rng() % kRows, row).ok()) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(row.data());
    state.PauseTiming();
    z->reset();
    state.ResumeTiming();
  }
  const Header& h = Packed().header();
  state.SetLabel("blocks of " + std::to_string(h.checksum_block_rows) + " rows (" +
                 std::to_string(h.checksum_block_rows * kDim * 4 / 1024) + " KiB)");
}
BENCHMARK(BM_EmbzFirstRowOfBlock)->Unit(benchmark::kMicrosecond);

void BM_EmbzWarmRow(benchmark::State& state) {
  const EmbzReader& z = Packed();
  std::vector<float> row(kDim);
  for (auto _ : state) {
    if (!z.ReadRow(12345, row).ok()) state.SkipWithError("read failed");  // same frame: cached
    benchmark::DoNotOptimize(row.data());
  }
}
BENCHMARK(BM_EmbzWarmRow)->Unit(benchmark::kMicrosecond);

// The codec alone on default-sized frames (42 rows x 768) of PyTorch normal
// floats: bytes of floats per second on one core. The benchmarks cycle
// through 64 different frames (10 MB), as a real run does: on one frame
// repeated, the branch predictor learns the data and flatters branchy code.
constexpr size_t kFrames = 64, kFrameFloats = 42 * kDim;

const std::vector<uint8_t>& Frames() {
  static std::vector<uint8_t> floats = [] {
    GenerateSpec spec;
    spec.rows = 42 * kFrames;
    spec.dim = kDim;
    std::vector<uint8_t> f(spec.rows * spec.dim * 4);
    if (!GenerateRows(spec, std::span<float>(reinterpret_cast<float*>(f.data()), f.size() / 4)).ok()) std::abort();
    return f;
  }();
  return floats;
}

std::span<const uint8_t> FrameBytes(size_t k) {
  return std::span<const uint8_t>(Frames()).subspan(k * kFrameFloats * 4, kFrameFloats * 4);
}

std::vector<uint8_t> Exponents(size_t k) {
  const auto f = FrameBytes(k);
  std::vector<uint8_t> e(kFrameFloats);
  for (size_t i = 0; i < e.size(); ++i) e[i] = static_cast<uint8_t>(f[4 * i + 3] << 1 | f[4 * i + 2] >> 7);
  return e;
}

void BM_EncodeFrame(benchmark::State& state) {
  std::vector<uint8_t> coded;
  size_t k = 0;
  for (auto _ : state) {
    coded.clear();
    if (!EncodeFrame(FrameBytes(k++ % kFrames), kDefaultLevel, &coded).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(coded.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFrameFloats * 4));
}
BENCHMARK(BM_EncodeFrame);

void BM_DecodeFrame(benchmark::State& state) {
  std::vector<std::vector<uint8_t>> coded(kFrames);
  for (size_t k = 0; k < kFrames; ++k)
    if (!EncodeFrame(FrameBytes(k), kDefaultLevel, &coded[k]).ok()) std::abort();
  std::vector<uint8_t> out(kFrameFloats * 4);
  size_t k = 0;
  for (auto _ : state) {
    if (!DecodeFrame(coded[k++ % kFrames], out).ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(out.data());
  }
  if (!std::equal(out.begin(), out.end(), FrameBytes((k - 1) % kFrames).begin())) state.SkipWithError("differs");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFrameFloats * 4));
}
BENCHMARK(BM_DecodeFrame);

// The exponent coder alone, per codec: symbols (one per float) per second.
void BM_RansEncode(benchmark::State& state) {
  const auto codec = static_cast<uint32_t>(state.range(0));
  std::vector<std::vector<uint8_t>> exps;
  for (size_t k = 0; k < kFrames; ++k) exps.push_back(Exponents(k));
  std::vector<uint8_t> coded;
  size_t k = 0;
  for (auto _ : state) {
    coded.clear();
    RansEncode(exps[k++ % kFrames], codec, &coded);
    benchmark::DoNotOptimize(coded.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kFrameFloats));
}
BENCHMARK(BM_RansEncode)->Arg(kEmbzCodecSplitRans)->Arg(kEmbzCodecSplitRans32);

void BM_RansDecode(benchmark::State& state) {
  const auto codec = static_cast<uint32_t>(state.range(0));
  std::vector<std::vector<uint8_t>> exps, coded(kFrames);
  for (size_t k = 0; k < kFrames; ++k) {
    exps.push_back(Exponents(k));
    RansEncode(exps[k], codec, &coded[k]);
  }
  std::vector<uint8_t> out(kFrameFloats);
  size_t k = 0;
  for (auto _ : state) {
    if (!RansDecode(coded[k % kFrames], codec, out).ok() || out != exps[k % kFrames]) {
      state.SkipWithError("decode failed");
    }
    ++k;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kFrameFloats));
}
BENCHMARK(BM_RansDecode)->Arg(kEmbzCodecSplitRans)->Arg(kEmbzCodecSplitRans32);

}  // namespace
}  // namespace embstore

BENCHMARK_MAIN();
