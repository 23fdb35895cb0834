// The scoring kernel in portable C++ (16 lanes as an array, std::fma), and
// the choice of kernel by instruction set.

#include <cmath>
#include <cstring>

#include "format/half.h"
#include "store/search/score_kernels.h"

namespace embstore {
namespace {

struct V {
  float v[16];
};
constexpr size_t kPrefetch = 0;
[[maybe_unused]] inline void Prefetch(const char*) {}
constexpr size_t kQT = 1, kRT = 1, kRT1 = 1;

inline V Zero() { return V{}; }
inline V Fma(V a, V b, V c) {
  V r;
  for (int l = 0; l < 16; ++l) r.v[l] = std::fma(a.v[l], b.v[l], c.v[l]);
  return r;
}
inline V LoadF32Partial(const float* p, size_t n) {
  V r{};
  std::memcpy(r.v, p, n * sizeof(float));
  return r;
}
inline V LoadF32(const float* p) { return LoadF32Partial(p, 16); }
inline V LoadF16Partial(const uint16_t* p, size_t n) {
  V r{};
  for (size_t l = 0; l < n; ++l) r.v[l] = HalfToFloat(p[l]);
  return r;
}
inline V LoadF16(const uint16_t* p) { return LoadF16Partial(p, 16); }
inline V LoadBF16Partial(const uint16_t* p, size_t n) {
  V r{};
  for (size_t l = 0; l < n; ++l) r.v[l] = BFloat16ToFloat(p[l]);
  return r;
}
inline V LoadBF16(const uint16_t* p) { return LoadBF16Partial(p, 16); }

inline float ReduceOne(const V& a) {
  float s8[8], s4[4];
  for (int l = 0; l < 8; ++l) s8[l] = a.v[l] + a.v[l + 8];
  for (int l = 0; l < 4; ++l) s4[l] = s8[l] + s8[l + 4];
  const float s2a = s4[0] + s4[2], s2b = s4[1] + s4[3];
  return s2a + s2b;
}
template <size_t N>
inline void Reduce(const V* acc, float* out) {
  for (size_t i = 0; i < N; ++i) out[i] = ReduceOne(acc[i]);
}

#include "store/search/score_kernel.inc"

}  // namespace

void ScoreBlockPortable(const ScoreArgs& args) { ScoreBlockImpl(args); }

void ScoreBlock(const ScoreArgs& args, Isa isa) {
  switch (isa) {
    case Isa::kAvx512: ScoreBlockAvx512(args); break;
    case Isa::kAvx2: ScoreBlockAvx2(args); break;
    default: ScoreBlockPortable(args); break;
  }
}

}  // namespace embstore
