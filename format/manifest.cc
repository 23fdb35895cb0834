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
  std::string out(1, '\'');  // (appended, not "'" + ...: GCC 12 warns falsely of an overlap)
  out += EscapeForDisplay(s.size() > 60 ? s.substr(0, 60) + "..." : s);
  out += '\'';
  return out;
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

// One value of the manifest as read: its kind, and the value where it is
// a kind the manifest uses.
struct Field {
  enum Kind { kMissing, kString, kUnsigned, kBool, kObject, kArray, kOther };
  Kind kind = kMissing;
  std::string text;
  uint64_t number = 0;
  bool flag = false;
};

struct RawShard {
  bool object = false;
  Field path, first_row, rows, checksum;
};

// Reads a manifest's JSON as events (nlohmann-json's SAX interface) into
// the fields the manifest has, in one pass that builds no tree: memory
// follows the fields, not the text. It stops at the first value past a
// bound (a legitimate manifest holds about five values per shard, three
// levels deep; hostile JSON within the size limit, tens of millions of empty
// lists or lists nested millions deep, would otherwise take gigabytes), and
// at a key repeated in an object (which a tree would resolve silently to
// its last value). Values of fields it does not know are skipped.
class ManifestReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string too_large;  // the bound passed, or empty
  std::string duplicate;  // the first key seen twice in one object, or empty
  std::string invalid;    // the JSON parser's error, or empty
  bool root_object = false;
  Field format, version, table_id, rows, dim, dtype, keys, metadata, shards;
  std::vector<std::pair<std::string, Field>> meta;  // metadata entries as read
  std::vector<RawShard> shard_list;  // at most kMaxShards + 1 of them
  uint64_t shards_seen = 0;          // all of them

  bool null() override { return Other(); }
  bool boolean(bool v) override {
    Field f;
    f.kind = Field::kBool;
    f.flag = v;
    return Scalar(std::move(f));
  }
  bool number_integer(number_integer_t) override { return Other(); }
  bool number_unsigned(number_unsigned_t v) override {
    Field f;
    f.kind = Field::kUnsigned;
    f.number = v;
    return Scalar(std::move(f));
  }
  bool number_float(number_float_t, const string_t&) override { return Other(); }
  bool binary(binary_t&) override { return Other(); }
  bool string(string_t& v) override {
    Field f;
    f.kind = Field::kString;
    f.text = std::move(v);
    return Scalar(std::move(f));
  }
  bool start_object(std::size_t) override {
    if (!Open()) return false;
    // Key sets are kept and cleared, not freed: a manifest's thousands of
    // small shard objects reuse one.
    if (objects_ == keys_.size()) keys_.emplace_back();
    keys_[objects_].few.clear();
    keys_[objects_].many.clear();
    ++objects_;
    Push(Enter(Field::kObject), true);
    return true;
  }
  bool start_array(std::size_t) override {
    if (!Open()) return false;
    Push(Enter(Field::kArray), false);
    return true;
  }
  bool end_object() override {
    --objects_;
    return Close();
  }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    Keys& level = keys_[objects_ - 1];
    bool fresh;
    if (level.few.size() < 32) {  // a shard's object has four: a look at each
      fresh = std::find(level.few.begin(), level.few.end(), k) == level.few.end();
      if (fresh) level.few.push_back(k);
    } else {
      if (level.many.empty()) level.many.insert(level.few.begin(), level.few.end());
      fresh = level.many.insert(k).second;
    }
    if (!fresh) {
      duplicate = k;
      return false;
    }
    stack_.back().key = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    invalid = e.what();
    return false;
  }

 private:
  enum Where { kRoot, kMetadata, kShards, kShard, kSkip };
  struct Level {
    Where where;
    bool object;
    std::string key;  // the key whose value comes next (objects)
  };
  struct Keys {
    std::vector<std::string> few;  // the first 32 keys
    std::set<std::string> many;    // all of them, past 32
  };

  bool Count() {
    if (++values_ <= kMaxManifestValues) return true;
    too_large = "holds more than " + std::to_string(kMaxManifestValues) + " JSON values";
    return false;
  }
  bool Open() {
    if (!Count()) return false;
    if (++depth_ <= kMaxManifestDepth) return true;
    too_large = "nests lists or objects more than " + std::to_string(kMaxManifestDepth) + " deep";
    return false;
  }
  bool Close() {
    stack_.pop_back();
    --depth_;
    return true;
  }
  void Push(Where w, bool object) { stack_.push_back(Level{w, object, std::string()}); }

  // The field a value at the current place fills, or null (skipped).
  Field* Slot() {
    if (stack_.empty()) return nullptr;
    Level& top = stack_.back();
    const std::string& k = top.key;
    switch (top.where) {
      case kRoot:
        if (k == "format") return &format;
        if (k == "version") return &version;
        if (k == "table_id") return &table_id;
        if (k == "rows") return &rows;
        if (k == "dim") return &dim;
        if (k == "dtype") return &dtype;
        if (k == "keys") return &keys;
        if (k == "metadata") return &metadata;
        if (k == "shards") return &shards;
        return nullptr;
      case kMetadata:
        // Past the limit nothing more is kept (the check after the parse
        // says so): hostile text holds no more than a legitimate manifest.
        if (meta.size() > kMaxMetadataEntries) return nullptr;
        meta.emplace_back(k, Field());
        return &meta.back().second;
      case kShards:
        ++shards_seen;
        added_shard_ = shard_list.size() <= kMaxShards;
        if (added_shard_) shard_list.emplace_back();
        return nullptr;
      case kShard: {
        RawShard& s = shard_list.back();
        if (k == "path") return &s.path;
        if (k == "first_row") return &s.first_row;
        if (k == "rows") return &s.rows;
        if (k == "checksum") return &s.checksum;
        return nullptr;
      }
      case kSkip:
        return nullptr;
    }
    return nullptr;
  }
  // A list or object starts: where its contents go.
  Where Enter(Field::Kind kind) {
    if (stack_.empty()) {
      root_object = kind == Field::kObject;
      return root_object ? kRoot : kSkip;
    }
    const Where parent = stack_.back().where;
    Field* f = Slot();
    if (parent == kShards) {
      if (!added_shard_ || kind != Field::kObject) return kSkip;
      shard_list.back().object = true;
      return kShard;
    }
    if (f == nullptr) return kSkip;
    f->kind = kind;
    if (parent == kRoot && f == &metadata && kind == Field::kObject) return kMetadata;
    if (parent == kRoot && f == &shards && kind == Field::kArray) return kShards;
    return kSkip;
  }
  bool Scalar(Field value) {
    if (!Count()) return false;
    if (Field* f = Slot()) *f = std::move(value);
    return true;
  }
  bool Other() {
    Field f;
    f.kind = Field::kOther;
    return Scalar(std::move(f));
  }

  uint64_t values_ = 0, depth_ = 0;
  bool added_shard_ = false;  // the last value of the shard list got a RawShard
  size_t objects_ = 0;       // objects open
  std::vector<Keys> keys_;   // [0, objects_): the keys of each object open
  std::vector<Level> stack_;
};

// The checks of a field's presence and kind, with the messages they give.
bool Present(const Field& f, const char* name, const std::string& where, Status* error) {
  if (f.kind != Field::kMissing) return true;
  *error = Bad(where + "has no \"" + name + "\"");
  return false;
}
bool GetU64(const Field& f, const char* name, const std::string& where, uint64_t* out, Status* error) {
  if (!Present(f, name, where, error)) return false;
  if (f.kind != Field::kUnsigned) {
    *error = Bad(where + "\"" + name + "\" is not a whole number >= 0");
    return false;
  }
  *out = f.number;
  return true;
}
bool GetString(const Field& f, const char* name, const std::string& where, std::string* out, Status* error) {
  if (!Present(f, name, where, error)) return false;
  if (f.kind != Field::kString) {
    *error = Bad(where + "\"" + name + "\" is not a string");
    return false;
  }
  *out = f.text;
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
  if (m.rows > (uint64_t{1} << 62) / (m.dim * DtypeSize(static_cast<uint32_t>(m.dtype)))) {
    return Bad("rows x dim = " + std::to_string(m.rows) + " x " + std::to_string(m.dim) + " " + DtypeName(m.dtype) +
               " is over 2^62 bytes");
  }
  uint64_t next = 0;
  for (size_t i = 0; i < m.shards.size(); ++i) {
    const ShardEntry& s = m.shards[i];
    // Built only for a message: a manifest of many shards parses in time
    // proportional to its bytes.
    auto what_of = [&](size_t k) {
      return "shard " + std::to_string(k) + " (" + EscapeForDisplay(m.shards[k].path) + ")";
    };
    EMB_RETURN_IF_ERROR(CheckShardPath(s.path));
    if (s.rows == 0 || s.rows > kMaxRows) {
      return Bad(what_of(i) + " has " + std::to_string(s.rows) + " rows (a shard has 1 to 2^32)");
    }
    if (s.first_row > next) {
      return Bad(what_of(i) + " starts at row " + std::to_string(s.first_row) + ", but the shards before it end at row " +
                 std::to_string(next) + ": rows [" + std::to_string(next) + ", " + std::to_string(s.first_row) +
                 ") are in no shard (a gap)");
    }
    if (s.first_row < next) {
      return Bad(what_of(i) + " starts at row " + std::to_string(s.first_row) + ", but the shards before it end at row " +
                 std::to_string(next) + ": rows [" + std::to_string(s.first_row) + ", " + std::to_string(next) +
                 ") are in two shards (an overlap)");
    }
    next += s.rows;  // rows <= 2^32 each, at most 2^15 shards: no overflow
  }
  // Paths unique: sorted views, neighbours compared.
  std::vector<size_t> order(m.shards.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return m.shards[a].path < m.shards[b].path; });
  for (size_t k = 1; k < order.size(); ++k) {
    const size_t a = std::min(order[k - 1], order[k]), b = std::max(order[k - 1], order[k]);
    if (m.shards[a].path == m.shards[b].path) {
      return Bad("shard " + std::to_string(b) + " (" + EscapeForDisplay(m.shards[b].path) + ") is listed twice (also shard " +
                 std::to_string(a) + ")");
    }
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
  ManifestReader r;
  nlohmann::json::sax_parse(bytes.begin(), bytes.end(), &r);
  if (!r.too_large.empty()) {
    return Status::NotSupported("manifest " + r.too_large + "; this reader reads no more");
  }
  if (!r.duplicate.empty()) return Bad("key " + Shown(r.duplicate) + " appears twice in one object");
  if (!r.invalid.empty()) return Bad("not valid JSON: " + r.invalid);
  if (!r.root_object) return Bad("not a JSON object");
  Status error;
  std::string format, version, dtype;
  if (!GetString(r.format, "format", "", &format, &error)) return error;
  if (format != kManifestFormat) {
    return Bad("\"format\" is " + Shown(format) + ", not \"" + kManifestFormat + "\"");
  }
  if (!GetString(r.version, "version", "", &version, &error)) return error;
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
  if (!GetString(r.table_id, "table_id", "", &m.table_id, &error)) return error;
  if (!GetU64(r.rows, "rows", "", &m.rows, &error) || !GetU64(r.dim, "dim", "", &m.dim, &error)) return error;
  if (!GetString(r.dtype, "dtype", "", &dtype, &error)) return error;
  auto parsed = ParseDtype(dtype);
  if (!parsed.ok() || DtypeName(*parsed) != dtype) {
    return Status::NotSupported("manifest: dtype " + Shown(dtype) + " is not supported: this reader reads float32, "
                                "float16, bfloat16 tables");
  }
  m.dtype = *parsed;
  if (!Present(r.keys, "keys", "", &error)) return error;
  if (r.keys.kind != Field::kBool) return Bad("\"keys\" is not true or false");
  m.keys = r.keys.flag;
  if (!Present(r.metadata, "metadata", "", &error)) return error;
  if (r.metadata.kind != Field::kObject) return Bad("\"metadata\" is not an object");
  if (r.meta.size() > kMaxMetadataEntries) {
    return Bad("\"metadata\" has more than " + std::to_string(kMaxMetadataEntries) + " entries");
  }
  for (auto& [k, v] : r.meta) {
    if (!ValidateMetadataKey(k).ok()) return Bad("metadata key " + Shown(k) + " is not 1 to 255 bytes of [a-z0-9._-]");
    if (v.kind != Field::kString) return Bad("metadata value of " + Shown(k) + " is not a string");
    m.metadata[k] = std::move(v.text);
  }
  if (!Present(r.shards, "shards", "", &error)) return error;
  if (r.shards.kind != Field::kArray) return Bad("\"shards\" is not a list");
  if (r.shards_seen > kMaxShards) {
    return Status::NotSupported("manifest lists " + std::to_string(r.shards_seen) +
                                " shards; this reader reads at most " + std::to_string(kMaxShards));
  }
  m.shards.reserve(r.shard_list.size());
  for (size_t i = 0; i < r.shard_list.size(); ++i) {
    RawShard& s = r.shard_list[i];
    const std::string where = "shard " + std::to_string(i) + ": ";
    if (!s.object) return Bad(where + "not an object");
    ShardEntry e;
    std::string checksum;
    if (!GetString(s.path, "path", where, &e.path, &error) ||
        !GetU64(s.first_row, "first_row", where, &e.first_row, &error) ||
        !GetU64(s.rows, "rows", where, &e.rows, &error) ||
        !GetString(s.checksum, "checksum", where, &checksum, &error)) {
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
