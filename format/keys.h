// The keys section of a table (FORMAT.md, "Keys", version 1.2): one UTF-8
// key per row, found by row id in O(1) (an offsets array into one blob) and
// by key in O(1) expected (an open-addressing hash table of row ids, built
// by the writer and stored), so a reader builds nothing when it opens a
// table and every process shares the same pages.
//
// Pure functions and views over bytes: no files, no threads, no
// exceptions. A KeysView is a read-only view; all its methods may be called
// from any number of threads at once.

#ifndef EMBSTORE_FORMAT_KEYS_H_
#define EMBSTORE_FORMAT_KEYS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/status.h"

namespace embstore {

// FORMAT.md, "Keys".
inline constexpr uint64_t kKeysHeaderSize = 32;
inline constexpr uint32_t kKeysHashXxh3Linear = 1;  // the only hash scheme of 1.2
inline constexpr uint64_t kMaxKeySize = 65535;      // bytes of one key
inline constexpr uint64_t kMaxKeyedRows = (uint64_t{1} << 32) - 1;  // ids fit a u32 beside the empty mark
inline constexpr uint32_t kEmptySlot = 0xFFFFFFFF;

// True when s is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing past U+10FFFF).
bool IsValidUtf8(std::string_view s);

// The hash table's size for n keys: n + n/2 + 1 slots (load below 2/3).
uint64_t KeySlotCount(uint64_t n);
// The section's size in bytes for n keys of blob_size bytes in all.
uint64_t KeysSectionSize(uint64_t n, uint64_t blob_size);

// Keys being collected for a new table, in row order: one blob and the end
// of each key in it. Add checks each key (1 to kMaxKeySize bytes of valid
// UTF-8) and names the row in its error; duplicates are found by
// EncodeKeys, which hashes them all anyway.
class KeyList {
 public:
  Status Add(std::string_view key);
  uint64_t size() const { return ends_.size(); }
  uint64_t blob_size() const { return blob_.size(); }
  std::string_view at(uint64_t i) const {
    const uint64_t b = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(blob_).substr(b, ends_[i] - b);
  }
  void Reserve(uint64_t keys, uint64_t bytes) {
    ends_.reserve(keys);
    blob_.reserve(bytes);
  }
  const std::string& blob() const { return blob_; }
  uint64_t end(uint64_t i) const { return ends_[i]; }  // where key i ends in the blob

 private:
  std::string blob_;
  std::vector<uint64_t> ends_;
};

// A key as error messages quote it: 'king', non-printing bytes escaped,
// cut to 80 bytes.
std::string QuoteKey(std::string_view key);

// The section for these keys (FORMAT.md, "Keys"). An invalid-argument error
// names a duplicate key and both of its rows ("row N", or what `unit`
// says: unit(N) = "line 7").
Result<std::vector<uint8_t>> EncodeKeys(const KeyList& keys,
                                        const std::function<std::string(uint64_t)>& unit = {});

// A validated view of a section, over bytes that must outlive it.
class KeysView {
 public:
  KeysView() = default;
  // O(1): checks the section header against `rows` and `section.size()`
  // and the first and last offsets; every key and slot is checked when it is
  // read (Key, Find), and all of them by Validate.
  static Result<KeysView> Open(std::span<const uint8_t> section, uint64_t rows);

  uint64_t size() const { return count_; }
  uint64_t blob_size() const { return blob_size_; }
  // The whole section, as a writer copies it into another table.
  std::span<const uint8_t> bytes() const { return section_; }

  // The key of row id, checked (offsets in order and in the blob, 1 to
  // kMaxKeySize bytes, valid UTF-8): a corruption error names the row.
  // REQUIRES: id < size().
  Result<std::string_view> Key(uint64_t id) const;
  // The row whose key is `key`, or nullopt. Every slot looked at is checked;
  // a key found twice in the table is a corruption error naming both rows.
  Result<std::optional<uint64_t>> Find(std::string_view key) const;
  // Every key, offset and slot: keys unique, every row in the hash table
  // exactly once and where a probe for its key finds it. O(rows).
  Status Validate() const;

 private:
  std::span<const uint8_t> section_;
  uint64_t count_ = 0, blob_size_ = 0, slot_count_ = 0;
  const uint8_t* offsets_ = nullptr;  // count + 1 u64
  const uint8_t* slots_ = nullptr;    // slot_count x (u32 id, u32 tag)
  const uint8_t* blob_ = nullptr;
};

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_KEYS_H_
