// One .embz frame through the codec (both codecs, every decoder path, every
// element size): the first byte picks the codec (bit 0), the frame's element
// count (bits 1-3) and the dtype (bits 4-5: float32, float32, float16,
// bfloat16); the rest is the coded frame.
#include <cstdint>
#include <vector>

#include "store/embz/embz_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t codec = (data[0] & 1) ? embstore::kEmbzCodecSplitRans32 : embstore::kEmbzCodecSplitRans;
  static const size_t kCounts[8] = {0, 1, 3, 8, 32, 33, 256, 4099};  // 8: the golden frames
  static const embstore::Dtype kDtypes[4] = {embstore::Dtype::kFloat32, embstore::Dtype::kFloat32,
                                             embstore::Dtype::kFloat16, embstore::Dtype::kBFloat16};
  const embstore::Dtype dtype = kDtypes[(data[0] >> 4) & 3];
  std::vector<uint8_t> out(kCounts[(data[0] >> 1) & 7] * embstore::DtypeSize(dtype));
  (void)embstore::DecodeFrame(std::span<const uint8_t>(data + 1, size - 1), out, codec, dtype);
  return 0;
}
