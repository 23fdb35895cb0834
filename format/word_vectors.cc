#include "format/word_vectors.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace embstore {

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string Quote(std::string_view s) { return QuoteKey(s); }

std::string_view RStrip(std::string_view s) { return RStripAscii(s); }

// Keys by id from (key, id) pairs: each id of [0, rows) exactly once.
Result<KeyList> KeysById(std::vector<std::pair<std::string, int64_t>> pairs, uint64_t rows, const std::string& what) {
  // Sorted by id (then key), so nothing is sized by the table's rows: the
  // same token listed twice under one id counts once.
  for (const auto& [key, id] : pairs) {
    if (id < 0 || static_cast<uint64_t>(id) >= rows) {
      return Status::Corruption(what + ": token " + Quote(key) + " has id " + std::to_string(id) +
                                ", outside the table's rows [0, " + std::to_string(rows) + ")");
    }
  }
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  uint64_t next = 0, first_missing = rows;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const uint64_t id = static_cast<uint64_t>(pairs[i].second);
    if (i > 0 && pairs[i - 1].second == pairs[i].second) {
      return Status::Corruption(what + ": id " + std::to_string(id) + " is given to " + Quote(pairs[i - 1].first) +
                                " and to " + Quote(pairs[i].first));
    }
    if (id > next && first_missing == rows) first_missing = next;
    next = id + 1;
  }
  if (next < rows && first_missing == rows) first_missing = next;
  if (pairs.size() != rows) {
    const uint64_t missing = rows - pairs.size();
    return Status::Corruption(what + ": no token has id " + std::to_string(first_missing) +
                              (missing > 1 ? " (nor " + std::to_string(missing - 1) + " other ids)" : "") +
                              "; the ids must cover the table's rows 0 to " + std::to_string(rows - 1) +
                              " exactly once");
  }
  KeyList keys;
  for (const auto& pair : pairs) {
    Status st = keys.Add(pair.first);
    if (!st.ok()) return Status::Corruption(what + ": " + st.message());
  }
  return keys;
}

}  // namespace

std::string_view RStripAscii(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// "COUNT DIM" (gensim: two integers split on whitespace).
Status ParseWord2VecHeader(std::string_view line, uint64_t* count, uint64_t* dim) {
  std::string_view s = RStrip(line);
  uint64_t v[2];
  for (int k = 0; k < 2; ++k) {
    while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);  // int("+2"), as gensim reads it
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v[k]);
    if (ec != std::errc() || p == s.data()) {
      return Status::Corruption("line 1: expected the header 'COUNT DIM', found " + Quote(line));
    }
    s.remove_prefix(static_cast<size_t>(p - s.data()));
    if (k == 0 && (s.empty() || !IsSpace(s.front()))) {
      return Status::Corruption("line 1: expected the header 'COUNT DIM', found " + Quote(line));
    }
  }
  if (!s.empty()) return Status::Corruption("line 1: expected the header 'COUNT DIM', found " + Quote(line));
  if (v[0] == 0 || v[1] == 0) {
    return Status::Corruption("line 1: the header says " + std::to_string(v[0]) + " vectors of " +
                              std::to_string(v[1]) + " values; a table needs at least one of each");
  }
  *count = v[0];
  *dim = v[1];
  return Status::OK();
}

// One value as gensim reads it: NumPy's float32(str), which is Python's
// float() rounded to float32.
bool ParseWordVectorValue(std::string_view tok, float* out) {
  // Python's float() strips whitespace around the number and takes
  // underscores between digits (PEP 515).
  while (!tok.empty() && IsSpace(tok.front())) tok.remove_prefix(1);
  while (!tok.empty() && IsSpace(tok.back())) tok.remove_suffix(1);
  std::string plain;
  if (tok.find('_') != std::string_view::npos) {
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    for (size_t i = 0; i < tok.size(); ++i) {
      if (tok[i] != '_') {
        plain += tok[i];
      } else if (i == 0 || i + 1 == tok.size() || !digit(tok[i - 1]) || !digit(tok[i + 1])) {
        return false;
      }
    }
    tok = plain;
  }
  if (!tok.empty() && tok.front() == '+') {
    tok.remove_prefix(1);
    if (!tok.empty() && (tok.front() == '+' || tok.front() == '-')) return false;
  }
  // from_chars also takes "nan(chars)", which Python does not.
  if (tok.empty() || tok.find('(') != std::string_view::npos) return false;
  double d;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), d);
  if (p != tok.data() + tok.size()) return false;
  if (ec == std::errc::result_out_of_range) {
    // The syntax is a number's; strtod says which way it is out of range
    // (0.000...1 is tiny, 1000...e-10 huge), as Python's float() does.
    const std::string text(tok);
    d = std::strtod(text.c_str(), nullptr);
  } else if (ec != std::errc()) {
    return false;
  }
  *out = static_cast<float>(d);
  return true;
}

char* FormatFloat32(float v, char* out) {
  if (std::isnan(v)) return std::strcpy(out, "nan") + 3;
  if (std::isinf(v)) {
    const char* s = v < 0 ? "-inf" : "inf";
    std::strcpy(out, s);
    return out + std::strlen(s);
  }
  if (v == 0) {
    const char* s = std::signbit(v) ? "-0.0" : "0.0";
    std::strcpy(out, s);
    return out + std::strlen(s);
  }
  // The shortest digits that read back to v, then NumPy's layout:
  // positional for 1e-4 <= |v| < 1e16 (v's own value decides), otherwise
  // scientific with at least two exponent digits.
  char sci[32];
  auto res = std::to_chars(sci, sci + sizeof(sci), v, std::chars_format::scientific);
  const char* e_pos = static_cast<const char*>(std::memchr(sci, 'e', static_cast<size_t>(res.ptr - sci)));
  int exp = 0;
  std::from_chars(e_pos + 1 + (e_pos[1] == '+' ? 1 : 0), res.ptr, exp);
  char digits[16] = {};
  int nd = 0;
  const char* p = sci;
  char* o = out;
  if (*p == '-') {
    *o++ = '-';
    ++p;
  }
  for (; p < e_pos; ++p)
    if (*p != '.') digits[nd++] = *p;
  const double a = std::fabs(static_cast<double>(v));
  if (a < 1e-4 || a >= 1e16) {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      for (int i = 1; i < nd; ++i) *o++ = digits[i];
    }
    return o + std::snprintf(o, 8, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  }
  if (exp < 0) {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -exp - 1; ++i) *o++ = '0';
    for (int i = 0; i < nd; ++i) *o++ = digits[i];
    return o;
  }
  const int int_len = exp + 1;
  for (int i = 0; i < int_len; ++i) *o++ = i < nd ? digits[i] : '0';
  *o++ = '.';
  if (nd <= int_len) {
    *o++ = '0';
  } else {
    for (int i = int_len; i < nd; ++i) *o++ = digits[i];
  }
  return o;
}

Result<VocabFormat> ParseVocabFormat(const std::string& name) {
  if (name == "auto") return VocabFormat::kAuto;
  if (name == "tokenizer.json" || name == "tokenizer") return VocabFormat::kTokenizerJson;
  if (name == "vocab.json" || name == "vocab") return VocabFormat::kVocabJson;
  if (name == "lines" || name == "text") return VocabFormat::kLines;
  return Status::InvalidArgument("'" + name + "' is not auto, tokenizer.json, vocab.json or lines");
}

Result<KeyList> ParseVocabulary(std::string_view text, uint64_t rows, VocabFormat format, const std::string& path) {
  nlohmann::json doc;
  if (format != VocabFormat::kLines) {
    const size_t first = text.find_first_not_of(" \t\r\n");
    const bool brace = first != std::string_view::npos && text[first] == '{';
    if (brace || format != VocabFormat::kAuto) {
      doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    }
    const bool object = (brace || format != VocabFormat::kAuto) && !doc.is_discarded() && doc.is_object();
    if (!object && format != VocabFormat::kAuto) {
      return Status::Corruption(path + ": not a JSON object (a tokenizer.json or a vocab.json)");
    }
    // Auto: a JSON object is a tokenizer.json (it has "model") or a
    // vocab.json; anything else, a first key starting with '{' included, is
    // one key per line.
    if (format == VocabFormat::kAuto) {
      format = !object ? VocabFormat::kLines : doc.contains("model") ? VocabFormat::kTokenizerJson
                                                                     : VocabFormat::kVocabJson;
    }
  }
  if (format == VocabFormat::kLines) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte-order mark is not part of key 0
    std::vector<std::pair<std::string, int64_t>> pairs;
    LineReader lines(text);
    std::string_view line;
    while (lines.Next(&line)) {
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (RStrip(text.substr(lines.pos())).empty() && lines.pos() >= text.size()) break;
        return Status::Corruption(path + ": line " + std::to_string(lines.number()) + " is empty");
      }
      if (!IsValidUtf8(line)) {
        return Status::Corruption(path + ": line " + std::to_string(lines.number()) + ": key " + Quote(line) +
                                  " is not valid UTF-8");
      }
      pairs.emplace_back(std::string(line), static_cast<int64_t>(pairs.size()));
      if (pairs.size() > rows) {
        return Status::Corruption(path + ": more than the table's " + std::to_string(rows) + " lines (keys)");
      }
    }
    if (pairs.size() != rows) {
      return Status::Corruption(path + ": " + std::to_string(pairs.size()) + " lines (keys), the table has " +
                                std::to_string(rows) + " rows");
    }
    return KeysById(std::move(pairs), rows, path);
  }
  if (doc.contains("model")) format = VocabFormat::kTokenizerJson;
  std::vector<std::pair<std::string, int64_t>> pairs;
  auto add_object = [&](const nlohmann::json& obj, const std::string& where) -> Status {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (it.value().is_number_unsigned() && it.value().get<uint64_t>() > uint64_t{INT64_MAX}) {
        return Status::Corruption(path + ": " + where + ": token " + Quote(it.key()) + " has id " +
                                  std::to_string(it.value().get<uint64_t>()) + ", outside the table's rows [0, " +
                                  std::to_string(rows) + ")");
      }
      if (!it.value().is_number_integer()) {
        // (Named by its JSON type: printing it would pull in the serializer.)
        return Status::Corruption(path + ": " + where + ": token " + Quote(it.key()) + " has a " +
                                  it.value().type_name() + " for an id, not an integer");
      }
      pairs.emplace_back(it.key(), it.value().get<int64_t>());
    }
    return Status::OK();
  };
  if (format == VocabFormat::kVocabJson) {
    EMB_RETURN_IF_ERROR(add_object(doc, "vocab"));
  } else {
    const auto model = doc.find("model");
    if (model == doc.end() || !model->is_object() || !model->contains("vocab")) {
      return Status::Corruption(path + ": a tokenizer.json has model.vocab; this file has none");
    }
    const nlohmann::json& vocab = (*model)["vocab"];
    if (vocab.is_object()) {
      EMB_RETURN_IF_ERROR(add_object(vocab, "model.vocab"));
    } else if (vocab.is_array()) {
      // Unigram models: [[token, score], ...], the id being the position.
      for (size_t i = 0; i < vocab.size(); ++i) {
        const auto& e = vocab[i];
        if (!e.is_array() || e.empty() || !e[0].is_string()) {
          return Status::Corruption(path + ": model.vocab[" + std::to_string(i) + "] is not [token, score]");
        }
        pairs.emplace_back(e[0].get<std::string>(), static_cast<int64_t>(i));
      }
    } else {
      return Status::Corruption(path + ": model.vocab is neither an object nor a list");
    }
    // Added tokens (special tokens) take ids of their own, or repeat one.
    const auto added = doc.find("added_tokens");
    if (added != doc.end() && !added->is_array()) {
      return Status::Corruption(path + ": added_tokens is not a list");
    }
    if (added != doc.end()) {
      for (const auto& t : *added) {
        if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["id"].is_number_integer() ||
            !t["content"].is_string()) {
          return Status::Corruption(path + ": an entry of added_tokens lacks an integer id or a content string");
        }
        pairs.emplace_back(t["content"].get<std::string>(), t["id"].get<int64_t>());
      }
    }
  }
  // (The same token may be listed twice with the same id: a special token
  // in both lists. KeysById counts it once.)
  return KeysById(std::move(pairs), rows, path);
}

}  // namespace embstore
