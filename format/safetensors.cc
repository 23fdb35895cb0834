#include "format/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "format/checked_math.h"
#include "format/endian.h"
#include "format/metadata.h"

namespace embstore {

namespace {

Status Bad(const std::string& what) { return Status::Corruption("corrupt safetensors header: " + what); }

// Element sizes of the dtypes the reference implementation defines.
uint64_t DtypeBytes(const std::string& dtype) {
  static const std::map<std::string, uint64_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

// A name or value from the header, quoted, shortened and made safe to
// print (no terminal escapes).
std::string Show(const std::string& s) {
  std::string out = EscapeForDisplay(s.size() > 60 ? s.substr(0, 60) : s);
  return "'" + out + (s.size() > 60 ? "...'" : "'");
}

// Reads the header as events (nlohmann-json's SAX interface) straight into
// tensors and metadata: no document tree, memory proportional to what the
// header really holds, and the parse stops at the first thing that does not
// fit the format (duplicate keys, which a tree would silently drop, and
// nesting deeper than three levels included).
class HeaderReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit HeaderReader(SafetensorsHeader* out) : out_(out) {}
  const std::string& error() const { return error_; }

  bool null() override { return Value("null"); }
  bool boolean(bool) override { return Value("a boolean"); }
  bool number_integer(number_integer_t) override { return Value("a negative number"); }
  bool number_float(number_float_t, const string_t&) override { return Value("a fractional number"); }
  bool binary(binary_t&) override { return Value("binary"); }
  bool number_unsigned(number_unsigned_t v) override {
    if (state_ == kShape || state_ == kOffsets) {
      if (state_ == kOffsets && offsets_.size() == 2) return Fail("tensor " + Show(tensor_.name) + " has more than two data_offsets");
      (state_ == kShape ? tensor_.shape : offsets_).push_back(v);
      return true;
    }
    return Value("a number");
  }
  bool string(string_t& v) override {
    if (state_ == kMetadata) {
      out_->metadata[key_] = v;
      return true;
    }
    if (state_ == kTensor && key_ == "dtype") {
      tensor_.dtype = v;
      return true;
    }
    return Value("a string");
  }
  bool start_object(std::size_t) override {
    if (state_ == kStart) return (state_ = kRoot, true);
    if (state_ == kRoot && key_ == "__metadata__") return (state_ = kMetadata, keys_.clear(), true);
    if (state_ == kRoot) {
      tensor_ = SafetensorsTensor();
      tensor_.name = key_;
      offsets_.clear();
      keys_.clear();
      return (state_ = kTensor, true);
    }
    return Value("an object");
  }
  bool end_object() override {
    if (state_ == kMetadata) return (state_ = kRoot, true);
    if (state_ == kTensor) {
      for (const char* field : {"dtype", "shape", "data_offsets"}) {
        if (!keys_.count(field)) return Fail("tensor " + Show(tensor_.name) + " has no " + field);
      }
      if (offsets_.size() != 2) return Fail("tensor " + Show(tensor_.name) + " needs data_offsets [begin, end]");
      tensor_.begin = offsets_[0];
      tensor_.end = offsets_[1];
      out_->tensors.push_back(std::move(tensor_));
      return (state_ = kRoot, true);
    }
    return (state_ = kDone, true);
  }
  bool start_array(std::size_t) override {
    if (state_ == kTensor && key_ == "shape") return (state_ = kShape, true);
    if (state_ == kTensor && key_ == "data_offsets") return (state_ = kOffsets, true);
    if (state_ == kShape || state_ == kOffsets) return Fail("nested deeper than the format allows");
    return Value("an array");
  }
  bool end_array() override { return (state_ = kTensor, true); }
  bool key(string_t& k) override {
    // Tensor names are checked for repeats after the parse (by sorting:
    // no per-name node here); the few keys inside an object, here.
    if (state_ == kRoot) {
      if (k == "__metadata__" && seen_metadata_) return Fail("key " + Show(k) + " appears twice");
      seen_metadata_ |= k == "__metadata__";
    } else if (!keys_.insert(k).second) {
      return Fail("key " + Show(k) + " appears twice");
    }
    if (state_ == kTensor && k != "dtype" && k != "shape" && k != "data_offsets") {
      return Fail("tensor " + Show(tensor_.name) + " has an unknown field " + Show(k));
    }
    key_ = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return Fail(std::string("not valid JSON: ") + e.what());
  }

 private:
  enum State { kStart, kRoot, kMetadata, kTensor, kShape, kOffsets, kDone };
  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  // A value where the format has no room for that kind of value.
  bool Value(const std::string& kind) {
    switch (state_) {
      case kStart: return Fail("not a JSON object");
      case kRoot:
        return Fail(key_ == "__metadata__" ? "__metadata__ is not an object" : "tensor " + Show(key_) + " is not an object");
      case kMetadata: return Fail("__metadata__ value of " + Show(key_) + " is not a string");
      case kTensor:
        return Fail("tensor " + Show(tensor_.name) + ": " + Show(key_) + " is " + kind);
      case kShape:
        return Fail("tensor " + Show(tensor_.name) + " has a shape entry that is not a non-negative integer");
      case kOffsets:
        return Fail("tensor " + Show(tensor_.name) + " needs data_offsets [begin, end] of non-negative integers");
      case kDone: return Fail("bytes after the JSON object");
    }
    return false;
  }

  SafetensorsHeader* out_;
  State state_ = kStart;
  std::string key_, error_;
  std::set<std::string> keys_;
  bool seen_metadata_ = false;
  SafetensorsTensor tensor_;
  std::vector<uint64_t> offsets_;
};

}  // namespace

Result<uint64_t> SafetensorsHeaderLength(std::span<const uint8_t> first8, uint64_t file_size) {
  if (file_size < 8 || first8.size() < 8) {
    return Status::Corruption("truncated safetensors: " + std::to_string(file_size) + " bytes, the length alone needs 8");
  }
  const uint64_t n = LoadLE64(first8.data());
  if (n > kSafetensorsMaxHeaderSize) {
    return Bad("header length " + std::to_string(n) + " is over the format's limit of " +
               std::to_string(kSafetensorsMaxHeaderSize) + " bytes");
  }
  if (n > file_size - 8) {
    return Status::Corruption("truncated safetensors: the header says it is " + std::to_string(n) +
                              " bytes, the file has " + std::to_string(file_size - 8) + " after the length");
  }
  if (n < 2) return Bad("a header of " + std::to_string(n) + " bytes cannot be a JSON object");
  return n;
}

Result<SafetensorsHeader> ParseSafetensorsHeader(std::span<const uint8_t> json, uint64_t data_size) {
  SafetensorsHeader h;
  h.data_offset = 8 + json.size();
  HeaderReader reader(&h);
  if (!nlohmann::json::sax_parse(json.begin(), json.end(), &reader) || !reader.error().empty()) {
    return Bad(reader.error().empty() ? "not valid JSON" : reader.error());
  }
  {
    std::vector<const std::string*> names;
    names.reserve(h.tensors.size());
    for (const auto& t : h.tensors) names.push_back(&t.name);
    std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    for (size_t i = 1; i < names.size(); ++i) {
      if (*names[i] == *names[i - 1]) return Bad("key " + Show(*names[i]) + " appears twice");
    }
  }
  for (SafetensorsTensor& t : h.tensors) {
    const std::string name = Show(t.name);
    t.element_size = DtypeBytes(t.dtype);
    if (t.element_size == 0) return Bad("tensor " + name + " has an unknown dtype " + Show(t.dtype));
    uint64_t count = 1, bytes;
    for (uint64_t d : t.shape) {
      if (!CheckedMul(count, d, &count)) return Bad("tensor " + name + ": its element count overflows");
    }
    if (t.end < t.begin) return Bad("tensor " + name + " ends before it begins");
    if (!CheckedMul(count, t.element_size, &bytes) || bytes != t.end - t.begin) {
      return Bad("tensor " + name + ": " + Show(t.dtype) + " with that shape is not " + std::to_string(t.end - t.begin) +
                 " bytes (dtype, shape and data_offsets disagree)");
    }
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (const auto& t : h.tensors) {
    if (t.begin < at) return Bad("tensor " + Show(t.name) + " overlaps the one before it");
    if (t.begin > at) {
      return Bad("a gap of " + std::to_string(t.begin - at) + " bytes before tensor " + Show(t.name) +
                 " (tensors must be back to back)");
    }
    at = t.end;
  }
  if (at != data_size) {
    return Bad(at > data_size ? "tensors end at byte " + std::to_string(at) + " of the data, past its end (" +
                                    std::to_string(data_size) + " bytes)"
                              : "the tensors cover " + std::to_string(at) + " of the " + std::to_string(data_size) +
                                    " data bytes");
  }
  return h;
}

Result<std::string> EncodeSafetensorsHeader(const std::string& name, uint64_t rows, uint64_t dim,
                                            const std::map<std::string, std::string>& metadata,
                                            const std::string& dtype_name, uint64_t element_size) {
  if (name.empty() || name == "__metadata__") return Status::InvalidArgument("tensor name " + Show(name) + " is not allowed");
  uint64_t bytes;
  if (!CheckedMul(rows, dim, &bytes) || !CheckedMul(bytes, element_size, &bytes)) {
    return Status::InvalidArgument("tensor size overflows");
  }
  nlohmann::ordered_json j;
  if (!metadata.empty()) {
    j["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) j["__metadata__"][k] = v;
  }
  j[name] = {{"dtype", dtype_name}, {"shape", {rows, dim}}, {"data_offsets", {0, bytes}}};
  // Stray bytes that are not UTF-8 are replaced (the default would be an exception).
  std::string text = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  StoreLE64(reinterpret_cast<uint8_t*>(out.data()), text.size());
  return out + text;
}

}  // namespace embstore
