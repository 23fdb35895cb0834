// PyTorch's float32 CPU kernels for normal_ and uniform_, bit for bit, in
// every instruction set embstore can run on (torch-rng.md, sections 3, 6, 7).
//
// Two PyTorch builds are matched:
//   kAvx2:   the AVX2 kernel x86-64 PyTorch runs by default (Cephes log and
//            sincos with GCC's FMA contractions written out, section 7);
//   kScalar: the DEFAULT kernel (ATEN_CPU_CAPABILITY=default): glibc's
//            logf/sinf/cosf, nothing fused (section 6).
// The AVX2 kernel is implemented three times with identical bits: AVX-512
// (two blocks per step), AVX2, and portable C++ with std::fmaf for CPUs that
// have neither. Which one runs is chosen at run time (Isa below).
//
// Stateless functions; safe from any thread.

#ifndef EMBSTORE_STORE_TORCH_TORCH_KERNELS_H_
#define EMBSTORE_STORE_TORCH_TORCH_KERNELS_H_

#include <cstdint>

#include "store/core/cpu.h"

namespace embstore {

// Which PyTorch CPU build to match.
enum class TorchKernel {
  kAvx2,    // x86-64 PyTorch on any CPU with AVX2+FMA (1.10 to current)
  kScalar,  // PyTorch's DEFAULT capability
};
const char* TorchKernelName(TorchKernel kernel);  // "avx2", "scalar"

// The instruction set a kernel runs with (store/core/cpu.h) never changes the bits.

// Transforms nblocks consecutive 16-float blocks of uniforms in place into
// normals: lanes j and j+8 form a Box-Muller pair (section 5.3).
void NormalBlocks(TorchKernel kernel, Isa isa, float* d, uint64_t nblocks, float mean, float std);

// out[i] = u[i] * (high - low) + low, in float: fused (one rounding) for
// kAvx2, two roundings for kScalar (section 3.3). In place is fine.
void UniformTransform(TorchKernel kernel, Isa isa, const float* u, float* out, uint64_t n, float low,
                      float range);

// One lane of the AVX2 kernel's log and sincos, for exhaustive tests of the
// vector versions: radius = sqrt(-2 log8(u1)), and sincos8(2pi_f * u2).
float Avx2RadiusPortable(float u1);
void Avx2SinCosPortable(float u2, float* s, float* c);

// Implementations behind NormalBlocks / UniformTransform (one per file and
// instruction set); callers use the dispatching functions above.
void NormalBlocksAvx2Portable(float* d, uint64_t nblocks, float mean, float std);
void NormalBlocksAvx2Avx2(float* d, uint64_t nblocks, float mean, float std);
void NormalBlocksAvx2Avx512(float* d, uint64_t nblocks, float mean, float std);
void NormalBlocksScalar(float* d, uint64_t nblocks, float mean, float std);
void UniformFusedAvx2(const float* u, float* out, uint64_t n, float low, float range);
void UniformFusedAvx512(const float* u, float* out, uint64_t n, float low, float range);

}  // namespace embstore

#endif  // EMBSTORE_STORE_TORCH_TORCH_KERNELS_H_
