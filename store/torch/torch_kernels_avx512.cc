// PyTorch's AVX2 normal kernel (torch-rng.md, section 7) computed 16 lanes
// at a time with AVX-512F: each lane does the same IEEE operations as in the
// AVX2 version, so the bits are identical; two 16-float blocks go through
// per step. Built with -mavx512f -mavx2 -mfma -ffp-contract=off; called only
// when the CPU has AVX-512F.

#include <immintrin.h>

#include <cmath>

#include "store/torch/torch_avx_constants.h"
#include "store/torch/torch_kernels.h"

namespace embstore {

namespace {

using namespace avx_constants;

inline __m512 C(uint32_t bits) { return _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(bits))); }
inline __m512 And(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
inline __m512 Or(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
inline __m512 Xor(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}

// Section 7.3. A lane mask selects where AVX2 ANDs with an all-ones mask;
// the unselected lanes get +0.0, as the AND gives.
inline __m512 Log16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  x = _mm512_max_ps(x, C(kMinNormPos));
  __m512i e_int = _mm512_srli_epi32(_mm512_castps_si512(x), 23);
  x = And(x, C(kInvMantMask));
  x = Or(x, C(kHalf));
  e_int = _mm512_sub_epi32(e_int, _mm512_set1_epi32(127));
  __m512 e = _mm512_add_ps(_mm512_cvtepi32_ps(e_int), one);
  const __mmask16 mask = _mm512_cmp_ps_mask(x, C(kSqrtHalf), _CMP_LT_OS);
  const __m512 t = _mm512_maskz_mov_ps(mask, x);
  x = _mm512_sub_ps(x, one);
  e = _mm512_sub_ps(e, _mm512_maskz_mov_ps(mask, one));
  x = _mm512_add_ps(x, t);
  const __m512 z = _mm512_mul_ps(x, x);
  __m512 y = _mm512_fmadd_ps(C(kLogP[0]), x, C(kLogP[1]));
  y = _mm512_fmadd_ps(y, x, C(kLogP[2]));
  y = _mm512_fmadd_ps(y, x, C(kLogP[3]));
  y = _mm512_fmadd_ps(y, x, C(kLogP[4]));
  y = _mm512_fmadd_ps(y, x, C(kLogP[5]));
  y = _mm512_fmadd_ps(y, x, C(kLogP[6]));
  y = _mm512_fmadd_ps(y, x, C(kLogP[7]));
  y = _mm512_fmadd_ps(y, x, C(kLogP[8]));
  y = _mm512_mul_ps(y, x);
  y = _mm512_fmadd_ps(y, z, _mm512_mul_ps(e, C(kLogQ1)));
  y = _mm512_fnmadd_ps(z, C(kHalf), y);
  x = _mm512_add_ps(x, y);
  return _mm512_fmadd_ps(e, C(kLogQ2), x);
}

// Section 7.4.
inline void SinCos16(__m512 x, __m512* s, __m512* c) {
  const __m512i two = _mm512_set1_epi32(2), four = _mm512_set1_epi32(4);
  __m512 sign_sin = And(x, C(kSignMask));
  x = And(x, C(kInvSignMask));
  __m512i j = _mm512_cvttps_epi32(_mm512_mul_ps(x, C(kFourOverPi)));
  j = _mm512_add_epi32(j, _mm512_set1_epi32(1));
  j = _mm512_and_si512(j, _mm512_set1_epi32(~1));
  const __m512 y = _mm512_cvtepi32_ps(j);
  const __m512 swap_sin = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_and_si512(j, four), 29));
  const __mmask16 poly = _mm512_cmpeq_epi32_mask(_mm512_and_si512(j, two), _mm512_setzero_si512());
  x = _mm512_fmadd_ps(y, C(kMinusDp1), x);
  x = _mm512_fmadd_ps(y, C(kMinusDp2), x);
  x = _mm512_fmadd_ps(y, C(kMinusDp3), x);
  const __m512 sign_cos =
      _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_andnot_si512(_mm512_sub_epi32(j, two), four), 29));
  sign_sin = Xor(sign_sin, swap_sin);
  const __m512 z = _mm512_mul_ps(x, x);
  __m512 yc = _mm512_fmadd_ps(C(kCosP[0]), z, C(kCosP[1]));
  yc = _mm512_fmadd_ps(yc, z, C(kCosP[2]));
  yc = _mm512_mul_ps(yc, z);
  yc = _mm512_fmsub_ps(yc, z, _mm512_mul_ps(z, C(kHalf)));
  yc = _mm512_add_ps(yc, _mm512_set1_ps(1.0f));
  __m512 ys = _mm512_fmadd_ps(C(kSinP[0]), z, C(kSinP[1]));
  ys = _mm512_fmadd_ps(ys, z, C(kSinP[2]));
  ys = _mm512_mul_ps(ys, z);
  ys = _mm512_fmadd_ps(ys, x, x);
  const __m512 s2 = _mm512_maskz_mov_ps(poly, ys);
  const __m512 s1 = _mm512_maskz_mov_ps(static_cast<__mmask16>(~poly), yc);
  ys = _mm512_sub_ps(ys, s2);
  yc = _mm512_sub_ps(yc, s1);
  *s = Xor(_mm512_add_ps(s1, s2), sign_sin);
  *c = Xor(_mm512_add_ps(yc, ys), sign_cos);
}

}  // namespace

// Two blocks A and B per step: u1 = (A[0..7], B[0..7]), u2 = (A[8..15],
// B[8..15]); results go back to the same places.
void NormalBlocksAvx2Avx512(float* d, uint64_t nblocks, float mean, float std) {
  const __m512 vmean = _mm512_set1_ps(mean), vstd = _mm512_set1_ps(std);
  const __m512 one = _mm512_set1_ps(1.0f), minus_two = _mm512_set1_ps(-2.0f);
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  uint64_t b = 0;
  for (; b + 2 <= nblocks; b += 2, d += 32) {
    const __m512 a = _mm512_loadu_ps(d), bb = _mm512_loadu_ps(d + 16);
    const __m512 u1 = _mm512_sub_ps(one, _mm512_permutex2var_ps(a, lo, bb));
    const __m512 u2 = _mm512_permutex2var_ps(a, hi, bb);
    const __m512 radius = _mm512_sqrt_ps(_mm512_mul_ps(minus_two, Log16(u1)));
    __m512 s, c;
    SinCos16(_mm512_mul_ps(C(kTwoPi), u2), &s, &c);
    const __m512 n1 = _mm512_fmadd_ps(_mm512_mul_ps(radius, c), vstd, vmean);  // lanes j of A, B
    const __m512 n2 = _mm512_fmadd_ps(_mm512_mul_ps(radius, s), vstd, vmean);  // lanes j+8 of A, B
    _mm512_storeu_ps(d, _mm512_permutex2var_ps(n1, lo, n2));
    _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(n1, hi, n2));
  }
  if (b < nblocks) NormalBlocksAvx2Avx2(d, nblocks - b, mean, std);
}

void UniformFusedAvx512(const float* u, float* out, uint64_t n, float low, float range) {
  for (uint64_t i = 0; i < n; ++i) out[i] = std::fmaf(u[i], range, low);
}

}  // namespace embstore
