// One .embz frame through the codec (both codecs, every decoder path): the
// first byte picks the codec and the frame's float count, the rest is the
// coded frame.
#include <cstdint>
#include <vector>

#include "store/embz/embz_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t codec = (data[0] & 1) ? embstore::kEmbzCodecSplitRans32 : embstore::kEmbzCodecSplitRans;
  static const size_t kCounts[8] = {0, 1, 3, 8, 32, 33, 256, 4099};  // 8: the golden frames
  std::vector<uint8_t> out(kCounts[(data[0] >> 1) & 7] * 4);
  (void)embstore::DecodeFrame(std::span<const uint8_t>(data + 1, size - 1), out, codec);
  return 0;
}
