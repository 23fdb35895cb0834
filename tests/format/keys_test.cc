// The keys section (format/keys.h, FORMAT.md "Keys"): encoding, lookups
// both ways, and hostile sections, including ones whose checksum would be
// right: every read is bounded and every wrong answer is an error.

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "format/checksum.h"
#include "format/endian.h"
#include "format/keys.h"
#include "format/table_format.h"
#include "tests/test_util.h"

namespace embstore {
namespace keys_test {

__extension__ typedef unsigned __int128 U128;

std::vector<std::string> Words(size_t n) {
  std::vector<std::string> w = {"king", "queen", "naïve", "日本", "\xF0\x9F\x99\x82", std::string("nul\0in", 6), "a"};
  for (size_t i = w.size(); i < n; ++i) {
    std::string k = "w";
    k += std::to_string(i * 7919 % 100003);
    k += '_';
    k += std::to_string(i);
    w.push_back(k);
  }
  w.resize(n);
  return w;
}

std::vector<uint8_t> Encode(const std::vector<std::string>& words) {
  KeyList list;
  for (const auto& k : words) EXPECT_OK(list.Add(k));
  auto section = EncodeKeys(list);
  EXPECT_TRUE(section.ok()) << section.status().ToString();
  return *section;
}

// Offsets of the parts of a section of n keys (FORMAT.md, "Keys").
struct Parts {
  size_t offsets, slots, blob;
  uint64_t slot_count;
};
Parts PartsOf(const std::vector<uint8_t>& s) {
  const uint64_t n = LoadLE64(s.data()), slots = LoadLE64(s.data() + 16);
  return {32, 32 + 8 * (n + 1), 32 + 8 * (n + 1) + 8 * slots, slots};
}
uint64_t Home(std::string_view key, uint64_t slots) {
  return static_cast<uint64_t>((static_cast<U128>(Hash64(key.data(), key.size())) * slots) >> 64);
}

TEST(KeysTest, EveryKeyBothWays) {
  for (size_t n : {1u, 2u, 7u, 1000u}) {
    const auto words = Words(n);
    const auto section = Encode(words);
    EXPECT_EQ(section.size(), KeysSectionSize(n, [&] {
                size_t b = 0;
                for (auto& w : words) b += w.size();
                return b;
              }()));
    auto view = KeysView::Open(section, n);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_EQ(view->size(), n);
    for (size_t i = 0; i < n; ++i) {
      auto key = view->Key(i);
      ASSERT_TRUE(key.ok());
      EXPECT_EQ(*key, words[i]);
      auto found = view->Find(words[i]);
      ASSERT_TRUE(found.ok());
      ASSERT_TRUE(found->has_value()) << words[i];
      EXPECT_EQ(**found, i);
    }
    for (const std::string missing : {"", "kin", "kingg", "Queen", "zzz"}) {
      auto found = view->Find(missing);
      ASSERT_TRUE(found.ok());
      EXPECT_FALSE(found->has_value()) << missing;
    }
    EXPECT_OK(view->Validate());
    // Deterministic: the same keys make the same bytes.
    EXPECT_EQ(Encode(words), section);
  }
}

TEST(KeysTest, WritersRefuseBadKeys) {
  KeyList list;
  EXPECT_TRUE(list.Add("").IsInvalidArgument());
  EXPECT_TRUE(list.Add("\xC0\x80").IsInvalidArgument());        // overlong NUL
  EXPECT_TRUE(list.Add("\xED\xA0\x80").IsInvalidArgument());    // a surrogate
  EXPECT_TRUE(list.Add("\xF4\x90\x80\x80").IsInvalidArgument()); // past U+10FFFF
  EXPECT_TRUE(list.Add("ab\xE6\x97").IsInvalidArgument());      // cut short
  EXPECT_TRUE(list.Add(std::string(kMaxKeySize + 1, 'x')).IsInvalidArgument());
  EXPECT_OK(list.Add(std::string(kMaxKeySize, 'x')));
  EXPECT_OK(list.Add("x"));
  EXPECT_OK(list.Add("y"));
  EXPECT_OK(list.Add("x"));
  auto section = EncodeKeys(list);
  ASSERT_FALSE(section.ok());
  EXPECT_NE(section.status().message().find("duplicate key 'x': rows 1 and 3"), std::string::npos)
      << section.status().message();
  Status st = list.Add("\xFF");
  EXPECT_NE(st.message().find("key of row 4 ('\xFF') is not valid UTF-8"), std::string::npos) << st.message();
}

TEST(KeysTest, Utf8) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"));
  for (const char* bad : {"\x80", "\xC1\xBF", "\xE0\x9F\xBF", "\xF0\x8F\xBF\xBF", "\xF5\x80\x80\x80", "\xC2",
                          "abcdefgh\xC2", "\xE2\x82"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad;
  }
}

TEST(KeysTest, OpenChecksTheSectionHeader) {
  const auto good = Encode(Words(10));
  EXPECT_FALSE(KeysView::Open(good, 11).ok());  // count != rows
  EXPECT_FALSE(KeysView::Open(std::span(good).first(31), 10).ok());
  EXPECT_FALSE(KeysView::Open(std::span(good).first(good.size() - 1), 10).ok());
  auto bad = good;
  StoreLE32(bad.data() + 24, 2);  // hash scheme
  EXPECT_TRUE(KeysView::Open(bad, 10).status().IsNotSupported());
  for (uint64_t slots : {uint64_t{10}, uint64_t{22}, ~uint64_t{0}}) {
    bad = good;
    StoreLE64(bad.data() + 16, slots);
    EXPECT_TRUE(KeysView::Open(bad, 10).status().IsCorruption()) << slots;
  }
  bad = good;
  StoreLE64(bad.data() + 8, ~uint64_t{0});  // blob size
  EXPECT_TRUE(KeysView::Open(bad, 10).status().IsCorruption());
  bad = good;
  StoreLE64(bad.data() + 32, 1);  // offsets[0]
  EXPECT_TRUE(KeysView::Open(bad, 10).status().IsCorruption());
}

// A key stored twice with a hash table that agrees (what a hostile writer
// with the right checksum makes): lookups refuse it, Validate names it.
TEST(KeysTest, DuplicateWithConsistentSlotsIsCaught) {
  auto s = Encode({"aa", "bb", "cc"});
  const Parts p = PartsOf(s);
  s[p.blob + 2] = 'a';  // row 1 becomes "aa"
  s[p.blob + 3] = 'a';
  // Move row 1's slot to where "aa" would put it.
  for (uint64_t i = 0; i < p.slot_count; ++i) {
    if (LoadLE32(&s[p.slots + 8 * i]) == 1) {
      StoreLE32(&s[p.slots + 8 * i], kEmptySlot);
      StoreLE32(&s[p.slots + 8 * i + 4], kEmptySlot);
    }
  }
  uint64_t slot = Home("aa", p.slot_count);
  while (LoadLE32(&s[p.slots + 8 * slot]) != kEmptySlot) slot = (slot + 1) % p.slot_count;
  StoreLE32(&s[p.slots + 8 * slot], 1);
  StoreLE32(&s[p.slots + 8 * slot + 4], static_cast<uint32_t>(Hash64("aa", 2)));
  auto view = KeysView::Open(s, 3);
  ASSERT_TRUE(view.ok());
  auto found = view->Find("aa");
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("'aa' is stored for rows"), std::string::npos) << found.status().message();
  Status st = view->Validate();
  EXPECT_NE(st.message().find("'aa' is stored for rows 0 and 1"), std::string::npos) << st.message();
}

TEST(KeysTest, HostileSlotsAndOffsetsNeverReadOutside) {
  auto s = Encode(Words(5));
  const Parts p = PartsOf(s);
  // Every slot taken: a lookup of a missing key must stop.
  auto full = s;
  for (uint64_t i = 0; i < p.slot_count; ++i) {
    StoreLE32(&full[p.slots + 8 * i], static_cast<uint32_t>(i % 5));
    StoreLE32(&full[p.slots + 8 * i + 4], 0);
  }
  auto view = KeysView::Open(full, 5);
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(view->Find("missing").status().IsCorruption());
  EXPECT_TRUE(view->Validate().IsCorruption());
  // A slot naming a row past the end.
  auto bad = s;
  const uint64_t home = Home("king", p.slot_count);
  StoreLE32(&bad[p.slots + 8 * home], 99);
  view = KeysView::Open(bad, 5);
  ASSERT_TRUE(view.ok());
  EXPECT_NE(view->Find("king").status().message().find("holds row 99"), std::string::npos);
  // Offsets out of order or past the blob.
  bad = s;
  StoreLE64(&bad[p.offsets + 8 * 2], ~uint64_t{0});
  view = KeysView::Open(bad, 5);
  ASSERT_TRUE(view.ok());
  EXPECT_NE(view->Key(1).status().message().find("key of row 1 spans"), std::string::npos);
  EXPECT_TRUE(view->Key(2).status().IsCorruption());
  EXPECT_TRUE(view->Validate().IsCorruption());
}

// Every single-byte change to a section is either refused at open, caught
// by Validate, or lands in the reserved field; and nothing a reader does
// with the damaged section reads outside it (the sanitizer builds check).
TEST(KeysTest, FlipEveryByte) {
  const auto words = Words(6);
  const auto good = Encode(words);
  for (size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] ^= 0x41;
    auto view = KeysView::Open(bad, words.size());
    if (!view.ok()) continue;
    for (size_t r = 0; r < words.size(); ++r) (void)view->Key(r);
    for (const auto& w : words) (void)view->Find(w);
    const bool caught = !view->Validate().ok();
    EXPECT_TRUE(caught || (i >= 28 && i < 32)) << "byte " << i;
  }
}

// A table with keys: the header (1.2, 152 bytes), R24, and a 1.1 reader's
// view of it.
TEST(KeysTest, HeaderWithKeys) {
  TableShape shape;
  shape.rows = 5;
  shape.dim = 3;
  shape.metadata_size = 4;
  shape.keys_size = KeysSectionSize(5, 40);
  auto h = PlanLayout(shape);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->version_minor, 2);
  EXPECT_EQ(h->header_size, kHeaderSizeV1_2);
  EXPECT_TRUE(h->has_keys());
  EXPECT_EQ(h->keys_offset, h->checksum_offset + 8 * h->checksum_count);
  EXPECT_EQ(h->data_offset % 4096, 0u);
  EXPECT_GE(h->data_offset, h->keys_offset + h->keys_size);
  std::vector<uint8_t> file = EncodeHeader(*h);
  ASSERT_EQ(file.size(), 152u);
  file.resize(h->file_size());
  auto back = DecodeHeader(file, file.size());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->keys_offset, h->keys_offset);
  EXPECT_EQ(back->keys_size, h->keys_size);
  // What a 1.1 reader sees: the same header checksum rule, no keys.
  EXPECT_EQ(LoadLE64(&file[144]), Hash64(file.data(), 144));

  auto reseal = [](std::vector<uint8_t>& b) { StoreLE64(&b[144], Hash64(b.data(), 144)); };
  auto bad = file;
  StoreLE64(&bad[128], h->data_offset);  // keys_size past the data
  reseal(bad);
  EXPECT_NE(DecodeHeader(bad, bad.size()).status().message().find("runs past data_offset"), std::string::npos);
  bad = file;
  StoreLE64(&bad[120], h->keys_offset - 8);  // over the checksum table
  reseal(bad);
  EXPECT_NE(DecodeHeader(bad, bad.size()).status().message().find("keys_offset"), std::string::npos);
  bad = file;
  StoreLE64(&bad[120], ~uint64_t{0} - 3);  // offset + size overflows
  reseal(bad);
  EXPECT_TRUE(DecodeHeader(bad, bad.size()).status().IsCorruption());
  bad = file;
  StoreLE16(&bad[14], 1);  // the keys flag in a 1.1 header
  reseal(bad);
  EXPECT_NE(DecodeHeader(bad, bad.size()).status().message().find("keys flag"), std::string::npos);
}

}  // namespace keys_test
}  // namespace embstore
