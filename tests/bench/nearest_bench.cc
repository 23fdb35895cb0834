// Nearest neighbours (issue 18): the figures the issue names that need no
// peer library, each beside its baseline in the same run.
//   - one query over the 50,257 x 12,288 table, float32 and bfloat16, next
//     to a plain vectorized sum over the same float32 mapping (the memory
//     read bandwidth, same thread count);
//   - one query, cosine vs dot vs l2 (norms computed in the same pass);
//   - a batch of 1,024 queries over 50,257 x 768 (faiss.knn's figure is in
//     nearest_bench.py, which runs this).
// Tables: $EMBSTORE_BENCH_DIR/nearest-{f32,bf16}-50257x12288.emb and
// nearest-f32-50257x768.emb, made by nearest_bench.py (embstore generate).

#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/core/cpu.h"
#include "store/core/table_reader.h"
#include "store/search/nearest.h"

namespace embstore {
namespace {

std::string Dir() {
  const char* d = std::getenv("EMBSTORE_BENCH_DIR");
  return d && *d ? d : "/tmp";
}

const TableReader& Open(const std::string& name) {
  static std::vector<std::pair<std::string, std::unique_ptr<TableReader>>> open;
  for (auto& [n, t] : open)
    if (n == name) return *t;
  auto r = TableReader::Open(Dir() + "/" + name);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  open.emplace_back(name, std::make_unique<TableReader>(std::move(*r)));
  return *open.back().second;
}

std::vector<float> Queries(size_t n, size_t dim) {
  std::mt19937 g(7);
  std::normal_distribution<float> d;
  std::vector<float> q(n * dim);
  for (auto& x : q) x = d(g);
  return q;
}

__attribute__((target("avx512f"))) float SumAvx512(const float* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; ++i) s += p[i];
  return s;
}

// The baseline: a plain vectorized sum over the whole float32 mapping, its
// rows split among `threads` threads as Search splits them.
void BM_SumMapping(benchmark::State& state) {
  const TableReader& t = Open("nearest-f32-50257x12288.emb");
  const unsigned threads = static_cast<unsigned>(state.range(0));
  const auto bytes = t.row_bytes(0, t.rows());
  const float* p = reinterpret_cast<const float*>(bytes.data());
  const size_t n = bytes.size() / 4;
  for (auto _ : state) {
    std::vector<float> part(threads);
    std::vector<std::thread> pool;
    for (unsigned w = 1; w < threads; ++w)
      pool.emplace_back([&, w] { part[w] = SumAvx512(p + n * w / threads, n * (w + 1) / threads - n * w / threads); });
    part[0] = SumAvx512(p, n / threads);
    for (auto& th : pool) th.join();
    benchmark::DoNotOptimize(part);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_SumMapping)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void Nearest(benchmark::State& state, const char* name, Metric metric, size_t queries, unsigned threads) {
  const TableReader& t = Open(name);
  const auto q = Queries(queries, t.dim());
  SearchRequest req;
  req.queries = q;
  req.k = 10;
  req.metric = metric;
  req.threads = threads;
  for (auto _ : state) {
    auto r = Search(t, req);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(r->ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * t.rows() * t.row_size()));
}

void BM_OneQueryF32(benchmark::State& s) {
  Nearest(s, "nearest-f32-50257x12288.emb", static_cast<Metric>(s.range(1)), 1, static_cast<unsigned>(s.range(0)));
}
void BM_OneQueryBF16(benchmark::State& s) {
  Nearest(s, "nearest-bf16-50257x12288.emb", static_cast<Metric>(s.range(1)), 1, static_cast<unsigned>(s.range(0)));
}
// Args: threads, metric (0 cosine, 1 dot, 2 l2).
BENCHMARK(BM_OneQueryF32)->Args({1, 0})->Args({2, 0})->Args({2, 1})->Args({2, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_OneQueryBF16)->Args({1, 0})->Args({2, 0})->Args({2, 1})->Args({2, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Batch1024(benchmark::State& s) {
  Nearest(s, "nearest-f32-50257x768.emb", static_cast<Metric>(s.range(1)), 1024, static_cast<unsigned>(s.range(0)));
}
BENCHMARK(BM_Batch1024)->Args({2, 1})->Args({2, 2})->Args({2, 0})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace embstore

BENCHMARK_MAIN();
