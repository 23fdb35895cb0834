// Sharded tables (FORMAT.md, "Sharded tables"): the manifest's rules
// (format/manifest.h), ranged generation (GenerateSpec's first_row and
// row_count) against the whole table's rows, a ShardedTable read, verified
// and described as one table, its shards opened lazily and checked
// (missing, foreign, out of place, another version, not a regular file),
// appends (and appends that were killed), and compress, decompress and
// convert shard by shard. Many threads reading a fresh sharded table are
// in concurrency_test.cc (which ThreadSanitizer runs too).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "format/checksum.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/interop/open_table.h"
#include "store/interop/shards.h"
#include "store/shard/sharded_table.h"
#include "store/torch/generate.h"
#include "tests/test_util.h"

namespace embstore {
namespace shard_test {

using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;
using Json = nlohmann::json;

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------
// The manifest

Manifest GoodManifest() {
  Manifest m;
  m.table_id = "0123456789abcdef0123456789abcdef";
  m.rows = 10;
  m.dim = 4;
  m.dtype = Dtype::kBFloat16;
  m.keys = true;
  m.metadata = {{"generator", "torch"}, {"note", "caf\xc3\xa9 \"quoted\"\n"}};
  m.shards = {{"a.emb", 0, 4, 0x0123456789abcdefULL}, {"b b.embz", 4, 5, 1}, {"c", 9, 1, ~uint64_t{0}}};
  return m;
}

Result<Manifest> Decode(const std::string& text) {
  return DecodeManifest(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// The good manifest as JSON, changed by f, decoded.
template <typename F>
Status DecodeEdited(F f) {
  Json j = Json::parse(EncodeManifest(GoodManifest()));
  f(j);
  return Decode(j.dump()).status();
}

Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}

#define EXPECT_CORRUPT(status, part)                                                                 \
  do {                                                                                               \
    const Status s_ = StatusOf(status);                                                                    \
    EXPECT_TRUE(s_.IsCorruption()) << s_.ToString();                                                 \
    EXPECT_TRUE(Has(s_.message(), part)) << "message lacks '" << (part) << "': " << s_.message();   \
  } while (0)

TEST(ManifestTest, RoundTrips) {
  const Manifest m = GoodManifest();
  ASSERT_OK(CheckManifest(m));
  const std::string text = EncodeManifest(m);
  EXPECT_TRUE(LooksLikeManifest({reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
  auto d = Decode(text);
  ASSERT_OK(d.status());
  EXPECT_EQ(d->version_major, 1u);
  EXPECT_EQ(d->version_minor, 0u);
  EXPECT_EQ(d->table_id, m.table_id);
  EXPECT_EQ(d->rows, m.rows);
  EXPECT_EQ(d->dim, m.dim);
  EXPECT_EQ(d->dtype, m.dtype);
  EXPECT_EQ(d->keys, m.keys);
  EXPECT_EQ(d->metadata, m.metadata);
  ASSERT_EQ(d->shards.size(), m.shards.size());
  for (size_t i = 0; i < m.shards.size(); ++i) {
    EXPECT_EQ(d->shards[i].path, m.shards[i].path);
    EXPECT_EQ(d->shards[i].first_row, m.shards[i].first_row);
    EXPECT_EQ(d->shards[i].rows, m.shards[i].rows);
    EXPECT_EQ(d->shards[i].checksum, m.shards[i].checksum);
  }
  EXPECT_EQ(EncodeManifest(*d), text);  // a function of its fields
  // Any order of fields and any whitespace; a newer minor version.
  Json j = Json::parse(text);
  j["version"] = "1.7";
  j["unknown_field"] = {1, 2, 3};
  auto again = Decode("\n\t " + j.dump(5));
  ASSERT_OK(again.status());
  EXPECT_EQ(again->version_minor, 7u);
  EXPECT_EQ(again->shards.size(), 3u);
  // ShardOf: binary search over the row ranges.
  EXPECT_EQ(m.ShardOf(0), 0u);
  EXPECT_EQ(m.ShardOf(3), 0u);
  EXPECT_EQ(m.ShardOf(4), 1u);
  EXPECT_EQ(m.ShardOf(8), 1u);
  EXPECT_EQ(m.ShardOf(9), 2u);
}

TEST(ManifestTest, NotJsonNotAnObjectNotAManifest) {
  EXPECT_CORRUPT(Decode("{\"format\": "), "not valid JSON");
  EXPECT_CORRUPT(Decode(""), "not valid JSON");
  EXPECT_CORRUPT(Decode("{} trailing"), "not valid JSON");
  EXPECT_CORRUPT(Decode("[1, 2]"), "not a JSON object");
  EXPECT_CORRUPT(Decode("\"embstore sharded table\""), "not a JSON object");
  EXPECT_CORRUPT(Decode("{}"), "has no \"format\"");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["format"] = "embstore sharded tables"; }), "\"format\" is");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["format"] = 1; }), "\"format\" is not a string");
}

TEST(ManifestTest, Version) {
  const Status v2 = DecodeEdited([](Json& j) { j["version"] = "2.0"; });
  EXPECT_TRUE(v2.IsNotSupported()) << v2.ToString();
  EXPECT_TRUE(Has(v2.message(), "unsupported manifest version 2.0")) << v2.message();
  EXPECT_TRUE(DecodeEdited([](Json& j) { j["version"] = "0.9"; }).IsNotSupported());
  for (const char* bad : {"1", "1.", ".0", "1.0.0", "01.0", "1.00", "-1.0", "1.x", "99999999999999999999.0", "65536.0"}) {
    EXPECT_CORRUPT(DecodeEdited([&](Json& j) { j["version"] = bad; }), "is not MAJOR.MINOR");
  }
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["version"] = 1.0; }), "\"version\" is not a string");
}

TEST(ManifestTest, Fields) {
  for (const char* bad : {"", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde",
                          "0123456789abcdef0123456789abcdef0", "g123456789abcdef0123456789abcdef"}) {
    EXPECT_CORRUPT(DecodeEdited([&](Json& j) { j["table_id"] = bad; }), "table_id");
  }
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["table_id"] = 5; }), "\"table_id\" is not a string");
  // Whole numbers only, as JSON integers.
  for (const Json& bad : {Json(-1), Json(10.0), Json(1e30), Json("10"), Json(nullptr), Json(true),
                          Json::parse("18446744073709551616")}) {
    EXPECT_CORRUPT(DecodeEdited([&](Json& j) { j["rows"] = bad; }), "\"rows\" is not a whole number >= 0");
    EXPECT_CORRUPT(DecodeEdited([&](Json& j) { j["shards"][1]["first_row"] = bad; }),
                   "shard 1: \"first_row\" is not a whole number");
  }
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["dim"] = 0; }), "dim 0 is outside");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["dim"] = (1 << 20) + 1; }), "is outside [1, 1048576]");
  for (const char* bad : {"float64", "FLOAT32", "f4", ""}) {
    const Status s = DecodeEdited([&](Json& j) { j["dtype"] = bad; });
    EXPECT_TRUE(s.IsNotSupported()) << bad << ": " << s.ToString();
    EXPECT_TRUE(Has(s.message(), "dtype")) << s.message();
  }
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["keys"] = 1; }), "\"keys\" is not true or false");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["metadata"] = Json::array(); }), "\"metadata\" is not an object");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["metadata"]["x"] = 1; }), "metadata value of 'x' is not a string");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["metadata"]["x"] = Json::object(); }), "metadata value of 'x'");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["metadata"]["Bad Key"] = "v"; }), "metadata key 'Bad Key'");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["metadata"][""] = "v"; }), "metadata key ''");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["metadata"][std::string(256, 'a')] = "v"; }), "metadata key");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) {
                   for (int i = 0; i < 1025; ++i) j["metadata"][std::string("k").append(std::to_string(i))] = "v";
                 }),
                 "more than 1024 entries");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["shards"] = Json::object(); }), "\"shards\" is not a list");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["shards"] = Json::array(); }), "no shards");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["shards"][1] = "b.emb"; }), "shard 1: not an object");
  for (const char* bad : {"", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "x123456789abcdef"}) {
    EXPECT_CORRUPT(DecodeEdited([&](Json& j) { j["shards"][2]["checksum"] = bad; }), "shard 2: checksum");
  }
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["shards"][2]["checksum"] = 7; }), "\"checksum\" is not a string");
}

TEST(ManifestTest, MissingFields) {
  for (const char* field : {"format", "version", "table_id", "rows", "dim", "dtype", "keys", "metadata", "shards"}) {
    EXPECT_CORRUPT(DecodeEdited([&](Json& j) { j.erase(field); }), std::string("has no \"") + field + "\"");
  }
  for (const char* field : {"path", "first_row", "rows", "checksum"}) {
    EXPECT_CORRUPT(DecodeEdited([&](Json& j) { j["shards"][1].erase(field); }),
                   std::string("shard 1: has no \"") + field + "\"");
  }
}

TEST(ManifestTest, RowRanges) {
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["rows"] = 11; }), "the shards hold 10 rows, the manifest says 11");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["rows"] = 9; }), "the shards hold 10 rows, the manifest says 9");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["rows"] = 0; }), "rows 0 is outside");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["rows"] = (uint64_t{1} << 52) + 1; }), "is outside [1, 2^52]");
  // Rows whose bytes are over 2^62: 4096 shards of 2^32 rows of 2^20 floats.
  EXPECT_CORRUPT(DecodeEdited([](Json& j) {
                   j["dim"] = 1 << 20;
                   j["dtype"] = "float32";
                   j["shards"] = Json::array();
                   for (uint64_t i = 0; i < 4096; ++i) {
                     j["shards"].push_back({{"path", std::string("s").append(std::to_string(i))},
                                            {"first_row", i << 32},
                                            {"rows", uint64_t{1} << 32},
                                            {"checksum", "0000000000000000"}});
                   }
                   j["rows"] = uint64_t{1} << 44;
                 }),
                 "rows x dim = 17592186044416 x 1048576 float32 is over 2^62 bytes");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["shards"][2]["rows"] = 0; }), "shard 2 (c) has 0 rows");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["shards"][2]["rows"] = (uint64_t{1} << 32) + 1; }),
                 "a shard has 1 to 2^32");
  // A gap: rows [4, 5) in no shard.
  const Status gap = DecodeEdited([](Json& j) {
    j["shards"][1]["first_row"] = 5;
    j["shards"][1]["rows"] = 4;
  });
  EXPECT_CORRUPT(gap, "gap");
  EXPECT_TRUE(Has(gap.message(), "shard 1 (b b.embz)")) << gap.message();
  EXPECT_TRUE(Has(gap.message(), "rows [4, 5) are in no shard")) << gap.message();
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { j["shards"][0]["first_row"] = 1; }), "rows [0, 1) are in no shard");
  // An overlap: rows [3, 4) in two shards.
  const Status overlap = DecodeEdited([](Json& j) {
    j["shards"][1]["first_row"] = 3;
    j["shards"][1]["rows"] = 6;
  });
  EXPECT_CORRUPT(overlap, "overlap");
  EXPECT_TRUE(Has(overlap.message(), "rows [3, 4) are in two shards")) << overlap.message();
  // Shards in the wrong order: the first one out of order is an overlap.
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { std::swap(j["shards"][0], j["shards"][1]); }), "gap");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) { std::swap(j["shards"][1], j["shards"][2]); }), "gap");
  EXPECT_CORRUPT(DecodeEdited([](Json& j) {
                   // first_row values that sum past 2^64 if added up blindly
                   j["shards"][2]["first_row"] = ~uint64_t{0};
                 }),
                 "gap");
}

TEST(ManifestTest, ShardPaths) {
  auto with_path = [](const std::string& p) { return DecodeEdited([&](Json& j) { j["shards"][1]["path"] = p; }); };
  for (const char* bad : {"../x.emb", "/abs.emb", "sub/x.emb", "a/", "/"}) {
    EXPECT_CORRUPT(with_path(bad), "is not a file name in the manifest's folder");
  }
  for (const char* bad : {".hidden", ".", "..", ".embstore-tmp-123"}) {
    EXPECT_CORRUPT(with_path(bad), "starts with '.'");
  }
  EXPECT_CORRUPT(with_path(""), "must be 1 to 255 bytes");
  EXPECT_CORRUPT(with_path(std::string(256, 'x')), "must be 1 to 255 bytes");
  EXPECT_OK(with_path(std::string(255, 'x')));
  EXPECT_CORRUPT(with_path(std::string("a\0b", 3)), "NUL");
  EXPECT_OK(with_path("naïve shard.emb"));
  const Status twice = with_path("a.emb");
  EXPECT_CORRUPT(twice, "is listed twice");
  EXPECT_TRUE(Has(twice.message(), "shard 1 (a.emb)")) << twice.message();
  // A terminal escape in a path is shown escaped.
  const Status esc = with_path("x\x1b[2Jy/z");
  EXPECT_CORRUPT(esc, "not a file name");
  EXPECT_FALSE(Has(esc.message(), "\x1b")) << esc.message();
}

TEST(ManifestTest, Limits) {
  // More shards than a reader takes: refused before any shard is looked at.
  std::string text = EncodeManifest(GoodManifest());
  Json j = Json::parse(text);
  j["shards"] = Json::array();
  std::string big = j.dump();
  std::string list;
  list.reserve(2 * (kMaxShards + 1));
  for (uint64_t i = 0; i <= kMaxShards; ++i) list += i ? ",0" : "0";
  big.replace(big.find("\"shards\":[]"), 11, "\"shards\":[" + list + "]");
  const Status many = Decode(big).status();
  EXPECT_TRUE(many.IsNotSupported()) << many.ToString();
  EXPECT_TRUE(Has(many.message(), std::to_string(kMaxShards + 1) + " shards")) << many.message();
  // A manifest over 64 MiB is refused unread.
  const std::vector<uint8_t> huge(kMaxManifestSize + 1, ' ');
  const Status size = DecodeManifest(huge).status();
  EXPECT_TRUE(size.IsNotSupported()) << size.ToString();
  EXPECT_TRUE(Has(size.message(), "at most 67108864")) << size.message();
}

TEST(ManifestTest, HostileJson) {
  const std::string good = Json::parse(EncodeManifest(GoodManifest())).dump();
  auto with = [&](const std::string& extra) { return Decode(good.substr(0, good.size() - 1) + ", " + extra + "}"); };
  // A key twice in one object: refused, not resolved to one of them.
  const Status dup = with("\"rows\": 10").status();
  EXPECT_CORRUPT(dup, "key 'rows' appears twice in one object");
  EXPECT_CORRUPT(Decode(std::string(good).replace(good.find("\"path\":"), 0, "\"rows\":4,")), "key 'rows' appears twice");
  EXPECT_CORRUPT(Decode(std::string(good).replace(good.find("\"generator\":"), 0, "\"note\":\"x\",")),
                 "key 'note' appears twice");
  // The same key in different objects is fine.
  EXPECT_OK(with("\"x\": {\"rows\": 1, \"y\": {\"rows\": 2}}").status());
  // Nesting: 16 levels of lists and objects are read, 17 are not.
  EXPECT_OK(with("\"x\": " + std::string(15, '[') + std::string(15, ']')).status());
  const Status deep = with("\"x\": " + std::string(16, '[') + std::string(16, ']')).status();
  EXPECT_TRUE(deep.IsNotSupported()) << deep.ToString();
  EXPECT_TRUE(Has(deep.message(), "more than 16 deep")) << deep.message();
  // A million levels: refused at once (no recursion, no tree).
  const auto t0 = std::chrono::steady_clock::now();
  const Status million = with("\"x\": " + std::string(1 << 20, '[') + std::string(1 << 20, ']')).status();
  EXPECT_TRUE(million.IsNotSupported()) << million.ToString();
  // Too many values, however small: refused before a tree is built.
  std::string many = "\"x\": [0";
  for (uint64_t i = 0; i < kMaxManifestValues; ++i) many += ",0";
  const Status values = with(many + "]").status();
  EXPECT_TRUE(values.IsNotSupported()) << values.ToString();
  EXPECT_TRUE(Has(values.message(), "holds more than " + std::to_string(kMaxManifestValues) + " JSON values")) << values.message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  // Numbers JSON allows but a manifest does not take.
  for (const char* bad : {"-0", "1e3", "1.5", "-5", "123456789012345678901234567890"}) {
    EXPECT_CORRUPT(Decode(std::string(good).replace(good.find("\"rows\":10"), 9, std::string("\"rows\":") + bad)),
                   "\"rows\" is not a whole number >= 0");
  }
  EXPECT_CORRUPT(Decode(std::string(good).replace(good.find("\"rows\":10"), 9, "\"rows\":1E400")), "number overflow");
  // Invalid UTF-8 and NUL escapes in strings.
  EXPECT_CORRUPT(with("\"x\": \"\xff\""), "not valid JSON");
  EXPECT_CORRUPT(Decode(std::string(good).replace(good.find("\"a.emb\""), 7, "\"a\\u0000.emb\"")), "NUL");
}

TEST(ManifestTest, ShardMetadataAndIds) {
  const std::string id = TableIdFrom("some table");
  EXPECT_TRUE(IsTableId(id));
  EXPECT_EQ(id, TableIdFrom("some table"));
  EXPECT_NE(id, TableIdFrom("some table."));
  Metadata m;
  AddShardMetadata(&m, id, 2, 5, 500);
  EXPECT_OK(CheckShardMetadata(m, id, 2, 500, "x"));
  EXPECT_CORRUPT(CheckShardMetadata(m, TableIdFrom("other"), 2, 500, "x"), "x belongs to another table");
  EXPECT_CORRUPT(CheckShardMetadata(m, id, 1, 500, "x"), "x is in the wrong place");
  EXPECT_CORRUPT(CheckShardMetadata(m, id, 2, 499, "x"), "x is in the wrong place");
  EXPECT_CORRUPT(CheckShardMetadata({}, id, 2, 500, "x"), "x is not a shard");
  for (const char* bad : {"", "-1", "02", "5", "x"}) {
    Metadata b = m;
    b[kShardIndexKey] = bad;
    EXPECT_CORRUPT(CheckShardMetadata(b, id, 2, 500, "x"), "missing or malformed");
  }
  EXPECT_EQ(ShardFileName(3), "shard-000003.emb");
  EXPECT_EQ(ShardFileName(1234567, ".embz"), "shard-1234567.embz");
}

// ---------------------------------------------------------------------------
// Ranged generation

GenerateSpec Spec(uint64_t rows, uint64_t dim, Dtype dtype, Init init, TorchKernel kernel, uint64_t seed = 7) {
  GenerateSpec s;
  s.rows = rows;
  s.dim = dim;
  s.dtype = dtype;
  s.init = init;
  s.kernel = kernel;
  s.seed = seed;
  s.low = -0.25;
  s.high = 0.5;
  s.mean = 0.5;
  s.std = 2.0;
  s.sync = false;
  return s;
}

std::vector<uint8_t> Rows(const GenerateSpec& spec) {
  std::vector<uint8_t> out(spec.count() * spec.dim * DtypeSize(spec.dtype));
  const Status st = GenerateRows(spec, std::span<uint8_t>(out));
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST(RangedGenerateTest, AnyRangeIsTheSliceOfTheWholeTable) {
  struct Shape {
    uint64_t rows, dim;
  };
  // rows*dim: below 16, not a multiple of 16, a multiple of 16, dim 1, 3, 33.
  const std::vector<Shape> small = {{1, 1}, {1, 15}, {3, 5}, {5, 3},  {2, 7},  {15, 1}, {16, 1}, {17, 1},
                                    {6, 4}, {9, 3},  {7, 3}, {40, 1}, {12, 33}, {1, 33}, {3, 33}, {8, 2}};
  const std::vector<Shape> larger = {{160, 3}, {101, 33}, {333, 1}};
  std::mt19937_64 rng(1);
  int ranges = 0;
  for (Dtype dtype : {Dtype::kFloat32, Dtype::kFloat16, Dtype::kBFloat16}) {
    for (Init init : {Init::kNormal, Init::kUniform}) {
      for (TorchKernel kernel : {TorchKernel::kAvx2, TorchKernel::kScalar}) {
        auto check = [&](const Shape& shape, uint64_t first, uint64_t count, unsigned threads,
                         const std::vector<uint8_t>& whole) {
          GenerateSpec s = Spec(shape.rows, shape.dim, dtype, init, kernel);
          s.first_row = first;
          s.row_count = count;
          s.threads = threads;
          const uint64_t row = shape.dim * DtypeSize(dtype);
          const std::vector<uint8_t> got = Rows(s);
          const uint64_t n = count ? count : shape.rows - first;
          ASSERT_EQ(got.size(), n * row);
          ASSERT_TRUE(std::equal(got.begin(), got.end(), whole.begin() + static_cast<ptrdiff_t>(first * row)))
              << DtypeName(dtype) << " " << InitName(init) << " " << TorchKernelName(kernel) << " " << shape.rows
              << "x" << shape.dim << " rows [" << first << ", +" << n << ") threads " << threads;
          ++ranges;
        };
        for (const Shape& shape : small) {
          const std::vector<uint8_t> whole = Rows(Spec(shape.rows, shape.dim, dtype, init, kernel));
          // Every range, on one thread; every range ending at the last row
          // (where PyTorch's last 16 elements are) on two. Past 12 rows,
          // ranges starting in the middle are sampled (1 in 4).
          for (uint64_t f = 0; f < shape.rows; ++f) {
            const bool middle = f > 2 && f + 17 < shape.rows;
            for (uint64_t c = 1; f + c <= shape.rows; ++c) {
              if (shape.rows <= 12 || !middle || rng() % 4 == 0) check(shape, f, c, 1, whole);
            }
            check(shape, f, 0, 2, whole);
          }
        }
        for (const Shape& shape : larger) {
          const std::vector<uint8_t> whole = Rows(Spec(shape.rows, shape.dim, dtype, init, kernel));
          const uint64_t rows = shape.rows;
          // Ranges about the last 16 elements, at the start, and at random.
          std::vector<std::pair<uint64_t, uint64_t>> rs = {{0, rows}, {0, 1}, {1, 1}, {rows - 1, 1}, {rows - 2, 2},
                                                           {rows - 3, 1}, {rows - 17, 17}, {rows - 17, 10}, {0, rows - 1},
                                                           {1, rows - 1}, {rows / 2, 0}};
          for (int k = 0; k < 12; ++k) {
            const uint64_t f = rng() % rows;
            rs.emplace_back(f, 1 + rng() % (rows - f));
          }
          for (auto [f, c] : rs) {
            for (unsigned threads : {1u, 2u}) check(shape, f, c, threads, whole);
          }
        }
      }
    }
  }
  EXPECT_GT(ranges, 10000);
}

TEST(RangedGenerateTest, RangesOnSeveralThreadsAndTheirBlockHashes) {
  // Large enough that two threads each get rows (about 1 MiB of work each).
  for (Dtype dtype : {Dtype::kFloat32, Dtype::kBFloat16}) {
    for (Init init : {Init::kNormal, Init::kUniform}) {
      const GenerateSpec whole_spec = Spec(20001, 33, dtype, init, TorchKernel::kAvx2, 11);
      const std::vector<uint8_t> whole = Rows(whole_spec);
      const uint64_t row = 33 * DtypeSize(dtype);
      for (auto [f, c] : std::vector<std::pair<uint64_t, uint64_t>>{{0, 0}, {1, 19999}, {7777, 12224}, {3, 16000}}) {
        for (unsigned threads : {1u, 2u, 3u}) {
          GenerateSpec s = whole_spec;
          s.first_row = f;
          s.row_count = c;
          s.threads = threads;
          const uint64_t n = s.count();
          const uint64_t block_rows = 100;
          std::vector<uint64_t> hashes((n + block_rows - 1) / block_rows);
          std::vector<uint8_t> got(n * row);
          ASSERT_OK(GenerateRows(s, std::span<uint8_t>(got), OutputMemory::kResident, block_rows, hashes.data()));
          ASSERT_TRUE(std::equal(got.begin(), got.end(), whole.begin() + static_cast<ptrdiff_t>(f * row)))
              << DtypeName(dtype) << " " << InitName(init) << " [" << f << ", +" << n << ") threads " << threads;
          for (uint64_t b = 0; b < hashes.size(); ++b) {
            const uint64_t r0 = b * block_rows, r1 = std::min(n, r0 + block_rows);
            ASSERT_EQ(hashes[b], Hash64(got.data() + r0 * row, (r1 - r0) * row)) << "block " << b;
          }
        }
      }
    }
  }
}

TEST(RangedGenerateTest, TheRangeIsChecked) {
  auto status = [](uint64_t rows, uint64_t dim, uint64_t first, uint64_t count) {
    GenerateSpec s = Spec(rows, dim, Dtype::kFloat32, Init::kNormal, TorchKernel::kAvx2);
    s.first_row = first;
    s.row_count = count;
    EXPECT_FALSE(ValidateGenerateSpec(s).ok());
    std::vector<float> none;
    return GenerateRows(s, std::span<float>(none));  // validated before the output's size is
  };
  const Status past = status(10, 4, 10, 0);
  EXPECT_TRUE(past.IsInvalidArgument()) << past.ToString();
  EXPECT_TRUE(Has(past.message(), "are not rows of the 10-row table")) << past.message();
  EXPECT_TRUE(Has(status(10, 4, 11, 1).message(), "are not rows of the 10-row table"));
  EXPECT_TRUE(Has(status(10, 4, 5, 6).message(), "rows [5, +6) are not rows of the 10-row table"));
  EXPECT_TRUE(Has(status(10, 4, 0, 11).message(), "are not rows of the 10-row table"));
  EXPECT_TRUE(Has(status(10, 4, 1, ~uint64_t{0}).message(), "are not rows of the 10-row table"));
  EXPECT_TRUE(Has(status((uint64_t{1} << 52) + 1, 1, 0, 1).message(), "over the limit of a sharded table"));
  const Status big = status(uint64_t{1} << 33, 1, 0, (uint64_t{1} << 32) + 1);
  EXPECT_TRUE(Has(big.message(), "over the format's limit of 4294967296")) << big.message();
  EXPECT_TRUE(Has(status(uint64_t{1} << 33, 1, 5, 0).message(), "larger tables are sharded"));
  EXPECT_TRUE(Has(status(uint64_t{1} << 52, 1 << 20, 0, 1).message(), "over 2^62 bytes"));
  // Bytes, not elements: 2^62 float32 elements are 2^64 bytes.
  EXPECT_TRUE(Has(status(uint64_t{1} << 52, 1 << 10, 0, 1).message(), "1024 float32 is over 2^62 bytes"));
  {
    GenerateSpec half = Spec(uint64_t{1} << 50, 1 << 10, Dtype::kFloat16, Init::kNormal, TorchKernel::kAvx2);
    half.row_count = 1;
    EXPECT_OK(ValidateGenerateSpec(half));  // 2^61 bytes
  }
  // The largest range a file takes, at the end of the largest table: valid.
  GenerateSpec s = Spec(uint64_t{1} << 52, 1, Dtype::kFloat32, Init::kNormal, TorchKernel::kAvx2);
  s.first_row = (uint64_t{1} << 52) - (uint64_t{1} << 32);
  EXPECT_OK(ValidateGenerateSpec(s));
  // Rows far into a huge table: the engine jumps there.
  s.row_count = 3;
  s.dim = 5;
  s.first_row = (uint64_t{1} << 40) + 1;
  std::vector<float> three(15);
  ASSERT_OK(GenerateRows(s, std::span<float>(three)));
  GenerateSpec wider = s;  // the same rows as part of a longer range
  wider.first_row -= 1;
  wider.row_count = 5;
  std::vector<float> five(25);
  ASSERT_OK(GenerateRows(wider, std::span<float>(five)));
  EXPECT_EQ(0, std::memcmp(three.data(), five.data() + 5, sizeof(float) * 15));
}

// ---------------------------------------------------------------------------
// A generated sharded table

constexpr uint64_t kRows = 1003, kDim = 7, kShardRows = 250;  // 5 shards, the last of 3 rows

GenerateSpec TableSpec(uint64_t seed = 5) {
  GenerateSpec s = Spec(kRows, kDim, Dtype::kFloat32, Init::kNormal, TorchKernel::kAvx2, seed);
  s.mean = 0.0;
  s.std = 1.0;
  s.threads = 1;
  return s;
}

ShardWorkOptions NoSync() {
  ShardWorkOptions o;
  o.sync = false;
  o.threads = 1;
  return o;
}

// The sharded table of TableSpec(seed) in dir; its manifest's path.
std::string MakeSharded(const std::string& dir, uint64_t seed = 5, uint64_t shard_rows = kShardRows) {
  auto m = GenerateSharded(dir, TableSpec(seed), shard_rows, NoSync());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : "";
}

std::vector<float> WholeRows(uint64_t seed = 5) {
  std::vector<float> v(kRows * kDim);
  EXPECT_OK(GenerateRows(TableSpec(seed), std::span<float>(v)));
  return v;
}

std::unique_ptr<Table> Open(const std::string& spec) {
  auto t = OpenTable(spec);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(*t) : nullptr;
}

Status ReadRange(const Table& t, uint64_t first, uint64_t count, std::vector<float>* out = nullptr) {
  std::vector<float> v(count * t.dim());
  Status st = t.ReadRows(first, count, std::span<float>(v));
  if (out != nullptr) *out = std::move(v);
  return st;
}

std::vector<float> Slice(const std::vector<float>& whole, uint64_t first, uint64_t count, uint64_t dim = kDim) {
  return std::vector<float>(whole.begin() + static_cast<ptrdiff_t>(first * dim),
                            whole.begin() + static_cast<ptrdiff_t>((first + count) * dim));
}

TEST(ShardedTableTest, GeneratedReadsAsTheSingleFileTable) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  EXPECT_EQ(manifest, dir.File("t") + "/manifest.json");
  const std::vector<float> whole = WholeRows();
  // The single-file table has the same rows.
  auto single_spec = TableSpec();
  ASSERT_OK(GenerateTable(dir.File("single.emb"), single_spec));
  auto single = TableReader::Open(dir.File("single.emb"));
  ASSERT_OK(single.status());
  ASSERT_EQ(0, std::memcmp(single->row_bytes(0, kRows).data(), whole.data(), whole.size() * 4));

  for (const std::string& spec : {manifest, dir.File("t"), dir.File("t") + "/"}) {
    auto t = Open(spec);
    ASSERT_NE(t, nullptr);
    const auto* sharded = dynamic_cast<const ShardedTable*>(t.get());
    ASSERT_NE(sharded, nullptr) << spec;
    EXPECT_EQ(t->rows(), kRows);
    EXPECT_EQ(t->dim(), kDim);
    EXPECT_EQ(t->dtype(), Dtype::kFloat32);
    ASSERT_NE(t->manifest(), nullptr);
    EXPECT_EQ(t->manifest()->shards.size(), 5u);
    EXPECT_EQ(t->metadata(), GenerateMetadata(TableSpec()));
    std::vector<float> all;
    ASSERT_OK(ReadRange(*t, 0, kRows, &all));
    EXPECT_EQ(all, whole);
  }
  auto t = Open(manifest);
  const Manifest& m = *t->manifest();
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(m.shards[i].path, ShardFileName(i));
    EXPECT_EQ(m.shards[i].first_row, i * kShardRows);
    EXPECT_EQ(m.shards[i].rows, i < 4 ? kShardRows : 3);
    // Each shard is an ordinary table, its rows a slice of the whole.
    auto shard = TableReader::Open(dir.File("t/" + ShardFileName(i)));
    ASSERT_OK(shard.status());
    EXPECT_EQ(shard->metadata().at(kShardTableKey), m.table_id);
    EXPECT_EQ(shard->metadata().at(kShardIndexKey), std::to_string(i));
    EXPECT_EQ(shard->metadata().at(kShardCountKey), "5");
    EXPECT_EQ(shard->metadata().at(kShardFirstRowKey), std::to_string(i * kShardRows));
    EXPECT_EQ(shard->metadata().at("generator.first_row"), std::to_string(i * kShardRows));
    EXPECT_EQ(0, std::memcmp(shard->row_bytes(0, m.shards[i].rows).data(), whole.data() + i * kShardRows * kDim,
                             m.shards[i].rows * kDim * 4));
  }

  // Gather across shards: unsorted, repeated, in runs and not.
  const std::vector<uint64_t> ids = {1002, 0, 250, 249, 1000, 0, 500, 751, 3, 3, 4, 999, 1001, 250, 251};
  std::vector<float> got(ids.size() * kDim);
  ASSERT_OK(t->Gather(ids, std::span<float>(got)));
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(got.data() + i * kDim, whole.data() + ids[i] * kDim, kDim * 4)) << "id " << ids[i];
  }
  // Long runs in one shard, and runs that cross into the next.
  std::vector<uint64_t> run;
  for (uint64_t id = 100; id < 420; ++id) run.push_back(id);
  for (uint64_t id = 1002; id + 1 > 900; --id) run.push_back(id);
  std::vector<float> run_rows(run.size() * kDim);
  ASSERT_OK(t->Gather(run, std::span<float>(run_rows)));
  for (size_t i = 0; i < run.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(run_rows.data() + i * kDim, whole.data() + run[i] * kDim, kDim * 4)) << "id " << run[i];
  }
  // The same as bfloat16, converted on the way out.
  std::vector<uint8_t> bf(ids.size() * kDim * 2);
  ASSERT_OK(t->Gather(ids, Dtype::kBFloat16, std::span<uint8_t>(bf)));
  std::vector<uint8_t> bf_single(ids.size() * kDim * 2);
  ASSERT_OK(single->Gather(ids, Dtype::kBFloat16, std::span<uint8_t>(bf_single)));
  EXPECT_EQ(bf, bf_single);
  // ReadRows across boundaries.
  for (auto [f, c] : std::vector<std::pair<uint64_t, uint64_t>>{
           {240, 300}, {249, 2}, {250, 250}, {0, 1003}, {999, 4}, {1002, 1}, {100, 0}, {1003, 0}}) {
    std::vector<float> rows;
    ASSERT_OK(ReadRange(*t, f, c, &rows));
    EXPECT_EQ(rows, Slice(whole, f, c)) << "rows [" << f << ", +" << c << ")";
  }
  // Out of range: an error naming the id; nothing past the end.
  std::vector<float> one(kDim);
  const std::vector<uint64_t> bad = {5, 1003};
  std::vector<float> two(2 * kDim);
  const Status oor = t->Gather(bad, std::span<float>(two));
  EXPECT_TRUE(oor.IsOutOfRange()) << oor.ToString();
  EXPECT_TRUE(Has(oor.message(), "1003")) << oor.message();
  const std::vector<uint64_t> huge = {~uint64_t{0}};
  EXPECT_TRUE(t->Gather(huge, std::span<float>(one)).IsOutOfRange());
  EXPECT_TRUE(ReadRange(*t, 1000, 4).IsOutOfRange());
  EXPECT_TRUE(ReadRange(*t, ~uint64_t{0}, 2).IsOutOfRange());
  EXPECT_TRUE(t->ReadRows(0, 2, std::span<float>(one)).IsInvalidArgument());  // out too small
  EXPECT_OK(t->Advise(AccessHint::kRandom, 0, kRows));
  EXPECT_TRUE(t->Advise(AccessHint::kRandom, 1000, 4).IsOutOfRange());

  // Verify: every shard.
  auto report = t->Verify(testing::Threads(2));
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_EQ(report->shards_checked, 5u);
  EXPECT_EQ(report->bytes_checked, kRows * kDim * 4);

  // A sharded table is not one file.
  EXPECT_EQ(t->table_prefix().size(), 0u);
  EXPECT_EQ(t->mapped(), nullptr);
  uint64_t files = 0;
  for (uint64_t i = 0; i < 5; ++i) files += std::filesystem::file_size(dir.File("t/" + ShardFileName(i)));
  EXPECT_EQ(t->file_size(), files);

  // info --json: the shards, from the manifest.
  const Json info = Json::parse(TableInfoJson(*t, "t"));
  EXPECT_EQ(info["file"], "t");
  EXPECT_EQ(info["rows"], kRows);
  EXPECT_EQ(info["dim"], kDim);
  EXPECT_EQ(info["dtype"], "float32");
  EXPECT_EQ(info["keys"], false);
  EXPECT_EQ(info["file_size"], files);
  EXPECT_EQ(info["sharded"]["format_version"], "1.0");
  EXPECT_EQ(info["sharded"]["table_id"], m.table_id);
  ASSERT_EQ(info["sharded"]["shards"].size(), 5u);
  EXPECT_EQ(info["sharded"]["shards"][2]["path"], "shard-000002.emb");
  EXPECT_EQ(info["sharded"]["shards"][2]["first_row"], 500);
  EXPECT_EQ(info["sharded"]["shards"][4]["rows"], 3);
  EXPECT_EQ(info["sharded"]["shards"][2]["checksum"], Hex64(m.shards[2].checksum));
  EXPECT_TRUE(Has(info["torch"].get<std::string>(), "torch.nn.Embedding(1003, 7)")) << info.dump();
}

TEST(ShardedTableTest, SameWorkSameBytes) {
  TempDir dir;
  MakeSharded(dir.File("a"));
  MakeSharded(dir.File("b"));
  MakeSharded(dir.File("c"), 6);
  MakeSharded(dir.File("d"), 5, 251);
  EXPECT_EQ(ReadBytes(dir.File("a/manifest.json")), ReadBytes(dir.File("b/manifest.json")));
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ReadBytes(dir.File("a/" + ShardFileName(i))), ReadBytes(dir.File("b/" + ShardFileName(i))));
  }
  // Other parameters, another table id.
  auto a = Open(dir.File("a")), c = Open(dir.File("c")), d = Open(dir.File("d"));
  EXPECT_NE(a->manifest()->table_id, c->manifest()->table_id);
  EXPECT_NE(a->manifest()->table_id, d->manifest()->table_id);
  // Sharded in any size, the same rows.
  std::vector<float> ra, rd;
  ASSERT_OK(ReadRange(*a, 0, kRows, &ra));
  ASSERT_OK(ReadRange(*d, 0, kRows, &rd));
  EXPECT_EQ(ra, rd);
  // The plan's limits.
  EXPECT_TRUE(PlanShards(10, 0).status().IsInvalidArgument());
  EXPECT_TRUE(PlanShards(10, (uint64_t{1} << 32) + 1).status().IsInvalidArgument());
  EXPECT_TRUE(Has(PlanShards(uint64_t{1} << 40, 1 << 20).status().message(), "over the limit of 32768"));
  auto plan = PlanShards(10, 4);
  ASSERT_OK(plan.status());
  EXPECT_EQ(*plan, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 4}, {4, 4}, {8, 2}}));
  // One shard of one row; shards of one row each.
  GenerateSpec s = TableSpec();
  s.rows = 1;
  ASSERT_OK(GenerateSharded(dir.File("one"), s, 5, NoSync()).status());
  EXPECT_EQ(Open(dir.File("one"))->rows(), 1u);
  s.rows = 20;
  ASSERT_OK(GenerateSharded(dir.File("ones"), s, 1, NoSync()).status());
  auto ones = Open(dir.File("ones"));
  EXPECT_EQ(ones->manifest()->shards.size(), 20u);
  std::vector<float> r20, w20(20 * kDim);
  ASSERT_OK(ReadRange(*ones, 0, 20, &r20));
  ASSERT_OK(GenerateRows(s, std::span<float>(w20)));
  EXPECT_EQ(r20, w20);
  // More rows than a table file takes: each shard is checked, not the
  // whole (cancelled before the first shard's rows, the work having begun).
  {
    GenerateSpec big = TableSpec();
    big.rows = (uint64_t{1} << 32) + 5;
    big.dim = 1;
    CancelToken cancel;
    cancel.Cancel();
    ShardWorkOptions o = NoSync();
    o.cancel = &cancel;
    auto r = GenerateSharded(dir.File("big"), big, 1 << 20, o);
    EXPECT_TRUE(r.status().IsCancelled()) << r.status().ToString();
    EXPECT_FALSE(std::filesystem::exists(dir.File("big/manifest.json")));
    big.rows = uint64_t{1} << 33;  // shards of more rows than a file takes
    auto over = GenerateSharded(dir.File("big"), big, (uint64_t{1} << 32) + 1, o);
    EXPECT_TRUE(over.status().IsInvalidArgument()) << over.status().ToString();
  }
  // A range is refused: a sharded table is generated whole.
  s.first_row = 3;
  EXPECT_TRUE(GenerateSharded(dir.File("r"), s, 5, NoSync()).status().IsInvalidArgument());
}

TEST(ShardedTableTest, VerifyNamesTheCorruptShardAndTheTablesRows) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  const std::string shard2 = dir.File("t/shard-000002.emb");
  uint64_t offset = 0, block_rows = 0;
  {
    auto s = TableReader::Open(shard2);
    ASSERT_OK(s.status());
    offset = s->header().data_offset + 10 * s->header().row_stride + 5;  // row 510 of the table
    block_rows = s->header().checksum_block_rows;
  }
  std::vector<uint8_t> bytes = ReadBytes(shard2);
  bytes[offset] ^= 0x40;
  WriteBytes(shard2, bytes);
  auto t = Open(manifest);
  auto report = t->Verify(testing::Threads(1));
  ASSERT_OK(report.status());
  EXPECT_FALSE(report->ok());
  EXPECT_EQ(report->bad_block_count, 1u);
  ASSERT_EQ(report->bad.size(), 1u);
  const BadRows& b = report->bad[0];
  EXPECT_EQ(b.shard, "shard-000002.emb");
  EXPECT_LE(b.first_row, 510u);
  EXPECT_GT(b.first_row + b.row_count, 510u);
  EXPECT_GE(b.first_row, 500u);  // rows of the whole table, not of the shard
  EXPECT_LE(b.first_row + b.row_count, 750u);
  EXPECT_EQ(b.first_row, 500 + (10 / block_rows) * block_rows);
  EXPECT_TRUE(Has(b.Describe(), "shard shard-000002.emb: block")) << b.Describe();
  EXPECT_TRUE(Has(report->Summary(), "shard shard-000002.emb rows [")) << report->Summary();
  EXPECT_TRUE(report->bad_shards.empty());
  EXPECT_EQ(report->shards_checked, 5u);
  // The other shards still read; the damaged row reads as stored (a .emb
  // does not check rows on the way out: verify does).
  std::vector<float> rows;
  EXPECT_OK(ReadRange(*t, 0, 500, &rows));
  EXPECT_EQ(rows, Slice(WholeRows(), 0, 500));
}

// ---------------------------------------------------------------------------
// Shards opened lazily, and checked

// Reads every row of shard i (250 rows from i * 250).
Status ReadShard(const Table& t, uint64_t i) {
  const ShardEntry& e = t.manifest()->shards[i];
  return ReadRange(t, e.first_row, e.rows);
}

void ExpectOthersRead(const Table& t, uint64_t bad) {
  const std::vector<float> whole = WholeRows();
  for (uint64_t i = 0; i < t.manifest()->shards.size(); ++i) {
    if (i == bad) continue;
    const ShardEntry& e = t.manifest()->shards[i];
    std::vector<float> rows;
    EXPECT_OK(ReadRange(t, e.first_row, e.rows, &rows));
    EXPECT_EQ(rows, Slice(whole, e.first_row, e.rows)) << "shard " << i;
  }
}

// Every way of reading shard i fails with the same error, whose message
// contains `part` and names the shard; verify lists it as a bad shard.
void ExpectShardFails(const Table& t, uint64_t i, Status::Code code, const std::string& part) {
  const std::string name = ShardFileName(i);
  const Status read = ReadShard(t, i);
  EXPECT_EQ(read.code(), code) << read.ToString();
  EXPECT_TRUE(Has(read.message(), part)) << "lacks '" << part << "': " << read.message();
  EXPECT_TRUE(Has(read.message(), "shard " + std::to_string(i) + " (" + name + ", rows [")) << read.message();
  const std::vector<uint64_t> ids = {0, t.manifest()->shards[i].first_row + 1};
  std::vector<float> out(2 * t.dim());
  const Status gather = t.Gather(ids, std::span<float>(out));
  EXPECT_EQ(gather.code(), code);
  EXPECT_EQ(gather.message(), read.message());
  auto report = t.Verify(testing::Threads(1));
  ASSERT_OK(report.status());
  EXPECT_FALSE(report->ok());
  ASSERT_EQ(report->bad_shards.size(), 1u);
  EXPECT_TRUE(Has(report->bad_shards[0], name)) << report->bad_shards[0];
  EXPECT_TRUE(Has(report->bad_shards[0], part)) << report->bad_shards[0];
  EXPECT_TRUE(Has(report->Summary(), "1 of 5 shards unreadable")) << report->Summary();
  ExpectOthersRead(t, i);
}

TEST(ShardedTableTest, MissingShardIsAnErrorOnlyWhenRead) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  auto t = Open(manifest);
  ASSERT_OK(ReadShard(*t, 0));  // shard 0 open before the removal
  ASSERT_EQ(0, ::unlink(dir.File("t/shard-000001.emb").c_str()));
  ASSERT_EQ(0, ::unlink(dir.File("t/shard-000000.emb").c_str()));
  EXPECT_OK(ReadShard(*t, 0));  // opened already: its mapping stays
  ExpectShardFails(*t, 1, Status::Code::kNotFound, "is missing");
  // Opening needs only the manifest.
  auto again = Open(manifest);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->rows(), kRows);
  EXPECT_TRUE(ReadShard(*again, 0).IsNotFound());
  EXPECT_OK(ReadShard(*again, 2));
}

TEST(ShardedTableTest, ShardOfAnotherTable) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  MakeSharded(dir.File("other"), 9);
  std::filesystem::copy_file(dir.File("other/shard-000001.emb"), dir.File("t/shard-000001.emb"),
                             std::filesystem::copy_options::overwrite_existing);
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "belongs to another table");
}

TEST(ShardedTableTest, ShardsSwapped) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  ASSERT_EQ(0, ::rename(dir.File("t/shard-000001.emb").c_str(), dir.File("t/x").c_str()));
  ASSERT_EQ(0, ::rename(dir.File("t/shard-000002.emb").c_str(), dir.File("t/shard-000001.emb").c_str()));
  ASSERT_EQ(0, ::rename(dir.File("t/x").c_str(), dir.File("t/shard-000002.emb").c_str()));
  auto t = Open(manifest);
  const Status s = ReadShard(*t, 1);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_TRUE(Has(s.message(), "is in the wrong place: it was written as shard 2 of 5 starting at row 500, the "
                               "manifest lists it as shard 1 starting at row 250"))
      << s.message();
  EXPECT_TRUE(Has(ReadShard(*t, 2).message(), "wrong place"));
  EXPECT_OK(ReadShard(*t, 3));
}

TEST(ShardedTableTest, AnotherVersionOfAShard) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  auto t0 = Open(manifest);
  const std::string id = t0->manifest()->table_id;
  // Same table id, index and first row, other rows.
  GenerateSpec s = TableSpec(77);
  s.first_row = 250;
  s.row_count = 250;
  auto e = GenerateShard(dir.File("t/shard-000001.emb"), s, id, 1, 5);
  ASSERT_OK(e.status());
  EXPECT_NE(e->checksum, t0->manifest()->shards[1].checksum);
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption,
                   "its checksums are not the ones the manifest records");
  // A shard with the other table's row count.
  s.row_count = 249;
  ASSERT_OK(GenerateShard(dir.File("t/shard-000001.emb"), s, id, 1, 5).status());
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "has 249 rows, the manifest says 250");
  // An ordinary table where a shard should be.
  GenerateSpec plain = TableSpec();
  plain.rows = 250;
  ASSERT_OK(GenerateTable(dir.File("t/shard-000001.emb"), plain));
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "is not a shard");
  // Another dim or dtype.
  plain.dim = 8;
  ASSERT_OK(GenerateTable(dir.File("t/shard-000001.emb"), plain));
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "is 250 x 8 float32, the table 7-dimensional");
  plain.dim = kDim;
  plain.dtype = Dtype::kFloat16;
  ASSERT_OK(GenerateTable(dir.File("t/shard-000001.emb"), plain));
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "float16");
  // Bytes that are no table.
  WriteBytes(dir.File("t/shard-000001.emb"), std::vector<uint8_t>(100, 0x89));
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "shard-000001.emb");
  WriteBytes(dir.File("t/shard-000001.emb"), {});
  const Status empty = ReadShard(*Open(manifest), 1);
  EXPECT_FALSE(empty.ok());
  EXPECT_TRUE(Has(empty.message(), "shard-000001.emb")) << empty.message();
  // The manifest itself listed as a shard.
  std::filesystem::copy_file(manifest, dir.File("t/shard-000001.emb"),
                             std::filesystem::copy_options::overwrite_existing);
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "a manifest cannot be a shard");
}

TEST(ShardedTableTest, ShardsThatAreNotRegularFiles) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  const std::string shard1 = dir.File("t/shard-000001.emb");
  // A symlink to the real shard, in the same folder.
  ASSERT_EQ(0, ::rename(shard1.c_str(), dir.File("t/real.emb").c_str()));
  ASSERT_EQ(0, ::symlink("real.emb", shard1.c_str()));
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "is a symbolic link");
  // A symlink to itself: no loop.
  ASSERT_EQ(0, ::unlink(shard1.c_str()));
  ASSERT_EQ(0, ::symlink("shard-000001.emb", shard1.c_str()));
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "is a symbolic link");
  // A folder.
  ASSERT_EQ(0, ::unlink(shard1.c_str()));
  ASSERT_EQ(0, ::mkdir(shard1.c_str(), 0755));
  ExpectShardFails(*Open(manifest), 1, Status::Code::kCorruption, "is not a regular file");
  // A FIFO: an error at once, never a wait for a writer. Run on a thread;
  // should it block, a writer opening the FIFO lets it go and the check fails.
  ASSERT_EQ(0, ::rmdir(shard1.c_str()));
  ASSERT_EQ(0, ::mkfifo(shard1.c_str(), 0644));
  auto t = Open(manifest);
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  std::thread reader([&] { done.set_value(ReadShard(*t, 1)); });
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "reading a FIFO shard blocked";
    const int fd = ::open(shard1.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  reader.join();
  const Status fifo = result.get();
  EXPECT_TRUE(fifo.IsCorruption()) << fifo.ToString();
  EXPECT_TRUE(Has(fifo.message(), "shard 1 (shard-000001.emb, rows [250, 500)) is not a regular file"))
      << fifo.message();
  ExpectOthersRead(*t, 1);
}

TEST(ShardedTableTest, ManifestsThatCannotBeOpened) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  // Damaged: the error names the file.
  std::vector<uint8_t> bytes = ReadBytes(manifest);
  WriteBytes(dir.File("t/bad.json"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + 40));
  auto bad = OpenTable(dir.File("t/bad.json"));
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
  EXPECT_TRUE(Has(bad.status().message(), dir.File("t/bad.json") + ": corrupt manifest: not valid JSON"))
      << bad.status().message();
  // A folder without a manifest.
  ASSERT_EQ(0, ::mkdir(dir.File("empty").c_str(), 0755));
  auto none = OpenTable(dir.File("empty"));
  EXPECT_TRUE(none.status().IsNotFound() || none.status().IsIOError()) << none.status().ToString();
  EXPECT_TRUE(Has(none.status().message(), "manifest.json")) << none.status().message();
  // A FIFO as the manifest: refused at once.
  ASSERT_EQ(0, ::mkfifo(dir.File("fifo.json").c_str(), 0644));
  auto fifo = OpenTable(dir.File("fifo.json"));
  EXPECT_FALSE(fifo.ok());
  EXPECT_TRUE(Has(fifo.status().message(), "FIFO")) << fifo.status().message();
  // A manifest's folder through a symlink: its shards are read from the
  // folder the link names.
  ASSERT_EQ(0, ::symlink("t", dir.File("link").c_str()));
  auto via = Open(dir.File("link"));
  ASSERT_NE(via, nullptr);
  EXPECT_OK(ReadRange(*via, 0, kRows));
  // Whitespace before the '{' still reads as a manifest.
  std::string text(bytes.begin(), bytes.end());
  WriteBytes(dir.File("t/spaced.json"), ReadBytes(manifest));
  {
    std::string spaced = " \n\t\r" + text;
    WriteBytes(dir.File("t/spaced.json"), std::vector<uint8_t>(spaced.begin(), spaced.end()));
  }
  auto spaced = Open(dir.File("t/spaced.json"));
  ASSERT_NE(spaced, nullptr);
  EXPECT_EQ(spaced->rows(), kRows);
  // OpenMappedTable (share, compress of one file) refuses a manifest.
  auto mapped = OpenMappedTable(manifest);
  EXPECT_TRUE(mapped.status().IsInvalidArgument()) << mapped.status().ToString();
  EXPECT_TRUE(Has(mapped.status().message(), "sharded table's manifest")) << mapped.status().message();
}

// ---------------------------------------------------------------------------
// Appending

std::string MakePlain(const std::string& path, uint64_t rows, uint64_t dim = kDim, uint64_t seed = 3,
                      Dtype dtype = Dtype::kFloat32) {
  GenerateSpec s = Spec(rows, dim, dtype, Init::kNormal, TorchKernel::kAvx2, seed);
  s.threads = 1;
  EXPECT_OK(GenerateTable(path, s));
  return path;
}

std::vector<float> AllRows(const std::string& spec) {
  auto t = Open(spec);
  std::vector<float> v;
  if (t != nullptr) EXPECT_OK(ReadRange(*t, 0, t->rows(), &v));
  return v;
}

TEST(AppendTest, AppendsAShard) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  const std::string src = MakePlain(dir.File("src.emb"), 100);
  const std::vector<float> before = AllRows(manifest);
  const std::vector<float> added = AllRows(src);
  auto e = AppendShard(manifest, src, NoSync());
  ASSERT_OK(e.status());
  EXPECT_EQ(e->path, "shard-000005.emb");
  EXPECT_EQ(e->first_row, kRows);
  EXPECT_EQ(e->rows, 100u);
  auto t = Open(manifest);
  EXPECT_EQ(t->rows(), kRows + 100);
  EXPECT_EQ(t->manifest()->rows, kRows + 100);
  ASSERT_EQ(t->manifest()->shards.size(), 6u);
  std::vector<float> all;
  ASSERT_OK(ReadRange(*t, 0, kRows + 100, &all));
  EXPECT_EQ(Slice(all, 0, kRows), before);
  EXPECT_EQ(Slice(all, kRows, 100), added);
  auto report = t->Verify(testing::Threads(1));
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_EQ(report->shards_checked, 6u);
  // The new shard keeps the source's metadata and names its table.
  auto shard = TableReader::Open(dir.File("t/shard-000005.emb"));
  ASSERT_OK(shard.status());
  EXPECT_EQ(shard->metadata().at(kShardTableKey), t->manifest()->table_id);
  EXPECT_EQ(shard->metadata().at(kShardIndexKey), "5");
  EXPECT_EQ(shard->metadata().at(kShardCountKey), "6");
  EXPECT_EQ(shard->metadata().at(kShardFirstRowKey), std::to_string(kRows));
  EXPECT_EQ(shard->metadata().at("generator.seed"), "3");
  // Again, by the folder's name, from a .embz.
  auto src_table = TableReader::Open(src);
  ASSERT_OK(src_table.status());
  CompressOptions co;
  co.sync = false;
  ASSERT_OK(CompressTable(*src_table, dir.File("src.embz"), co));
  auto e2 = AppendShard(dir.File("t"), dir.File("src.embz"), NoSync());
  ASSERT_OK(e2.status());
  EXPECT_EQ(e2->path, "shard-000006.emb");
  EXPECT_EQ(e2->first_row, kRows + 100);
  EXPECT_EQ(Slice(AllRows(manifest), kRows + 100, 100), added);
  // A table opened before the append keeps the rows it had.
  EXPECT_EQ(t->rows(), kRows + 100);
}

TEST(AppendTest, Refusals) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  const std::vector<uint8_t> before = ReadBytes(manifest);
  Status last;
  auto refused = [&](const std::string& source, const std::string& part, const std::string& into = "") {
    auto e = AppendShard(into.empty() ? manifest : into, source, NoSync());
    EXPECT_FALSE(e.ok()) << source;
    EXPECT_TRUE(Has(e.status().message(), part)) << "lacks '" << part << "': " << e.status().message();
    EXPECT_EQ(ReadBytes(manifest), before);
    EXPECT_FALSE(std::filesystem::exists(dir.File("t/shard-000005.emb")));
    last = e.status();
  };
  refused(MakePlain(dir.File("dim8.emb"), 10, 8), "is 10 x 8 float32; the sharded table's rows are 7-dimensional float32");
  const Status dim = last;
  EXPECT_TRUE(dim.IsInvalidArgument());
  EXPECT_TRUE(dim.message().ends_with("7-dimensional float32")) << dim.message();
  refused(MakePlain(dir.File("half.emb"), 10, kDim, 3, Dtype::kFloat16),
          "is 10 x 7 float16; the sharded table's rows are 7-dimensional float32; embstore convert --dtype makes "
          "another dtype");
  // Keys into a table without keys.
  {
    KeyList list;
    for (int i = 0; i < 10; ++i) ASSERT_OK(list.Add(std::string("k").append(std::to_string(i))));
    auto section = EncodeKeys(list);
    ASSERT_OK(section.status());
    WriterOptions o;
    o.sync = false;
    o.keys = *section;
    auto w = TableWriter::Create(dir.File("keyed.emb"), 10, kDim, o);
    ASSERT_OK(w.status());
    std::vector<float> v(10 * kDim, 1.0f);
    ASSERT_OK((*w)->Append(v));
    ASSERT_OK((*w)->Finish());
  }
  refused(dir.File("keyed.emb"), "has keys, and the table's shards have none");
  // A sharded table as the source; a table file as the manifest.
  MakeSharded(dir.File("u"), 8);
  refused(dir.File("u"), "is a sharded table");
  refused(dir.File("u/manifest.json"), "is a sharded table");
  refused(MakePlain(dir.File("ok.emb"), 10), "is a table file, not a sharded table's manifest", dir.File("ok.emb"));
  refused(dir.File("nothing.emb"), "nothing.emb");
  // A corrupt source.
  std::vector<uint8_t> bytes = ReadBytes(dir.File("ok.emb"));
  bytes[bytes.size() - 3] ^= 1;
  WriteBytes(dir.File("corrupt.emb"), bytes);
  refused(dir.File("corrupt.emb"), "corrupt");
  // Cancelled before it starts.
  CancelToken cancel;
  cancel.Cancel();
  ShardWorkOptions o = NoSync();
  o.cancel = &cancel;
  auto c = AppendShard(manifest, dir.File("ok.emb"), o);
  EXPECT_TRUE(c.status().IsCancelled()) << c.status().ToString();
  EXPECT_EQ(ReadBytes(manifest), before);
}

// A sharded table whose shards have keys: "w<row>" for each row.
std::string MakeKeyed(const std::string& dir, std::vector<uint64_t> shard_rows) {
  std::filesystem::create_directories(dir);
  Manifest m;
  m.table_id = TableIdFrom(dir);
  m.dim = 3;
  m.keys = true;
  uint64_t first = 0;
  for (uint64_t i = 0; i < shard_rows.size(); ++i) {
    KeyList list;
    for (uint64_t r = 0; r < shard_rows[i]; ++r) EXPECT_OK(list.Add(std::string("w").append(std::to_string(first + r))));
    auto section = EncodeKeys(list);
    EXPECT_OK(section.status());
    WriterOptions o;
    o.sync = false;
    o.keys = *section;
    AddShardMetadata(&o.metadata, m.table_id, i, shard_rows.size(), first);
    const std::string name = ShardFileName(i);
    auto w = TableWriter::Create(dir + "/" + name, shard_rows[i], 3, o);
    EXPECT_OK(w.status());
    std::vector<float> v(shard_rows[i] * 3);
    for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(first * 3 + k);
    EXPECT_OK((*w)->Append(v));
    EXPECT_OK((*w)->Finish());
    auto t = OpenTable(dir + "/" + name);
    EXPECT_OK(t.status());
    m.shards.push_back(DescribeShard(**t, name, first));
    first += shard_rows[i];
  }
  m.rows = first;
  EXPECT_OK(WriteManifest(dir + "/manifest.json", m, false));
  return dir + "/manifest.json";
}

std::string MakeKeyedSource(const std::string& path, std::vector<std::string> keys) {
  KeyList list;
  for (const auto& k : keys) EXPECT_OK(list.Add(k));
  auto section = EncodeKeys(list);
  EXPECT_OK(section.status());
  WriterOptions o;
  o.sync = false;
  o.keys = *section;
  auto w = TableWriter::Create(path, keys.size(), 3, o);
  EXPECT_OK(w.status());
  std::vector<float> v(keys.size() * 3, -1.0f);
  EXPECT_OK((*w)->Append(v));
  EXPECT_OK((*w)->Finish());
  return path;
}

TEST(AppendTest, KeysAreUniqueAcrossShards) {
  TempDir dir;
  const std::string manifest = MakeKeyed(dir.File("k"), {5, 4, 6});
  auto t = Open(manifest);
  EXPECT_EQ(t->rows(), 15u);
  EXPECT_EQ(t->manifest()->keys, true);
  EXPECT_TRUE(t->header().has_keys());
  auto report = t->Verify(testing::Threads(1));
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok()) << report->Summary();
  const std::vector<uint8_t> before = ReadBytes(manifest);
  // A key that is row 7 of the table (shard 1's row 2).
  auto dup = AppendShard(manifest, MakeKeyedSource(dir.File("dup.emb"), {"new1", "w7", "new2"}), NoSync());
  EXPECT_TRUE(dup.status().IsInvalidArgument()) << dup.status().ToString();
  EXPECT_TRUE(Has(dup.status().message(), "key 'w7' (its row 1) is already row 7 of the table"))
      << dup.status().message();
  EXPECT_EQ(ReadBytes(manifest), before);
  // A table without keys into a keyed one.
  auto plain = AppendShard(manifest, MakePlain(dir.File("plain.emb"), 3, 3), NoSync());
  EXPECT_TRUE(Has(plain.status().message(), "has no keys, and every shard of the table has keys"))
      << plain.status().message();
  // New keys go in.
  auto ok = AppendShard(manifest, MakeKeyedSource(dir.File("new.emb"), {"w15", "w16"}), NoSync());
  ASSERT_OK(ok.status());
  EXPECT_EQ(ok->first_row, 15u);
  auto after = Open(manifest);
  EXPECT_EQ(after->rows(), 17u);
  auto shard = TableReader::Open(dir.File("k/shard-000003.emb"));
  ASSERT_OK(shard.status());
  ASSERT_NE(shard->keys(), nullptr);
  EXPECT_EQ(*shard->keys()->Key(1), "w16");
  // ... and are then taken.
  auto again = AppendShard(manifest, dir.File("new.emb"), NoSync());
  EXPECT_TRUE(Has(again.status().message(), "key 'w15' (its row 0) is already row 15 of the table"))
      << again.status().message();
}

TEST(AppendTest, AKilledAppendLeavesTheOldManifest) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  const std::vector<uint8_t> before = ReadBytes(manifest);
  const std::vector<float> rows_before = AllRows(manifest);
  const std::string src = MakePlain(dir.File("src.emb"), 40);
  // Killed after writing its shard: the shard's file is there, whole, but
  // the manifest does not list it.
  std::filesystem::copy_file(MakePlain(dir.File("junk.emb"), 7), dir.File("t/shard-000005.emb"));
  auto t = Open(manifest);
  EXPECT_EQ(t->rows(), kRows);
  EXPECT_EQ(AllRows(manifest), rows_before);
  auto report = t->Verify(testing::Threads(1));
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok());
  // Cancelled while it works (the shard written, not yet checked).
  CancelToken cancel;
  ShardWorkOptions o = NoSync();
  o.cancel = &cancel;
  o.progress = [&](uint64_t, uint64_t) { cancel.Cancel(); };
  auto c = AppendShard(manifest, src, o);
  EXPECT_TRUE(c.status().IsCancelled()) << c.status().ToString();
  EXPECT_EQ(ReadBytes(manifest), before);
  EXPECT_EQ(AllRows(manifest), rows_before);
  // A file at the next name that is not this append's (another
  // manifest may list it) is kept: the next append takes the next name.
  const std::vector<uint8_t> junk = ReadBytes(dir.File("t/shard-000005.emb"));
  auto e = AppendShard(manifest, src, NoSync());
  ASSERT_OK(e.status());
  EXPECT_EQ(e->path, "shard-000006.emb");
  EXPECT_EQ(ReadBytes(dir.File("t/shard-000005.emb")), junk);
  auto after = Open(manifest);
  EXPECT_EQ(after->rows(), kRows + 40);
  EXPECT_EQ(Slice(AllRows(manifest), kRows, 40), AllRows(src));
  auto r2 = after->Verify(testing::Threads(1));
  ASSERT_OK(r2.status());
  EXPECT_TRUE(r2->ok()) << r2->Summary();
  // Killed between its shard and its manifest: the old manifest stays, and
  // the next append replaces the shard that one left (same table, index
  // and first row).
  const std::vector<uint8_t> listed = ReadBytes(manifest);
  auto killed = AppendShard(manifest, MakePlain(dir.File("src2.emb"), 3), NoSync());
  ASSERT_OK(killed.status());
  EXPECT_EQ(killed->path, "shard-000007.emb");
  WriteBytes(manifest, listed);  // as if the manifest had never been replaced
  auto again = AppendShard(manifest, src, NoSync());
  ASSERT_OK(again.status());
  EXPECT_EQ(again->path, "shard-000007.emb");
  EXPECT_EQ(Open(manifest)->rows(), kRows + 80);
  EXPECT_EQ(Slice(AllRows(manifest), kRows + 40, 40), AllRows(src));
  // No temporary files left in the folder (the lock file stays).
  for (const auto& entry : std::filesystem::directory_iterator(dir.File("t"))) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "manifest.json" || name == ".embstore-manifest.lock" || name.rfind("shard-", 0) == 0) << name;
  }
}

// A symlink to a manifest in another folder reads the shards beside the
// manifest it names, and an append through it extends that table (its
// shard written there, not beside the link).
TEST(AppendTest, ThroughASymlinkToTheManifest) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  ASSERT_EQ(0, ::mkdir(dir.File("elsewhere").c_str(), 0755));
  const std::string link = dir.File("elsewhere/link.json");
  ASSERT_EQ(0, ::symlink("../t/manifest.json", link.c_str()));
  auto t = Open(link);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(dynamic_cast<const ShardedTable&>(*t).folder(), std::filesystem::canonical(dir.File("t")).string());
  std::vector<float> rows;
  ASSERT_OK(ReadRange(*t, 0, kRows, &rows));
  EXPECT_EQ(rows, WholeRows());
  auto e = AppendShard(link, MakePlain(dir.File("src.emb"), 4), NoSync());
  ASSERT_OK(e.status());
  EXPECT_TRUE(std::filesystem::exists(dir.File("t/shard-000005.emb")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("elsewhere/shard-000005.emb")));
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  for (const std::string& spec : {manifest, link}) {
    auto after = Open(spec);
    EXPECT_EQ(after->rows(), kRows + 4);
    auto report = after->Verify(testing::Threads(1));
    ASSERT_OK(report.status());
    EXPECT_TRUE(report->ok()) << spec << ": " << report->Summary();
  }
}

// A symlink where a shard is to be written is refused: written through, it
// would replace its target (here outside the folder) and leave a shard
// every reader refuses.
TEST(AppendTest, SymlinkWhereAShardGoesIsRefused) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  const std::vector<uint8_t> before = ReadBytes(manifest);
  const std::string outside = MakePlain(dir.File("outside.emb"), 9);
  const std::vector<uint8_t> outside_bytes = ReadBytes(outside);
  ASSERT_EQ(0, ::symlink("../outside.emb", dir.File("t/shard-000005.emb").c_str()));
  // Append keeps it, and takes the next name.
  auto e = AppendShard(manifest, MakePlain(dir.File("src.emb"), 4), NoSync());
  ASSERT_OK(e.status());
  EXPECT_EQ(e->path, "shard-000006.emb");
  EXPECT_EQ(ReadBytes(outside), outside_bytes);
  EXPECT_TRUE(std::filesystem::is_symlink(dir.File("t/shard-000005.emb")));
  EXPECT_NE(ReadBytes(manifest), before);
  const std::vector<uint8_t> appended = ReadBytes(manifest);
  // Generating, and compressing into a folder, the same.
  ASSERT_EQ(0, ::mkdir(dir.File("g").c_str(), 0755));
  ASSERT_EQ(0, ::symlink("../outside.emb", dir.File("g/shard-000002.emb").c_str()));
  auto g = GenerateSharded(dir.File("g"), TableSpec(), kShardRows, NoSync());
  EXPECT_TRUE(Has(g.status().message(), "shard-000002.emb: is a symbolic link")) << g.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir.File("g/manifest.json")));
  ASSERT_EQ(0, ::mkdir(dir.File("z").c_str(), 0755));
  ASSERT_EQ(0, ::symlink("../outside.emb", dir.File("z/shard-000001.embz").c_str()));
  auto t = Open(manifest);
  ShardOpOptions o;
  o.sync = false;
  auto z = ShardOpAll(dynamic_cast<const ShardedTable&>(*t), dir.File("z"), o);
  EXPECT_TRUE(Has(z.status().message(), "shard-000001.embz: is a symbolic link")) << z.status().ToString();
  EXPECT_EQ(ReadBytes(outside), outside_bytes);
  // A new table's manifest: not written through a symlink (into another
  // folder than its shards).
  ASSERT_EQ(0, ::mkdir(dir.File("m").c_str(), 0755));
  ASSERT_EQ(0, ::symlink("../t/manifest.json", dir.File("m/manifest.json").c_str()));
  auto gm = GenerateSharded(dir.File("m"), TableSpec(), kShardRows, NoSync());
  EXPECT_TRUE(Has(gm.status().message(), "manifest.json: is a symbolic link")) << gm.status().ToString();
  auto zm = ShardOpAll(dynamic_cast<const ShardedTable&>(*t), dir.File("m"), o);
  EXPECT_TRUE(Has(zm.status().message(), "manifest.json: is a symbolic link")) << zm.status().ToString();
  EXPECT_EQ(ReadBytes(manifest), appended);
}

// ---------------------------------------------------------------------------
// Shard by shard: compress, decompress, convert

ShardOpOptions Op(ShardOp op) {
  ShardOpOptions o;
  o.op = op;
  o.sync = false;
  o.threads = 1;
  return o;
}

TEST(ShardOpTest, CompressThenDecompressGivesBackEveryByte) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  auto t = Open(manifest);
  const auto& sharded = dynamic_cast<const ShardedTable&>(*t);
  auto z = ShardOpAll(sharded, dir.File("z"), Op(ShardOp::kCompress));
  ASSERT_OK(z.status());
  EXPECT_EQ(*z, dir.File("z/manifest.json"));
  auto zt = Open(*z);
  ASSERT_NE(zt, nullptr);
  EXPECT_EQ(zt->manifest()->table_id, t->manifest()->table_id);
  EXPECT_EQ(zt->manifest()->shards[3].path, "shard-000003.embz");
  EXPECT_EQ(zt->manifest()->shards[3].checksum, t->manifest()->shards[3].checksum);
  EXPECT_EQ(AllRows(*z), AllRows(manifest));
  auto zr = zt->Verify(testing::Threads(1));
  ASSERT_OK(zr.status());
  EXPECT_TRUE(zr->ok()) << zr->Summary();
  EXPECT_GT(zr->frames_checked, 0u);
  // Compressing a compressed table is refused, shard by shard.
  auto twice = ShardOpAll(dynamic_cast<const ShardedTable&>(*zt), dir.File("zz"), Op(ShardOp::kCompress));
  EXPECT_TRUE(Has(twice.status().message(), "is already compressed")) << twice.status().ToString();
  auto d = ShardOpAll(dynamic_cast<const ShardedTable&>(*zt), dir.File("d"), Op(ShardOp::kDecompress));
  ASSERT_OK(d.status());
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ReadBytes(dir.File("d/" + ShardFileName(i))), ReadBytes(dir.File("t/" + ShardFileName(i)))) << i;
  }
  EXPECT_EQ(ReadBytes(*d), ReadBytes(manifest));  // the same manifest, byte for byte
  auto notz = ShardOpAll(sharded, dir.File("dd"), Op(ShardOp::kDecompress));
  EXPECT_TRUE(Has(notz.status().message(), "is not compressed")) << notz.status().ToString();
  // replace: false keeps an existing manifest.
  ShardOpOptions keep = Op(ShardOp::kCompress);
  keep.replace = false;
  auto kept = ShardOpAll(sharded, dir.File("z"), keep);
  EXPECT_TRUE(kept.status().IsAlreadyExists()) << kept.status().ToString();
}

TEST(ShardOpTest, Convert) {
  TempDir dir;
  const std::string manifest = MakeSharded(dir.File("t"));
  auto t = Open(manifest);
  const auto& sharded = dynamic_cast<const ShardedTable&>(*t);
  const std::vector<uint8_t> before = ReadBytes(manifest);
  ShardOpOptions o = Op(ShardOp::kConvert);
  o.dtype = Dtype::kBFloat16;
  for (const std::string& same : {dir.File("t"), dir.File("t/"), dir.File("t/."), dir.File("t/../t")}) {
    auto refused = ShardOpAll(sharded, same, o);
    EXPECT_TRUE(refused.status().IsInvalidArgument()) << same << ": " << refused.status().ToString();
    EXPECT_TRUE(Has(refused.status().message(), "would replace the source's")) << refused.status().message();
  }
  EXPECT_EQ(ReadBytes(manifest), before);
  auto c = ShardOpAll(sharded, dir.File("bf"), o);
  ASSERT_OK(c.status());
  auto ct = Open(*c);
  ASSERT_NE(ct, nullptr);
  EXPECT_EQ(ct->dtype(), Dtype::kBFloat16);
  EXPECT_EQ(ct->rows(), kRows);
  EXPECT_NE(ct->manifest()->table_id, t->manifest()->table_id);
  EXPECT_EQ(ct->metadata().at("convert.dtype"), "float32");
  // Rows as the source's rows rounded as PyTorch rounds.
  std::vector<uint8_t> want(kRows * kDim * 2), got(kRows * kDim * 2);
  ASSERT_OK(t->ReadRows(0, kRows, Dtype::kBFloat16, std::span<uint8_t>(want)));
  ASSERT_OK(ct->ReadRows(0, kRows, Dtype::kBFloat16, std::span<uint8_t>(got)));
  EXPECT_EQ(got, want);
  auto report = ct->Verify(testing::Threads(1));
  ASSERT_OK(report.status());
  EXPECT_TRUE(report->ok()) << report->Summary();
  // Converting twice makes the same table (ids come from what makes them).
  auto c2 = ShardOpAll(sharded, dir.File("bf2"), o);
  ASSERT_OK(c2.status());
  EXPECT_EQ(ReadBytes(*c2), ReadBytes(*c));
  // A sharded table is not one file.
  EXPECT_TRUE(t->WriteEmb(nullptr, 1).IsNotSupported());
}

}  // namespace shard_test
}  // namespace embstore
