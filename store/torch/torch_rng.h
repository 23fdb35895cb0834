// PyTorch's CPU random numbers, bit for bit: the at::mt19937 engine behind
// torch.manual_seed, and its float32 / float64 uniforms. torch-rng.md in
// this folder is the specification; section numbers below refer to it.
//
// The engine and the uniform conversions; the normal and uniform kernels are
// in torch_kernels.h, the jump-ahead in mt19937_jump.h.
//
// Plain values; no sharing between threads without copying.

#ifndef EMBSTORE_STORE_TORCH_TORCH_RNG_H_
#define EMBSTORE_STORE_TORCH_TORCH_RNG_H_

#include <cstdint>

namespace embstore {

// at::mt19937 (section 1.4, 2.1, 2.2): the 32-bit Mersenne Twister seeded
// with the low 32 bits of the 64-bit seed.
class Mt19937 {
 public:
  static constexpr int kN = 624;

  explicit Mt19937(uint64_t seed);
  // An engine whose array is `state` after some number of twists, with
  // `next` words of it already drawn (1..624); see section 2.4.
  Mt19937(const uint32_t* state, int next);

  uint32_t Next();
  // out[0..n) = the next n draws; the same values as n calls of Next(),
  // with the twist and tempering vectorized.
  void Fill(uint32_t* out, uint64_t n);
  // The next n draws as float32 uniforms in [0, 1) (UniformFloat of each).
  void FillUniform(float* out, uint64_t n);
  // Skips n draws by stepping (cheap for n up to a few thousand).
  void Skip(uint64_t n);

  const uint32_t* state() const { return state_; }
  int next_index() const { return next_; }
  // uint64((first draw) << 32 | second draw) (section 2.3).
  uint64_t Next64() {
    const uint64_t hi = Next();
    return hi << 32 | Next();
  }

 private:
  void Twist();
  template <typename F>
  void Consume(uint64_t n, F&& f);
  uint32_t state_[624];
  int next_ = 0;
  int left_ = 1;
};

// float32 uniform in [0, 1) from one draw: the low 24 bits, exact (3.1).
inline float UniformFloat(uint32_t draw) { return static_cast<float>(draw & 0x00FFFFFFu) * 0x1.0p-24f; }
// float64 uniform in [0, 1) from a random64 value: the low 53 bits (3.2).
inline double UniformDouble(uint64_t r) {
  return static_cast<double>(r & ((uint64_t{1} << 53) - 1)) * 0x1.0p-53;
}

}  // namespace embstore

#endif  // EMBSTORE_STORE_TORCH_TORCH_RNG_H_
