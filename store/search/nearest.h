// Exact nearest neighbours over any table (store/core/table.h): the k rows
// closest to each query, by cosine similarity, inner product or squared L2
// distance, scanned where the rows lie. A mapped table (.emb, shared
// memory) is read in place, half-precision rows widened in registers; a
// .embz is decoded a frame at a time into a small buffer per thread. No
// copy of the table is made and nothing is built at open: row norms are
// computed in the same pass.
//
// Scores (every metric from the same three sums, each in float32 in the
// canonical order below, so each instruction set gives the same bits):
//   dot    = sum q[i] * r[i]        nq = sum q[i]^2      nr = sum r[i]^2
//   kDot:    dot                                             (larger: closer)
//   kCosine: dot / sqrt(nq * nr), in double, rounded to float (larger: closer);
//            a row of zeros scores 0
//   kL2:     max(0, nq + nr - 2 * dot), in double, rounded    (smaller: closer);
//            a row equal to the query scores exactly 0
// Order: closest first; equal scores by the lower id; NaN scores after every
// number. A row holding NaN scores NaN. A row holding an infinity scores
// NaN under cosine (inf / inf); under L2, NaN (inf - inf) or +inf (the
// farthest number, where the dot is -inf); under dot, +-inf or NaN.
// The canonical sum: 16 lanes, lane l taking the elements i % 16 == l in
// order by fused multiply-add, then pairwise (l + 8, l + 4, l + 2, l + 1).
//
// Exact: against the sums in exact arithmetic, a score is off by at most
//   kDot:    E * sum |q[i] r[i]|,  kCosine: 2E + 2^-23,
//   kL2:     2E * (nq + nr) + 2^-24 * score,  where E = (ceil(dim / 16) + 4) * 2^-24
// (the standard bound for a sum of ceil(dim / 16) terms and then four
// pairwise levels). Two rows whose exact scores differ by more than twice
// that are never returned in the wrong order.
//
// Range: the sums are float32, and the bound holds while they stay in its
// range, as they do for embeddings (values far inside 1e-19 to 1e19). A
// row whose squared norm overflows scores as one holding an infinity (its
// nr is inf); a nonzero row whose squared norm underflows to 0 (every value
// below about 1e-23) scores as a row of zeros under cosine. A query whose
// squared norm would overflow or underflow is refused under cosine and L2.
//
// Thread safety: Search may be called from any number of threads at once.

#ifndef EMBSTORE_STORE_SEARCH_NEAREST_H_
#define EMBSTORE_STORE_SEARCH_NEAREST_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/status.h"
#include "store/core/cancel.h"
#include "store/core/cpu.h"
#include "store/core/table.h"

namespace embstore {

enum class Metric { kCosine, kDot, kL2 };
const char* MetricName(Metric metric);  // "cosine", "dot", "l2"
// "cosine", "dot" (or "ip", "inner_product"), "l2" (or "l2sq", "euclidean");
// else an invalid-argument error listing them.
Result<Metric> ParseMetric(std::string_view name);
// True when a larger score is closer (cosine, dot); false for L2.
inline bool LargerIsCloser(Metric metric) { return metric != Metric::kL2; }

// What to search for. Grows with new fields (an index to use, a filter),
// never new positional arguments.
struct SearchRequest {
  // The queries: query_count() rows of the table's dim() float32 values,
  // one after another. Every value must be finite; under cosine no query
  // may be all zeros.
  std::span<const float> queries;
  uint64_t k = 10;  // results per query, 1..rows (less the excluded ids)
  Metric metric = Metric::kCosine;
  // Ids never returned: empty (none), one list for every query, or one list
  // per query. Each id must be a row of the table.
  std::vector<std::vector<uint64_t>> exclude;
  // Only rows [0, max_rows) are searched (gensim's restrict_vocab: the
  // most frequent words come first); 0: every row.
  uint64_t max_rows = 0;
  unsigned threads = 0;  // 0: all cores
  const CancelToken* cancel = nullptr;
  std::optional<Isa> isa;  // default: DetectIsa() (tests compare them)
};

struct SearchResult {
  uint64_t queries = 0;
  uint64_t k = 0;
  Metric metric = Metric::kCosine;
  std::vector<uint64_t> ids;  // queries x k, closest first
  std::vector<float> scores;  // the same shape: each id's score
  std::span<const uint64_t> ids_of(uint64_t query) const { return {ids.data() + query * k, k}; }
  std::span<const float> scores_of(uint64_t query) const { return {scores.data() + query * k, k}; }
};

// The k closest rows to each query. Errors: a query size that is not a
// multiple of dim() or is empty, a query value that is not finite, a
// zero query under cosine, a query's squared norm out of float32's range
// under cosine and L2, k = 0 or more than the rows left after exclusions,
// an excluded id out of range (invalid argument); a row that cannot be
// read (a .embz frame that fails its checksum: corruption); memory for the
// results or the queries (an I/O error, "out of memory for ..."); and
// cancellation.
Result<SearchResult> Search(const Table& table, const SearchRequest& request);

}  // namespace embstore

#endif  // EMBSTORE_STORE_SEARCH_NEAREST_H_
