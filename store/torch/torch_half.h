// PyTorch's float16 and bfloat16 CPU kernels for normal_ and uniform_, bit
// for bit (PyTorch 1.13.1 on x86-64; torch-rng.md, section 13).
//
// PyTorch draws half tables through its generic code, in the half type
// itself, not through the float32 kernels: the fill path (numel >= 16)
// stores each uniform as the half type (the low 11 bits of a draw for
// float16, the low 8 for bfloat16), then runs normal_fill_16<T>, whose
// every operator on T rounds to T (or, for float16, computes in float and
// rounds only on assignment). So each output depends only on the two
// uniforms' indices (k1 of lane j, k2 of lane j + 8), the mean and the std:
//
//   float16:  radius = H(sqrtf(-2 logf(1 - k1/2048)))
//             theta  = H(float(double(k2/2048) * 2pi))
//             out_j  = H(fmaf(radius * cosf(theta), std, mean))   AVX2 build
//                      H((radius * cosf(theta)) * std + mean)      DEFAULT build
//             out_j+8: the same with sinf; std and mean are H(float(x)).
//   bfloat16: radius = B(sqrtf(B(-2 B(logf(1 - k1/256)))))
//             theta  = B(float(double(k2/256) * 2pi))
//             out_j  = B(B(B(radius * B(cosf(theta))) * std) + mean)  (both builds)
//
// H and B round a float to the type (nearest even). logf, sincosf are the C
// library's; their values for every index are tabulated (torch_half_tables.inc,
// made by tests/golden/make_half_tables.cc with glibc 2.36, the library
// PyTorch 1.13.1 calls on Debian 12), so the bits do not depend on the C
// library embstore runs with. uniform_(a, b): out = T(x * T(b' - a') + a')
// with a' = T(a), b' = T(b), x = k/2^d; the product is exact, so the AVX2
// build's fusion changes nothing.
//
// Thread safety: const methods from any thread.

#ifndef EMBSTORE_STORE_TORCH_TORCH_HALF_H_
#define EMBSTORE_STORE_TORCH_TORCH_HALF_H_

#include <array>
#include <cstdint>
#include <vector>

#include "format/table_format.h"
#include "store/torch/torch_kernels.h"

namespace embstore {

// The per-index values of the fill path, as torch_half.h's formulas give
// them: radius by k1, cos and sin by k2 (as floats; for bfloat16 they are
// bfloat16 values). 2048 entries for float16, 256 for bfloat16.
struct TorchHalfTables {
  std::vector<float> radius, cos, sin;
};
// The committed tables (torch_half_tables.inc).
const TorchHalfTables& CommittedHalfTables(Dtype dtype);
// The same computed now with this C library's logf and sincosf (tests
// compare them with the committed ones).
TorchHalfTables ComputeHalfTables(Dtype dtype);

// normal_fill_16<T> for one (dtype, kernel, mean, std).
class HalfNormalKernel {
 public:
  HalfNormalKernel(Dtype dtype, TorchKernel kernel, double mean, double std);
  // draws: nblocks * 16 raw 32-bit draws, one per element in order; out:
  // as many elements (bit patterns of dtype).
  void Blocks(const uint32_t* draws, uint16_t* out, uint64_t nblocks) const;

 private:
  uint16_t Out(uint32_t k1, uint32_t k2, bool sin_lane) const;

  Dtype dtype_;
  bool fused_;
  float mean_, std_;  // rounded to dtype
  const TorchHalfTables* tables_;
  // bfloat16: every output, indexed by k1 << 8 | k2: the cos lane's in the
  // low 16 bits, the sin lane's in the high 16.
  std::vector<uint32_t> pairs_;
  Isa isa_;
};

// The bfloat16 fill path from the pair table, with AVX-512 gathers.
void BFloat16PairBlocksAvx512(const uint32_t* pairs, const uint32_t* draws, uint16_t* out, uint64_t nblocks);

// uniform_(low, high) of n elements from n raw draws.
void HalfUniform(Dtype dtype, const uint32_t* draws, uint16_t* out, uint64_t n, double low, double high);

// Rounds a float to dtype (float16 or bfloat16) and gives its bits, as
// PyTorch's c10 types do.
uint16_t RoundToHalfType(Dtype dtype, float v);

}  // namespace embstore

#endif  // EMBSTORE_STORE_TORCH_TORCH_HALF_H_
