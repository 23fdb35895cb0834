#include "format/npy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "format/safetensors.h"
#include "tests/test_util.h"

namespace embstore {
namespace npy_test {

std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::vector<uint8_t> NpyFile(uint64_t rows, uint64_t dim) {
  auto b = Bytes(EncodeNpyHeader(rows, dim));
  b.resize(b.size() + rows * dim * 4);
  return b;
}

TEST(NpyTest, EncodedHeadersParseBackAndAreAligned) {
  for (auto [rows, dim] : {std::pair<uint64_t, uint64_t>{1, 1}, {50257, 7}, {6, 4}}) {
    const auto file = NpyFile(rows, dim);
    auto h = ParseNpyHeader(file, file.size());
    ASSERT_OK(h.status());
    EXPECT_EQ(h->shape, (std::vector<uint64_t>{rows, dim}));
    EXPECT_EQ(h->descr, "<f4");
    EXPECT_FALSE(h->fortran_order);
    EXPECT_EQ(h->data_offset % 64, 0u);
    EXPECT_EQ(h->data_size, rows * dim * 4);
  }
}

TEST(NpyTest, PythonLiteralVariants) {
  // What NumPy versions have written: Python 2 longs, no trailing comma, 1-tuples.
  for (const std::string& dict : std::vector<std::string>{"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L)}",
                                 "{\"shape\": (2, 3), \"fortran_order\": True, \"descr\": \">f8\"}",
                                 "{'descr':'<f2','fortran_order':False,'shape':(2,3,),}"}) {
    std::string head = "\x93NUMPY\x01";
    head.push_back('\0');
    head.push_back(static_cast<char>(dict.size() + 1));
    head.push_back('\0');
    auto file = Bytes(head + dict + "\n");
    auto probe = ParseNpyHeader(file, file.size());
    ASSERT_FALSE(probe.ok());  // no data yet: truncated, and it says how much is needed
    EXPECT_NE(probe.status().message().find("truncated .npy"), std::string::npos) << probe.status().ToString();
    const uint64_t esize = dict.find("f8") != std::string::npos ? 8 : dict.find("f2") != std::string::npos ? 2 : 4;
    file.resize(file.size() + 6 * esize);
    auto h = ParseNpyHeader(file, file.size());
    ASSERT_TRUE(h.ok()) << dict << ": " << h.status().ToString();
    EXPECT_EQ(h->shape, (std::vector<uint64_t>{2, 3}));
  }
}

TEST(NpyTest, FlipEveryByteAndCutEveryLengthNeverCrash) {
  const auto good = NpyFile(3, 5);
  size_t refused = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (const uint8_t mask : std::initializer_list<uint8_t>{0x01, 0x20, 0x80}) {
      auto m = good;
      m[i] ^= mask;
      refused += !ParseNpyHeader(m, m.size()).ok();
    }
  }
  EXPECT_GT(refused, 100u);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    std::vector<uint8_t> m(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(ParseNpyHeader(m, m.size()).ok()) << cut;
  }
}

TEST(SafetensorsTest, EncodedHeadersParseBack) {
  auto head = EncodeSafetensorsHeader("weight", 7, 3, {{"format", "pt"}, {"note", "\xc3\xa9t\xc3\xa9"}});
  ASSERT_OK(head.status());
  ASSERT_EQ(head->size() % 8, 0u);
  auto file = Bytes(*head);
  file.resize(file.size() + 7 * 3 * 4);
  auto n = SafetensorsHeaderLength(file, file.size());
  ASSERT_OK(n.status());
  auto h = ParseSafetensorsHeader(std::span<const uint8_t>(file).subspan(8, *n), file.size() - 8 - *n);
  ASSERT_OK(h.status());
  ASSERT_EQ(h->tensors.size(), 1u);
  EXPECT_EQ(h->tensors[0].name, "weight");
  EXPECT_EQ(h->tensors[0].shape, (std::vector<uint64_t>{7, 3}));
  EXPECT_EQ(h->metadata.at("note"), "\xc3\xa9t\xc3\xa9");
  EXPECT_FALSE(EncodeSafetensorsHeader("__metadata__", 1, 1, {}).ok());
}

TEST(SafetensorsTest, FlipEveryByteNeverCrashes) {
  auto head = EncodeSafetensorsHeader("w", 2, 2, {{"a", "b"}});
  ASSERT_OK(head.status());
  auto good = Bytes(*head);
  good.resize(good.size() + 16);
  size_t refused = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (const uint8_t mask : std::initializer_list<uint8_t>{0x01, 0x20, 0x80}) {
      auto m = good;
      m[i] ^= mask;
      auto n = SafetensorsHeaderLength(m, m.size());
      if (!n.ok()) {
        ++refused;
        continue;
      }
      refused += !ParseSafetensorsHeader(std::span<const uint8_t>(m).subspan(8, *n), m.size() - 8 - *n).ok();
    }
  }
  EXPECT_GT(refused, 100u);
}

}  // namespace npy_test
}  // namespace embstore
