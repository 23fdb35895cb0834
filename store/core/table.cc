#include "store/core/table.h"

#include "format/checksum.h"

#include <cstdio>

namespace embstore {

namespace {

std::string Rows(uint64_t first, uint64_t count) {
  return "rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ")";
}

std::string OutOfRangeText(const std::string& id, uint64_t rows) {
  return "id " + id + " out of range: the table has rows [0, " + std::to_string(rows) + ")";
}

}  // namespace

std::string BadRows::Describe() const {
  std::string s = (shard.empty() ? std::string() : "shard " + shard + ": ") + std::string(unit_name()) + " " + std::to_string(index) + ": " + Rows(first_row, row_count);
  if (unit == Unit::kBlock) {
    char buf[80];
    std::snprintf(buf, sizeof(buf), " (stored xxh3 %016llx, computed %016llx)", static_cast<unsigned long long>(stored),
                  static_cast<unsigned long long>(computed));
    return s + buf;
  }
  return s + ": " + error;
}

std::string VerifyReport::Summary() const {
  if (ok()) return "ok";
  std::string s;
  if (bad_frame_count > 0) {
    s = std::to_string(bad_frame_count) + " of " + std::to_string(frames_checked) + " frames corrupt";
  }
  if (bad_block_count > 0) {
    s += (s.empty() ? "" : ", ") + std::to_string(bad_block_count) + " of " + std::to_string(blocks_checked) +
         " blocks " + (frames_checked > 0 ? "do not match the table's checksums" : "corrupt");
  }
  if (!bad_regions.empty()) s += (s.empty() ? "" : ", ") + std::string("nonzero padding");
  if (!bad_keys.empty()) s += (s.empty() ? "" : ", ") + bad_keys;
  if (!bad_shards.empty()) {
    s += (s.empty() ? "" : ", ") + std::to_string(bad_shards.size()) + " of " + std::to_string(shards_checked) +
         " shards unreadable: " + bad_shards.front();
  }
  for (size_t i = 0; i < bad.size() && i < 5; ++i) {
    const BadRows& b = bad[i];
    const std::string rows = Rows(b.first_row, b.row_count);
    s += (i ? ", " : ": ") + (b.shard.empty() ? "" : "shard " + b.shard + " ") +
         (b.unit == BadRows::Unit::kFrame ? "frame " + std::to_string(b.index) + " (" + rows + ")" : rows);
  }
  if (bad.size() > 5) s += ", ...";
  if (!bad_regions.empty()) s += "; " + bad_regions.front();
  return s;
}

std::string CheckKeysSection(const Header& h, std::span<const uint8_t> section, const KeysView& keys) {
  const uint64_t computed = Hash64(section.data(), section.size());
  if (computed != h.keys_checksum) {
    char buf[160];
    snprintf(buf, sizeof(buf), "corrupt keys section: checksum mismatch: stored 0x%016llx, computed 0x%016llx",
             static_cast<unsigned long long>(h.keys_checksum), static_cast<unsigned long long>(computed));
    return buf;
  }
  Status st = keys.Validate();
  return st.ok() ? "" : st.message();
}

Status CheckTableKeys(const Table& table) {
  const KeysView* keys = table.keys();
  if (keys == nullptr) return Status::OK();
  const std::string bad = CheckKeysSection(table.header(), keys->bytes(), *keys);
  if (bad.empty()) return Status::OK();
  return Status::Corruption(table.path() + ": " + bad + "; nothing was written ('embstore verify' says more)");
}

std::string OutOfRangeMessage(uint64_t id, uint64_t rows) { return OutOfRangeText(std::to_string(id), rows); }
std::string OutOfRangeMessage(int64_t id, uint64_t rows) { return OutOfRangeText(std::to_string(id), rows); }

Status CheckRowsOut(uint64_t count, uint64_t dim, Dtype as, std::span<const uint8_t> out) {
  const uint64_t esize = DtypeSize(as);
  if (esize == 0) return Status::InvalidArgument("rows asked for as dtype " + std::to_string(uint32_t(as)) + ", unknown");
  const uint64_t row = dim * esize;
  if (out.size() / row != count || out.size() % row != 0) {
    const std::string name = DtypeName(as);
    return Status::InvalidArgument("output holds " + std::to_string(out.size() / esize) + " " + name + ", " +
                                   std::to_string(count) + " rows of dim " + std::to_string(dim) + " need " +
                                   std::to_string(count * dim));
  }
  return Status::OK();
}

Status CheckRowRange(uint64_t first, uint64_t count, uint64_t rows) {
  if (first > rows || count > rows - first) {
    return Status::OutOfRange("rows [" + std::to_string(first) + ", +" + std::to_string(count) + ") outside [0, " +
                              std::to_string(rows) + ")");
  }
  return Status::OK();
}

}  // namespace embstore
