// PyTorch's CPU random numbers, bit for bit: the at::mt19937 engine and the
// normal_ kernels that torch.nn.Embedding, torch.randn and Tensor.normal_
// run on float32. ../shared/torch-rng.md is the specification; section
// numbers below refer to it.
//
// Kernels implemented: the DEFAULT (scalar) build, i.e. what PyTorch gives
// with ATEN_CPU_CAPABILITY=default or on non-x86 machines; the AVX2 build is
// a later addition. The scalar kernel uses the C library's logf/sinf/cosf, as
// PyTorch's does, so its bits are those of glibc (checked on Debian 12's
// glibc 2.36).
//
// Plain values; no sharing between threads without copying.

#ifndef EMBSTORE_STORE_TORCH_RNG_H_
#define EMBSTORE_STORE_TORCH_RNG_H_

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

// The 16-element Box-Muller transform of the DEFAULT build (section 6.1), in
// place: d holds 16 uniforms on entry and 16 normals on return.
void NormalFill16Scalar(float* d, float mean, float std);

// Produces the float32 normal_(mean, std) sequence of a contiguous tensor of
// n elements, in memory order, in pieces, with O(1) memory: the fill path
// for n >= 16 including its tail rule (section 5), the serial double path
// for n < 16 (section 8).
class TorchNormalStream {
 public:
  TorchNormalStream(uint64_t seed, uint64_t n, double mean, double std);
  // Writes the next count elements. REQUIRES: count <= remaining().
  void Fill(float* out, uint64_t count);
  uint64_t remaining() const { return n_ - emitted_; }

 private:
  void Refill();

  Mt19937 engine_;
  uint64_t n_;
  double mean_, std_;
  uint64_t emitted_ = 0;
  uint64_t cut_;          // elements [0, cut_) come from whole blocks
  float block_[16];
  uint64_t block_start_ = 0;  // element index of block_[0]
  unsigned block_len_ = 0;    // valid elements in block_
};

}  // namespace embstore

#endif  // EMBSTORE_STORE_TORCH_RNG_H_
