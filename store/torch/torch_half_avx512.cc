// Built with -mavx512f -mavx512bw -mavx512vl; called only when the CPU has
// them (torch_half.cc). Table lookups only: the same bits as the portable
// loop by construction.

#include <immintrin.h>

#include <cstdint>

#include "store/torch/torch_half.h"

namespace embstore {

// bfloat16 fill path: each pair (k1 of lane j, k2 of lane j + 8) of a
// 16-draw block indexes pairs[k1 << 8 | k2] = cos-lane output | sin-lane
// output << 16. Two blocks per step: one 16-lane gather.
void BFloat16PairBlocksAvx512(const uint32_t* pairs, const uint32_t* d, uint16_t* out, uint64_t nblocks) {
  const __m512i low8 = _mm512_set1_epi32(0xFF);
  // Lanes 0-7 of a block with lanes 8-15 of the same block, for two blocks.
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i second = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  uint64_t b = 0;
  for (; b + 2 <= nblocks; b += 2, d += 32, out += 32) {
    const __m512i a = _mm512_and_si512(_mm512_loadu_si512(d), low8);
    const __m512i c = _mm512_and_si512(_mm512_loadu_si512(d + 16), low8);
    const __m512i k1 = _mm512_permutex2var_epi32(a, first, c);
    const __m512i k2 = _mm512_permutex2var_epi32(a, second, c);
    const __m512i idx = _mm512_or_si512(_mm512_slli_epi32(k1, 8), k2);
    const __m512i g = _mm512_i32gather_epi32(idx, pairs, 4);
    const __m256i cos = _mm512_cvtepi32_epi16(g);                         // block 0 lanes 0-7, block 1 lanes 0-7
    const __m256i sin = _mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16));  // their lanes 8-15
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(cos));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm256_castsi256_si128(sin));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm256_extracti128_si256(cos, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 24), _mm256_extracti128_si256(sin, 1));
  }
  for (; b < nblocks; ++b, d += 16, out += 16) {
    for (int j = 0; j < 8; ++j) {
      const uint32_t v = pairs[(d[j] & 0xFFu) << 8 | (d[j + 8] & 0xFFu)];
      out[j] = static_cast<uint16_t>(v);
      out[j + 8] = static_cast<uint16_t>(v >> 16);
    }
  }
}

}  // namespace embstore
