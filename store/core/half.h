// Bulk conversion between the element types of a table (float32, float16,
// bfloat16), with the rounding of format/half.h (PyTorch's Tensor.to(dtype)
// on x86-64), using F16C/AVX2 or AVX-512 where the CPU has them and
// portable code, with the same bits, elsewhere (store/core/cpu.h).
//
// Stateless functions; safe from any thread.

#ifndef EMBSTORE_STORE_CORE_HALF_H_
#define EMBSTORE_STORE_CORE_HALF_H_

#include <cstddef>
#include <cstdint>

#include "format/table_format.h"
#include "store/core/cpu.h"

namespace embstore {

// Converts n elements of type `from` at in to type `to` at out (any pair;
// the same type copies). in and out must not overlap. PyTorch's rules:
// float32 -> float16 / bfloat16 rounds to nearest even (NaN: 0x7E00 with
// the sign / 0xFFFF); float16 -> bfloat16 goes through float32 and gives
// NaN as 0x7FC0, as PyTorch's scalar cast does; widening is exact (a
// float16 signalling NaN is quieted).
void ConvertElements(Dtype from, const void* in, Dtype to, void* out, size_t n);
// The same with a given instruction set (tests compare them all).
void ConvertElements(Dtype from, const void* in, Dtype to, void* out, size_t n, Isa isa);

// Widens n float16 or bfloat16 elements into float32 (as ConvertElements),
// with non-temporal stores where the CPU has AVX-512: for outputs larger
// than the caches, which then skip the read for ownership. The caller calls
// StoreFence() before handing the output on.
void WidenStreaming(Dtype from, const void* in, float* out, size_t n);
void StoreFence();

// Kernels behind ConvertElements, one per instruction set.
void F32ToF16Avx2(const float* in, uint16_t* out, size_t n);
void F16ToF32Avx2(const uint16_t* in, float* out, size_t n);
void F32ToBF16Avx2(const float* in, uint16_t* out, size_t n, uint16_t nan);
void BF16ToF32Avx2(const uint16_t* in, float* out, size_t n);
void F32ToF16Avx512(const float* in, uint16_t* out, size_t n);
void F16ToF32Avx512(const uint16_t* in, float* out, size_t n);
void F32ToBF16Avx512(const float* in, uint16_t* out, size_t n, uint16_t nan);
void BF16ToF32Avx512(const uint16_t* in, float* out, size_t n);
void F16ToF32StreamAvx512(const uint16_t* in, float* out, size_t n);
void BF16ToF32StreamAvx512(const uint16_t* in, float* out, size_t n);
void StoreFenceAvx512();

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_HALF_H_
