// Codec 2's rANS fast path with AVX-512 (store/embz/embz_codec.cc is its only
// caller, and calls it only when the CPU has AVX-512 F, BW and VL). Built
// in its own file with -mavx512*: nothing here runs on another CPU.

#ifndef EMBSTORE_STORE_EMBZ_EMBZ_CODEC_AVX512_H_
#define EMBSTORE_STORE_EMBZ_EMBZ_CODEC_AVX512_H_

#include <cstddef>
#include <cstdint>

namespace embstore {

// Decodes whole groups of 32 symbols into out while both streams hold at
// least 32 bytes (one word per lane at most, so no read leaves them), from
// states x[32] and stream cursors p[2] (ends end[2]), which it advances.
// slots: the 4096 packed entries of FORMAT.md's decoding step. Returns the
// number of symbols decoded (a multiple of 32, at most n).
size_t RansDecode32Avx512(const uint32_t* slots, uint32_t* x, const uint8_t** p, const uint8_t* const* end,
                          uint8_t* out, size_t n);

}  // namespace embstore

#endif  // EMBSTORE_STORE_EMBZ_EMBZ_CODEC_AVX512_H_
