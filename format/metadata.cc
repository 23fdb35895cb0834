#include "format/metadata.h"

#include "format/endian.h"
#include "format/table_format.h"

namespace embstore {

namespace {
// FORMAT.md, "Metadata": u32 count, then per entry u16 key_len, u32
// value_len, key bytes, value bytes.
constexpr size_t kCountSize = 4;
constexpr size_t kEntryHeadSize = 6;
}  // namespace

std::string EscapeForDisplay(const std::string& bytes) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  auto escape = [&](unsigned char c) {
    static const char kHex[] = "0123456789abcdef";
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) escape(c); else out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlongs, surrogates or C1 controls)
    // passes through; anything else is escaped byte by byte.
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
    if (ok && len == 2 && c == 0xC2 && p[i + 1] < 0xA0) ok = false;             // C1 controls
    if (ok && len == 3 && c == 0xE0 && p[i + 1] < 0xA0) ok = false;             // overlong
    if (ok && len == 3 && c == 0xED && p[i + 1] >= 0xA0) ok = false;            // surrogates
    if (ok && len == 4 && c == 0xF0 && p[i + 1] < 0x90) ok = false;             // overlong
    if (ok && len == 4 && c == 0xF4 && p[i + 1] >= 0x90) ok = false;            // > U+10FFFF
    if (!ok) {
      escape(c);
      ++i;
      continue;
    }
    out.append(bytes, i, len);
    i += len;
  }
  return out;
}

std::string EscapeLinesForDisplay(const std::string& text) {
  std::string out;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find('\n', start);
    out += EscapeForDisplay(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    out += '\n';
    start = end + 1;
  }
}

Status ValidateMetadataKey(const std::string& key) {
  if (key.empty() || key.size() > kMaxMetadataKeySize) {
    return Status::InvalidArgument("metadata key '" + EscapeForDisplay(key.substr(0, 64)) +
                                   "' must be 1 to 255 bytes");
  }
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("metadata key '" + EscapeForDisplay(key) + "' may hold only [a-z0-9._-]");
    }
  }
  return Status::OK();
}

Result<std::string> EncodeMetadata(const Metadata& metadata) {
  if (metadata.size() > kMaxMetadataEntries) {
    return Status::InvalidArgument("metadata has " + std::to_string(metadata.size()) +
                                   " entries, over the limit of " + std::to_string(kMaxMetadataEntries));
  }
  uint64_t total = kCountSize;
  for (const auto& [k, v] : metadata) {
    EMB_RETURN_IF_ERROR(ValidateMetadataKey(k));
    total += kEntryHeadSize + k.size() + v.size();
    if (total > kMaxMetadataSize) {
      return Status::InvalidArgument("metadata exceeds the limit of " + std::to_string(kMaxMetadataSize) +
                                     " bytes");
    }
  }
  std::string out(total, '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(out.data());
  StoreLE32(p, static_cast<uint32_t>(metadata.size()));
  p += kCountSize;
  for (const auto& [k, v] : metadata) {
    StoreLE16(p, static_cast<uint16_t>(k.size()));
    StoreLE32(p + 2, static_cast<uint32_t>(v.size()));
    p += kEntryHeadSize;
    std::copy(k.begin(), k.end(), p);
    p += k.size();
    std::copy(v.begin(), v.end(), p);
    p += v.size();
  }
  return out;
}

Result<Metadata> DecodeMetadata(std::span<const uint8_t> bytes) {
  auto bad = [](const std::string& what) { return Status::Corruption("corrupt metadata: " + what); };
  if (bytes.size() > kMaxMetadataSize) {
    return bad(std::to_string(bytes.size()) + " bytes exceeds the limit of " +
               std::to_string(kMaxMetadataSize));
  }
  if (bytes.size() < kCountSize) {
    return bad("section is " + std::to_string(bytes.size()) + " bytes, too short for the entry count");
  }
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  const uint32_t count = LoadLE32(p);
  p += kCountSize;
  left -= kCountSize;
  if (count > kMaxMetadataEntries) {
    return bad("entry count " + std::to_string(count) + " exceeds the limit of " +
               std::to_string(kMaxMetadataEntries));
  }
  Metadata out;
  const std::string* prev = nullptr;
  for (uint32_t i = 0; i < count; ++i) {
    const std::string where = "entry " + std::to_string(i) + ": ";
    if (left < kEntryHeadSize) return bad(where + "runs past the end of the section");
    const uint16_t klen = LoadLE16(p);
    const uint32_t vlen = LoadLE32(p + 2);
    p += kEntryHeadSize;
    left -= kEntryHeadSize;
    if (klen > left || vlen > left - klen) {
      return bad(where + "key of " + std::to_string(klen) + " and value of " + std::to_string(vlen) +
                 " bytes run past the end of the section (" + std::to_string(left) + " bytes left)");
    }
    std::string key(reinterpret_cast<const char*>(p), klen);
    std::string value(reinterpret_cast<const char*>(p + klen), vlen);
    p += klen + vlen;
    left -= klen + vlen;
    if (Status st = ValidateMetadataKey(key); !st.ok()) return bad(where + st.message());
    if (prev != nullptr && !(*prev < key)) {  // both keys passed validation: printable
      return bad(where + "key '" + key + "' is not after '" + *prev + "' (keys must be sorted and unique)");
    }
    prev = &out.emplace_hint(out.end(), std::move(key), std::move(value))->first;
  }
  if (left != 0) return bad(std::to_string(left) + " bytes after the last entry");
  return out;
}

}  // namespace embstore
