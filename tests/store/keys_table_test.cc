// Tables with keys (FORMAT.md 1.2) through the store: written by
// TableWriter, read from the mapping and from a .embz, verified, converted,
// decompressed byte for byte; damage to the keys is found by verify.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "format/keys.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/embz/embz.h"
#include "store/interop/convert.h"
#include "tests/test_util.h"

namespace embstore {
namespace keys_table_test {

using testing::TempDir;

std::vector<std::string> Keys(uint64_t n) {
  std::vector<std::string> k;
  for (uint64_t i = 0; i < n; ++i) k.push_back(i % 3 == 0 ? "ключ" + std::to_string(i) : "key" + std::to_string(i));
  return k;
}

void Write(const std::string& path, uint64_t rows, uint64_t dim, Dtype dtype = Dtype::kFloat32) {
  KeyList list;
  for (const auto& k : Keys(rows)) ASSERT_OK(list.Add(k));
  auto section = EncodeKeys(list);
  ASSERT_OK(section.status());
  WriterOptions o;
  o.sync = false;
  o.dtype = dtype;
  o.block_rows = 7;
  o.keys = *section;
  auto w = TableWriter::Create(path, rows, dim, o);
  ASSERT_OK(w.status());
  std::vector<float> v(rows * dim);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f - 3.0f;
  ASSERT_OK((*w)->Append(v));
  ASSERT_OK((*w)->Finish());
}

void ExpectKeys(const Table& t) {
  const KeysView* keys = t.keys();
  ASSERT_NE(keys, nullptr);
  const auto want = Keys(t.rows());
  for (uint64_t i = 0; i < t.rows(); ++i) {
    auto k = keys->Key(i);
    ASSERT_OK(k.status());
    EXPECT_EQ(*k, want[i]);
    auto id = keys->Find(want[i]);
    ASSERT_OK(id.status());
    ASSERT_TRUE(id->has_value());
    EXPECT_EQ(**id, i);
  }
}

TEST(KeysTableTest, WriteReadVerifyCompressConvert) {
  TempDir dir;
  Write(dir.File("t.emb"), 100, 5);
  auto t = TableReader::Open(dir.File("t.emb"));
  ASSERT_OK(t.status());
  EXPECT_EQ(t->header().version_minor, 2);
  ExpectKeys(*t);
  auto rep = t->Verify();
  ASSERT_OK(rep.status());
  EXPECT_TRUE(rep->ok()) << rep->Summary();

  CompressOptions co;
  co.sync = false;
  ASSERT_OK(CompressTable(*t, dir.File("t.embz"), co));
  auto z = EmbzReader::Open(dir.File("t.embz"));
  ASSERT_OK(z.status());
  ExpectKeys(**z);
  auto zrep = (*z)->Verify();
  ASSERT_OK(zrep.status());
  EXPECT_TRUE(zrep->ok()) << zrep->Summary();
  DecompressOptions dopt;
  dopt.sync = false;
  ASSERT_OK((*z)->Decompress(dir.File("back.emb"), dopt));
  EXPECT_EQ(testing::ReadBytes(dir.File("back.emb")), testing::ReadBytes(dir.File("t.emb")));

  ConvertOptions cv;
  cv.dtype = Dtype::kBFloat16;
  cv.sync = false;
  ASSERT_OK(ConvertTable(**z, dir.File("h.emb"), cv));
  auto h = TableReader::Open(dir.File("h.emb"));
  ASSERT_OK(h.status());
  EXPECT_EQ(h->dtype(), Dtype::kBFloat16);
  ExpectKeys(*h);
}

TEST(KeysTableTest, TablesWithoutKeysAreUnchanged) {
  TempDir dir;
  WriterOptions o;
  o.sync = false;
  auto w = TableWriter::Create(dir.File("t.emb"), 2, 2, o);
  ASSERT_OK(w.status());
  ASSERT_OK((*w)->Append(std::vector<float>{1, 2, 3, 4}));
  ASSERT_OK((*w)->Finish());
  auto t = TableReader::Open(dir.File("t.emb"));
  ASSERT_OK(t.status());
  EXPECT_EQ(t->header().version_minor, 0);
  EXPECT_EQ(t->header().header_size, 128u);
  EXPECT_EQ(t->keys(), nullptr);
}

// A damaged key is found by verify (checksum), named, and refused by
// decompress; lookups of other keys still answer.
TEST(KeysTableTest, DamagedKeysAreFound) {
  TempDir dir;
  Write(dir.File("t.emb"), 20, 3);
  auto bytes = testing::ReadBytes(dir.File("t.emb"));
  Header h;
  {
    auto t = TableReader::Open(dir.File("t.emb"));
    ASSERT_OK(t.status());
    h = t->header();
  }
  bytes[h.keys_offset + h.keys_size - 1] ^= 0x01;  // the last key's last byte
  testing::WriteBytes(dir.File("bad.emb"), bytes);
  auto t = TableReader::Open(dir.File("bad.emb"));
  ASSERT_OK(t.status());  // O(1) open does not read the keys
  auto rep = t->Verify();
  ASSERT_OK(rep.status());
  EXPECT_FALSE(rep->ok());
  EXPECT_NE(rep->bad_keys.find("corrupt keys section: checksum mismatch"), std::string::npos) << rep->bad_keys;
  EXPECT_NE(rep->Summary().find("keys section"), std::string::npos);
  auto found = t->keys()->Find("key1");
  ASSERT_OK(found.status());
  EXPECT_EQ(found->value_or(99), 1u);
  ConvertOptions cv;
  cv.sync = false;
  EXPECT_TRUE(ConvertTable(*t, dir.File("c.emb"), cv).IsCorruption());
  EXPECT_FALSE(std::filesystem::exists(dir.File("c.emb")));
}

}  // namespace keys_table_test
}  // namespace embstore
