// The float32 constants of PyTorch's avx_mathfun.h (Cephes logf, sinf and
// cosf), as bit patterns (torch-rng.md, section 7.1). Shared by the portable,
// AVX2 and AVX-512 versions of the kernel so they cannot drift apart.

#ifndef EMBSTORE_STORE_TORCH_TORCH_AVX_CONSTANTS_H_
#define EMBSTORE_STORE_TORCH_TORCH_AVX_CONSTANTS_H_

#include <cstdint>

namespace embstore::avx_constants {

inline constexpr uint32_t kSqrtHalf = 0x3F3504F3;
inline constexpr uint32_t kLogP[9] = {0x3D9021BB, 0xBDEBD1B8, 0x3DEF251A, 0xBDFE5D4F, 0x3E11E9BF,
                                      0xBE2AAE50, 0x3E4CCEAC, 0xBE7FFFFC, 0x3EAAAAAA};
inline constexpr uint32_t kLogQ1 = 0xB95E8083;
inline constexpr uint32_t kLogQ2 = 0x3F318000;
inline constexpr uint32_t kMinusDp1 = 0xBF490000;
inline constexpr uint32_t kMinusDp2 = 0xB97DA000;
inline constexpr uint32_t kMinusDp3 = 0xB3222169;
inline constexpr uint32_t kSinP[3] = {0xB94CA1F9, 0x3C08839E, 0xBE2AAAA3};
inline constexpr uint32_t kCosP[3] = {0x37CCF5CE, 0xBAB6061A, 0x3D2AAAA5};
inline constexpr uint32_t kFourOverPi = 0x3FA2F983;
inline constexpr uint32_t kTwoPi = 0x40C90FDB;  // f32(2 * pi<double>)
inline constexpr uint32_t kMinNormPos = 0x00800000;
inline constexpr uint32_t kInvMantMask = 0x807FFFFF;
inline constexpr uint32_t kHalf = 0x3F000000;
inline constexpr uint32_t kSignMask = 0x80000000;
inline constexpr uint32_t kInvSignMask = 0x7FFFFFFF;

}  // namespace embstore::avx_constants

#endif  // EMBSTORE_STORE_TORCH_TORCH_AVX_CONSTANTS_H_
