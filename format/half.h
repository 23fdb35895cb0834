// The 2-byte element types of FORMAT.md, "Dtypes", one element at a time:
// IEEE 754 binary16 ("float16") and bfloat16 (the top half of a binary32),
// to and from float32, rounding exactly as PyTorch's Tensor.to(dtype) does
// on x86-64 (measured on PyTorch 1.13.1; the rules are in FORMAT.md):
//
//   float32 -> float16:  round to nearest, ties to even; overflow to
//                        infinity; float16 subnormals kept (no flush);
//                        NaN -> 0x7E00 with the sign kept.
//   float32 -> bfloat16: round to nearest, ties to even; overflow to
//                        infinity; subnormals kept; NaN -> 0xFFFF.
//   float16 -> float32:  exact; a signalling NaN is quieted (payload kept),
//                        as the F16C instruction does.
//   bfloat16 -> float32: exact (the bits shifted up 16).
//
// Bulk conversions with vector code are in store/core/half.h; these are the
// definition they are tested against. Pure functions; any thread.

#ifndef EMBSTORE_FORMAT_HALF_H_
#define EMBSTORE_FORMAT_HALF_H_

#include <cstdint>
#include <cstring>

namespace embstore {

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FFu;
  if (exp == 0x1F) return BitsFloat(sign | 0x7F800000u | (mant != 0 ? 0x400000u : 0) | (mant << 13));
  if (exp != 0) return BitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in float.
  const float v = static_cast<float>(mant) * 5.9604644775390625e-08f;
  return BitsFloat(sign | FloatBits(v));
}

inline uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00u;    // NaN
  if (ax >= 0x477FF000u) return sign | 0x7C00u;   // >= 65520 rounds to infinity
  if (ax >= 0x38800000u) {                        // a float16 normal (>= 2^-14)
    const uint32_t m = ax - 0x38000000u;          // exponent rebased from 127 to 15
    return static_cast<uint16_t>(sign | ((m + 0xFFFu + ((m >> 13) & 1)) >> 13));
  }
  if (ax <= 0x33000000u) return sign;             // <= 2^-25: rounds to zero
  // A float16 subnormal, in units of 2^-24 (may round up to the smallest normal).
  const uint32_t e = ax >> 23;                    // 102 .. 112
  const uint32_t mant = (ax & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - e;                 // 14 .. 24
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((uint32_t{1} << shift) - 1), half = uint32_t{1} << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) ++q;
  return static_cast<uint16_t>(sign | q);
}

inline float BFloat16ToFloat(uint16_t b) { return BitsFloat(uint32_t{b} << 16); }

inline uint16_t FloatToBFloat16(float f) {
  const uint32_t x = FloatBits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFu;  // NaN
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1)) >> 16);
}

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_HALF_H_
