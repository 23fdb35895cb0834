#include "store/search/nearest.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "store/core/parallel.h"
#include "store/core/table_reader.h"
#include "store/search/score_kernels.h"

namespace embstore {

const char* MetricName(Metric metric) {
  switch (metric) {
    case Metric::kCosine: return "cosine";
    case Metric::kDot: return "dot";
    case Metric::kL2: return "l2";
  }
  return "unknown";
}

Result<Metric> ParseMetric(std::string_view name) {
  if (name == "cosine") return Metric::kCosine;
  if (name == "dot" || name == "ip" || name == "inner_product") return Metric::kDot;
  if (name == "l2" || name == "l2sq" || name == "euclidean") return Metric::kL2;
  return Status::InvalidArgument("unknown metric '" + std::string(name) + "' (expected cosine, dot or l2)");
}

namespace {

// A candidate: its "closeness" (the score, or minus it under L2) and id.
struct Cand {
  float c;
  uint64_t id;
};
// a closer than b: larger closeness, NaN after every number, then lower id.
inline bool Closer(const Cand& a, const Cand& b) {
  const bool an = std::isnan(a.c), bn = std::isnan(b.c);
  if (an || bn) return an != bn ? bn : a.id < b.id;
  return a.c != b.c ? a.c > b.c : a.id < b.id;
}

// The k closest seen so far: a heap whose front is the farthest of them.
// Ids may arrive in any order.
class TopK {
 public:
  void Reset(size_t k, std::span<const uint64_t> exclude) {
    k_ = k;
    exclude_ = exclude;
    heap_.clear();
    heap_.reserve(std::min<size_t>(k, 1 << 16));
    bar_ = -std::numeric_limits<float>::infinity();
    bar_nan_ = false;
  }
  void Push(float c, uint64_t id) {
    if (heap_.size() == k_ && !(c >= bar_) && !(bar_nan_ && std::isnan(c))) return;  // the common case
    if (!exclude_.empty() && std::binary_search(exclude_.begin(), exclude_.end(), id)) return;
    const Cand cand{c, id};
    if (heap_.size() < k_) {
      heap_.push_back(cand);
      std::push_heap(heap_.begin(), heap_.end(), Closer);
      if (heap_.size() == k_) UpdateBar();
      return;
    }
    if (!Closer(cand, heap_.front())) return;
    std::pop_heap(heap_.begin(), heap_.end(), Closer);
    heap_.back() = cand;
    std::push_heap(heap_.begin(), heap_.end(), Closer);
    UpdateBar();
  }
  std::vector<Cand>& items() { return heap_; }

 private:
  void UpdateBar() {
    const float f = heap_.front().c;
    bar_nan_ = std::isnan(f);
    bar_ = bar_nan_ ? -std::numeric_limits<float>::infinity() : f;
  }
  size_t k_ = 0;
  std::span<const uint64_t> exclude_;
  std::vector<Cand> heap_;
  float bar_ = 0;  // a candidate below this is not closer than the front
  bool bar_nan_ = false;
};

// Rows of a block and queries of a batch, sized for the caches: a block of
// rows about 128 KiB (the level-2 cache holds it while every query of a
// batch passes over it), queries 64 at a time.
constexpr size_t kBlockBytes = 128 << 10;
constexpr size_t kQueryBatch = 64;
// Below this much work (bytes of rows x queries) a thread costs more than
// it saves.
constexpr uint64_t kBytesPerThread = 4 << 20;

struct Plan {
  const SearchRequest* req;
  Metric metric;
  Isa isa;
  Dtype dtype;
  size_t dim;
  size_t qstride;
  size_t nq;
  std::vector<float> queries;  // padded
  std::vector<float> qnorms;
  std::vector<std::vector<uint64_t>> exclude;  // sorted, one per query (or one for all)
  std::span<const uint64_t> ExcludeOf(size_t q) const {
    if (exclude.empty()) return {};
    return exclude.size() == 1 ? std::span<const uint64_t>(exclude[0]) : std::span<const uint64_t>(exclude[q]);
  }
};

// One worker's state: its queries [q_begin, q_end), their top k, and its
// scratch.
struct Worker {
  size_t q_begin = 0, q_end = 0;
  std::vector<TopK> top;  // top[q - q_begin]
  std::vector<float> dots, norms;
  std::vector<uint8_t> rows;  // decoded rows (tables that are not mapped)
};

// Pushes a block's closeness (ScoreBlock's finish) into each query's top k.
void Collect(Worker& w, size_t q0, size_t nq, size_t n, uint64_t first_id) {
  for (size_t a = 0; a < nq; ++a) {
    TopK& top = w.top[q0 - w.q_begin + a];
    const float* c = w.dots.data() + a * n;
    for (size_t j = 0; j < n; ++j) top.Push(c[j], first_id + j);
  }
}

// Scores rows [first_id, first_id + n) stored at data against the worker's
// queries. Returns early once cancelled (checked every batch of queries).
void ScanRows(const Plan& p, Worker& w, const uint8_t* data, size_t stride, size_t n, uint64_t first_id) {
  const size_t block = std::max<size_t>(1, kBlockBytes / stride);
  for (size_t r0 = 0; r0 < n; r0 += block) {
    const size_t rn = std::min(block, n - r0);
    if (w.norms.size() < rn) w.norms.resize(rn);
    for (size_t q0 = w.q_begin; q0 < w.q_end; q0 += kQueryBatch) {
      if (IsCancelled(p.req->cancel)) return;
      const size_t qn = std::min(kQueryBatch, w.q_end - q0);
      if (w.dots.size() < qn * rn) w.dots.resize(qn * rn);
      ScoreArgs s;
      s.dtype = p.dtype;
      s.data = data + r0 * stride;
      s.stride = stride;
      s.rows = rn;
      s.dim = p.dim;
      s.queries = p.queries.data() + q0 * p.qstride;
      s.qstride = p.qstride;
      s.queries_count = qn;
      s.dots = w.dots.data();
      s.ldd = rn;
      if (p.metric != Metric::kDot) {
        s.norms = w.norms.data();
        s.norms_ready = q0 > w.q_begin;  // the first batch of queries computed them
        s.finish = p.metric == Metric::kCosine ? ScoreArgs::Finish::kCosine : ScoreArgs::Finish::kL2;
        s.qnorms = p.qnorms.data() + q0;
      }
      ScoreBlock(s, p.isa);
      Collect(w, q0, qn, rn, first_id + r0);
    }
  }
}

// Memory the search could not get: the system's limit, not a bad request.
Status OutOfMemory(const std::string& what) { return Status::IOError("out of memory for " + what); }

std::string QueryName(const Plan& p, size_t q) {
  return p.nq == 1 ? std::string("the query") : "query " + std::to_string(q);
}

}  // namespace

Result<SearchResult> Search(const Table& table, const SearchRequest& req) {
  const uint64_t dim = table.dim();
  const uint64_t rows = req.max_rows > 0 ? std::min(req.max_rows, table.rows()) : table.rows();
  if (dim == 0) return Status::InvalidArgument("the table has no columns");
  if (req.queries.empty()) return Status::InvalidArgument("no queries");
  if (req.queries.size() % dim != 0)
    return Status::InvalidArgument("queries hold " + std::to_string(req.queries.size()) +
                                   " values, not a multiple of the table's dim " + std::to_string(dim));
  Plan p;
  p.req = &req;
  p.metric = req.metric;
  p.isa = req.isa ? *req.isa : DetectIsa();
  if (!CpuHas(p.isa)) p.isa = Isa::kPortable;
  p.dtype = table.dtype();
  p.dim = dim;
  p.nq = req.queries.size() / dim;
  p.qstride = (dim + 15) & ~size_t{15};
  if (req.exclude.size() > 1 && req.exclude.size() != p.nq)
    return Status::InvalidArgument("exclusions name " + std::to_string(req.exclude.size()) + " queries, not " +
                                   std::to_string(p.nq));
  if (req.k == 0) return Status::InvalidArgument("k must be at least 1");
  uint64_t most_excluded = 0;
  try {
    p.exclude = req.exclude;
    for (auto& e : p.exclude) {
      std::sort(e.begin(), e.end());
      e.erase(std::unique(e.begin(), e.end()), e.end());
      if (!e.empty() && e.back() >= table.rows())
        return Status::InvalidArgument("cannot exclude " + OutOfRangeMessage(e.back(), table.rows()));
      while (!e.empty() && e.back() >= rows) e.pop_back();  // beyond max_rows: never found anyway
      most_excluded = std::max<uint64_t>(most_excluded, e.size());
    }
    if (req.k > rows - most_excluded) {
      std::string msg = "k = " + std::to_string(req.k) + " is more than the " +
                        (rows < table.rows() ? "first " + std::to_string(rows) + " rows searched"
                                             : "table's " + std::to_string(rows) + " rows");
      if (most_excluded > 0) msg += " less " + std::to_string(most_excluded) + " excluded";
      return Status::InvalidArgument(msg);
    }
    p.queries.assign(p.nq * p.qstride, 0.0f);
    for (size_t q = 0; q < p.nq; ++q) {
      const float* src = req.queries.data() + q * dim;
      for (size_t i = 0; i < dim; ++i) {
        if (!std::isfinite(src[i]))
          return Status::InvalidArgument(QueryName(p, q) + " holds " + (std::isnan(src[i]) ? "NaN" : "an infinity") +
                                         " at element " + std::to_string(i));
      }
      std::copy(src, src + dim, p.queries.begin() + q * p.qstride);
    }
    // Query norms by the same kernel as row norms: a query equal to a row
    // has the same norm, bit for bit (so its L2 distance is 0).
    p.qnorms.assign(p.nq, 0.0f);
    if (p.metric != Metric::kDot) {
      std::vector<float> unused(p.nq);
      ScoreArgs s;
      s.dtype = Dtype::kFloat32;
      s.data = reinterpret_cast<const uint8_t*>(p.queries.data());
      s.stride = p.qstride * sizeof(float);
      s.rows = p.nq;
      s.dim = dim;
      s.queries = p.queries.data();
      s.qstride = p.qstride;
      s.queries_count = 1;
      s.dots = unused.data();
      s.ldd = p.nq;
      s.norms = p.qnorms.data();
      ScoreBlock(s, p.isa);
      for (size_t q = 0; q < p.nq; ++q) {
        const float* v = p.queries.data() + q * p.qstride;
        const bool zero = std::all_of(v, v + dim, [](float x) { return x == 0.0f; });
        if (p.metric == Metric::kCosine && zero)
          return Status::InvalidArgument(QueryName(p, q) + " is all zeros: its cosine with any row is undefined");
        // The sums are float32 (nearest.h): a query whose squared norm does
        // not fit would make every score infinite, NaN or 0.
        if (std::isinf(p.qnorms[q]) || (!zero && p.qnorms[q] == 0.0f))
          return Status::InvalidArgument(QueryName(p, q) + "'s squared norm " +
                                         (std::isinf(p.qnorms[q]) ? "overflows" : "underflows") +
                                         " float32 (keep its values within about 1e-19 to 1e19)");
      }
    }
  } catch (const std::bad_alloc&) {
    return OutOfMemory(std::to_string(p.nq) + " queries");
  }

  const TableReader* mapped = table.mapped();
  // Tables that are not mapped are read in chunks: a .embz a frame at a
  // time, others about a megabyte of rows at a time.
  const uint64_t row_size = table.row_size();
  uint64_t chunk_rows = rows;
  if (mapped == nullptr) {
    chunk_rows = table.embz() != nullptr ? table.embz()->frame_rows : std::max<uint64_t>(1, (1 << 20) / row_size);
    if (chunk_rows == 0) chunk_rows = 1;
  }
  const uint64_t chunks = mapped != nullptr ? 0 : (rows + chunk_rows - 1) / chunk_rows;
  // Work: bytes of rows times queries (a batch over a small table is worth
  // threads too).
  const uint64_t work = rows * row_size * std::max<uint64_t>(1, p.nq);
  const unsigned threads = ResolveThreads(req.threads, mapped != nullptr ? std::max<uint64_t>(1, work / kBytesPerThread)
                                                                         : std::max<uint64_t>(1, chunks));
  // A mapped table with many queries: each thread takes its share of the
  // queries over every row (a batch is bound by arithmetic, not by reading
  // rows), so each query's top k is kept once. Otherwise each thread takes
  // a share of the rows for every query, and the tops are merged.
  const bool split_queries = mapped != nullptr && threads > 1 && p.nq >= 4 * uint64_t{threads};
  std::vector<Worker> workers;
  try {
    workers.resize(threads);
    for (unsigned t = 0; t < threads; ++t) {
      Worker& w = workers[t];
      w.q_begin = split_queries ? p.nq * t / threads : 0;
      w.q_end = split_queries ? p.nq * (t + 1) / threads : p.nq;
      w.top.resize(w.q_end - w.q_begin);
      for (size_t q = w.q_begin; q < w.q_end; ++q) w.top[q - w.q_begin].Reset(req.k, p.ExcludeOf(q));
      if (mapped == nullptr) w.rows.resize(chunk_rows * row_size);
    }
  } catch (const std::bad_alloc&) {
    return OutOfMemory("the top " + std::to_string(req.k) + " of " + std::to_string(p.nq) + " queries");
  }

  std::atomic<uint64_t> next_chunk{0};
  std::mutex mu;
  Status failure;
  auto body = [&](unsigned t) {
    Worker& w = workers[t];
    try {
      if (mapped != nullptr) {
        const uint64_t begin = split_queries ? 0 : rows * t / threads;
        const uint64_t end = split_queries ? rows : rows * (t + 1) / threads;
        const uint64_t stride = mapped->header().row_stride;
        // Pieces of about 16 MiB, so cancellation is prompt.
        const uint64_t piece = std::max<uint64_t>(1, (16 << 20) / stride);
        for (uint64_t r = begin; r < end; r += piece) {
          if (IsCancelled(req.cancel)) return;
          const uint64_t n = std::min(piece, end - r);
          ScanRows(p, w, mapped->row_bytes(r, n).data(), stride, n, r);
        }
        return;
      }
      for (;;) {
        const uint64_t c = next_chunk.fetch_add(1);
        if (c >= chunks || IsCancelled(req.cancel)) return;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!failure.ok()) return;
        }
        const uint64_t first = c * chunk_rows, n = std::min(chunk_rows, rows - first);
        Status s = table.ReadRows(first, n, p.dtype, {w.rows.data(), n * row_size});
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (failure.ok()) failure = std::move(s);
          return;
        }
        ScanRows(p, w, w.rows.data(), row_size, n, first);
      }
    } catch (const std::bad_alloc&) {
      std::lock_guard<std::mutex> lock(mu);
      if (failure.ok()) failure = OutOfMemory("searching");
    }
  };
  Status run = RunParallel(threads, body, nullptr, 0, {}, req.cancel);
  if (!run.ok()) return run;
  if (!failure.ok()) return failure;

  SearchResult result;
  result.queries = p.nq;
  result.k = req.k;
  result.metric = p.metric;
  try {
    result.ids.resize(p.nq * req.k);
    result.scores.resize(p.nq * req.k);
    std::vector<Cand> all;
    for (size_t q = 0; q < p.nq; ++q) {
      all.clear();
      for (auto& w : workers) {
        if (q < w.q_begin || q >= w.q_end) continue;
        auto& items = w.top[q - w.q_begin].items();
        all.insert(all.end(), items.begin(), items.end());
        std::vector<Cand>().swap(items);
      }
      const size_t k = req.k;
      std::partial_sort(all.begin(), all.begin() + k, all.end(), Closer);
      for (size_t i = 0; i < k; ++i) {
        result.ids[q * k + i] = all[i].id;
        result.scores[q * k + i] = p.metric == Metric::kL2 ? -all[i].c : all[i].c;
      }
    }
  } catch (const std::bad_alloc&) {
    return OutOfMemory("the top " + std::to_string(req.k) + " of " + std::to_string(p.nq) + " queries");
  }
  return result;
}

}  // namespace embstore
