// float16 / bfloat16 conversion: format/half.h (the definition) against an
// independent reference that rounds with the FPU in double precision, over
// every one of the 2^32 float32 bit patterns; and the vector kernels of
// store/core/half.h (F16C/AVX2, AVX-512) against format/half.h, over the
// same 2^32 patterns and all 2^16 half patterns. PyTorch itself is the
// oracle for the special classes in tests/tools/half_torch_test.py.

#include <gtest/gtest.h>

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "format/half.h"
#include "store/core/half.h"

namespace embstore {
namespace half_test {

double BitsDouble(uint64_t u) {
  double d;
  std::memcpy(&d, &u, 8);
  return d;
}
uint64_t DoubleBits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}
double Pow2(int e) { return BitsDouble(static_cast<uint64_t>(e + 1023) << 52); }

// v (>= 0) rounded to a multiple of 2^e by the FPU, in its default mode
// (round to nearest, ties to even): v * 2^-e is exact, and adding then
// subtracting 2^52 rounds it to an integer, once.
double RoundTo(double v, int e) {
  const double scaled = v * Pow2(-e);
  return ((scaled + 0x1p52) - 0x1p52) * Pow2(e);
}

// The exponent of a finite float32 (its unbiased field; -127 for zero and
// subnormals).
int FloatExponent(uint32_t bits) { return static_cast<int>((bits >> 23) & 0xFF) - 127; }

// float32 -> float16 by the definition: round the value to 11 significant
// bits (or to a multiple of 2^-24 below 2^-14), then encode the double.
// Written with selects, not branches: each runs 2^32 times.
inline uint16_t ReferenceHalf(uint32_t bits) {
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7FFFFFFFu;
  const int e = std::min(std::max(FloatExponent(bits), -14), 16);  // 2^16 and up become infinity below
  const double r = RoundTo(static_cast<double>(BitsFloat(abs)), e - 10);  // infinity stays infinity
  const uint64_t d = DoubleBits(r);
  const uint32_t normal = (static_cast<uint32_t>(d >> 52) - 1023 + 15) << 10 | (static_cast<uint32_t>(d >> 42) & 0x3FFu);
  const uint32_t subnormal = static_cast<uint32_t>(std::min(r, 1024.0 * 0x1p-24) * 0x1p24);
  uint32_t out = r < 0x1p-14 ? subnormal : normal;
  out = r > 65504.0 ? 0x7C00u : out;
  out = abs > 0x7F800000u ? 0x7E00u : out;  // PyTorch's NaN
  return static_cast<uint16_t>(sign | out);
}

// float32 -> bfloat16 by the definition: 8 significant bits (steps of
// 2^-133 below 2^-126); past the largest bfloat16, infinity (the float
// conversion overflows). Also without branches.
inline uint16_t ReferenceBFloat16(uint32_t bits) {
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7FFFFFFFu;
  const int e = std::max(FloatExponent(bits), -126);
  const double r = RoundTo(static_cast<double>(BitsFloat(abs)), e - 7);
  const uint32_t rounded = sign | FloatBits(static_cast<float>(r)) >> 16;  // exact, or infinity
  return static_cast<uint16_t>(abs > 0x7F800000u ? 0xFFFFu : rounded);  // PyTorch's NaN
}

#if defined(__x86_64__)
// The same two references, eight patterns at a time in AVX-512 doubles: the
// same steps (the value as a double, scaled to the rounding position by an
// exact power of two, rounded by adding and subtracting 2^52, scaled back,
// encoded from the double's or float's bits), for the 2^32 patterns' sake.
// (GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on _mm512_undefined.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define EMBSTORE_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
EMBSTORE_AVX512 inline __m512d Pow2x8(__m256i e) {  // 2^e for eight int32 e, as doubles
  return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(e), _mm512_set1_epi64(1023)), 52));
}
EMBSTORE_AVX512 inline __m512d RoundTox8(__m512d v, __m256i e) {  // v rounded to a multiple of 2^e
  const __m512d two52 = _mm512_set1_pd(0x1p52);
  const __m512d scaled = _mm512_mul_pd(v, Pow2x8(_mm256_sub_epi32(_mm256_setzero_si256(), e)));
  return _mm512_mul_pd(_mm512_sub_pd(_mm512_add_pd(scaled, two52), two52), Pow2x8(e));
}

EMBSTORE_AVX512 void ReferencesAvx512(const uint32_t* in, uint16_t* half, uint16_t* bf16, uint64_t n) {
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF));
    const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x8000));
    const __mmask8 nan = _mm256_cmpgt_epu32_mask(abs, _mm256_set1_epi32(0x7F800000));
    const __m256i exp = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xFF)),
                                         _mm256_set1_epi32(127));
    const __m512d v = _mm512_cvtps_pd(_mm256_castsi256_ps(abs));
    // bfloat16.
    const __m512d rb = RoundTox8(v, _mm256_sub_epi32(_mm256_max_epi32(exp, _mm256_set1_epi32(-126)), _mm256_set1_epi32(7)));
    __m256i b = _mm256_or_si256(sign, _mm256_srli_epi32(_mm256_castps_si256(_mm512_cvtpd_ps(rb)), 16));
    b = _mm256_mask_blend_epi32(nan, b, _mm256_set1_epi32(0xFFFF));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(bf16 + i), _mm256_cvtepi32_epi16(b));
    // float16.
    const __m256i eh = _mm256_min_epi32(_mm256_max_epi32(exp, _mm256_set1_epi32(-14)), _mm256_set1_epi32(16));
    const __m512d rh = RoundTox8(v, _mm256_sub_epi32(eh, _mm256_set1_epi32(10)));
    const __m512i d = _mm512_castpd_si512(rh);
    const __m512i normal = _mm512_or_si512(
        _mm512_slli_epi64(_mm512_sub_epi64(_mm512_srli_epi64(d, 52), _mm512_set1_epi64(1023 - 15)), 10),
        _mm512_and_si512(_mm512_srli_epi64(d, 42), _mm512_set1_epi64(0x3FF)));
    __m256i h = _mm512_cvtepi64_epi32(normal);
    const __m512d sub = _mm512_mul_pd(_mm512_min_pd(rh, _mm512_set1_pd(0x1p-14)), _mm512_set1_pd(0x1p24));
    h = _mm256_mask_blend_epi32(_mm512_cmp_pd_mask(rh, _mm512_set1_pd(0x1p-14), _CMP_LT_OQ), h,
                                _mm512_cvttpd_epi32(sub));
    h = _mm256_mask_blend_epi32(_mm512_cmp_pd_mask(rh, _mm512_set1_pd(65504.0), _CMP_GT_OQ), h,
                                _mm256_set1_epi32(0x7C00));
    h = _mm256_mask_blend_epi32(nan, h, _mm256_set1_epi32(0x7E00));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(half + i), _mm256_cvtepi32_epi16(_mm256_or_si256(sign, h)));
  }
  for (; i < n; ++i) {
    half[i] = ReferenceHalf(in[i]);
    bf16[i] = ReferenceBFloat16(in[i]);
  }
}
#undef EMBSTORE_AVX512
#pragma GCC diagnostic pop
#endif

// The references over n patterns (eight at a time where the CPU can).
void References(const uint32_t* in, uint16_t* half, uint16_t* bf16, uint64_t n) {
#if defined(__x86_64__)
  if (CpuHas(Isa::kAvx512)) return ReferencesAvx512(in, half, bf16, n);
#endif
  for (uint64_t i = 0; i < n; ++i) half[i] = ReferenceHalf(in[i]);
  for (uint64_t i = 0; i < n; ++i) bf16[i] = ReferenceBFloat16(in[i]);
}

// Under a sanitizer every 4099th pattern (the instrumented loops would take
// minutes); otherwise all of them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr uint64_t kStride = 4099;
#else
constexpr uint64_t kStride = 1;
#endif

TEST(HalfTest, EveryFloatRoundsAsTheDefinitionSays) {
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512})
    if (CpuHas(isa)) isas.push_back(isa);
  constexpr uint64_t kPiece = uint64_t{1} << 20;
  std::atomic<uint64_t> bad{0}, checked{0};
  auto run = [&](uint64_t worker) {
    std::vector<uint32_t> in(kPiece);
    std::vector<std::vector<uint16_t>> h(isas.size(), std::vector<uint16_t>(kPiece)), b = h;
    std::vector<uint16_t> rh(kPiece), rb(kPiece);
    for (uint64_t first = worker * kPiece * kStride; first < (uint64_t{1} << 32); first += 2 * kPiece * kStride) {
      const uint64_t n = std::min(kPiece, ((uint64_t{1} << 32) - first + kStride - 1) / kStride);
      for (uint64_t i = 0; i < n; ++i) in[i] = static_cast<uint32_t>(first + i * kStride);
      for (size_t k = 0; k < isas.size(); ++k) {  // an odd length first, so the kernels' tails run too
        ConvertElements(Dtype::kFloat32, in.data(), Dtype::kFloat16, h[k].data(), n - 3, isas[k]);
        ConvertElements(Dtype::kFloat32, in.data() + n - 3, Dtype::kFloat16, h[k].data() + n - 3, 3, isas[k]);
        ConvertElements(Dtype::kFloat32, in.data(), Dtype::kBFloat16, b[k].data(), n - 3, isas[k]);
        ConvertElements(Dtype::kFloat32, in.data() + n - 3, Dtype::kBFloat16, b[k].data() + n - 3, 3, isas[k]);
      }
      // Every kernel gives the portable one's bits, which give the reference's.
      uint64_t wrong = 0;
      for (size_t k = 1; k < isas.size(); ++k) {
        wrong += std::memcmp(h[k].data(), h[0].data(), n * 2) != 0;
        wrong += std::memcmp(b[k].data(), b[0].data(), n * 2) != 0;
      }
      References(in.data(), rh.data(), rb.data(), n);
      wrong += std::memcmp(rh.data(), h[0].data(), n * 2) != 0;
      wrong += std::memcmp(rb.data(), b[0].data(), n * 2) != 0;
      if (wrong != 0 && bad == 0) ADD_FAILURE() << "a piece with a mismatch starts at " << first;
      bad += wrong;
      checked += n;
    }
  };
  std::thread other(run, 1);
  run(0);
  other.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(checked.load(), ((uint64_t{1} << 32) + kStride - 1) / kStride);
}

TEST(HalfTest, WideningIsExactOnEveryHalf) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = all[i];
    const float f = HalfToFloat(h);
    const int exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    if (exp == 0x1F && mant != 0) {
      // NaN, quieted, payload kept (as F16C and PyTorch give it).
      EXPECT_EQ(FloatBits(f), (uint32_t{h & 0x8000u} << 16) | 0x7FC00000u | (uint32_t(mant) << 13)) << h;
      continue;
    }
    const double want = exp == 0x1F ? INFINITY : exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
    EXPECT_EQ(static_cast<double>(f), (h & 0x8000) ? -want : want) << h;
    EXPECT_EQ(FloatToHalf(f), h) << h;  // and back
    const float b = BFloat16ToFloat(h);
    EXPECT_EQ(FloatBits(b), uint32_t{h} << 16);
    if (!std::isnan(b)) {
      EXPECT_EQ(FloatToBFloat16(b), h);
    }
  }
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (!CpuHas(isa)) continue;
    std::vector<float> f16(65536), bf16(65536);
    ConvertElements(Dtype::kFloat16, all.data(), Dtype::kFloat32, f16.data(), all.size(), isa);
    ConvertElements(Dtype::kBFloat16, all.data(), Dtype::kFloat32, bf16.data(), all.size(), isa);
    for (uint32_t i = 0; i < 65536; ++i) {
      ASSERT_EQ(FloatBits(f16[i]), FloatBits(HalfToFloat(all[i]))) << IsaName(isa) << " " << i;
      ASSERT_EQ(FloatBits(bf16[i]), FloatBits(BFloat16ToFloat(all[i]))) << IsaName(isa) << " " << i;
    }
  }
}

// float16 <-> bfloat16 goes through float32, as PyTorch's cast does; a
// float16 NaN becomes 0x7FC0 (PyTorch's scalar path), not 0xFFFF.
TEST(HalfTest, HalfToHalfGoesThroughFloat) {
  std::vector<uint16_t> all(65536), out(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (!CpuHas(isa)) continue;
    ConvertElements(Dtype::kFloat16, all.data(), Dtype::kBFloat16, out.data(), all.size(), isa);
    for (uint32_t i = 0; i < 65536; ++i) {
      const float f = HalfToFloat(all[i]);
      ASSERT_EQ(out[i], std::isnan(f) ? 0x7FC0 : FloatToBFloat16(f)) << IsaName(isa) << " " << i;
    }
    ConvertElements(Dtype::kBFloat16, all.data(), Dtype::kFloat16, out.data(), all.size(), isa);
    for (uint32_t i = 0; i < 65536; ++i) ASSERT_EQ(out[i], FloatToHalf(BFloat16ToFloat(all[i]))) << IsaName(isa) << " " << i;
  }
}

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7BFF);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);          // the tie above the largest rounds to infinity
  EXPECT_EQ(FloatToHalf(BitsFloat(0x477FEFFF)), 0x7BFF);
  EXPECT_EQ(FloatToHalf(BitsFloat(0x33000000)), 0x0000);  // 2^-25: a tie, to even (zero)
  EXPECT_EQ(FloatToHalf(BitsFloat(0x33000001)), 0x0001);
  EXPECT_EQ(FloatToHalf(BitsFloat(0xFFC00000)), 0xFE00);  // NaN keeps its sign, loses its payload
  EXPECT_EQ(FloatToHalf(BitsFloat(0x7F812345)), 0x7E00);
  EXPECT_EQ(FloatToBFloat16(BitsFloat(0x3F808000)), 0x3F80);  // tie to even
  EXPECT_EQ(FloatToBFloat16(BitsFloat(0x3F818000)), 0x3F82);
  EXPECT_EQ(FloatToBFloat16(BitsFloat(0x7F7F8000)), 0x7F80);  // overflow to infinity
  EXPECT_EQ(FloatToBFloat16(BitsFloat(0xFFC00000)), 0xFFFF);  // every NaN
  EXPECT_EQ(FloatToBFloat16(BitsFloat(0x00400000)), 0x0040);  // subnormals kept
}

}  // namespace half_test
}  // namespace embstore
