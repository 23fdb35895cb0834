// Tables with keys (FORMAT.md 1.2) through the store: written by
// TableWriter, read from the mapping and from a .embz, verified, converted,
// decompressed byte for byte; damage to the keys is found by verify.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "format/checksum.h"
#include "format/endian.h"
#include "format/keys.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/embz/embz.h"
#include "store/interop/convert.h"
#include "store/interop/wordvec.h"
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

// A table as a .embz presents itself: rows checked as they are read, so
// writers copying from it run no verify of their own.
class RowsCheckedOnRead final : public Table {
 public:
  explicit RowsCheckedOnRead(const TableReader& t) : t_(t) {}
  const Header& header() const override { return t_.header(); }
  const Metadata& metadata() const override { return t_.metadata(); }
  const std::string& path() const override { return t_.path(); }
  uint64_t file_size() const override { return t_.file_size(); }
  Status Gather(std::span<const uint64_t> ids, Dtype as, std::span<uint8_t> out) const override {
    return t_.Gather(ids, as, out);
  }
  Status ReadRows(uint64_t first, uint64_t count, Dtype as, std::span<uint8_t> out) const override {
    return t_.ReadRows(first, count, as, out);
  }
  Status Advise(AccessHint hint, uint64_t first, uint64_t count) const override { return t_.Advise(hint, first, count); }
  Result<VerifyReport> Verify(const VerifyOptions& o) const override { return t_.Verify(o); }
  bool checks_rows_on_read() const override { return true; }
  uint64_t emb_size() const override { return t_.emb_size(); }
  Status WriteEmb(AtomicFile* out, unsigned threads, const Progress& p, const CancelToken* c) const override {
    return t_.WriteEmb(out, threads, p, c);
  }
  const KeysView* keys() const override { return t_.keys(); }

 private:
  const TableReader& t_;
};

// Keys a hostile writer stored twice, consistently (the section opens, its
// checksum is right): a .embz of them is refused by convert and by
// export to word2vec, which check the keys themselves since the
// container's rows need no verify.
TEST(KeysTableTest, DuplicateKeysInAnEmbzAreNotCopied) {
  TempDir dir;
  KeyList list;
  for (const char* k : {"aa", "bb", "cc"}) ASSERT_OK(list.Add(k));
  auto section = EncodeKeys(list);
  ASSERT_OK(section.status());
  std::vector<uint8_t>& sec = *section;
  const uint64_t slots = LoadLE64(&sec[16]), slot0 = 32 + 8 * 4, blob = slot0 + 8 * slots;
  sec[blob + 2] = 'a';  // row 1 "bb" -> "aa", its slot moved to where "aa" leads
  sec[blob + 3] = 'a';
  for (uint64_t i = 0; i < slots; ++i) {
    if (LoadLE32(&sec[slot0 + 8 * i]) == 1) StoreLE64(&sec[slot0 + 8 * i], ~uint64_t{0});
  }
  const uint64_t h = Hash64("aa", 2);
  __extension__ typedef unsigned __int128 U128;
  uint64_t at = static_cast<uint64_t>((static_cast<U128>(h) * slots) >> 64);
  while (LoadLE32(&sec[slot0 + 8 * at]) != kEmptySlot) at = (at + 1) % slots;
  StoreLE32(&sec[slot0 + 8 * at], 1);
  StoreLE32(&sec[slot0 + 8 * at + 4], static_cast<uint32_t>(h));
  WriterOptions o;
  o.sync = false;
  o.keys = sec;  // the writer checks what open checks, O(1): this passes
  auto w = TableWriter::Create(dir.File("t.emb"), 3, 2, o);
  ASSERT_OK(w.status());
  ASSERT_OK((*w)->Append(std::vector<float>{1, 2, 3, 4, 5, 6}));
  ASSERT_OK((*w)->Finish());
  auto t = TableReader::Open(dir.File("t.emb"));
  ASSERT_OK(t.status());
  CompressOptions co;
  co.sync = false;
  // compress verifies its source, keys included: it will not make such a .embz
  EXPECT_TRUE(CompressTable(*t, dir.File("t.embz"), co).IsCorruption());
  // One made by hand reads like this table with rows checked on read.
  const RowsCheckedOnRead z(*t);
  ConvertOptions cv;
  cv.sync = false;
  Status st = ConvertTable(z, dir.File("c.emb"), cv);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("'aa' is stored for rows 0 and 1"), std::string::npos) << st.ToString();
  ExportOptions eo;
  eo.sync = false;
  st = ExportWord2Vec(z, dir.File("w.vec"), false, eo);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_FALSE(std::filesystem::exists(dir.File("c.emb")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("w.vec")));
}

// A .embz whose prefix claims far more bytes than its coded size could
// inflate to (a zstd bomb of "keys") is refused before anything grows.
TEST(KeysTableTest, EmbzPrefixBombIsRefusedUnread) {
  TempDir dir;
  Write(dir.File("t.emb"), 10, 3);
  auto t = TableReader::Open(dir.File("t.emb"));
  ASSERT_OK(t.status());
  CompressOptions co;
  co.sync = false;
  ASSERT_OK(CompressTable(*t, dir.File("t.embz"), co));
  auto b = testing::ReadBytes(dir.File("t.embz"));
  const uint64_t coded = LoadLE64(&b[56]);
  StoreLE64(&b[40], uint64_t{1} << 40);                              // table_size
  StoreLE64(&b[48], kMaxEmbzPrefix + (kMaxEmbzKeysRatio + 1) * coded);  // prefix_size
  StoreLE64(&b[120], Hash64(b.data(), 120));
  testing::WriteBytes(dir.File("bomb.embz"), b);
  auto z = EmbzReader::Open(dir.File("bomb.embz"));
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.status().message().find("a prefix inflates at most 64x"), std::string::npos) << z.status().ToString();
}

}  // namespace keys_table_test
}  // namespace embstore
