// Which vector instruction set the CPU offers, chosen once at run time.
// Every kernel that has vector versions (PyTorch's generator, half-precision
// conversion) gives the same bits with each of them; the choice only changes
// speed. EMBSTORE_ISA=portable|avx2 forces a lower one (tests, benchmarks).
//
// Stateless functions; safe from any thread.

#ifndef EMBSTORE_STORE_CORE_CPU_H_
#define EMBSTORE_STORE_CORE_CPU_H_

namespace embstore {

// kAvx2 means AVX2 + FMA + F16C (every AVX2 CPU has all three);
// kAvx512 adds AVX-512 F, BW and VL.
enum class Isa { kPortable, kAvx2, kAvx512 };
const char* IsaName(Isa isa);  // "portable", "avx2", "avx512"
// The best the CPU supports, unless EMBSTORE_ISA names a lower one. A
// request the CPU lacks falls back to portable.
Isa DetectIsa();
bool CpuHas(Isa isa);

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_CPU_H_
