// Built with -mavx2 -mf16c; called only when the CPU has them (half.cc).

#include <immintrin.h>

#include "format/half.h"
#include "store/core/half.h"

namespace embstore {

void F32ToF16Avx2(const float* in, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(in + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0) {
      for (size_t k = i; k < i + 8; ++k) out[k] = FloatToHalf(in[k]);  // NaN: 0x7E00 with the sign
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

void F16ToF32Avx2(const uint16_t* in, float* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  }
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

namespace {
inline __m256i RoundBF16(__m256 x, __m256i nan) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  return _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
}
}  // namespace

void F32ToBF16Avx2(const float* in, uint16_t* out, size_t n, uint16_t nan) {
  const __m256i nanv = _mm256_set1_epi32(nan);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = RoundBF16(_mm256_loadu_ps(in + i), nanv);
    const __m256i b = RoundBF16(_mm256_loadu_ps(in + i + 8), nanv);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), packed);
  }
  for (; i < n; ++i) {
    const uint16_t v = FloatToBFloat16(in[i]);
    out[i] = in[i] != in[i] ? nan : v;
  }
}

void BF16ToF32Avx2(const uint16_t* in, float* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_slli_epi32(w, 16));
  }
  for (; i < n; ++i) out[i] = BFloat16ToFloat(in[i]);
}

}  // namespace embstore
