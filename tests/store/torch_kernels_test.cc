// The three implementations of PyTorch's AVX2 normal kernel (portable,
// AVX2, AVX-512) agree bit for bit on every possible input: a uniform is one
// of 2^24 values, u1 and u2 enter the transform separately, so two sweeps of
// 2^24 lanes cover every log input and every sincos input.

#include "store/torch/torch_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/test_util.h"

namespace embstore {
namespace torch_kernels_test {

using testing::FloatBits;

// Blocks whose lanes 0-7 hold u = k/2^24 for consecutive k (so u1 = 1 - u
// sweeps all values) and lanes 8-15 a scrambled k' (every value once too).
std::vector<float> SweepBlocks(uint32_t first_k, uint32_t lanes) {
  std::vector<float> d(lanes * 2);
  for (uint32_t i = 0; i < lanes; ++i) {
    const uint32_t k = first_k + i;
    const uint32_t k2 = (k * 2654435761u) & 0xFFFFFF;  // odd multiplier: a permutation mod 2^24
    const uint32_t block = i / 8, lane = i % 8;
    d[block * 16 + lane] = static_cast<float>(k & 0xFFFFFF) * 0x1.0p-24f;
    d[block * 16 + 8 + lane] = static_cast<float>(k2) * 0x1.0p-24f;
  }
  return d;
}

void ExpectSameBits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  size_t diffs = 0, first = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (FloatBits(a[i]) != FloatBits(b[i]) && diffs++ == 0) first = i;
  }
  EXPECT_EQ(diffs, 0u) << what << ": first difference at " << first << ": " << std::hex << FloatBits(a[first])
                       << " vs " << FloatBits(b[first]);
}

TEST(TorchKernelsTest, VectorKernelsMatchPortableOnEveryInput) {
  const bool avx2 = CpuHas(Isa::kAvx2), avx512 = CpuHas(Isa::kAvx512);
  if (!avx2) GTEST_SKIP() << "this CPU has no AVX2: only the portable kernel can run here";
  constexpr uint32_t kSlice = 1 << 20;
  for (float std : {1.0f, 0.02f}) {
    const float mean = std == 1.0f ? 0.0f : 0.5f;
    for (uint32_t k = 0; k < (1u << 24); k += kSlice) {
      auto portable = SweepBlocks(k, kSlice);
      auto v2 = portable, v512 = portable;
      NormalBlocksAvx2Portable(portable.data(), kSlice / 8, mean, std);
      NormalBlocksAvx2Avx2(v2.data(), kSlice / 8, mean, std);
      ExpectSameBits(portable, v2, "avx2 vs portable");
      if (avx512) {
        NormalBlocksAvx2Avx512(v512.data(), kSlice / 8, mean, std);
        ExpectSameBits(portable, v512, "avx512 vs portable");
      }
      if (HasFailure()) return;
    }
  }
}

TEST(TorchKernelsTest, OddBlockCountsOnAvx512) {
  if (!CpuHas(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 here";
  for (uint64_t blocks : {1, 2, 3, 5}) {
    auto a = SweepBlocks(12345, static_cast<uint32_t>(blocks * 8)), b = a;
    NormalBlocksAvx2Avx512(a.data(), blocks, 0, 1);
    NormalBlocksAvx2Portable(b.data(), blocks, 0, 1);
    ExpectSameBits(a, b, "odd block count");
  }
}

TEST(TorchKernelsTest, UniformFusedMatchesFmaf) {
  std::vector<float> u(1 << 16);
  for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<float>((i * 2654435761u) & 0xFFFFFF) * 0x1.0p-24f;
  std::vector<float> want(u.size()), got(u.size());
  const float low = -0.3f, range = 0.3f - low;
  for (size_t i = 0; i < u.size(); ++i) want[i] = std::fmaf(u[i], range, low);
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (!CpuHas(isa)) continue;
    UniformTransform(TorchKernel::kAvx2, isa, u.data(), got.data(), u.size(), low, range);
    ExpectSameBits(want, got, IsaName(isa));
  }
  // The scalar kernel rounds twice; on these inputs that differs somewhere.
  UniformTransform(TorchKernel::kScalar, Isa::kPortable, u.data(), got.data(), u.size(), low, range);
  size_t differ = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    volatile float prod = u[i] * range;
    EXPECT_EQ(FloatBits(got[i]), FloatBits(prod + low));
    differ += FloatBits(got[i]) != FloatBits(want[i]);
  }
  EXPECT_GT(differ, 0u);
}

}  // namespace torch_kernels_test
}  // namespace embstore
