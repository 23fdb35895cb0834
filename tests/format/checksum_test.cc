#include "format/checksum.h"

#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

namespace embstore {
namespace checksum_test {

// FORMAT.md, "Checksums": the published XXH3-64 vectors.
TEST(ChecksumTest, KnownVectors) {
  EXPECT_EQ(Hash64("", 0), 0x2D06800538D394C2ull);
  EXPECT_EQ(Hash64("embstore", 8), 0xF62AA491FF7F33BAull);
}

TEST(ChecksumTest, StreamingEqualsOneShotAtEverySplit) {
  std::vector<uint8_t> data(3000);
  std::iota(data.begin(), data.end(), 7);
  const uint64_t want = Hash64(data.data(), data.size());
  for (size_t split = 0; split <= data.size(); split += 37) {
    StreamingHash h;
    h.Update(data.data(), split);
    h.Update(data.data() + split, data.size() - split);
    EXPECT_EQ(h.Digest(), want) << "split at " << split;
  }
  StreamingHash h;
  h.Update(data.data(), 10);
  h.Reset();
  h.Update(data.data(), data.size());
  EXPECT_EQ(h.Digest(), want);
}

TEST(ChecksumTest, OneBitChangesTheHash) {
  std::vector<uint8_t> data(4096, 0);
  const uint64_t base = Hash64(data.data(), data.size());
  data[4095] ^= 1;
  EXPECT_NE(Hash64(data.data(), data.size()), base);
}

}  // namespace checksum_test
}  // namespace embstore
