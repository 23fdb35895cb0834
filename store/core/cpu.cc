#include "store/core/cpu.h"

#include <cstdlib>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace embstore {

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "unknown";
}

namespace {

// F16C (CPUID leaf 1, ECX bit 29), asked directly: clang's
// __builtin_cpu_supports does not know its name.
bool HasF16c() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & (1u << 29)) != 0;
#else
  return false;
#endif
}

}  // namespace

bool CpuHas(Isa isa) {
  static const bool f16c = HasF16c();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  switch (isa) {
    case Isa::kPortable: return true;
    case Isa::kAvx2: return avx2;
    case Isa::kAvx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
  }
  return false;
}

Isa DetectIsa() {
  const Isa best = CpuHas(Isa::kAvx512) ? Isa::kAvx512 : CpuHas(Isa::kAvx2) ? Isa::kAvx2 : Isa::kPortable;
  if (const char* want = std::getenv("EMBSTORE_ISA")) {
    const std::string w = want;
    if (w == "portable") return Isa::kPortable;
    if (w == "avx2") return CpuHas(Isa::kAvx2) ? Isa::kAvx2 : Isa::kPortable;
    if (w == "avx512") return best;
  }
  return best;
}

}  // namespace embstore
