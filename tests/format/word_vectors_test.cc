// The word-vector layouts (format/word_vectors.h): values read as gensim
// reads them (NumPy's float32(str)), floats written as NumPy prints them,
// the header line, and vocabularies.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "format/word_vectors.h"
#include "tests/test_util.h"

namespace embstore {
namespace word_vectors_test {

float Value(const std::string& text) {
  float v = -12345.0f;
  EXPECT_TRUE(ParseWordVectorValue(text, &v)) << text;
  return v;
}

TEST(WordVectorsTest, ValuesAsPythonFloatRoundedToFloat32) {
  EXPECT_EQ(Value("0.1"), 0.1f);
  EXPECT_EQ(Value("+1.5"), 1.5f);
  EXPECT_EQ(Value(".5"), 0.5f);
  EXPECT_EQ(Value("5."), 5.0f);
  EXPECT_EQ(Value("1E5"), 1e5f);
  EXPECT_EQ(Value("1_000.2_5"), 1000.25f);  // PEP 515 underscores
  EXPECT_EQ(Value(" 7\t"), 7.0f);            // Python strips whitespace
  EXPECT_TRUE(std::isinf(Value("inf")) && std::isinf(Value("-Infinity")) && std::isnan(Value("nan")));
  // Through float64: the tie between 1 and 1 + 2^-23 goes to even, as
  // np.float32("1.000000059604644775390625000001") does (a direct parse
  // to float32 would give 1 + 2^-23).
  EXPECT_EQ(Value("1.000000059604644775390625000001"), 1.0f);
  // Out of float64's range, each the way Python's float() goes.
  EXPECT_EQ(Value("1e999"), std::numeric_limits<float>::infinity());
  EXPECT_EQ(Value("1e-999"), 0.0f);
  EXPECT_EQ(Value("0." + std::string(400, '0') + "1"), 0.0f);
  EXPECT_TRUE(std::signbit(Value("-0." + std::string(400, '0') + "1")));
  EXPECT_EQ(Value("1" + std::string(400, '0') + "e-10"), std::numeric_limits<float>::infinity());
  float v;
  for (const char* bad : {"", "x", "1x", "--1", "+-1", "0x1p3", "nan(123)", "1__0", "_1", "1_", ".", "-", "1e"}) {
    EXPECT_FALSE(ParseWordVectorValue(bad, &v)) << bad;
  }
}

TEST(WordVectorsTest, FloatsAsNumPyPrintsThem) {
  auto text = [](float f) {
    char buf[40];
    return std::string(buf, FormatFloat32(f, buf));
  };
  EXPECT_EQ(text(0.1f), "0.1");
  EXPECT_EQ(text(100.0f), "100.0");
  EXPECT_EQ(text(123456789.0f), "123456790.0");
  EXPECT_EQ(text(1e-4f), "1e-04");  // float32(1e-4) is just below 1e-4
  EXPECT_EQ(text(1e16f), "1e+16");
  EXPECT_EQ(text(1e-45f), "1e-45");
  EXPECT_EQ(text(-0.0f), "-0.0");
  EXPECT_EQ(text(-std::numeric_limits<float>::infinity()), "-inf");
  EXPECT_EQ(text(std::numeric_limits<float>::quiet_NaN()), "nan");
  // Every printed value reads back to the same float32.
  for (uint32_t bits = 1; bits < 0x7F800000u; bits += 0x00F0F0F1u) {
    float f, g;
    std::memcpy(&f, &bits, 4);
    ASSERT_TRUE(ParseWordVectorValue(text(f), &g));
    EXPECT_EQ(std::memcmp(&f, &g, 4), 0) << text(f);
  }
}

TEST(WordVectorsTest, HeaderLine) {
  uint64_t n = 0, d = 0;
  EXPECT_OK(ParseWord2VecHeader("3000000 300\r", &n, &d));
  EXPECT_EQ(n, 3000000u);
  EXPECT_EQ(d, 300u);
  EXPECT_OK(ParseWord2VecHeader("+2\t3 ", &n, &d));
  EXPECT_EQ(n, 2u);
  for (const char* bad : {"", "2", "2 3 4", "two 3", "0 3", "2 0", "-2 3"}) {
    EXPECT_TRUE(ParseWord2VecHeader(bad, &n, &d).IsCorruption()) << bad;
  }
}

TEST(WordVectorsTest, Vocabularies) {
  auto keys = ParseVocabulary("\xEF\xBB\xBFhello\r\n{world\n", 2, VocabFormat::kAuto, "v.txt");
  ASSERT_OK(keys.status());
  EXPECT_EQ(keys->at(0), "hello");  // the byte-order mark is not part of it
  EXPECT_EQ(keys->at(1), "{world");
  keys = ParseVocabulary("{world\nhello\n", 2, VocabFormat::kAuto, "v.txt");  // not JSON: lines
  ASSERT_OK(keys.status());
  EXPECT_EQ(keys->at(0), "{world");
  keys = ParseVocabulary(R"({"model": {"vocab": {"a": 1, "b": 0}}, "added_tokens": [{"id": 2, "content": "<s>"}]})", 3,
                         VocabFormat::kAuto, "tokenizer.json");
  ASSERT_OK(keys.status());
  EXPECT_EQ(keys->at(0), "b");
  EXPECT_EQ(keys->at(2), "<s>");
  keys = ParseVocabulary(R"({"model": {"vocab": [["x", 0.0], ["y", -1.5]]}})", 2, VocabFormat::kTokenizerJson, "t");
  ASSERT_OK(keys.status());
  EXPECT_EQ(keys->at(1), "y");
  auto bad = [](const std::string& text, uint64_t rows, const std::string& needle) {
    auto r = ParseVocabulary(text, rows, VocabFormat::kAuto, "v");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_TRUE(r.status().IsCorruption());
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  bad(R"({"a": 0, "b": 2})", 2, "token 'b' has id 2, outside the table's rows [0, 2)");
  bad(R"({"a": 0, "b": 0})", 2, "id 0 is given to 'a' and to 'b'");
  bad(R"({"a": 0, "b": 18446744073709551615})", 2, "has id 18446744073709551615");
  bad(R"({"model": {"vocab": {"a": 0}}, "added_tokens": {"id": 1}})", 2, "added_tokens is not a list");
  // A table of 2^40 rows and two tokens: refused before anything is sized
  // by the rows.
  bad(R"({"a": 0, "b": 1})", uint64_t{1} << 40, "no token has id 2 (nor 1099511627773 other ids)");
  bad("a\n\nb\n", 3, "line 2 is empty");
  bad("a\nb\n", 3, "2 lines (keys), the table has 3 rows");
}

}  // namespace word_vectors_test
}  // namespace embstore
