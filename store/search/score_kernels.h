// The kernels behind Search (nearest.h): dot products of queries with a
// block of rows, and the rows' squared norms, summed in one canonical order
// (score_kernel.inc) by each instruction set, so all give the same bits.
// Internal to store/search.
//
// Stateless functions; safe from any thread.

#ifndef EMBSTORE_STORE_SEARCH_SCORE_KERNELS_H_
#define EMBSTORE_STORE_SEARCH_SCORE_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "format/table_format.h"
#include "store/core/cpu.h"

namespace embstore {

struct ScoreArgs {
  Dtype dtype = Dtype::kFloat32;  // how the rows are stored
  const uint8_t* data = nullptr;  // the first row
  size_t stride = 0;              // bytes from one row to the next
  size_t rows = 0;
  size_t dim = 0;
  const float* queries = nullptr;  // queries_count of them, qstride floats apart,
  size_t qstride = 0;              // zero from dim up to a multiple of 16
  size_t queries_count = 0;
  float* dots = nullptr;  // dots[q * ldd + r]: query q with row r
  size_t ldd = 0;
  float* norms = nullptr;  // norms[r]: row r with itself; null: not wanted
  bool norms_ready = false;  // norms already hold them (an earlier batch of queries)
  // Then, when not kNone, each dot becomes its closeness (larger: closer),
  // with query q's squared norm qnorms[q] and the row norms above:
  //   kCosine: dot / sqrt(qnorm * norm) in double, rounded (a zero row: 0)
  //   kL2:     -max(0, qnorm + norm - 2 dot) in double, rounded
  enum class Finish { kNone, kCosine, kL2 };
  Finish finish = Finish::kNone;
  const float* qnorms = nullptr;
};

void ScoreBlock(const ScoreArgs& args, Isa isa);

void ScoreBlockPortable(const ScoreArgs& args);
void ScoreBlockAvx2(const ScoreArgs& args);
void ScoreBlockAvx512(const ScoreArgs& args);

}  // namespace embstore

#endif  // EMBSTORE_STORE_SEARCH_SCORE_KERNELS_H_
