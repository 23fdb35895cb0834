// Built with -mavx512f -mavx512bw -mavx512vl -mf16c; called only when the
// CPU has them (half.cc). Tails use masked loads and stores.

#include <immintrin.h>

#include "store/core/half.h"

#include <cstdint>

namespace embstore {

namespace {
inline __mmask16 Tail(size_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }
}  // namespace

void StoreFenceAvx512() { _mm_sfence(); }

void F32ToF16Avx512(const float* in, uint16_t* out, size_t n) {
  const __m512i quiet = _mm512_set1_epi32(0x7E00);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = Tail(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, in + i);
    __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    if (nan != 0) {  // PyTorch's NaN: 0x7E00 with the sign, no payload
      const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(x), 16), _mm512_set1_epi32(0x8000));
      const __m256i fix = _mm512_cvtepi32_epi16(_mm512_or_si512(sign, quiet));
      h = _mm256_mask_blend_epi16(nan, h, fix);
    }
    _mm256_mask_storeu_epi16(out + i, m, h);
  }
}

// Widening writes twice the bytes it reads; into an output larger than the
// caches, non-temporal stores (no read for ownership) save a third of the
// traffic. A head of elements brings out to a 64-byte boundary.
template <typename Widen>
void WidenStream(const uint16_t* in, float* out, size_t n, Widen widen) {
  size_t i = 0;
  const size_t head = ((64 - (reinterpret_cast<uintptr_t>(out) & 63)) & 63) / 4;
  if ((reinterpret_cast<uintptr_t>(out) & 3) != 0 || head >= n) {
    i = 0;  // not float-aligned, or too short: cached stores only
  } else {
    if (head > 0) {
      const __mmask16 m = Tail(head);
      _mm512_mask_storeu_ps(out, m, widen(_mm256_maskz_loadu_epi16(m, in)));
      i = head;
    }
    for (; i + 16 <= n; i += 16) _mm512_stream_ps(out + i, widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = Tail(n - i);
    _mm512_mask_storeu_ps(out + i, m, widen(_mm256_maskz_loadu_epi16(m, in + i)));
  }
}

namespace {
__m512 WidenF16(__m256i h) { return _mm512_cvtph_ps(h); }
__m512 WidenBF16(__m256i b) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16)); }
}  // namespace

void F16ToF32StreamAvx512(const uint16_t* in, float* out, size_t n) { WidenStream(in, out, n, WidenF16); }
void BF16ToF32StreamAvx512(const uint16_t* in, float* out, size_t n) { WidenStream(in, out, n, WidenBF16); }

void F16ToF32Avx512(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = Tail(n - i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, in + i)));
  }
}

void F32ToBF16Avx512(const float* in, uint16_t* out, size_t n, uint16_t nan) {
  const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF), nanv = _mm512_set1_epi32(nan);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = Tail(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, in + i);
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, bias), lsb), 16);
    r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, nanv);
    _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtepi32_epi16(r));
  }
}

void BF16ToF32Avx512(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = Tail(n - i);
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, in + i));
    _mm512_mask_storeu_ps(out + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
}

}  // namespace embstore
