// The scoring kernel for AVX2 with FMA and F16C; called only when the CPU
// has them (score_portable.cc's ScoreBlock). Two ymm hold the 16 lanes:
// lanes 0-7 and 8-15.

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "store/search/score_kernels.h"

namespace embstore {
namespace {

struct V {
  __m256 lo, hi;
};
constexpr size_t kPrefetch = 0;
[[maybe_unused]] inline void Prefetch(const char*) {}
constexpr size_t kQT = 2, kRT = 2, kRT1 = 3;

inline V Zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline V Fma(V a, V b, V c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
inline V LoadF32(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline V LoadF16(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline __m256 WidenBF16(__m128i b) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16)); }
inline V LoadBF16(const uint16_t* p) {
  return {WidenBF16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          WidenBF16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
// The last partial 16 elements go through a zeroed copy.
template <typename T, V (*Load)(const T*)>
inline V Partial(const T* p, size_t n) {
  T buf[16] = {};
  std::memcpy(buf, p, n * sizeof(T));
  return Load(buf);
}
inline V LoadF32Partial(const float* p, size_t n) { return Partial<float, LoadF32>(p, n); }
inline V LoadF16Partial(const uint16_t* p, size_t n) { return Partial<uint16_t, LoadF16>(p, n); }
inline V LoadBF16Partial(const uint16_t* p, size_t n) { return Partial<uint16_t, LoadBF16>(p, n); }

inline float ReduceOne(V a) {
  const __m256 s8 = _mm256_add_ps(a.lo, a.hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}
template <size_t N>
inline void Reduce(const V* acc, float* out) {
  for (size_t i = 0; i < N; ++i) out[i] = ReduceOne(acc[i]);
}

#include "store/search/score_kernel.inc"

}  // namespace

void ScoreBlockAvx2(const ScoreArgs& args) { ScoreBlockImpl(args); }

}  // namespace embstore
