#include "store/torch/torch_rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace embstore {

Mt19937::Mt19937(uint64_t seed) {
  // Section 1.4: only the low 32 bits seed the engine.
  state_[0] = static_cast<uint32_t>(seed);
  for (uint32_t j = 1; j < 624; ++j) {
    state_[j] = 1812433253u * (state_[j - 1] ^ (state_[j - 1] >> 30)) + j;
  }
  next_ = 0;
  left_ = 1;
}

Mt19937::Mt19937(const uint32_t* state, int next) {
  std::memcpy(state_, state, sizeof(state_));
  next_ = next;
  left_ = 625 - next;  // section 2.4
}

namespace {

// The vectorizable parts are compiled for AVX-512, AVX2 and baseline x86-64;
// the loader picks one per CPU. Integer code: every version gives the same bits.
// ThreadSanitizer cannot run ifunc resolvers, which run before it starts:
// its build uses the baseline version only.
#if defined(__SANITIZE_THREAD__)
#define EMB_CLONES
#else
#define EMB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

inline uint32_t Mix(uint32_t u, uint32_t v) {
  return (((u & 0x80000000u) | (v & 0x7FFFFFFFu)) >> 1) ^ ((0u - (v & 1u)) & 0x9908B0DFu);
}

inline uint32_t Temper(uint32_t y) {
  y ^= y >> 11;
  y ^= (y << 7) & 0x9D2C5680u;
  y ^= (y << 15) & 0xEFC60000u;
  y ^= y >> 18;
  return y;
}

// Section 2.2, in place, split so each loop reads only words it may: the
// first 227 words read old words ahead; the rest read words 227 behind,
// already new. Both loops vectorize.
EMB_CLONES void TwistArray(uint32_t* s) {
  constexpr int kN = 624, kM = 397;
  for (int k = 0; k < kN - kM; ++k) s[k] = s[k + kM] ^ Mix(s[k], s[k + 1]);
  for (int k = kN - kM; k < kN - 1; ++k) s[k] = s[k + kM - kN] ^ Mix(s[k], s[k + 1]);
  s[kN - 1] = s[kM - 1] ^ Mix(s[kN - 1], s[0]);
}

EMB_CLONES void TemperRange(const uint32_t* s, uint32_t* out, int n) {
  for (int i = 0; i < n; ++i) out[i] = Temper(s[i]);
}

EMB_CLONES void UniformRange(const uint32_t* s, float* out, int n) {
  for (int i = 0; i < n; ++i) out[i] = static_cast<float>(Temper(s[i]) & 0x00FFFFFFu) * 0x1.0p-24f;
}

}  // namespace

void Mt19937::Twist() {
  TwistArray(state_);
  left_ = 624;
  next_ = 0;
}

uint32_t Mt19937::Next() {
  if (--left_ == 0) Twist();
  return Temper(state_[next_++]);
}

// Hands f(first_word, count) the next n untempered words, twisting as
// needed, with Next()'s bookkeeping: left_ - 1 words remain untwisted.
template <typename F>
void Mt19937::Consume(uint64_t n, F&& f) {
  while (n > 0) {
    if (left_ == 1) {
      TwistArray(state_);
      next_ = 0;
      left_ = 625;
    }
    const int take = static_cast<int>(std::min<uint64_t>(n, static_cast<uint64_t>(left_ - 1)));
    f(state_ + next_, take);
    next_ += take;
    left_ -= take;
    n -= static_cast<uint64_t>(take);
  }
}

void Mt19937::Fill(uint32_t* out, uint64_t n) {
  Consume(n, [&](const uint32_t* s, int k) {
    TemperRange(s, out, k);
    out += k;
  });
}

void Mt19937::FillUniform(float* out, uint64_t n) {
  Consume(n, [&](const uint32_t* s, int k) {
    UniformRange(s, out, k);
    out += k;
  });
}

void Mt19937::Skip(uint64_t n) {
  Consume(n, [](const uint32_t*, int) {});
}

}  // namespace embstore
