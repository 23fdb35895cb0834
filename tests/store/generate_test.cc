#include "store/generate.h"

#include <gtest/gtest.h>

#include <cmath>

#include "store/table_reader.h"
#include "tests/test_util.h"

namespace embstore {
namespace {

TEST(GenerateTest, PythonReprOfFloats) {
  // What Python 3 prints for repr(x).
  const std::vector<std::pair<double, std::string>> cases = {
      {0.0, "0.0"},       {1.0, "1.0"},         {-1.0, "-1.0"},        {0.02, "0.02"},
      {0.1, "0.1"},       {1e-4, "0.0001"},     {1e-5, "1e-05"},       {1.5e-5, "1.5e-05"},
      {1e6, "1000000.0"}, {123.456, "123.456"}, {1e16, "1e+16"},       {1.25e16, "1.25e+16"},
      {1e15, "1000000000000000.0"}, {-0.0, "-0.0"}, {0.30000000000000004, "0.30000000000000004"},
      {1e300, "1e+300"}};
  for (const auto& [v, want] : cases) EXPECT_EQ(PythonRepr(v), want) << v;
}

TEST(GenerateTest, WritesProvenanceAndReproduction) {
  testing::TempDir dir;
  GenerateSpec spec;
  spec.rows = 20;
  spec.dim = 3;
  spec.seed = 99;
  spec.mean = 0.5;
  spec.std = 0.02;
  ASSERT_OK(GenerateTable(dir.File("t"), spec));
  auto r = TableReader::Open(dir.File("t"));
  ASSERT_OK(r.status());
  const Metadata& m = r->metadata();
  EXPECT_EQ(m.at("generator"), "torch.normal_");
  EXPECT_EQ(m.at("generator.seed"), "99");
  EXPECT_EQ(m.at("generator.mean"), "0.5");
  EXPECT_EQ(m.at("generator.std"), "0.02");
  EXPECT_EQ(m.at("generator.kernel"), "scalar");
  EXPECT_EQ(m.count("created"), 0u);  // nothing that varies between runs
  const std::string py = TorchReproduction(m, 20, 3);
  EXPECT_NE(py.find("torch.manual_seed(99)"), std::string::npos);
  EXPECT_NE(py.find("torch.empty(20, 3).normal_(0.5, 0.02)"), std::string::npos);
  EXPECT_EQ(TorchReproduction({}, 1, 1), "");
}

TEST(GenerateTest, RejectsBadSpecs) {
  GenerateSpec s;
  s.rows = 1;
  s.dim = 1;
  EXPECT_OK(ValidateGenerateSpec(s));
  s.std = -0.5;
  EXPECT_TRUE(ValidateGenerateSpec(s).IsInvalidArgument());
  s.std = 1;
  s.mean = std::nan("");
  EXPECT_TRUE(ValidateGenerateSpec(s).IsInvalidArgument());
  s.mean = 0;
  s.rows = 0;
  EXPECT_TRUE(ValidateGenerateSpec(s).IsInvalidArgument());
}

}  // namespace
}  // namespace embstore
