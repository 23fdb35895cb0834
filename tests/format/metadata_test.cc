#include "format/metadata.h"

#include <gtest/gtest.h>

#include "format/endian.h"
#include "format/table_format.h"
#include "tests/test_util.h"

namespace embstore {
namespace metadata_test {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(MetadataTest, RoundTripIsSortedAndByteExact) {
  Metadata m{{"generator.seed", "123"}, {"a", ""}, {"z.key_9-x", std::string("\0bin\xff", 5)}};
  auto enc = EncodeMetadata(m);
  ASSERT_OK(enc.status());
  // u32 count, then (u16 klen, u32 vlen, key, value) in key order.
  const std::string& e = *enc;
  ASSERT_EQ(LoadLE32(reinterpret_cast<const uint8_t*>(e.data())), 3u);
  EXPECT_EQ(e.substr(4 + 6, 1), "a");
  auto dec = DecodeMetadata(Bytes(e));
  ASSERT_OK(dec.status());
  EXPECT_EQ(*dec, m);
  EXPECT_EQ(*EncodeMetadata(*dec), e);
}

TEST(MetadataTest, EmptyIsFourBytes) {
  auto enc = EncodeMetadata({});
  ASSERT_OK(enc.status());
  EXPECT_EQ(*enc, std::string(4, '\0'));
  EXPECT_TRUE(DecodeMetadata(Bytes(*enc))->empty());
}

TEST(MetadataTest, RejectsBadKeys) {
  EXPECT_TRUE(EncodeMetadata({{"", "x"}}).status().IsInvalidArgument());
  EXPECT_TRUE(EncodeMetadata({{"Upper", "x"}}).status().IsInvalidArgument());
  EXPECT_TRUE(EncodeMetadata({{"sp ace", "x"}}).status().IsInvalidArgument());
  EXPECT_TRUE(EncodeMetadata({{std::string(256, 'k'), "x"}}).status().IsInvalidArgument());
  EXPECT_OK(EncodeMetadata({{std::string(255, 'k'), "x"}}).status());
}

TEST(MetadataTest, EnforcesSizeAndCountCaps) {
  auto big = EncodeMetadata({{"v", std::string(kMaxMetadataSize, 'x')}});
  EXPECT_TRUE(big.status().IsInvalidArgument());
  EXPECT_NE(big.status().message().find("limit"), std::string::npos);
  Metadata many;
  for (uint64_t i = 0; i <= kMaxMetadataEntries; ++i) many[std::string("k").append(std::to_string(i))] = "";  // (GCC 12 -Wrestrict misfires on "k" + string)
  EXPECT_TRUE(EncodeMetadata(many).status().IsInvalidArgument());
}

// Builds a raw section from (key, value, declared klen, declared vlen).
std::string Raw(uint32_t count, const std::vector<std::tuple<std::string, std::string, uint16_t, uint32_t>>& es) {
  std::string out(4, '\0');
  StoreLE32(reinterpret_cast<uint8_t*>(out.data()), count);
  for (const auto& [k, v, kl, vl] : es) {
    std::string head(6, '\0');
    StoreLE16(reinterpret_cast<uint8_t*>(head.data()), kl);
    StoreLE32(reinterpret_cast<uint8_t*>(head.data()) + 2, vl);
    out += head + k + v;
  }
  return out;
}

void ExpectCorrupt(const std::string& raw, const std::string& needle) {
  auto r = DecodeMetadata(Bytes(raw));
  ASSERT_FALSE(r.ok()) << "decoded: " << needle;
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

TEST(MetadataTest, DecodeRejectsEveryMalformation) {
  ExpectCorrupt("", "too short");
  ExpectCorrupt(Raw(1, {}), "runs past the end");
  ExpectCorrupt(Raw(5000, {}), "entry count 5000");
  ExpectCorrupt(Raw(1, {{"k", "v", 1, 0xFFFFFFFF}}), "run past the end");
  ExpectCorrupt(Raw(1, {{"k", "v", 0xFFFF, 1}}), "run past the end");
  ExpectCorrupt(Raw(2, {{"b", "", 1, 0}, {"a", "", 1, 0}}), "sorted");
  ExpectCorrupt(Raw(2, {{"a", "", 1, 0}, {"a", "", 1, 0}}), "sorted");
  ExpectCorrupt(Raw(1, {{"K", "", 1, 0}}), "[a-z0-9._-]");
  ExpectCorrupt(Raw(1, {{"k", "v", 1, 1}}) + "x", "after the last entry");
  ExpectCorrupt(std::string(kMaxMetadataSize + 1, '\0'), "exceeds the limit");
}

}  // namespace metadata_test
}  // namespace embstore
