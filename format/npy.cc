#include "format/npy.h"

#include <cstring>
#include <set>
#include <string_view>

#include "format/checked_math.h"
#include "format/endian.h"
#include "format/metadata.h"

namespace embstore {

namespace {

Status Bad(const std::string& what) { return Status::Corruption("corrupt .npy header: " + what); }

// The Python literal subset NumPy writes, read without evaluation.
class Literal {
 public:
  // long_suffix: "3L" is read as 3 (NumPy strips Python 2's L from
  // version 1.0 and 2.0 headers, not from 3.0 ones).
  Literal(std::string_view s, bool long_suffix) : s_(s), long_suffix_(long_suffix) {}

  void Space() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' || s_[at_] == '\r')) ++at_;
  }
  bool Eat(char c) {
    Space();
    if (at_ < s_.size() && s_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool Peek(char c) {
    Space();
    return at_ < s_.size() && s_[at_] == c;
  }
  bool AtEnd() {
    Space();
    return at_ == s_.size();
  }
  std::string Near() const {
    std::string n(s_.substr(at_, 20));
    for (char& c : n)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return at_ >= s_.size() ? "at the end" : "at '" + n + "'";
  }

  Result<std::string> String() {
    Space();
    if (at_ >= s_.size() || (s_[at_] != '\'' && s_[at_] != '"')) return Bad("expected a string " + Near());
    const char quote = s_[at_++];
    const size_t start = at_;
    while (at_ < s_.size() && s_[at_] != quote) {
      if (s_[at_] == '\\') return Bad("escapes in strings are not supported " + Near());
      ++at_;
    }
    if (at_ >= s_.size()) return Bad("a string is not closed");
    return std::string(s_.substr(start, at_++ - start));
  }

  Result<bool> Bool() {
    Space();
    for (const auto& [word, value] : {std::pair<std::string_view, bool>{"True", true}, {"False", false}}) {
      if (s_.substr(at_, word.size()) == word) {
        at_ += word.size();
        return value;
      }
    }
    return Bad("expected True or False " + Near());
  }

  // A non-negative decimal integer as Python reads one, at most 2^63: no
  // leading zero unless the value is zero ("03" is a syntax error there).
  Result<uint64_t> Int() {
    Space();
    if (at_ < s_.size() && s_[at_] == '-') return Bad("a negative dimension " + Near());
    if (at_ >= s_.size() || s_[at_] < '0' || s_[at_] > '9') return Bad("expected an integer " + Near());
    const size_t start = at_;
    uint64_t v = 0;
    while (at_ < s_.size() && s_[at_] >= '0' && s_[at_] <= '9') {
      if (!CheckedMul(v, 10, &v) || !CheckedAdd(v, static_cast<uint64_t>(s_[at_] - '0'), &v) ||
          v > (uint64_t{1} << 63)) {
        return Bad("a dimension too large for 64 bits");
      }
      ++at_;
    }
    if (s_[start] == '0' && v != 0) {
      return Bad("the dimension '" + std::string(s_.substr(start, at_ - start)) +
                 "' has a leading zero, which Python (and so NumPy) does not read");
    }
    if (long_suffix_ && at_ < s_.size() && s_[at_] == 'L') ++at_;
    return v;
  }

  // (a, b, ...) with an optional trailing comma; () is the empty tuple.
  Result<std::vector<uint64_t>> Tuple() {
    if (!Eat('(')) return Bad("expected a tuple for the shape " + Near());
    std::vector<uint64_t> v;
    while (!Eat(')')) {
      if (v.size() >= 32) return Bad("a shape with more than 32 dimensions");
      EMB_ASSIGN_OR_RETURN(uint64_t x, Int());
      v.push_back(x);
      if (!Eat(',') && !Peek(')')) return Bad("expected ',' or ')' in the shape " + Near());
    }
    return v;
  }

 private:
  std::string_view s_;
  bool long_suffix_;
  size_t at_ = 0;
};

Status ParseDescr(const std::string& raw, NpyHeader* h) {
  const std::string descr = raw;
  const std::string shown = EscapeForDisplay(raw);  // the file's bytes, made safe to print
  if (descr.size() < 2) return Bad("dtype '" + shown + "' is not one NumPy writes");
  const char order = descr[0];
  const std::string kind = descr.substr(1);
  if (kind[0] == 'O') {
    return Status::NotSupported("a .npy of Python objects (dtype '" + shown +
                                "') cannot be a table: it would need pickle, which embstore never runs");
  }
  if (descr.size() < 3) return Bad("dtype '" + shown + "' is not one NumPy writes");
  if (order != '<' && order != '>' && order != '=' && order != '|') {
    return Bad("dtype '" + shown + "' has no byte order");
  }
  if (kind == "f2") {
    h->type = SourceType::kFloat16;
  } else if (kind == "f4") {
    h->type = SourceType::kFloat32;
  } else if (kind == "f8") {
    h->type = SourceType::kFloat64;
  } else {
    return Status::NotSupported("dtype '" + shown + "' is not supported: a table is made from float16, float32 or "
                                "float64 (.npy has no bfloat16)");
  }
  if (order == '|') return Bad("dtype '" + shown + "': a multi-byte type needs '<' or '>'");
  h->big_endian = order == '>';  // '=' is native order, little-endian on every machine embstore runs on
  return Status::OK();
}

}  // namespace

const char* SourceTypeName(SourceType type) {
  switch (type) {
    case SourceType::kFloat16: return "float16";
    case SourceType::kBFloat16: return "bfloat16";
    case SourceType::kFloat32: return "float32";
    case SourceType::kFloat64: return "float64";
  }
  return "unknown";
}

uint64_t SourceTypeSize(SourceType type) {
  switch (type) {
    case SourceType::kFloat16:
    case SourceType::kBFloat16: return 2;
    case SourceType::kFloat32: return 4;
    case SourceType::kFloat64: return 8;
  }
  return 0;
}

bool LooksLikeNpy(std::span<const uint8_t> prefix) {
  return prefix.size() >= sizeof(kNpyMagic) && std::memcmp(prefix.data(), kNpyMagic, sizeof(kNpyMagic)) == 0;
}

Result<NpyHeader> ParseNpyHeader(std::span<const uint8_t> prefix, uint64_t file_size) {
  if (file_size < 10 || prefix.size() < 10) {
    return Status::Corruption("truncated .npy: " + std::to_string(file_size) + " bytes, the header alone needs 10");
  }
  if (!LooksLikeNpy(prefix)) return Status::Corruption("bad magic: not a .npy file (no \\x93NUMPY)");
  NpyHeader h;
  h.major = prefix[6];
  h.minor = prefix[7];
  if ((h.major != 1 && h.major != 2 && h.major != 3) || h.minor != 0) {
    return Status::NotSupported("unsupported .npy version " + std::to_string(h.major) + "." + std::to_string(h.minor) +
                                ": embstore reads 1.0, 2.0 and 3.0");
  }
  uint64_t header_len, start;
  if (h.major == 1) {
    header_len = LoadLE16(prefix.data() + 8);
    start = 10;
  } else {
    if (file_size < 12 || prefix.size() < 12) return Status::Corruption("truncated .npy: no header length");
    header_len = LoadLE32(prefix.data() + 8);
    start = 12;
  }
  if (header_len > kNpyMaxHeaderSize) {
    return Bad("header of " + std::to_string(header_len) + " bytes, more than the " +
               std::to_string(kNpyMaxHeaderSize) + " embstore reads");
  }
  h.data_offset = start + header_len;
  if (h.data_offset > file_size) {
    return Status::Corruption("truncated .npy: the header says it is " + std::to_string(header_len) +
                              " bytes, the file has " + std::to_string(file_size - start) + " after the length");
  }
  if (h.data_offset > prefix.size()) return Status::InvalidArgument("ParseNpyHeader: prefix too short");
  const std::string_view text(reinterpret_cast<const char*>(prefix.data() + start), header_len);
  Literal p(text, h.major < 3);
  if (!p.Eat('{')) return Bad("not a dict (it must start with '{') " + p.Near());
  std::set<std::string> seen;
  while (!p.Eat('}')) {
    EMB_ASSIGN_OR_RETURN(std::string key, p.String());
    if (!seen.insert(key).second) return Bad("key '" + EscapeForDisplay(key) + "' appears twice");
    if (!p.Eat(':')) return Bad("expected ':' after '" + EscapeForDisplay(key) + "'");
    if (key == "descr") {
      if (p.Peek('[')) return Status::NotSupported("a structured dtype cannot be a table");
      EMB_ASSIGN_OR_RETURN(h.descr, p.String());
      EMB_RETURN_IF_ERROR(ParseDescr(h.descr, &h));
    } else if (key == "fortran_order") {
      EMB_ASSIGN_OR_RETURN(h.fortran_order, p.Bool());
    } else if (key == "shape") {
      EMB_ASSIGN_OR_RETURN(h.shape, p.Tuple());
    } else {
      return Bad("unknown key '" + EscapeForDisplay(key) + "' (NumPy writes descr, fortran_order and shape)");
    }
    if (!p.Eat(',') && !p.Peek('}')) return Bad("expected ',' or '}' " + p.Near());
  }
  if (!p.AtEnd()) return Bad("bytes after the dict " + p.Near());
  for (const char* key : {"descr", "fortran_order", "shape"}) {
    if (!seen.count(key)) return Bad("no '" + std::string(key) + "' key");
  }
  uint64_t count = 1;
  for (uint64_t d : h.shape) {
    if (!CheckedMul(count, d, &count)) return Bad("the shape's element count overflows 64 bits");
  }
  if (!CheckedMul(count, SourceTypeSize(h.type), &h.data_size)) {
    return Bad("the array's size overflows 64 bits");
  }
  const uint64_t have = file_size - h.data_offset;
  if (have < h.data_size) {
    return Status::Corruption("truncated .npy: the shape needs " + std::to_string(h.data_size) + " bytes of data, the file has " +
                              std::to_string(have));
  }
  if (have > h.data_size) {
    return Status::Corruption(".npy has " + std::to_string(have - h.data_size) + " bytes after the array's " +
                              std::to_string(h.data_size));
  }
  return h;
}

std::string EncodeNpyHeader(uint64_t rows, uint64_t dim, const std::string& descr) {
  return EncodeNpyHeaderRaw("'" + descr + "'", {rows, dim});
}

std::string EncodeNpyHeaderRaw(const std::string& descr_literal, const std::vector<uint64_t>& shape) {
  std::string shape_text = "(";
  for (size_t i = 0; i < shape.size(); ++i) shape_text += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) shape_text += ",";
  shape_text += ")";
  std::string dict = "{'descr': " + descr_literal + ", 'fortran_order': False, 'shape': " + shape_text + ", }";
  // NumPy pads with spaces and a final '\n' so that magic + version +
  // length + header is a multiple of 64.
  const bool v2 = dict.size() + 1 + 10 > 65535;
  const size_t fixed = v2 ? 12 : 10;
  size_t total = fixed + dict.size() + 1;
  total = (total + 63) / 64 * 64;
  const size_t header_len = total - fixed;
  std::string out(reinterpret_cast<const char*>(kNpyMagic), sizeof(kNpyMagic));
  out.push_back(static_cast<char>(v2 ? 2 : 1));
  out.push_back(0);
  uint8_t len[4];
  StoreLE32(len, static_cast<uint32_t>(header_len));
  out.append(reinterpret_cast<const char*>(len), v2 ? 4 : 2);
  out += dict;
  out.append(header_len - dict.size() - 1, ' ');
  out.push_back('\n');
  return out;
}

}  // namespace embstore
