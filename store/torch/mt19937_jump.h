// Jumping at::mt19937 ahead by any number of draws in milliseconds, so that
// worker threads can each start at their own slice of one PyTorch random
// stream (torch-rng.md, section 10.4; Haramoto et al., "Efficient Jump Ahead
// for F2-Linear Random Number Generators", 2008).
//
// The engine's word sequence obeys a linear recurrence over GF(2) whose
// characteristic polynomial phi has degree 19937. Advancing the 624-word
// window by J words is multiplying it by g(T), where g = x^J mod phi; g is
// evaluated at the window with Horner's rule.
//
// Pure functions of their arguments; safe from any thread.

#ifndef EMBSTORE_STORE_TORCH_MT19937_JUMP_H_
#define EMBSTORE_STORE_TORCH_MT19937_JUMP_H_

#include <cstdint>
#include <vector>

#include "store/torch/torch_rng.h"

namespace embstore {

// phi as 312 little-endian 64-bit words (bit i = coefficient of x^i),
// degree 19937. The constant in mt19937_charpoly.inc; tests recompute it.
const uint64_t* Mt19937CharPoly();
inline constexpr int kMtCharPolyDegree = 19937;
inline constexpr int kMtCharPolyWords = 312;

// Recomputes phi from the engine itself with Berlekamp-Massey over GF(2)
// (about a tenth of a second). Used to check and to regenerate the constant.
std::vector<uint64_t> ComputeMt19937CharPoly();

// x^j mod phi, as kMtCharPolyWords words.
std::vector<uint64_t> XPowModCharPoly(uint64_t j);

// The engine seeded with `seed` after `draws` draws: its next Next() returns
// draw number draws + 1. Equal to stepping, in O(19937 * 624 / 64) work.
Mt19937 Mt19937AfterDraws(uint64_t seed, uint64_t draws);

}  // namespace embstore

#endif  // EMBSTORE_STORE_TORCH_MT19937_JUMP_H_
