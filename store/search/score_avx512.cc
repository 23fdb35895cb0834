// The scoring kernel for AVX-512 (F, BW, VL) with F16C; called only when the
// CPU has them (score_portable.cc's ScoreBlock). One zmm holds the 16 lanes.

#include <immintrin.h>

#include "store/search/score_kernels.h"

namespace embstore {
namespace {

using V = __m512;
// Tiles: a batch takes 4 queries x 6 rows (24 accumulators of the 32
// registers); a single query 4 rows with their norms. Prefetch distance:
// 16 KiB (measured best of 8, 16 and 32 KiB on the 50,257 x 12,288 tables).
constexpr size_t kQT = 4, kRT = 6, kRT1 = 4;
constexpr size_t kPrefetch = 16384;
inline void Prefetch(const char* p) { _mm_prefetch(p, _MM_HINT_T1); }

inline __mmask16 Mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1); }
inline V Zero() { return _mm512_setzero_ps(); }
inline V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V LoadF32(const float* p) { return _mm512_loadu_ps(p); }
inline V LoadF32Partial(const float* p, size_t n) { return _mm512_maskz_loadu_ps(Mask(n), p); }
inline V LoadF16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline V LoadF16Partial(const uint16_t* p, size_t n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(Mask(n), p)); }
inline V WidenBF16(__m256i b) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)); }
inline V LoadBF16(const uint16_t* p) { return WidenBF16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline V LoadBF16Partial(const uint16_t* p, size_t n) { return WidenBF16(_mm256_maskz_loadu_epi16(Mask(n), p)); }

// The canonical tree, folding halves of the register onto each other.
inline float ReduceOne(V a) {
  const V s8 = _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, 0x4E));      // l + 8
  const V s4 = _mm512_add_ps(s8, _mm512_shuffle_f32x4(s8, s8, 0xB1));   // l + 4
  const V s2 = _mm512_add_ps(s4, _mm512_permute_ps(s4, 0x4E));          // l + 2
  return _mm512_cvtss_f32(_mm512_add_ps(s2, _mm512_permute_ps(s2, 0xB1)));  // l + 1
}
inline void Reduce(const V* acc, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = ReduceOne(acc[i]);
}

#include "store/search/score_kernel.inc"

}  // namespace

void ScoreBlockAvx512(const ScoreArgs& args) { ScoreBlockImpl(args); }

}  // namespace embstore
