// The jump-ahead against plain stepping (store/torch/torch-rng.md, section 10).

#include "store/torch/mt19937_jump.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tests/test_util.h"

namespace embstore {
namespace mt19937_jump_test {

TEST(Mt19937JumpTest, CommittedCharPolyIsRecomputedExactly) {
  const auto phi = ComputeMt19937CharPoly();
  ASSERT_EQ(phi.size(), static_cast<size_t>(kMtCharPolyWords));
  for (int w = 0; w < kMtCharPolyWords; ++w) ASSERT_EQ(phi[w], Mt19937CharPoly()[w]) << "word " << w;
  // Degree 19937, constant term 1, and the known weight of 135 terms.
  int terms = 0;
  for (int w = 0; w < kMtCharPolyWords; ++w) terms += __builtin_popcountll(phi[w]);
  EXPECT_EQ(terms, 135);
  EXPECT_EQ(phi[0] & 1, 1u);
  EXPECT_EQ(phi[311] >> 33, 1u);
}

TEST(Mt19937JumpTest, XPowIsXToTheJBelowTheDegree) {
  for (uint64_t j : {0ull, 1ull, 63ull, 64ull, 1000ull, 19936ull}) {
    const auto g = XPowModCharPoly(j);
    for (int w = 0; w < kMtCharPolyWords; ++w)
      EXPECT_EQ(g[w], j / 64 == static_cast<uint64_t>(w) ? uint64_t{1} << (j % 64) : 0) << j;
  }
  // x^19937 = phi - x^19937 (mod phi): the lower terms of phi.
  const auto g = XPowModCharPoly(19937);
  for (int w = 0; w < kMtCharPolyWords; ++w)
    EXPECT_EQ(g[w], w == 311 ? Mt19937CharPoly()[w] & ~(uint64_t{1} << 33) : Mt19937CharPoly()[w]);
}

void ExpectSameStream(uint64_t seed, uint64_t draws) {
  Mt19937 jumped = Mt19937AfterDraws(seed, draws);
  Mt19937 stepped(seed);
  stepped.Skip(draws);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(jumped.Next(), stepped.Next()) << "seed " << seed << " after " << draws << " draws, draw +" << i;
  }
}

TEST(Mt19937JumpTest, MatchesSteppingAtEdgesOfTwists) {
  // Offsets 0, inside the first array, at and around twist boundaries, and
  // not multiples of 624.
  for (uint64_t n : {0ull, 1ull, 2ull, 623ull, 624ull, 625ull, 1247ull, 1248ull, 1249ull, 5000ull, 19937ull,
                     624ull * 33 + 100})
    ExpectSameStream(123, n);
}

TEST(Mt19937JumpTest, MatchesSteppingFarOut) {
  // Far enough that g has every kind of coefficient, including g_0 = 1 (the
  // first-twist pitfall: t = 1603 and t = 61855 twists, store/torch/torch-rng.md 10.4e).
  for (uint64_t t : {1603ull, 61855ull}) ExpectSameStream(0, 624 * t - 5);
  for (uint64_t n : {1000003ull, 38597392ull, 100000007ull}) ExpectSameStream(42, n);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 12; ++i) ExpectSameStream(rng(), rng() % 50000000);
}

TEST(Mt19937JumpTest, TorchVector) {
  // store/torch/torch-rng.md 12.9. Checked against PyTorch 1.13.1 itself:
  // after manual_seed(123); rand(38597392), rand(3) * 2^24 is
  // [5181937, 13966274, 2000724], the low 24 bits of the draws in this order
  // (std::mt19937 agrees).
  Mt19937 e = Mt19937AfterDraws(123, 38597392);
  EXPECT_EQ(e.Next(), 357503473u);
  EXPECT_EQ(e.Next(), 1037376450u);
  EXPECT_EQ(e.Next(), 958302036u);
}

TEST(Mt19937JumpTest, BulkDrawsEqualSingleDraws) {
  for (uint64_t start : {0ull, 1ull, 623ull, 700ull}) {
    Mt19937 a(99), b(99);
    a.Skip(start);
    for (uint64_t i = 0; i < start; ++i) b.Next();
    std::vector<uint32_t> bulk(5000);
    std::vector<float> uni(777);
    a.Fill(bulk.data(), 1);
    a.Fill(bulk.data() + 1, 4999);
    for (uint32_t v : bulk) ASSERT_EQ(v, b.Next());
    a.FillUniform(uni.data(), uni.size());
    for (float f : uni) ASSERT_EQ(f, UniformFloat(b.Next()));
  }
}

TEST(Mt19937JumpTest, JumpCostIsMilliseconds) {
  // Not a timing assertion (benchmarks measure speed): the jump to the end
  // of the largest table the format allows must still be exact.
  const uint64_t far = (uint64_t{1} << 52) + 12345;
  Mt19937 a = Mt19937AfterDraws(1, far);
  Mt19937 b = Mt19937AfterDraws(1, far - 700);
  b.Skip(700);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.Next(), b.Next());
}

}  // namespace mt19937_jump_test
}  // namespace embstore
