#include "format/manifest.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "format/checksum.h"
#include "format/endian.h"

namespace embstore {

namespace {

Status Bad(const std::string& what) { return Status::Corruption("corrupt manifest: " + what); }

std::string Shown(const std::string& s) {
  return "'" + EscapeForDisplay(s.size() > 60 ? s.substr(0, 60) + "..." : s) + "'";
}

bool IsHex(const std::string& s, size_t n) {
  return s.size() == n &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool ParseU64(const std::string& s, uint64_t* v) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && end == s.data() + s.size();
}

using Json = nlohmann::json;

// A field of an object: the value, or null with *error set.
const Json* Field(const Json& obj, const char* name, const std::string& where, Status* error) {
  auto it = obj.find(name);
  if (it == obj.end()) {
    *error = Bad(where + "has no \"" + name + "\"");
    return nullptr;
  }
  return &*it;
}

bool GetU64(const Json& obj, const char* name, const std::string& where, uint64_t* out, Status* error) {
  const Json* v = Field(obj, name, where, error);
  if (v == nullptr) return false;
  if (!v->is_number_unsigned()) {
    *error = Bad(where + "\"" + name + "\" is not a whole number >= 0");
    return false;
  }
  *out = v->get<uint64_t>();
  return true;
}

bool GetString(const Json& obj, const char* name, const std::string& where, std::string* out, Status* error) {
  const Json* v = Field(obj, name, where, error);
  if (v == nullptr) return false;
  if (!v->is_string()) {
    *error = Bad(where + "\"" + name + "\" is not a string");
    return false;
  }
  *out = v->get<std::string>();
  return true;
}

}  // namespace

uint64_t Manifest::ShardOf(uint64_t row) const {
  auto it = std::upper_bound(shards.begin(), shards.end(), row,
                             [](uint64_t r, const ShardEntry& s) { return r < s.first_row; });
  return static_cast<uint64_t>(it - shards.begin()) - 1;
}

bool LooksLikeManifest(std::span<const uint8_t> prefix) {
  for (uint8_t c : prefix) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{';
  }
  return false;
}

Status CheckShardPath(const std::string& name) {
  if (name.empty() || name.size() > 255) {
    return Bad("shard path " + Shown(name) + " must be 1 to 255 bytes");
  }
  if (name.find('/') != std::string::npos) {
    return Bad("shard path " + Shown(name) +
               " is not a file name in the manifest's folder (shards may not lie in other folders)");
  }
  if (name.find('\0') != std::string::npos) return Bad("shard path " + Shown(name) + " holds a NUL byte");
  if (name[0] == '.') {
    return Bad("shard path " + Shown(name) + " starts with '.' (\".\", \"..\" and hidden names are not shards)");
  }
  return Status::OK();
}

Status CheckManifest(const Manifest& m) {
  if (!IsTableId(m.table_id)) return Bad("table_id " + Shown(m.table_id) + " is not 32 lowercase hex digits");
  if (m.dim == 0 || m.dim > kMaxDim) {
    return Bad("dim " + std::to_string(m.dim) + " is outside [1, " + std::to_string(kMaxDim) + "]");
  }
  if (DtypeSize(static_cast<uint32_t>(m.dtype)) == 0) return Bad("unknown dtype");
  if (m.shards.empty()) return Bad("no shards");
  if (m.shards.size() > kMaxShards) {
    return Status::NotSupported("manifest lists " + std::to_string(m.shards.size()) + " shards; this reader reads at most " +
                                std::to_string(kMaxShards));
  }
  if (m.rows == 0 || m.rows > kMaxShardedRows) {
    return Bad("rows " + std::to_string(m.rows) + " is outside [1, 2^52]");
  }
  std::set<std::string> paths;
  uint64_t next = 0;
  for (size_t i = 0; i < m.shards.size(); ++i) {
    const ShardEntry& s = m.shards[i];
    const std::string what = "shard " + std::to_string(i) + " (" + EscapeForDisplay(s.path) + ")";
    EMB_RETURN_IF_ERROR(CheckShardPath(s.path));
    if (!paths.insert(s.path).second) return Bad(what + " is listed twice");
    if (s.rows == 0 || s.rows > kMaxRows) {
      return Bad(what + " has " + std::to_string(s.rows) + " rows (a shard has 1 to 2^32)");
    }
    if (s.first_row > next) {
      return Bad(what + " starts at row " + std::to_string(s.first_row) + ", but the shards before it end at row " +
                 std::to_string(next) + ": rows [" + std::to_string(next) + ", " + std::to_string(s.first_row) +
                 ") are in no shard (a gap)");
    }
    if (s.first_row < next) {
      return Bad(what + " starts at row " + std::to_string(s.first_row) + ", but the shards before it end at row " +
                 std::to_string(next) + ": rows [" + std::to_string(s.first_row) + ", " + std::to_string(next) +
                 ") are in two shards (an overlap)");
    }
    next += s.rows;  // rows <= 2^32 each, at most 2^18 shards: no overflow
  }
  if (next != m.rows) {
    return Bad("the shards hold " + std::to_string(next) + " rows, the manifest says " + std::to_string(m.rows));
  }
  return Status::OK();
}

Result<Manifest> DecodeManifest(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxManifestSize) {
    return Status::NotSupported("manifest is " + std::to_string(bytes.size()) + " bytes; this reader reads at most " +
                                std::to_string(kMaxManifestSize));
  }
  Json j;
  try {
    j = Json::parse(bytes.begin(), bytes.end());
  } catch (const Json::exception& e) {
    return Bad(std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) return Bad("not a JSON object");
  Status error;
  std::string format, version, dtype;
  if (!GetString(j, "format", "", &format, &error)) return error;
  if (format != kManifestFormat) {
    return Bad("\"format\" is " + Shown(format) + ", not \"" + kManifestFormat + "\"");
  }
  if (!GetString(j, "version", "", &version, &error)) return error;
  Manifest m;
  const size_t dot = version.find('.');
  uint64_t major = 0, minor = 0;
  if (dot == std::string::npos || !ParseU64(version.substr(0, dot), &major) ||
      !ParseU64(version.substr(dot + 1), &minor) || major > 65535 || minor > 65535) {
    return Bad("\"version\" " + Shown(version) + " is not MAJOR.MINOR");
  }
  if (major != kManifestVersionMajor) {
    return Status::NotSupported("unsupported manifest version " + version + ": this reader reads version " +
                                std::to_string(kManifestVersionMajor) + ".x");
  }
  m.version_major = static_cast<uint32_t>(major);
  m.version_minor = static_cast<uint32_t>(minor);
  if (!GetString(j, "table_id", "", &m.table_id, &error)) return error;
  if (!GetU64(j, "rows", "", &m.rows, &error) || !GetU64(j, "dim", "", &m.dim, &error)) return error;
  if (!GetString(j, "dtype", "", &dtype, &error)) return error;
  auto parsed = ParseDtype(dtype);
  if (!parsed.ok() || DtypeName(*parsed) != dtype) {
    return Status::NotSupported("manifest: dtype " + Shown(dtype) + " is not supported: this reader reads float32, "
                                "float16, bfloat16 tables");
  }
  m.dtype = *parsed;
  const Json* keys = Field(j, "keys", "", &error);
  if (keys == nullptr) return error;
  if (!keys->is_boolean()) return Bad("\"keys\" is not true or false");
  m.keys = keys->get<bool>();
  const Json* meta = Field(j, "metadata", "", &error);
  if (meta == nullptr) return error;
  if (!meta->is_object()) return Bad("\"metadata\" is not an object");
  if (meta->size() > kMaxMetadataEntries) return Bad("\"metadata\" has more than " + std::to_string(kMaxMetadataEntries) + " entries");
  for (const auto& [k, v] : meta->items()) {
    if (!ValidateMetadataKey(k).ok()) return Bad("metadata key " + Shown(k) + " is not 1 to 255 bytes of [a-z0-9._-]");
    if (!v.is_string()) return Bad("metadata value of " + Shown(k) + " is not a string");
    m.metadata[k] = v.get<std::string>();
  }
  const Json* shards = Field(j, "shards", "", &error);
  if (shards == nullptr) return error;
  if (!shards->is_array()) return Bad("\"shards\" is not a list");
  if (shards->size() > kMaxShards) {
    return Status::NotSupported("manifest lists " + std::to_string(shards->size()) + " shards; this reader reads at most " +
                                std::to_string(kMaxShards));
  }
  m.shards.reserve(shards->size());
  for (size_t i = 0; i < shards->size(); ++i) {
    const Json& s = (*shards)[i];
    const std::string where = "shard " + std::to_string(i) + ": ";
    if (!s.is_object()) return Bad(where + "not an object");
    ShardEntry e;
    std::string checksum;
    if (!GetString(s, "path", where, &e.path, &error) || !GetU64(s, "first_row", where, &e.first_row, &error) ||
        !GetU64(s, "rows", where, &e.rows, &error) || !GetString(s, "checksum", where, &checksum, &error)) {
      return error;
    }
    if (!IsHex(checksum, 16)) return Bad(where + "checksum " + Shown(checksum) + " is not 16 lowercase hex digits");
    std::from_chars(checksum.data(), checksum.data() + 16, e.checksum, 16);
    m.shards.push_back(std::move(e));
  }
  EMB_RETURN_IF_ERROR(CheckManifest(m));
  return m;
}

std::string EncodeManifest(const Manifest& m) {
  // Written by hand, one shard a line, so that the text is stable and easy
  // to read and diff; paths are escaped by the JSON library.
  std::string out = "{\n";
  out += "  \"format\": \"" + std::string(kManifestFormat) + "\",\n";
  out += "  \"version\": \"" + std::to_string(m.version_major) + "." + std::to_string(m.version_minor) + "\",\n";
  out += "  \"table_id\": \"" + m.table_id + "\",\n";
  out += "  \"rows\": " + std::to_string(m.rows) + ",\n";
  out += "  \"dim\": " + std::to_string(m.dim) + ",\n";
  out += "  \"dtype\": \"" + std::string(DtypeName(m.dtype)) + "\",\n";
  out += std::string("  \"keys\": ") + (m.keys ? "true" : "false") + ",\n";
  out += "  \"metadata\": {";
  size_t n = 0;
  for (const auto& [k, v] : m.metadata) {
    out += (n++ ? ",\n    " : "\n    ") + Json(k).dump() + ": " + Json(v).dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  out += n ? "\n  },\n" : "},\n";
  out += "  \"shards\": [\n";
  for (size_t i = 0; i < m.shards.size(); ++i) {
    const ShardEntry& s = m.shards[i];
    out += "    {\"path\": " + Json(s.path).dump(-1, ' ', false, Json::error_handler_t::replace) +
           ", \"first_row\": " + std::to_string(s.first_row) + ", \"rows\": " + std::to_string(s.rows) +
           ", \"checksum\": \"" + Hex64(s.checksum) + "\"}" + (i + 1 < m.shards.size() ? ",\n" : "\n");
  }
  out += "  ]\n}\n";
  return out;
}

uint64_t ShardChecksum(std::span<const uint8_t> prefix, const Header& h) {
  StreamingHash hash;
  hash.Update(prefix.data() + h.header_size - 8, 8);
  hash.Update(prefix.data() + h.checksum_offset, 8 * h.checksum_count);
  return hash.Digest();
}

std::string TableIdFrom(std::string_view seed) { return Hex128(seed.data(), seed.size()); }

bool IsTableId(const std::string& s) { return IsHex(s, 32); }

void AddShardMetadata(Metadata* m, const std::string& table_id, uint64_t index, uint64_t count, uint64_t first_row) {
  (*m)[kShardTableKey] = table_id;
  (*m)[kShardIndexKey] = std::to_string(index);
  (*m)[kShardCountKey] = std::to_string(count);
  (*m)[kShardFirstRowKey] = std::to_string(first_row);
}

Status CheckShardMetadata(const Metadata& m, const std::string& table_id, uint64_t index, uint64_t first_row,
                          const std::string& what) {
  auto get = [&](const char* key) {
    auto it = m.find(key);
    return it == m.end() ? std::string() : it->second;
  };
  const std::string id = get(kShardTableKey);
  if (id.empty()) {
    return Status::Corruption(what + " is not a shard: its metadata has no " + kShardTableKey +
                              " (an ordinary table; 'embstore append' adds one as a shard)");
  }
  if (id != table_id) {
    return Status::Corruption(what + " belongs to another table: its " + kShardTableKey + " is " + Shown(id) +
                              ", the manifest's table_id " + table_id);
  }
  uint64_t got_index = 0, got_count = 0, got_first = 0;
  if (!ParseU64(get(kShardIndexKey), &got_index) || !ParseU64(get(kShardCountKey), &got_count) ||
      !ParseU64(get(kShardFirstRowKey), &got_first) || got_index >= got_count) {
    return Status::Corruption(what + ": its shard metadata (" + kShardIndexKey + ", " + kShardCountKey + ", " +
                              kShardFirstRowKey + ") is missing or malformed");
  }
  if (got_index != index || got_first != first_row) {
    return Status::Corruption(what + " is in the wrong place: it was written as shard " + std::to_string(got_index) +
                              " of " + std::to_string(got_count) + " starting at row " + std::to_string(got_first) +
                              ", the manifest lists it as shard " + std::to_string(index) + " starting at row " +
                              std::to_string(first_row));
  }
  return Status::OK();
}

}  // namespace embstore
