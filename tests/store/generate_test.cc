// Generation against PyTorch's own numbers (store/torch/torch-rng.md, section 12, and
// tests/golden/torch_vectors.json made by tests/golden/make_torch_vectors.py
// with Debian's python3-torch), on every thread count and instruction set.

#include "store/torch/generate.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "format/checksum.h"
#include "store/core/table_reader.h"
#include "tests/test_util.h"

namespace embstore {
namespace generate_test {

using testing::FloatBits;

GenerateSpec Spec(uint64_t rows, uint64_t dim, uint64_t seed, TorchKernel kernel, unsigned threads = 0) {
  GenerateSpec s;
  s.rows = rows;
  s.dim = dim;
  s.seed = seed;
  s.kernel = kernel;
  s.threads = threads;
  return s;
}

std::vector<float> Generate(const GenerateSpec& spec) {
  std::vector<float> out(spec.rows * spec.dim);
  Status st = GenerateRows(spec, out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::vector<uint32_t> Bits(const GenerateSpec& spec) {
  std::vector<uint32_t> bits;
  for (float f : Generate(spec)) bits.push_back(FloatBits(f));
  return bits;
}

// Runs f under each instruction set this CPU has (EMBSTORE_ISA).
template <typename F>
void ForEachIsa(F f) {
  for (const char* isa : {"portable", "avx2", "avx512"}) {
    setenv("EMBSTORE_ISA", isa, 1);
    f(isa);
  }
  unsetenv("EMBSTORE_ISA");
}

TEST(GenerateTest, NotebookEmbeddingBothKernels) {  // 12.4
  const std::vector<uint32_t> avx2 = {
      0x3eacbbc9, 0xbe360b3b, 0xbe9b67f8, 0xbf1687f2, 0x3eb27c61, 0x3f290c1b, 0xbe60e8af, 0xbec2228c,
      0xbe246ad5, 0xbecd8fd6, 0x3f321afa, 0xbfe72cbc, 0x3ff2af0f, 0xbe333dec, 0x3faf3862, 0xbfcd37f5,
      0xbf48ec26, 0xbfb46cdf, 0xbed0b478, 0x3f4b9a7e, 0x3f7fa07b, 0x3e628f31, 0x3fea7b7f, 0xbeacf935};
  const std::vector<uint32_t> scalar = {
      0x3eacbbc8, 0xbe360b3b, 0xbe9b67f6, 0xbf1687fc, 0x3eb27c61, 0x3f290c1b, 0xbe60e8ac, 0xbec2228a,
      0xbe246ad6, 0xbecd8fd3, 0x3f321afa, 0xbfe72cbb, 0x3ff2af0f, 0xbe333dec, 0x3faf3863, 0xbfcd37f5,
      0xbf48ec26, 0xbfb46cde, 0xbed0b478, 0x3f4b9a7e, 0x3f7fa07b, 0x3e628f31, 0x3fea7b7f, 0xbeacf935};
  ForEachIsa([&](const char* isa) {
    for (unsigned t : {1u, 2u, 3u}) {
      EXPECT_EQ(Bits(Spec(6, 4, 123, TorchKernel::kAvx2, t)), avx2) << isa << " threads " << t;
      EXPECT_EQ(Bits(Spec(6, 4, 123, TorchKernel::kScalar, t)), scalar) << isa << " threads " << t;
    }
  });
  // Row 3 as PyTorch prints it: 1.8960 -0.1750 1.3689 -1.6033.
  auto v = Generate(Spec(6, 4, 123, TorchKernel::kAvx2));
  EXPECT_EQ(std::round(v[12] * 1e4f), 18960.0f);
  EXPECT_EQ(std::round(v[15] * 1e4f), -16033.0f);
}

TEST(GenerateTest, Randn17TailWindow) {  // 12.5
  const std::vector<uint32_t> avx2 = {0x3eacbbc9, 0xbf829ed3, 0xbe2d02e0, 0x3f6af29f, 0x3fca5d36, 0x3fa6887a,
                                      0x3fa33d12, 0xbe4dc6a6, 0xbe246ad5, 0xbfc94144, 0x3f77713c, 0xbf92f662,
                                      0xbf9455c8, 0x3ea6a423, 0xbf21aa56, 0xc035c276, 0xbf48ec26};
  const std::vector<uint32_t> scalar = {0x3eacbbc8, 0xbf829ed8, 0xbe2d02d8, 0x3f6af295, 0x3fca5d32, 0x3fa6887a,
                                        0x3fa33d12, 0xbe4dc6a6, 0xbe246ad6, 0xbfc94141, 0x3f77713c, 0xbf92f666,
                                        0xbf9455cf, 0x3ea6a423, 0xbf21aa57, 0xc035c276, 0xbf48ec26};
  ForEachIsa([&](const char* isa) {
    EXPECT_EQ(Bits(Spec(1, 17, 123, TorchKernel::kAvx2)), avx2) << isa;
    EXPECT_EQ(Bits(Spec(17, 1, 123, TorchKernel::kAvx2, 4)), avx2) << isa;
    EXPECT_EQ(Bits(Spec(1, 17, 123, TorchKernel::kScalar)), scalar) << isa;
  });
}

TEST(GenerateTest, SerialPathBelowSixteen) {  // 12.6: the same on both kernels
  for (TorchKernel k : {TorchKernel::kAvx2, TorchKernel::kScalar}) {
    EXPECT_EQ(Bits(Spec(1, 3, 123, k)), (std::vector<uint32_t>{0xbde448df, 0x3df680d9, 0xbebd40bc}));
    EXPECT_EQ(Bits(Spec(3, 1, 123, k))[2], 0xbebd40bcu);
    EXPECT_EQ(Bits(Spec(5, 3, 123, k))[0], 0xbde448dfu);
  }
}

TEST(GenerateTest, Embedding50257x768Elements) {  // 12.7, single elements
  const std::vector<std::tuple<uint64_t, uint32_t, uint32_t>> want = {
      {0, 0x3eacbbc9, 0x3eacbbc8},        {3, 0xbf1687f2, 0xbf1687fc},        {8, 0x3f446121, 0x3f446121},
      {15, 0x3e89d465, 0x3e89d468},       {16, 0xbd9dbcc9, 0xbd9dbcc9},       {38597359, 0xbfec7268, 0xbfec7268},
      {38597375, 0x3f16bf08, 0x3f16bf08}};
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Six tables of 38.6 million floats take the sanitized build ten seconds;
  // one split over several threads walks every path the others do.
  const std::initializer_list<unsigned> threads = {5u};
#else
  const std::initializer_list<unsigned> threads = {1u, 2u, 5u};
#endif
  for (unsigned t : threads) {
    auto avx2 = Generate(Spec(50257, 768, 123, TorchKernel::kAvx2, t));
    auto scalar = Generate(Spec(50257, 768, 123, TorchKernel::kScalar, t));
    for (const auto& [i, a, s] : want) {
      EXPECT_EQ(FloatBits(avx2[i]), a) << "element " << i << " threads " << t;
      EXPECT_EQ(FloatBits(scalar[i]), s) << "element " << i << " threads " << t;
    }
  }
}

TEST(GenerateTest, UniformBothKernels) {  // 12.3: uniform_(-0.3, 0.3), seed 123
  GenerateSpec s = Spec(1, 4, 123, TorchKernel::kAvx2);
  s.init = Init::kUniform;
  s.low = -0.3;
  s.high = 0.3;
  ForEachIsa([&](const char* isa) {
    EXPECT_EQ(Bits(s), (std::vector<uint32_t>{0xbdfa89a4, 0x3c22d05a, 0xbe1892d2, 0x3de7b2d7})) << isa;
  });
  s.kernel = TorchKernel::kScalar;
  EXPECT_EQ(Bits(s), (std::vector<uint32_t>{0xbdfa89a4, 0x3c22d060, 0xbe1892d2, 0x3de7b2d8}));
  // rand(3): uniform_(0, 1) is the draws themselves (12.2).
  s.low = 0;
  s.high = 1;
  s.dim = 3;
  auto v = Generate(s);
  EXPECT_EQ(v[0], 0.29611194133758545f);
  EXPECT_EQ(v[1], 0.516562283039093f);
  EXPECT_EQ(v[2], 0.2516707181930542f);
}

TEST(GenerateTest, ThreadCountAndIsaNeverChangeBits) {
  // Shapes with and without a tail, odd dims, a uniform table; many thread
  // counts, including more threads than rows.
  for (auto [rows, dim] : std::vector<std::pair<uint64_t, uint64_t>>{{1000, 77}, {4099, 1}, {333, 48}, {7, 1000}}) {
    for (Init init : {Init::kNormal, Init::kUniform}) {
      GenerateSpec s = Spec(rows, dim, 2024, TorchKernel::kAvx2, 1);
      s.init = init;
      setenv("EMBSTORE_ISA", "portable", 1);
      const auto want = Bits(s);
      unsetenv("EMBSTORE_ISA");
      for (unsigned t : {1u, 2u, 3u, 4u, 7u, 16u, 64u}) {
        s.threads = t;
        ASSERT_EQ(Bits(s), want) << rows << "x" << dim << " init " << InitName(init) << " threads " << t;
      }
    }
  }
}

TEST(GenerateTest, BlockHashesMatchTheRows) {
  for (auto [rows, dim, block_rows] : std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>{
           {1000, 77, 13}, {50, 3, 1}, {3, 5, 100}, {4099, 1, 64}, {1, 7, 1}}) {
    GenerateSpec s = Spec(rows, dim, 5, TorchKernel::kAvx2, 3);
    std::vector<float> out(rows * dim);
    std::vector<uint64_t> hashes((rows + block_rows - 1) / block_rows);
    ASSERT_OK(GenerateRows(s, out, OutputMemory::kFresh, block_rows, hashes.data()));
    EXPECT_EQ(out, Generate(s));
    for (uint64_t b = 0; b < hashes.size(); ++b) {
      const uint64_t first = b * block_rows, count = std::min(block_rows, rows - first);
      EXPECT_EQ(hashes[b], Hash64(out.data() + first * dim, count * dim * 4)) << rows << "x" << dim << " block " << b;
    }
  }
}

TEST(GenerateTest, GoldenVectorsFromPyTorch) {
  std::ifstream in(std::string(EMBSTORE_GOLDEN_DIR) + "/torch_vectors.json");
  ASSERT_TRUE(in.good()) << "tests/golden/torch_vectors.json is missing";
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    GenerateSpec s = Spec(c["rows"], c["dim"], c["seed_u64"], c["kernel"] == "avx2" ? TorchKernel::kAvx2
                                                                                      : TorchKernel::kScalar);
    s.init = c["init"] == "normal" ? Init::kNormal : Init::kUniform;
    s.mean = c["a"];
    s.std = c["b"];
    s.low = c["a"];
    s.high = c["b"];
    const std::string name = c["name"];
    std::vector<uint32_t> got;
    if (c.contains("dtype")) {  // float16 / bfloat16: 16-bit words
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
      // The 50,257 x 768 half tables take the sanitized build seconds each on
      // paths the small ones already walk; the release build checks them.
      if (s.rows * s.dim > 1000000) continue;
#endif
      s.dtype = *ParseDtype(c["dtype"].get<std::string>());
      std::vector<uint16_t> half(s.rows * s.dim);
      ASSERT_OK(GenerateRows(s, std::span<uint8_t>(reinterpret_cast<uint8_t*>(half.data()), half.size() * 2)));
      got.assign(half.begin(), half.end());
    } else {
      got = Bits(s);
    }
    if (c.contains("bits")) {
      std::vector<uint32_t> want;
      for (const auto& h : c["bits"]) want.push_back(static_cast<uint32_t>(std::stoul(h.get<std::string>(), nullptr, 16)));
      EXPECT_EQ(got, want) << name;
    }
    for (const auto& [index, hex] : c["samples"].items()) {
      EXPECT_EQ(got[std::stoull(index)], static_cast<uint32_t>(std::stoul(hex.get<std::string>(), nullptr, 16)))
          << name << " element " << index;
    }
  }
}

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
  GenerateSpec spec = Spec(20, 3, 99, TorchKernel::kAvx2);
  spec.mean = 0.5;
  spec.std = 0.02;
  ASSERT_OK(GenerateTable(dir.File("t"), spec));
  auto r = TableReader::Open(dir.File("t"));
  ASSERT_OK(r.status());
  const Metadata& m = r->metadata();
  EXPECT_EQ(m.at("generator"), "torch");
  EXPECT_EQ(m.at("generator.seed"), "99");
  EXPECT_EQ(m.at("generator.init"), "normal");
  EXPECT_EQ(m.at("generator.mean"), "0.5");
  EXPECT_EQ(m.at("generator.std"), "0.02");
  EXPECT_EQ(m.at("generator.kernel"), "avx2");
  EXPECT_EQ(m.count("created"), 0u);  // nothing that varies between runs
  const std::string py = TorchReproduction(m, 20, 3);
  EXPECT_NE(py.find("torch.manual_seed(99)"), std::string::npos);
  EXPECT_NE(py.find("torch.empty(20, 3).normal_(0.5, 0.02)"), std::string::npos);
  EXPECT_EQ(TorchReproduction({}, 1, 1), "");
  // Values that are not numbers are never echoed into Python.
  Metadata evil = m;
  evil["generator.seed"] = "0); __import__('os').system('echo pwned')  #";
  EXPECT_EQ(TorchReproduction(evil, 20, 3), "");
  evil = m;
  evil["generator.std"] = "1)\nimport os";
  EXPECT_EQ(TorchReproduction(evil, 20, 3), "");
  // The file's rows are the generated ones.
  const auto all = Generate(spec);
  EXPECT_EQ(std::vector<float>(r->row(19).begin(), r->row(19).end()), std::vector<float>(all.end() - 3, all.end()));
  EXPECT_TRUE(r->Verify()->ok());
}

TEST(GenerateTest, RejectsBadSpecs) {
  GenerateSpec s = Spec(1, 1, 0, TorchKernel::kAvx2);
  EXPECT_OK(ValidateGenerateSpec(s));
  s.std = -0.5;
  EXPECT_TRUE(ValidateGenerateSpec(s).IsInvalidArgument());
  s.std = 1;
  s.mean = std::nan("");
  EXPECT_TRUE(ValidateGenerateSpec(s).IsInvalidArgument());
  s.mean = 0;
  s.rows = 0;
  EXPECT_TRUE(ValidateGenerateSpec(s).IsInvalidArgument());
  s.rows = 1;
  s.init = Init::kUniform;
  s.low = 1;
  s.high = 0;
  EXPECT_NE(ValidateGenerateSpec(s).message().find("greater than high"), std::string::npos);
  s.low = -3e38;
  s.high = 3e38;
  EXPECT_TRUE(ValidateGenerateSpec(s).IsInvalidArgument());
  std::vector<float> small(3);
  EXPECT_TRUE(GenerateRows(Spec(2, 2, 0, TorchKernel::kAvx2), small).IsInvalidArgument());
}

}  // namespace generate_test
}  // namespace embstore
