// Known answers from ../shared/torch-rng.md, section 12 (PyTorch 1.13.1,
// ATEN_CPU_CAPABILITY=default, glibc 2.36). Bits, not tolerances.

#include "store/torch_rng.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tests/test_util.h"

namespace embstore {
namespace {

using testing::FloatBits;

std::vector<uint32_t> NormalBits(uint64_t seed, uint64_t n, double mean = 0, double std = 1,
                                 uint64_t piece = 0) {
  TorchNormalStream s(seed, n, mean, std);
  std::vector<float> out(n);
  if (piece == 0) piece = n;
  for (uint64_t i = 0; i < n; i += piece) s.Fill(out.data() + i, std::min(piece, n - i));
  EXPECT_EQ(s.remaining(), 0u);
  std::vector<uint32_t> bits;
  for (float f : out) bits.push_back(FloatBits(f));
  return bits;
}

TEST(Mt19937Test, FirstDrawsMatchTorch) {  // 12.1
  const std::vector<std::pair<uint64_t, std::vector<uint32_t>>> cases = {
      {0, {2357136044u, 2546248239u, 3071714933u, 3626093760u, 2588848963u}},
      {42, {1608637542u, 3421126067u, 4083286876u, 787846414u, 3143890026u}},
      {123, {2991312382u, 3062119789u, 1228959102u, 1840268610u, 974319580u}},
      {(uint64_t{1} << 32) + 123, {2991312382u, 3062119789u, 1228959102u, 1840268610u, 974319580u}},
  };
  for (const auto& [seed, want] : cases) {
    Mt19937 e(seed);
    for (uint32_t w : want) EXPECT_EQ(e.Next(), w) << "seed " << seed;
  }
}

TEST(Mt19937Test, EqualsStdMt19937ForManyDraws) {
  for (uint32_t seed : {0u, 1u, 123u, 0xFFFFFFFFu}) {
    Mt19937 mine(seed);
    std::mt19937 ref(seed);
    for (int i = 0; i < 100000; ++i) ASSERT_EQ(mine.Next(), ref()) << "seed " << seed << " draw " << i;
  }
}

TEST(Mt19937Test, NegativeSeedsUseTheirLow32Bits) {  // 1.4: -1, 2^32-1, 2^64-1 agree
  Mt19937 a(static_cast<uint64_t>(int64_t{-1})), b(0xFFFFFFFFull), c(~uint64_t{0});
  for (int i = 0; i < 1000; ++i) {
    const uint32_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    EXPECT_EQ(x, c.Next());
  }
}

TEST(UniformTest, RandVectors) {  // 12.2
  Mt19937 e(123);
  EXPECT_EQ(UniformFloat(e.Next()), 0.29611194133758545f);
  EXPECT_EQ(UniformFloat(e.Next()), 0.516562283039093f);
  EXPECT_EQ(UniformFloat(e.Next()), 0.2516707181930542f);
  Mt19937 d(123);
  EXPECT_EQ(UniformDouble(d.Next64()), 0.368895870664273);
  EXPECT_EQ(UniformDouble(d.Next64()), 0.013365949855291825);
  EXPECT_EQ(UniformDouble(d.Next64()), 0.5917800383018739);
}

TEST(TorchNormalTest, NotebookEmbedding6x4Default) {  // 12.4 DEF: 24 elements with a tail
  const std::vector<uint32_t> want = {
      0x3eacbbc8, 0xbe360b3b, 0xbe9b67f6, 0xbf1687fc, 0x3eb27c61, 0x3f290c1b, 0xbe60e8ac, 0xbec2228a,
      0xbe246ad6, 0xbecd8fd3, 0x3f321afa, 0xbfe72cbb, 0x3ff2af0f, 0xbe333dec, 0x3faf3863, 0xbfcd37f5,
      0xbf48ec26, 0xbfb46cde, 0xbed0b478, 0x3f4b9a7e, 0x3f7fa07b, 0x3e628f31, 0x3fea7b7f, 0xbeacf935};
  EXPECT_EQ(NormalBits(123, 24), want);
  // Pieces of any size give the same stream.
  for (uint64_t piece : {1, 3, 4, 7, 16, 17}) EXPECT_EQ(NormalBits(123, 24, 0, 1, piece), want) << piece;
  // Row 3 as PyTorch prints it: 1.8960 -0.1750 1.3689 -1.6033.
  TorchNormalStream s(123, 24, 0, 1);
  float t[24];
  s.Fill(t, 24);
  EXPECT_NEAR(t[12], 1.8960f, 5e-5);
  EXPECT_NEAR(t[15], -1.6033f, 5e-5);
}

TEST(TorchNormalTest, Randn17Default) {  // 12.5: one block plus a tail window over 1..16
  const std::vector<uint32_t> want = {0x3eacbbc8, 0xbf829ed8, 0xbe2d02d8, 0x3f6af295, 0x3fca5d32, 0x3fa6887a,
                                      0x3fa33d12, 0xbe4dc6a6, 0xbe246ad6, 0xbfc94141, 0x3f77713c, 0xbf92f666,
                                      0xbf9455cf, 0x3ea6a423, 0xbf21aa57, 0xc035c276, 0xbf48ec26};
  EXPECT_EQ(NormalBits(123, 17), want);
}

TEST(TorchNormalTest, SerialPathBelowSixteen) {  // 12.6
  EXPECT_EQ(NormalBits(123, 3), (std::vector<uint32_t>{0xbde448df, 0x3df680d9, 0xbebd40bc}));
  // Prefixes agree: the serial path emits cos1, sin1, cos2, ...
  const auto five = NormalBits(123, 5);
  EXPECT_EQ(std::vector<uint32_t>(five.begin(), five.begin() + 3), NormalBits(123, 3));
  EXPECT_EQ(NormalBits(123, 1)[0], 0xbde448dfu);
}

TEST(TorchNormalTest, Embedding50257x768Elements) {  // 12.7 DEF single elements
  const uint64_t n = 50257ull * 768;
  TorchNormalStream s(123, n, 0, 1);
  std::vector<float> all(n);
  s.Fill(all.data(), n);
  EXPECT_EQ(FloatBits(all[0]), 0x3eacbbc8u);
  EXPECT_EQ(FloatBits(all[3]), 0xbf1687fcu);
  EXPECT_EQ(FloatBits(all[8]), 0x3f446121u);
  EXPECT_EQ(FloatBits(all[15]), 0x3e89d468u);
  EXPECT_EQ(FloatBits(all[16]), 0xbd9dbcc9u);
  EXPECT_EQ(FloatBits(all[38597359]), 0xbfec7268u);
  EXPECT_EQ(FloatBits(all[38597375]), 0x3f16bf08u);
}

TEST(TorchNormalTest, MeanAndStdAreAppliedAfterRounding) {
  // mean 0, std 1 must be the identity on the unscaled values, and a shift
  // by mean must equal fl(fl(x*std) + mean) elementwise.
  TorchNormalStream a(7, 40, 0, 1), b(7, 40, 0.5, 2.0);
  float x[40], y[40];
  a.Fill(x, 40);
  b.Fill(y, 40);
  for (int i = 0; i < 40; ++i) {
    volatile float scaled = x[i] * 2.0f;
    volatile float shifted = scaled + 0.5f;
    EXPECT_EQ(FloatBits(y[i]), FloatBits(shifted)) << i;
  }
}

}  // namespace
}  // namespace embstore
