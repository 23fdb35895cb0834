#include "store/embz/embz_codec_avx512.h"

#include <immintrin.h>

namespace embstore {

namespace {

constexpr uint32_t kScaleBits = 12;
constexpr uint32_t kTotal = 1u << kScaleBits;
constexpr uint32_t kLow = 1u << 16;

// One step of one 16-lane stream (FORMAT.md, ".embz frames"): gather the 16
// slot entries, emit the symbols, advance the states, and hand the next
// words of the stream to the lanes below 2^16, in lane order (an expand).
// Each stream is its own dependency chain; the caller interleaves two.
inline __attribute__((always_inline)) void Step16(const uint32_t* slots, __m512i& x, const uint8_t*& p, uint8_t* o) {
  const __m512i field = _mm512_set1_epi32(kTotal - 1);
  const __m512i e = _mm512_i32gather_epi32(_mm512_and_si512(x, field), slots, 4);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm512_cvtepi32_epi8(e));
  const __m512i q = _mm512_srli_epi32(x, kScaleBits);
  const __m512i f1 = _mm512_srli_epi32(e, 20);  // freq - 1
  const __m512i bias = _mm512_and_si512(_mm512_srli_epi32(e, 8), field);
  x = _mm512_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(f1, q), q), bias);
  const __mmask16 need = _mm512_cmplt_epu32_mask(x, _mm512_set1_epi32(kLow));
  const __m512i words = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  x = _mm512_mask_or_epi32(x, need, _mm512_slli_epi32(x, 16), _mm512_maskz_expand_epi32(need, words));
  p += 2 * static_cast<unsigned>(__builtin_popcount(need));
}

}  // namespace

size_t RansDecode32Avx512(const uint32_t* slots, uint32_t* x, const uint8_t** p, const uint8_t* const* end,
                          uint8_t* out, size_t n) {
  __m512i x0 = _mm512_loadu_si512(x);
  __m512i x1 = _mm512_loadu_si512(x + 16);
  const uint8_t* p0 = p[0];
  const uint8_t* p1 = p[1];
  size_t i = 0;
  for (; i + 32 <= n && end[0] - p0 >= 32 && end[1] - p1 >= 32; i += 32) {
    Step16(slots, x0, p0, out + i);
    Step16(slots, x1, p1, out + i + 16);
  }
  _mm512_storeu_si512(x, x0);
  _mm512_storeu_si512(x + 16, x1);
  p[0] = p0;
  p[1] = p1;
  return i;
}

}  // namespace embstore
