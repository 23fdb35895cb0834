#include "format/keys.h"

#include <algorithm>
#include <cstring>

#include "format/checksum.h"
#include "format/endian.h"

namespace embstore {

namespace {

// FORMAT.md, "Keys": the section header.
constexpr size_t kOffCount = 0;
constexpr size_t kOffBlobSize = 8;
constexpr size_t kOffSlotCount = 16;
constexpr size_t kOffHashScheme = 24;
constexpr size_t kOffReserved = 28;

Status Bad(const std::string& what) { return Status::Corruption("corrupt keys section: " + what); }

__extension__ typedef unsigned __int128 U128;

// FORMAT.md, "Keys": the home slot is floor(hash x slot_count / 2^64).
uint64_t HomeSlot(uint64_t hash, uint64_t slot_count) {
  return static_cast<uint64_t>((static_cast<U128>(hash) * slot_count) >> 64);
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // Runs of ASCII, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    const size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    if (len == 3 && c == 0xE0 && p[i + 1] < 0xA0) return false;   // overlong
    if (len == 3 && c == 0xED && p[i + 1] >= 0xA0) return false;  // surrogates
    if (len == 4 && c == 0xF0 && p[i + 1] < 0x90) return false;   // overlong
    if (len == 4 && c == 0xF4 && p[i + 1] >= 0x90) return false;  // past U+10FFFF
    i += len;
  }
  return true;
}

std::string QuoteKey(std::string_view key) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "'";
  const size_t n = std::min<size_t>(key.size(), 80);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = key[i];
    if (c < 0x20 || c == 0x7F || c == '\'' || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += key.size() > n ? "'..." : "'";
  return out;
}

uint64_t KeySlotCount(uint64_t n) { return n + n / 2 + 1; }

uint64_t KeysSectionSize(uint64_t n, uint64_t blob_size) {
  return kKeysHeaderSize + 8 * (n + 1) + 8 * KeySlotCount(n) + blob_size;
}

Status KeyList::Add(std::string_view key) {
  const uint64_t row = ends_.size();
  if (key.empty()) return Status::InvalidArgument("key of row " + std::to_string(row) + " is empty");
  if (key.size() > kMaxKeySize) {
    return Status::InvalidArgument("key of row " + std::to_string(row) + " is " + std::to_string(key.size()) +
                                   " bytes, more than the " + std::to_string(kMaxKeySize) + " a key may have");
  }
  if (!IsValidUtf8(key)) {
    return Status::InvalidArgument("key of row " + std::to_string(row) + " (" + QuoteKey(key) +
                                   ") is not valid UTF-8");
  }
  if (row >= kMaxKeyedRows) {
    return Status::InvalidArgument("more than " + std::to_string(kMaxKeyedRows) + " keys");
  }
  blob_.append(key);
  ends_.push_back(blob_.size());
  return Status::OK();
}

Result<std::vector<uint8_t>> EncodeKeys(const KeyList& keys, const std::function<std::string(uint64_t)>& unit) {
  const uint64_t n = keys.size();
  if (n == 0) return Status::InvalidArgument("no keys");
  const uint64_t slots = KeySlotCount(n);
  std::vector<uint8_t> out(KeysSectionSize(n, keys.blob_size()));
  uint8_t* p = out.data();
  StoreLE64(p + kOffCount, n);
  StoreLE64(p + kOffBlobSize, keys.blob_size());
  StoreLE64(p + kOffSlotCount, slots);
  StoreLE32(p + kOffHashScheme, kKeysHashXxh3Linear);
  StoreLE32(p + kOffReserved, 0);
  uint8_t* offsets = p + kKeysHeaderSize;
  uint8_t* table = offsets + 8 * (n + 1);
  uint8_t* blob = table + 8 * slots;
  StoreLE64(offsets, 0);
  for (uint64_t i = 0; i < n; ++i) StoreLE64(offsets + 8 * (i + 1), keys.end(i));
  if (keys.blob_size() > 0) std::memcpy(blob, keys.blob().data(), keys.blob_size());
  std::memset(table, 0xFF, 8 * slots);
  // Rows go in in order, each at the first empty slot from its home: the
  // table is a function of the keys alone.
  for (uint64_t id = 0; id < n; ++id) {
    const std::string_view key = keys.at(id);
    const uint64_t h = Hash64(key.data(), key.size());
    const uint32_t tag = static_cast<uint32_t>(h);
    uint64_t s = HomeSlot(h, slots);
    for (;;) {
      const uint32_t other = LoadLE32(table + 8 * s);
      if (other == kEmptySlot) break;
      if (LoadLE32(table + 8 * s + 4) == tag && keys.at(other) == key) {
        if (unit) return Status::InvalidArgument("duplicate key " + QuoteKey(key) + ": " + unit(other) + " and " + unit(id));
        return Status::InvalidArgument("duplicate key " + QuoteKey(key) + ": rows " + std::to_string(other) +
                                       " and " + std::to_string(id));
      }
      s = s + 1 == slots ? 0 : s + 1;
    }
    StoreLE32(table + 8 * s, static_cast<uint32_t>(id));
    StoreLE32(table + 8 * s + 4, tag);
  }
  return out;
}

Result<KeysView> KeysView::Open(std::span<const uint8_t> section, uint64_t rows) {
  if (section.size() < kKeysHeaderSize) {
    return Bad("the section is " + std::to_string(section.size()) + " bytes, its header needs " +
               std::to_string(kKeysHeaderSize));
  }
  const uint8_t* p = section.data();
  KeysView v;
  v.count_ = LoadLE64(p + kOffCount);
  v.blob_size_ = LoadLE64(p + kOffBlobSize);
  v.slot_count_ = LoadLE64(p + kOffSlotCount);
  const uint32_t scheme = LoadLE32(p + kOffHashScheme);
  if (v.count_ != rows) {
    return Bad("it holds " + std::to_string(v.count_) + " keys, the table has " + std::to_string(rows) + " rows");
  }
  if (v.count_ > kMaxKeyedRows) return Bad("more than " + std::to_string(kMaxKeyedRows) + " keys");
  if (scheme != kKeysHashXxh3Linear) {
    return Status::NotSupported("keys section: unknown hash scheme " + std::to_string(scheme) +
                                ": the table needs a newer reader");
  }
  if (v.slot_count_ <= v.count_ || v.slot_count_ > 2 * v.count_ + 1) {
    return Bad("slot_count " + std::to_string(v.slot_count_) + " not in [keys + 1, 2 x keys + 1] for " +
               std::to_string(v.count_) + " keys");
  }
  // count < 2^32 and slot_count <= 2 count + 1, so the sum cannot overflow;
  // only the blob's size is unbounded.
  const uint64_t fixed = kKeysHeaderSize + 8 * (v.count_ + 1) + 8 * v.slot_count_;
  if (fixed > section.size() || v.blob_size_ != section.size() - fixed) {
    return Bad("the section is " + std::to_string(section.size()) + " bytes; its header says " +
               std::to_string(fixed) + " + a blob of " + std::to_string(v.blob_size_));
  }
  v.section_ = section;
  v.offsets_ = p + kKeysHeaderSize;
  v.slots_ = v.offsets_ + 8 * (v.count_ + 1);
  v.blob_ = v.slots_ + 8 * v.slot_count_;
  if (LoadLE64(v.offsets_) != 0) return Bad("the first key does not start at 0");
  if (LoadLE64(v.offsets_ + 8 * v.count_) != v.blob_size_) {
    return Bad("the last key ends at " + std::to_string(LoadLE64(v.offsets_ + 8 * v.count_)) +
               ", the blob is " + std::to_string(v.blob_size_) + " bytes");
  }
  return v;
}

Result<std::string_view> KeysView::Key(uint64_t id) const {
  const uint64_t b = LoadLE64(offsets_ + 8 * id), e = LoadLE64(offsets_ + 8 * (id + 1));
  if (b > e || e > blob_size_) {
    return Bad("key of row " + std::to_string(id) + " spans [" + std::to_string(b) + ", " + std::to_string(e) +
               "), outside the " + std::to_string(blob_size_) + "-byte blob");
  }
  if (e == b || e - b > kMaxKeySize) {
    return Bad("key of row " + std::to_string(id) + " is " + std::to_string(e - b) + " bytes (1 to " +
               std::to_string(kMaxKeySize) + ")");
  }
  std::string_view key(reinterpret_cast<const char*>(blob_ + b), e - b);
  if (!IsValidUtf8(key)) return Bad("key of row " + std::to_string(id) + " (" + QuoteKey(key) + ") is not valid UTF-8");
  return key;
}

Result<std::optional<uint64_t>> KeysView::Find(std::string_view key) const {
  const uint64_t h = Hash64(key.data(), key.size());
  const uint32_t tag = static_cast<uint32_t>(h);
  uint64_t s = HomeSlot(h, slot_count_);
  std::optional<uint64_t> found;
  // The probe runs to the end of the cluster, not to the first match, so a
  // key stored twice is caught, never answered with either row.
  for (uint64_t step = 0; step < slot_count_; ++step) {
    const uint8_t* slot = slots_ + 8 * s;
    const uint32_t id = LoadLE32(slot);
    if (id == kEmptySlot) return found;
    if (id >= count_) {
      return Bad("slot " + std::to_string(s) + " holds row " + std::to_string(id) + ", the table has " +
                 std::to_string(count_));
    }
    if (LoadLE32(slot + 4) == tag) {
      // The bytes first, checked only where they match: a hostile table
      // whose every slot points at one long key costs a lookup no more than
      // the query's own length per slot.
      const uint64_t b = LoadLE64(offsets_ + 8 * id), e = LoadLE64(offsets_ + 8 * (id + 1));
      if (b > e || e > blob_size_) {
        return Bad("key of row " + std::to_string(id) + " spans [" + std::to_string(b) + ", " + std::to_string(e) +
                   "), outside the " + std::to_string(blob_size_) + "-byte blob");
      }
      if (e - b != key.size() || std::memcmp(blob_ + b, key.data(), key.size()) != 0) {
        s = s + 1 == slot_count_ ? 0 : s + 1;
        continue;
      }
      EMB_ASSIGN_OR_RETURN(std::string_view k, Key(id));
      if (k == key) {
        if (found) {
          return Bad("key " + QuoteKey(key) + " is stored for rows " + std::to_string(*found) + " and " +
                     std::to_string(id));
        }
        found = id;
      }
    }
    s = s + 1 == slot_count_ ? 0 : s + 1;
  }
  return Bad("the hash table has no empty slot");
}

Status KeysView::Validate() const {
  std::vector<uint64_t> hashes(count_);
  for (uint64_t id = 0; id < count_; ++id) {
    EMB_ASSIGN_OR_RETURN(std::string_view key, Key(id));
    if (id > 0 && LoadLE64(offsets_ + 8 * id) < LoadLE64(offsets_ + 8 * (id - 1))) {
      return Bad("key of row " + std::to_string(id) + " starts before the key of row " + std::to_string(id - 1));
    }
    hashes[id] = Hash64(key.data(), key.size());
  }
  // Every row once, with its key's tag, reachable from its home slot without
  // crossing an empty slot; empty slots all 0xFF.
  std::vector<uint64_t> seen((count_ + 63) / 64);
  uint64_t first_empty = slot_count_;
  for (uint64_t s = 0; s < slot_count_; ++s) {
    if (LoadLE32(slots_ + 8 * s) == kEmptySlot) {
      first_empty = s;
      break;
    }
  }
  if (first_empty == slot_count_) return Bad("the hash table has no empty slot");
  uint64_t filled = 0, run = 0;  // run: filled slots since the last empty one
  for (uint64_t k = 1; k <= slot_count_; ++k) {
    const uint64_t s = (first_empty + k) % slot_count_;
    const uint8_t* slot = slots_ + 8 * s;
    const uint32_t id = LoadLE32(slot), tag = LoadLE32(slot + 4);
    if (id == kEmptySlot) {
      if (tag != kEmptySlot) return Bad("empty slot " + std::to_string(s) + " has tag " + std::to_string(tag));
      run = 0;
      continue;
    }
    ++run;
    if (id >= count_) {
      return Bad("slot " + std::to_string(s) + " holds row " + std::to_string(id) + ", the table has " +
                 std::to_string(count_));
    }
    if (seen[id / 64] >> (id % 64) & 1) return Bad("row " + std::to_string(id) + " is in the hash table twice");
    seen[id / 64] |= uint64_t{1} << (id % 64);
    ++filled;
    if (tag != static_cast<uint32_t>(hashes[id])) {
      return Bad("slot " + std::to_string(s) + " has the wrong tag for row " + std::to_string(id));
    }
    const uint64_t home = HomeSlot(hashes[id], slot_count_);
    const uint64_t distance = (s + slot_count_ - home) % slot_count_;
    if (distance >= run) {
      return Bad("row " + std::to_string(id) + " sits in slot " + std::to_string(s) +
                 ", where a lookup of its key does not reach");
    }
  }
  if (filled != count_) {
    return Bad("the hash table holds " + std::to_string(filled) + " rows of " + std::to_string(count_));
  }
  // Equal keys hash alike: sort the rows by hash and compare neighbours.
  std::vector<uint32_t> order(count_);
  for (uint64_t i = 0; i < count_; ++i) order[i] = static_cast<uint32_t>(i);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return hashes[a] != hashes[b] ? hashes[a] < hashes[b] : a < b;
  });
  for (uint64_t i = 1; i < count_; ++i) {
    const uint32_t a = order[i - 1], b = order[i];
    if (hashes[a] != hashes[b]) continue;
    for (uint64_t j = i; j < count_ && hashes[order[j]] == hashes[a]; ++j) {
      // (keys already checked above)
      if (*Key(order[j]) == *Key(a)) {
        return Bad("key " + QuoteKey(*Key(a)) + " is stored for rows " + std::to_string(a) + " and " +
                   std::to_string(order[j]));
      }
    }
    (void)b;
  }
  return Status::OK();
}

}  // namespace embstore
