// The scoring kernel for AVX-512 (F, BW, VL) with F16C; called only when the
// CPU has them (score_portable.cc's ScoreBlock). One zmm holds the 16 lanes.

#include <immintrin.h>

#include <cmath>

#include "store/search/score_kernels.h"

namespace embstore {
namespace {

using V = __m512;
// Tiles: a batch takes 4 queries x 6 rows (24 accumulators of the 32
// registers); a single query 8 rows with their norms (16). A single query's
// rows are prefetched 16 KiB ahead into the level-2 cache (measured on
// 50,257 x 12,288 and 1,000,000 x 300 tables: 4 rows a tile or 8, 2 to 32
// KiB ahead, into level 1, 2 or 3).
constexpr size_t kQT = 4, kRT = 6, kRT1 = 8;
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
// Eight accumulators at once, by the same tree: each step adds the same
// pairs of lanes as ReduceOne, with the accumulators transposed into the
// lanes as they shrink (24 operations instead of 56).
inline void Reduce8(const V* a, float* out) {
  auto s8 = [](V x, V y) {  // lanes 0-7: x[l] + x[l+8]; lanes 8-15: y[l] + y[l+8]
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE));
  };
  auto s4 = [](V x, V y) {  // 128-bit blocks: x's two accumulators, then y's: s8[l] + s8[l+4]
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD));
  };
  const V c0 = s4(s8(a[0], a[1]), s8(a[2], a[3]));  // block b: accumulator b's s4
  const V c1 = s4(s8(a[4], a[5]), s8(a[6], a[7]));  // block b: accumulator 4 + b's s4
  // Block b: [s2[0], s2[1]] of accumulator b, then of 4 + b.
  const V e = _mm512_add_ps(_mm512_shuffle_ps(c0, c1, _MM_SHUFFLE(1, 0, 1, 0)),
                            _mm512_shuffle_ps(c0, c1, _MM_SHUFFLE(3, 2, 3, 2)));
  // Block b: the sums of accumulators b and 4 + b (twice).
  const V f = _mm512_add_ps(_mm512_shuffle_ps(e, e, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_ps(e, e, _MM_SHUFFLE(3, 1, 3, 1)));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, f);
  for (int b = 0; b < 4; ++b) {
    out[b] = lanes[4 * b];
    out[4 + b] = lanes[4 * b + 1];
  }
}
template <size_t N>
inline void Reduce(const V* acc, float* out) {
  if constexpr (N >= 8) {
    Reduce8(acc, out);
    Reduce<N - 8>(acc + 8, out + 8);
  } else {
    for (size_t i = 0; i < N; ++i) out[i] = ReduceOne(acc[i]);
  }
}

#include "store/search/score_kernel.inc"

}  // namespace

void ScoreBlockAvx512(const ScoreArgs& args) { ScoreBlockImpl(args); }

}  // namespace embstore
