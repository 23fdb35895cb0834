#include "store/embz/embz_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "store/torch/generate.h"
#include "tests/test_util.h"

namespace embstore {
namespace embz_codec_test {

std::vector<uint8_t> Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<uint8_t> RoundTrip(const std::vector<uint8_t>& raw, int level, size_t* coded_size = nullptr,
                               uint32_t codec = kEmbzCodecCurrent) {
  std::vector<uint8_t> coded;
  EXPECT_OK(EncodeFrame(raw, level, &coded, codec));
  if (coded_size) *coded_size = coded.size();
  std::vector<uint8_t> back(raw.size());
  EXPECT_OK(DecodeFrame(coded, back, codec));
  return back;
}

TEST(EmbzCodecTest, RansRoundTripsEveryDistribution) {
  std::mt19937 rng(1);
  // Sizes around the 32-lane groups and the 4-lane chunks of both codecs.
  for (size_t n : {0, 1, 2, 17, 31, 32, 33, 64, 95, 1000, 1024, 1055, 100000}) {
    std::vector<std::vector<uint8_t>> cases(4, std::vector<uint8_t>(n));
    for (size_t i = 0; i < n; ++i) {
      cases[0][i] = 7;                                        // one symbol
      cases[1][i] = static_cast<uint8_t>(rng());              // all 256, uniform
      cases[2][i] = static_cast<uint8_t>(126 + (rng() % 3));  // few
      cases[3][i] = static_cast<uint8_t>(i % 7 == 0 ? rng() : 42);  // one dominant, many rare
    }
    for (uint32_t codec : {kEmbzCodecSplitRans, kEmbzCodecSplitRans32}) {
      for (const auto& c : cases) {
        std::vector<uint8_t> coded, back(c.size());
        RansEncode(c, codec, &coded);
        ASSERT_OK(RansDecode(coded, codec, back));
        EXPECT_EQ(back, c) << n << " codec " << codec;
        // A section is not readable as the other codec's.
        const uint32_t other = codec == kEmbzCodecSplitRans ? kEmbzCodecSplitRans32 : kEmbzCodecSplitRans;
        if (n > 0) {
          EXPECT_FALSE(RansDecode(coded, other, back).ok() && back == c) << n;
        }
      }
    }
  }
}

TEST(EmbzCodecTest, FramesRoundTripSpecialFloats) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::max(), 1e-40f};
  uint32_t weird_nan = 0x7fa00001;
  float f;
  std::memcpy(&f, &weird_nan, 4);
  v.push_back(f);
  for (int level : {1, 3, 19}) {
    EXPECT_EQ(RoundTrip(Bytes(v), level), Bytes(v));
    EXPECT_EQ(RoundTrip(Bytes(v), level, nullptr, kEmbzCodecSplitRans), Bytes(v));
  }
}

TEST(EmbzCodecTest, GaussianTableBeatsTwentyPercent) {
  // The ratio issue 4 asks for, on a slice of a generated table.
  GenerateSpec spec;
  spec.rows = 1024;
  spec.dim = 256;
  std::vector<float> t(spec.rows * spec.dim);
  ASSERT_OK(GenerateRows(spec, t));
  size_t coded = 0;
  EXPECT_EQ(RoundTrip(Bytes(t), kDefaultLevel, &coded), Bytes(t));
  EXPECT_GT(static_cast<double>(t.size() * 4) / static_cast<double>(coded), 1.20);
  // Zeros compress to almost nothing (zstd takes the mantissa stream).
  std::vector<float> zeros(65536, 0.0f);
  EXPECT_EQ(RoundTrip(Bytes(zeros), 3, &coded), Bytes(zeros));
  EXPECT_LT(coded, 2000u);
}

class DamagedFrameTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(DamagedFrameTest, AreErrorsNeverCrashes) {
  const uint32_t codec = GetParam();
  GenerateSpec spec;
  spec.rows = 8;
  spec.dim = 64;
  std::vector<float> t(spec.rows * spec.dim);
  ASSERT_OK(GenerateRows(spec, t));
  std::vector<uint8_t> coded;
  ASSERT_OK(EncodeFrame(Bytes(t), 3, &coded, codec));
  std::vector<uint8_t> back(t.size() * 4);
  const size_t rans_end = 4 + (coded[0] | coded[1] << 8 | coded[2] << 16 | size_t{coded[3]} << 24);
  size_t errors = 0, rans_errors = 0;
  for (size_t i = 0; i < coded.size(); ++i) {
    for (const uint8_t mask : std::initializer_list<uint8_t>{0x01, 0x80}) {
      auto bad = coded;
      bad[i] ^= mask;
      Status st = DecodeFrame(bad, back, codec);  // must return, never crash or read out of bounds
      errors += !st.ok();
      rans_errors += !st.ok() && i < rans_end;
      if (!st.ok()) {
        EXPECT_TRUE(st.IsCorruption()) << st.ToString();
      }
    }
  }
  // Most flips in the rANS section break its structure; flips in the raw
  // mantissa bytes only change the decoded floats, which the checksum of
  // each frame in the seek table catches.
  EXPECT_GT(rans_errors, rans_end);  // of 2 * rans_end flips there
  EXPECT_GE(errors, rans_errors);
  for (size_t cut = 0; cut < coded.size(); ++cut) {
    EXPECT_FALSE(DecodeFrame(std::span(coded).first(cut), back, codec).ok()) << cut;
  }
  std::vector<uint8_t> wrong_size(back.size() - 4);
  EXPECT_FALSE(DecodeFrame(coded, wrong_size, codec).ok());
}

TEST_P(DamagedFrameTest, AFrameThatInflatesToTheWrongSizeIsNamed) {
  // Raw mantissas (noise) and zstd ones (zeros): decoding into a frame of
  // another size (the container's rows disagree with what was coded) fails
  // with the sizes in the message.
  GenerateSpec spec;
  spec.rows = 4;
  spec.dim = 64;
  std::vector<float> noise(spec.rows * spec.dim);
  ASSERT_OK(GenerateRows(spec, noise));
  for (const auto& v : {noise, std::vector<float>(256, 0.0f)}) {
    std::vector<uint8_t> coded;
    ASSERT_OK(EncodeFrame(Bytes(v), 3, &coded, GetParam()));
    for (size_t floats : {v.size() - 64, v.size() + 64}) {
      std::vector<uint8_t> out(floats * 4);
      Status st = DecodeFrame(coded, out, GetParam());
      ASSERT_TRUE(st.IsCorruption()) << st.ToString();
    }
  }
  std::vector<uint8_t> coded;
  ASSERT_OK(EncodeFrame(Bytes(std::vector<float>(256, 0.0f)), 3, &coded, GetParam()));
  // Keep the exponent section valid for 320 floats by re-coding it, and
  // leave the zstd section holding 256 floats' mantissas.
  std::vector<uint8_t> exps(320, 0), rans;
  RansEncode(exps, GetParam(), &rans);
  const size_t old_rans = coded[0] | coded[1] << 8 | coded[2] << 16 | size_t{coded[3]} << 24;
  std::vector<uint8_t> spliced(4);
  spliced[0] = static_cast<uint8_t>(rans.size());
  spliced[1] = static_cast<uint8_t>(rans.size() >> 8);
  spliced.insert(spliced.end(), rans.begin(), rans.end());
  spliced.insert(spliced.end(), coded.begin() + 4 + static_cast<std::ptrdiff_t>(old_rans), coded.end());
  std::vector<uint8_t> out(320 * 4);
  Status st = DecodeFrame(spliced, out, GetParam());
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("zstd frame declares 768 bytes, expected 960"), std::string::npos) << st.ToString();
}

INSTANTIATE_TEST_SUITE_P(EmbzCodecTest, DamagedFrameTest,
                         ::testing::Values(kEmbzCodecSplitRans, kEmbzCodecSplitRans32));

}  // namespace embz_codec_test
}  // namespace embstore
