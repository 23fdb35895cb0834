// Overflow-checked 64-bit arithmetic for sizes and offsets read from files.
// Every offset computed from an untrusted field goes through these.

#ifndef EMBSTORE_FORMAT_CHECKED_MATH_H_
#define EMBSTORE_FORMAT_CHECKED_MATH_H_

#include <cstdint>

namespace embstore {

// Each returns false (and leaves *out unspecified) when the result does not
// fit in 64 bits.
inline bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
inline bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
// ceil(a / b) for b > 0; cannot overflow.
inline uint64_t CeilDiv(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_CHECKED_MATH_H_
