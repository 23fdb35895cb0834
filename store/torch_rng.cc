// Built with -ffp-contract=off (CMakeLists.txt): PyTorch's DEFAULT build
// rounds every multiply and add separately, and so must we.

#include "store/torch_rng.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace embstore {

namespace {
constexpr double kTwoPi = 2.0 * 3.14159265358979323846;  // 0x401921FB54442D18
}  // namespace

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
#define EMB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

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

void NormalFill16Scalar(float* d, float mean, float std) {
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - d[j];
    const float u2 = d[j + 8];
    const float radius = std::sqrt(-2.0f * std::log(u1));
    // Section 6.1: the angle is a double product narrowed to float.
    const float theta = static_cast<float>(kTwoPi * static_cast<double>(u2));
    d[j] = radius * std::cos(theta) * std + mean;
    d[j + 8] = radius * std::sin(theta) * std + mean;
  }
}

TorchNormalStream::TorchNormalStream(uint64_t seed, uint64_t n, double mean, double std)
    : engine_(seed), n_(n), mean_(mean), std_(std) {
  if (n_ >= 16) {
    // Section 5.4: with a partial last block, the last 16 outputs come from
    // 16 fresh draws; whole blocks supply everything before them.
    cut_ = n_ % 16 ? n_ - 16 : n_;
    return;
  }
  // Section 8.2: the serial path, double Box-Muller with the generator's
  // one-value cache (empty right after seeding).
  cut_ = n_;
  bool cached = false;
  double cache = 0;
  for (uint64_t i = 0; i < n_; ++i) {
    double v;
    if (cached) {
      v = cache;
      cached = false;
    } else {
      const double u1 = UniformDouble(engine_.Next64());
      const double u2 = UniformDouble(engine_.Next64());
      const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
      const double theta = kTwoPi * u1;
      cache = r * std::sin(theta);
      cached = true;
      v = r * std::cos(theta);
    }
    block_[i] = static_cast<float>(v * std_ + mean_);
  }
  block_len_ = static_cast<unsigned>(n_);
}

void TorchNormalStream::Refill() {
  const float mean = static_cast<float>(mean_);  // section 4.2: rounded to float
  const float std = static_cast<float>(std_);
  if (emitted_ < cut_) {
    block_start_ = emitted_;  // always a multiple of 16 here
    for (float& x : block_) x = UniformFloat(engine_.Next());
    NormalFill16Scalar(block_, mean, std);
    block_len_ = static_cast<unsigned>(std::min<uint64_t>(16, cut_ - emitted_));
    return;
  }
  // The tail: skip the partial block's own draws, then draw 16 more.
  for (uint64_t i = 0; i < n_ % 16; ++i) engine_.Next();
  for (float& x : block_) x = UniformFloat(engine_.Next());
  NormalFill16Scalar(block_, mean, std);
  block_start_ = n_ - 16;
  block_len_ = 16;
}

void TorchNormalStream::Fill(float* out, uint64_t count) {
  while (count > 0) {
    if (emitted_ == block_start_ + block_len_) Refill();
    const uint64_t offset = emitted_ - block_start_;
    const uint64_t take = std::min<uint64_t>(count, block_len_ - offset);
    std::memcpy(out, block_ + offset, take * sizeof(float));
    out += take;
    count -= take;
    emitted_ += take;
  }
}

}  // namespace embstore
