// Built with -ffp-contract=off (CMakeLists.txt): every multiply and add here
// is rounded where torch-rng.md says, and every fusion is an explicit fmaf.

#include "store/torch/torch_kernels.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "format/half.h"
#include "store/torch/torch_avx_constants.h"

namespace embstore {

namespace {

using namespace avx_constants;

inline float F(uint32_t bits) { return BitsFloat(bits); }
inline uint32_t B(float f) { return FloatBits(f); }

// Section 7.3, one lane. x > 0 here (u1 is in [2^-24, 1]).
float Log8(float x) {
  x = x > F(kMinNormPos) ? x : F(kMinNormPos);  // _mm256_max_ps(x, min_norm_pos)
  const int32_t e_int = static_cast<int32_t>(B(x) >> 23) - 127;
  x = F((B(x) & kInvMantMask) | kHalf);
  float e = static_cast<float>(e_int) + 1.0f;
  const bool m = x < F(kSqrtHalf);
  const float t = m ? x : 0.0f;
  x = x - 1.0f;
  e = e - (m ? 1.0f : 0.0f);
  x = x + t;
  const float z = x * x;
  float y = std::fmaf(F(kLogP[0]), x, F(kLogP[1]));
  for (int k = 2; k <= 8; ++k) y = std::fmaf(y, x, F(kLogP[k]));
  y = y * x;
  const float tmp = e * F(kLogQ1);
  y = std::fmaf(y, z, tmp);
  y = std::fmaf(-z, 0.5f, y);
  x = x + y;
  x = std::fmaf(e, F(kLogQ2), x);
  return x;
}

// Section 7.4, one lane. x = theta in [0, 2pi).
void SinCos8(float x, float* s, float* c) {
  uint32_t sign_sin = B(x) & kSignMask;
  x = F(B(x) & kInvSignMask);
  int32_t j = static_cast<int32_t>(x * F(kFourOverPi));  // cvtt: truncation
  j = (j + 1) & ~1;
  const float y = static_cast<float>(j);
  const uint32_t swap_sin = static_cast<uint32_t>(j & 4) << 29;
  const bool poly = (j & 2) == 0;
  x = std::fmaf(y, F(kMinusDp1), x);
  x = std::fmaf(y, F(kMinusDp2), x);
  x = std::fmaf(y, F(kMinusDp3), x);
  const uint32_t sign_cos = static_cast<uint32_t>(~(j - 2) & 4) << 29;
  sign_sin ^= swap_sin;
  const float z = x * x;
  float yc = std::fmaf(F(kCosP[0]), z, F(kCosP[1]));
  yc = std::fmaf(yc, z, F(kCosP[2]));
  yc = yc * z;
  const float h = z * 0.5f;
  yc = std::fmaf(yc, z, -h);
  yc = yc + 1.0f;
  float ys = std::fmaf(F(kSinP[0]), z, F(kSinP[1]));
  ys = std::fmaf(ys, z, F(kSinP[2]));
  ys = ys * z;
  ys = std::fmaf(ys, x, x);
  // The selection, with the exact sequence that fixes the signs of zero.
  const float s2 = poly ? ys : 0.0f;
  const float s1 = poly ? 0.0f : yc;
  ys = ys - s2;
  yc = yc - s1;
  *s = F(B(s1 + s2) ^ sign_sin);
  *c = F(B(yc + ys) ^ sign_cos);
}

}  // namespace

const char* TorchKernelName(TorchKernel kernel) {
  switch (kernel) {
    case TorchKernel::kAvx2: return "avx2";
    case TorchKernel::kScalar: return "scalar";
  }
  return "unknown";
}

float Avx2RadiusPortable(float u1) { return std::sqrt(-2.0f * Log8(u1)); }

void Avx2SinCosPortable(float u2, float* s, float* c) { SinCos8(F(kTwoPi) * u2, s, c); }

// Section 7.2, eight lanes at a time, one lane per iteration.
void NormalBlocksAvx2Portable(float* d, uint64_t nblocks, float mean, float std) {
  for (uint64_t b = 0; b < nblocks; ++b, d += 16) {
    for (int j = 0; j < 8; ++j) {
      const float radius = Avx2RadiusPortable(1.0f - d[j]);
      float s, c;
      Avx2SinCosPortable(d[j + 8], &s, &c);
      d[j] = std::fmaf(radius * c, std, mean);
      d[j + 8] = std::fmaf(radius * s, std, mean);
    }
  }
}

// Section 6.1: glibc's logf, sinf, cosf; every operation rounded.
void NormalBlocksScalar(float* d, uint64_t nblocks, float mean, float std) {
  constexpr double kTwoPiDouble = 2.0 * 3.14159265358979323846;  // 0x401921FB54442D18
  for (uint64_t b = 0; b < nblocks; ++b, d += 16) {
    for (int j = 0; j < 8; ++j) {
      const float u1 = 1.0f - d[j];
      const float u2 = d[j + 8];
      const float radius = std::sqrt(-2.0f * std::log(u1));
      // The angle is a double product narrowed to float.
      const float theta = static_cast<float>(kTwoPiDouble * static_cast<double>(u2));
      d[j] = radius * std::cos(theta) * std + mean;
      d[j + 8] = radius * std::sin(theta) * std + mean;
    }
  }
}

void NormalBlocks(TorchKernel kernel, Isa isa, float* d, uint64_t nblocks, float mean, float std) {
  if (kernel == TorchKernel::kScalar) return NormalBlocksScalar(d, nblocks, mean, std);
  switch (isa) {
    case Isa::kAvx512: return NormalBlocksAvx2Avx512(d, nblocks, mean, std);
    case Isa::kAvx2: return NormalBlocksAvx2Avx2(d, nblocks, mean, std);
    case Isa::kPortable: return NormalBlocksAvx2Portable(d, nblocks, mean, std);
  }
}

void UniformTransform(TorchKernel kernel, Isa isa, const float* u, float* out, uint64_t n, float low,
                      float range) {
  if (kernel == TorchKernel::kScalar) {
    for (uint64_t i = 0; i < n; ++i) out[i] = u[i] * range + low;  // not fused (-ffp-contract=off)
    return;
  }
  switch (isa) {
    case Isa::kAvx512: return UniformFusedAvx512(u, out, n, low, range);
    case Isa::kAvx2: return UniformFusedAvx2(u, out, n, low, range);
    case Isa::kPortable:
      for (uint64_t i = 0; i < n; ++i) out[i] = std::fmaf(u[i], range, low);
      return;
  }
}

}  // namespace embstore
