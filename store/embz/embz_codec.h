// The .embz frame codec: a reversible float filter plus entropy coding,
// chosen by measurement on PyTorch-initialized tables (FORMAT.md, ".embz
// frames", which tables tests/bench/filter_study.py's figures).
//
// A float32 is 1 sign bit, 8 exponent bits and 23 mantissa bits. For
// Gaussian or uniform weights the exponent carries all the redundancy
// (about 2.5 bits of entropy in 8) and the sign and mantissa are noise. So a
// frame of floats is split into two streams:
//   - the exponent bytes, coded with an order-0 rANS coder (within 0.01 bit
//     of their entropy; zstd's Huffman literals and matches lose ~0.5 bit),
//     interleaved over 32 states that an AVX-512 decoder runs as two
//     16-lane vectors (codec 2), or over 4 scalar states (codec 1, read only);
//   - sign + mantissa as 3 bytes per float, handed to zstd at the chosen
//     level (it stores them raw when they are noise, and shrinks them when a
//     table is not: zeros, rounded or quantized values).
// The one place that includes <zstd.h>.
//
// Pure functions of their arguments; safe from any thread.

#ifndef EMBSTORE_STORE_EMBZ_EMBZ_CODEC_H_
#define EMBSTORE_STORE_EMBZ_EMBZ_CODEC_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "format/embz_format.h"
#include "format/status.h"
#include "format/table_format.h"

namespace embstore {

// zstd's level range, as the zstd command line takes it.
inline constexpr int kMinLevel = 1;
inline constexpr int kMaxLevel = 19;
inline constexpr int kDefaultLevel = 3;

// `codec` is the .embz header's codec (format/embz_format.h): writers use
// kEmbzCodecCurrent; readers pass what the file says (1 or 2, already
// validated).

// Appends the coded form of `rows` (little-endian elements of dtype: a
// multiple of its size) to out. 2-byte elements (float16, bfloat16) split
// into an exponent byte and one byte of sign and mantissa.
Status EncodeFrame(std::span<const uint8_t> rows, int level, std::vector<uint8_t>* out,
                   uint32_t codec = kEmbzCodecCurrent, Dtype dtype = Dtype::kFloat32);

// Decodes a frame of elements of dtype into out, which must be exactly the
// frame's uncompressed size. Every length inside the frame is checked
// against `coded` and `out` before use; a damaged frame is an error, never
// an out-of-bounds access.
Status DecodeFrame(std::span<const uint8_t> coded, std::span<uint8_t> out, uint32_t codec = kEmbzCodecCurrent,
                   Dtype dtype = Dtype::kFloat32);

// The rANS coder on its own (tests, measurements): bytes in, bytes out.
void RansEncode(std::span<const uint8_t> symbols, uint32_t codec, std::vector<uint8_t>* out);
Status RansDecode(std::span<const uint8_t> coded, uint32_t codec, std::span<uint8_t> symbols);

// Plain zstd, for the sections that are not float rows (a table's header,
// metadata and checksum table).
Status ZstdCompress(std::span<const uint8_t> in, int level, std::vector<uint8_t>* out);
Status ZstdDecompress(std::span<const uint8_t> in, std::span<uint8_t> out);
// Inflates one zstd frame of exactly `size` bytes in pieces of at most
// 64 KiB, handing each to sink: memory does not grow with `size`.
Status ZstdDecompressStream(std::span<const uint8_t> in, uint64_t size,
                            const std::function<Status(std::span<const uint8_t>)>& sink);

}  // namespace embstore

#endif  // EMBSTORE_STORE_EMBZ_EMBZ_CODEC_H_
