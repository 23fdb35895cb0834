// Exact nearest neighbours (store/search/nearest.h): every instruction set
// gives the same bits, the sums are the canonical sums the header defines,
// ties go to the lower id, NaN scores come last, and a .embz answers as its
// .emb does. tests/python/nearest_test.py checks the answers against a
// float64 NumPy reference and gensim.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "format/half.h"
#include "store/core/cpu.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/embz/embz.h"
#include "store/search/nearest.h"
#include "tests/test_util.h"

namespace embstore {
namespace nearest_test {

using testing::TempDir;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::unique_ptr<TableReader> Write(const std::string& path, uint64_t rows, uint64_t dim, const std::vector<float>& v,
                                   Dtype dtype = Dtype::kFloat32) {
  WriterOptions o;
  o.sync = false;
  o.dtype = dtype;
  auto w = TableWriter::Create(path, rows, dim, o);
  EXPECT_OK(w.status());
  EXPECT_OK((*w)->Append(v));
  EXPECT_OK((*w)->Finish());
  auto t = TableReader::Open(path);
  EXPECT_OK(t.status());
  return std::make_unique<TableReader>(std::move(*t));
}

SearchResult Find(const Table& t, const std::vector<float>& q, uint64_t k, Metric m, Isa isa, unsigned threads = 0) {
  SearchRequest r;
  r.queries = q;
  r.k = k;
  r.metric = m;
  r.isa = isa;
  r.threads = threads;
  auto res = Search(t, r);
  EXPECT_OK(res.status());
  return res.ok() ? *res : SearchResult{};
}

// The canonical sum of the header, written out plainly.
float CanonicalDot(const float* q, const float* r, size_t dim) {
  float lane[16] = {};
  for (size_t i = 0; i < dim; ++i) lane[i % 16] = std::fma(q[i], r[i], lane[i % 16]);
  float s8[8], s4[4];
  for (int l = 0; l < 8; ++l) s8[l] = lane[l] + lane[l + 8];
  for (int l = 0; l < 4; ++l) s4[l] = s8[l] + s8[l + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

std::vector<Isa> Isas() {
  std::vector<Isa> out = {Isa::kPortable};
  if (CpuHas(Isa::kAvx2)) out.push_back(Isa::kAvx2);
  if (CpuHas(Isa::kAvx512)) out.push_back(Isa::kAvx512);
  return out;
}

void ExpectSame(const SearchResult& a, const SearchResult& b, const std::string& what) {
  ASSERT_EQ(a.ids, b.ids) << what;
  ASSERT_EQ(a.scores.size(), b.scores.size()) << what;
  for (size_t i = 0; i < a.scores.size(); ++i) {
    uint32_t x, y;
    std::memcpy(&x, &a.scores[i], 4);
    std::memcpy(&y, &b.scores[i], 4);
    ASSERT_EQ(x, y) << what << " score " << i;
  }
}

// Every instruction set, every element type, dims around the 16-lane
// boundaries, one query and a batch (whose tiles differ by instruction
// set), every metric: the same ids and the same bits.
TEST(NearestTest, EveryInstructionSetGivesTheSameBits) {
  TempDir dir;
  uint32_t seed = 1;
  for (Dtype dtype : {Dtype::kFloat32, Dtype::kFloat16, Dtype::kBFloat16}) {
    for (uint64_t dim : {1, 7, 16, 17, 40, 300}) {
      const uint64_t rows = 203;
      auto t = Write(dir.path() + "/t.emb", rows, dim, Random(rows * dim, seed++), dtype);
      for (uint64_t nq : {1, 9}) {
        const auto q = Random(nq * dim, seed++);
        for (Metric m : {Metric::kCosine, Metric::kDot, Metric::kL2}) {
          const SearchResult want = Find(*t, q, 13, m, Isa::kPortable, 1);
          for (Isa isa : Isas()) {
            for (unsigned threads : {1u, 2u}) {
              ExpectSame(Find(*t, q, 13, m, isa, threads), want,
                         std::string(DtypeName(dtype)) + " dim " + std::to_string(dim) + " queries " +
                             std::to_string(nq) + " " + MetricName(m) + " " + IsaName(isa));
            }
          }
        }
      }
    }
  }
}

// The dot scores are the canonical sums, bit for bit, and k = rows returns
// every row in order.
TEST(NearestTest, DotScoresAreTheCanonicalSums) {
  TempDir dir;
  const uint64_t rows = 50, dim = 37;
  const auto v = Random(rows * dim, 5);
  auto t = Write(dir.path() + "/t.emb", rows, dim, v);
  const auto q = Random(dim, 6);
  for (Isa isa : Isas()) {
    const SearchResult r = Find(*t, q, rows, Metric::kDot, isa);
    std::vector<std::pair<float, uint64_t>> want;
    for (uint64_t i = 0; i < rows; ++i) want.push_back({CanonicalDot(q.data(), v.data() + i * dim, dim), i});
    std::sort(want.begin(), want.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    for (uint64_t i = 0; i < rows; ++i) {
      EXPECT_EQ(r.ids[i], want[i].second) << IsaName(isa) << " rank " << i;
      EXPECT_EQ(r.scores[i], want[i].first) << IsaName(isa) << " rank " << i;
    }
  }
}

// Equal rows score equally, whatever the instruction set: the lower id comes
// first. A query equal to a row is at squared distance exactly 0.
TEST(NearestTest, TiesGoToTheLowerIdAndSelfDistanceIsZero) {
  TempDir dir;
  const uint64_t rows = 40, dim = 33;
  auto base = Random(dim, 9);
  std::vector<float> v = Random(rows * dim, 10);
  for (uint64_t id : {3, 17, 29, 38}) std::copy(base.begin(), base.end(), v.begin() + id * dim);
  for (Dtype dtype : {Dtype::kFloat32, Dtype::kBFloat16}) {
    auto t = Write(dir.path() + "/t.emb", rows, dim, v, dtype);
    std::vector<float> q(dim);
    ASSERT_OK(t->ReadRows(17, 1, q));  // the stored row (rounded, for bfloat16)
    for (Isa isa : Isas()) {
      for (Metric m : {Metric::kCosine, Metric::kDot, Metric::kL2}) {
        const SearchResult r = Find(*t, q, 6, m, isa, 2);
        ASSERT_EQ(std::vector<uint64_t>(r.ids.begin(), r.ids.begin() + 4), (std::vector<uint64_t>{3, 17, 29, 38}))
            << MetricName(m) << " " << IsaName(isa);
        EXPECT_EQ(r.scores[0], r.scores[3]);
        if (m == Metric::kL2) {
          EXPECT_EQ(r.scores[0], 0.0f);
          EXPECT_FALSE(std::signbit(r.scores[0]));
        }
      }
    }
  }
}

// A row holding NaN scores NaN under every metric, and an infinity NaN
// under cosine and L2: they come after every number, by id. A row of zeros
// has cosine 0.
TEST(NearestTest, NanRowsComeLastAndZeroRowsScoreZero) {
  TempDir dir;
  const uint64_t rows = 30, dim = 20;
  std::vector<float> v = Random(rows * dim, 11);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  v[4 * dim + 7] = nan;
  v[21 * dim + 0] = nan;
  v[12 * dim + 19] = inf;
  for (uint64_t i = 0; i < dim; ++i) v[8 * dim + i] = 0.0f;
  auto t = Write(dir.path() + "/t.emb", rows, dim, v);
  const auto q = Random(dim, 12);
  for (Metric m : {Metric::kCosine, Metric::kL2}) {
    const SearchResult r = Find(*t, q, rows, m, DetectIsa());
    EXPECT_EQ((std::vector<uint64_t>(r.ids.end() - 3, r.ids.end())), (std::vector<uint64_t>{4, 12, 21})) << MetricName(m);
    for (size_t i = 0; i < rows - 3; ++i) EXPECT_FALSE(std::isnan(r.scores[i])) << MetricName(m);
    for (size_t i = rows - 3; i < rows; ++i) EXPECT_TRUE(std::isnan(r.scores[i])) << MetricName(m);
    if (m == Metric::kCosine) {
      for (size_t i = 0; i < rows; ++i) {
        if (r.ids[i] == 8) {
          EXPECT_EQ(r.scores[i], 0.0f);
        }
      }
    }
  }
  // Top 3 of a table whose best rows are NaN: the numbers win.
  const SearchResult r = Find(*t, q, 3, Metric::kDot, DetectIsa());
  for (size_t i = 0; i < 3; ++i) EXPECT_FALSE(std::isnan(r.scores[i]));
}

TEST(NearestTest, ExclusionsAndRowLimit) {
  TempDir dir;
  const uint64_t rows = 100, dim = 24;
  auto t = Write(dir.path() + "/t.emb", rows, dim, Random(rows * dim, 13));
  std::vector<float> q(2 * dim);
  ASSERT_OK(t->ReadRows(5, 1, std::span<float>(q.data(), dim)));
  ASSERT_OK(t->ReadRows(60, 1, std::span<float>(q.data() + dim, dim)));
  SearchRequest r;
  r.queries = q;
  r.k = 3;
  r.exclude = {{5}, {60, 61}};
  auto res = Search(*t, r);
  ASSERT_OK(res.status());
  for (uint64_t id : res->ids_of(0)) EXPECT_NE(id, 5u);
  for (uint64_t id : res->ids_of(1)) EXPECT_TRUE(id != 60 && id != 61);
  // Without the exclusion each query finds its own row first.
  r.exclude.clear();
  res = Search(*t, r);
  ASSERT_OK(res.status());
  EXPECT_EQ(res->ids_of(0)[0], 5u);
  EXPECT_EQ(res->ids_of(1)[0], 60u);
  // Rows [0, 50) only: the second query's row is beyond.
  r.max_rows = 50;
  res = Search(*t, r);
  ASSERT_OK(res.status());
  for (uint64_t id : res->ids) EXPECT_LT(id, 50u);
  // k up to the rows left.
  r.max_rows = 0;
  r.k = rows - 1;
  r.exclude = {{7}};
  ASSERT_OK(Search(*t, r).status());
  r.k = rows;
  EXPECT_EQ(Search(*t, r).status().code(), Status::Code::kInvalidArgument);
}

TEST(NearestTest, BadRequestsAreNamed) {
  TempDir dir;
  const uint64_t rows = 10, dim = 4;
  auto t = Write(dir.path() + "/t.emb", rows, dim, Random(rows * dim, 14));
  auto err = [&](std::vector<float> q, uint64_t k, Metric m, std::vector<std::vector<uint64_t>> ex = {}) {
    SearchRequest r;
    r.queries = q;
    r.k = k;
    r.metric = m;
    r.exclude = ex;
    auto res = Search(*t, r);
    EXPECT_FALSE(res.ok());
    return res.ok() ? std::string() : res.status().ToString();
  };
  const std::vector<float> good = {1, 2, 3, 4};
  EXPECT_NE(err({1, 2, 3}, 1, Metric::kDot).find("not a multiple of the table's dim 4"), std::string::npos);
  EXPECT_NE(err({}, 1, Metric::kDot).find("no queries"), std::string::npos);
  EXPECT_NE(err(good, 0, Metric::kDot).find("k must be at least 1"), std::string::npos);
  EXPECT_NE(err(good, 11, Metric::kDot).find("k = 11 is more than the table's 10 rows"), std::string::npos);
  EXPECT_NE(err({1, std::nanf(""), 3, 4}, 1, Metric::kDot).find("the query holds NaN at element 1"), std::string::npos);
  EXPECT_NE(err({1, 2, 3, 4, 1, 2, -INFINITY, 4}, 1, Metric::kL2).find("query 1 holds an infinity at element 2"),
            std::string::npos);
  EXPECT_NE(err({0, 0, 0, 0}, 1, Metric::kCosine).find("all zeros"), std::string::npos);
  EXPECT_NE(err(good, 1, Metric::kDot, {{10}}).find("cannot exclude"), std::string::npos);
  EXPECT_NE(err(good, 1, Metric::kDot, {{1}, {2}}).find("exclusions name 2 queries, not 1"), std::string::npos);
  // Queries whose squared norm leaves float32 (nearest.h, "Range").
  EXPECT_NE(err({1e20f, 1e20f, 0, 0}, 1, Metric::kCosine).find("squared norm overflows float32"), std::string::npos);
  EXPECT_NE(err({1e20f, 0, 0, 0}, 1, Metric::kL2).find("squared norm overflows float32"), std::string::npos);
  EXPECT_NE(err({1e-30f, 0, 0, 0}, 1, Metric::kCosine).find("squared norm underflows float32"), std::string::npos);
  // A zero query is fine under dot and L2.
  SearchRequest r;
  std::vector<float> zero(dim, 0.0f);
  r.queries = zero;
  r.k = 2;
  r.metric = Metric::kL2;
  EXPECT_OK(Search(*t, r).status());
  EXPECT_EQ(*ParseMetric("ip"), Metric::kDot);
  EXPECT_FALSE(ParseMetric("hamming").ok());
}

// A .embz is read a frame at a time through its decoder and answers as the
// .emb does, bit for bit; a cancelled search stops with the cancel error.
TEST(NearestTest, EmbzAnswersAsItsEmbAndCancelStops) {
  TempDir dir;
  const uint64_t rows = 3000, dim = 48;
  for (Dtype dtype : {Dtype::kFloat32, Dtype::kFloat16}) {
    auto t = Write(dir.path() + "/t.emb", rows, dim, Random(rows * dim, 15), dtype);
    CompressOptions co;
    co.sync = false;
    co.frame_rows = 256;
    ASSERT_OK(CompressTable(*t, dir.path() + "/t.embz", co));
    auto z = EmbzReader::Open(dir.path() + "/t.embz");
    ASSERT_OK(z.status());
    const auto q = Random(5 * dim, 16);
    for (Metric m : {Metric::kCosine, Metric::kDot, Metric::kL2}) {
      ExpectSame(Find(**z, q, 17, m, DetectIsa(), 2), Find(*t, q, 17, m, DetectIsa(), 1), MetricName(m));
    }
    CancelToken cancel;
    cancel.Cancel();
    SearchRequest r;
    r.queries = q;
    r.cancel = &cancel;
    EXPECT_EQ(Search(**z, r).status().code(), Status::Code::kCancelled);
    EXPECT_EQ(Search(*t, r).status().code(), Status::Code::kCancelled);
  }
}

}  // namespace nearest_test
}  // namespace embstore
