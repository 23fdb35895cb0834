// The engine and uniforms against store/torch/torch-rng.md, section 12 (PyTorch 1.13.1).
// Bits, not tolerances.

#include "store/torch/torch_rng.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tests/test_util.h"

namespace embstore {
namespace torch_rng_test {

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

}  // namespace torch_rng_test
}  // namespace embstore
