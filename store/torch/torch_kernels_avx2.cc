// PyTorch's AVX2 normal kernel (torch-rng.md, section 7) with AVX2 and FMA
// intrinsics. Built with -mavx2 -mfma -ffp-contract=off: the FMAs are the
// explicit _mm256_fmadd_ps calls below and nothing else is fused. Called
// only when the CPU has AVX2 and FMA (torch_kernels.cc decides).

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "store/torch/torch_avx_constants.h"
#include "store/torch/torch_kernels.h"

namespace embstore {

namespace {

using namespace avx_constants;

inline __m256 C(uint32_t bits) { return _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(bits))); }

// Section 7.3.
inline __m256 Log8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  x = _mm256_max_ps(x, C(kMinNormPos));
  __m256i e_int = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
  x = _mm256_and_ps(x, C(kInvMantMask));
  x = _mm256_or_ps(x, C(kHalf));
  e_int = _mm256_sub_epi32(e_int, _mm256_set1_epi32(127));
  __m256 e = _mm256_add_ps(_mm256_cvtepi32_ps(e_int), one);
  const __m256 mask = _mm256_cmp_ps(x, C(kSqrtHalf), _CMP_LT_OS);
  const __m256 t = _mm256_and_ps(x, mask);
  x = _mm256_sub_ps(x, one);
  e = _mm256_sub_ps(e, _mm256_and_ps(one, mask));
  x = _mm256_add_ps(x, t);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_fmadd_ps(C(kLogP[0]), x, C(kLogP[1]));
  y = _mm256_fmadd_ps(y, x, C(kLogP[2]));
  y = _mm256_fmadd_ps(y, x, C(kLogP[3]));
  y = _mm256_fmadd_ps(y, x, C(kLogP[4]));
  y = _mm256_fmadd_ps(y, x, C(kLogP[5]));
  y = _mm256_fmadd_ps(y, x, C(kLogP[6]));
  y = _mm256_fmadd_ps(y, x, C(kLogP[7]));
  y = _mm256_fmadd_ps(y, x, C(kLogP[8]));
  y = _mm256_mul_ps(y, x);
  y = _mm256_fmadd_ps(y, z, _mm256_mul_ps(e, C(kLogQ1)));
  y = _mm256_fnmadd_ps(z, C(kHalf), y);
  x = _mm256_add_ps(x, y);
  return _mm256_fmadd_ps(e, C(kLogQ2), x);
}

// Section 7.4.
inline void SinCos8(__m256 x, __m256* s, __m256* c) {
  const __m256i two = _mm256_set1_epi32(2), four = _mm256_set1_epi32(4);
  __m256 sign_sin = _mm256_and_ps(x, C(kSignMask));
  x = _mm256_and_ps(x, C(kInvSignMask));
  __m256i j = _mm256_cvttps_epi32(_mm256_mul_ps(x, C(kFourOverPi)));
  j = _mm256_add_epi32(j, _mm256_set1_epi32(1));
  j = _mm256_and_si256(j, _mm256_set1_epi32(~1));
  const __m256 y = _mm256_cvtepi32_ps(j);
  const __m256 swap_sin = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(j, four), 29));
  const __m256 poly = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(j, two), _mm256_setzero_si256()));
  x = _mm256_fmadd_ps(y, C(kMinusDp1), x);
  x = _mm256_fmadd_ps(y, C(kMinusDp2), x);
  x = _mm256_fmadd_ps(y, C(kMinusDp3), x);
  const __m256 sign_cos =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_andnot_si256(_mm256_sub_epi32(j, two), four), 29));
  sign_sin = _mm256_xor_ps(sign_sin, swap_sin);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 yc = _mm256_fmadd_ps(C(kCosP[0]), z, C(kCosP[1]));
  yc = _mm256_fmadd_ps(yc, z, C(kCosP[2]));
  yc = _mm256_mul_ps(yc, z);
  yc = _mm256_fmsub_ps(yc, z, _mm256_mul_ps(z, C(kHalf)));
  yc = _mm256_add_ps(yc, _mm256_set1_ps(1.0f));
  __m256 ys = _mm256_fmadd_ps(C(kSinP[0]), z, C(kSinP[1]));
  ys = _mm256_fmadd_ps(ys, z, C(kSinP[2]));
  ys = _mm256_mul_ps(ys, z);
  ys = _mm256_fmadd_ps(ys, x, x);
  const __m256 s2 = _mm256_and_ps(poly, ys);
  const __m256 s1 = _mm256_andnot_ps(poly, yc);
  ys = _mm256_sub_ps(ys, s2);
  yc = _mm256_sub_ps(yc, s1);
  *s = _mm256_xor_ps(_mm256_add_ps(s1, s2), sign_sin);
  *c = _mm256_xor_ps(_mm256_add_ps(yc, ys), sign_cos);
}

}  // namespace

// Section 7.2, one 16-float block per step.
void NormalBlocksAvx2Avx2(float* d, uint64_t nblocks, float mean, float std) {
  const __m256 vmean = _mm256_set1_ps(mean), vstd = _mm256_set1_ps(std);
  const __m256 one = _mm256_set1_ps(1.0f), minus_two = _mm256_set1_ps(-2.0f);
  for (uint64_t b = 0; b < nblocks; ++b, d += 16) {
    const __m256 u1 = _mm256_sub_ps(one, _mm256_loadu_ps(d));
    const __m256 u2 = _mm256_loadu_ps(d + 8);
    const __m256 radius = _mm256_sqrt_ps(_mm256_mul_ps(minus_two, Log8(u1)));
    __m256 s, c;
    SinCos8(_mm256_mul_ps(C(kTwoPi), u2), &s, &c);
    _mm256_storeu_ps(d, _mm256_fmadd_ps(_mm256_mul_ps(radius, c), vstd, vmean));
    _mm256_storeu_ps(d + 8, _mm256_fmadd_ps(_mm256_mul_ps(radius, s), vstd, vmean));
  }
}

void UniformFusedAvx2(const float* u, float* out, uint64_t n, float low, float range) {
  // -mfma makes std::fmaf a single vfmadd; the loop vectorizes.
  for (uint64_t i = 0; i < n; ++i) out[i] = std::fmaf(u[i], range, low);
}

}  // namespace embstore
