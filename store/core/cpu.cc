#include "store/core/cpu.h"

#include <cstdlib>
#include <string>

namespace embstore {

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "unknown";
}

bool CpuHas(Isa isa) {
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
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
