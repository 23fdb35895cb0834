#include "store/interop/wordvec.h"

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "format/checked_math.h"
#include "format/checksum.h"
#include "store/core/atomic_file.h"
#include "store/core/mapped_file.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/core/version.h"

namespace embstore {

namespace {

constexpr uint64_t kBlockBytes = uint64_t{4} << 20;

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// A line of a text file without its end and trailing whitespace (as
// Python's bytes.rstrip(), which gensim applies).
std::string_view RStrip(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string Quote(std::string_view s) { return QuoteKey(s); }

// The text of the file as lines: Next() gives each line without its '\n'.
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  bool Next(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    const size_t end = text_.find('\n', pos_);
    const size_t stop = end == std::string_view::npos ? text_.size() : end;
    *line = text_.substr(pos_, stop - pos_);
    pos_ = end == std::string_view::npos ? text_.size() : end + 1;
    ++number_;
    return true;
  }
  uint64_t number() const { return number_; }  // 1-based number of the last line given
  size_t pos() const { return pos_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  uint64_t number_ = 0;
};

// "COUNT DIM" (gensim: two integers split on whitespace).
Status ParseHeaderLine(std::string_view line, uint64_t* count, uint64_t* dim) {
  std::string_view s = RStrip(line);
  uint64_t v[2];
  for (int k = 0; k < 2; ++k) {
    while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
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
bool ParseValue(std::string_view tok, float* out) {
  if (!tok.empty() && tok.front() == '+') {
    tok.remove_prefix(1);
    if (!tok.empty() && (tok.front() == '+' || tok.front() == '-')) return false;
  }
  if (tok.empty()) return false;
  double d;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), d);
  if (p != tok.data() + tok.size()) return false;
  if (ec == std::errc::result_out_of_range) {
    // Python gives inf or 0.0 (with the sign) where from_chars refuses.
    const bool neg = tok.front() == '-';
    const std::string_view digits = tok.substr(neg ? 1 : 0);
    const size_t e = digits.find_first_of("eE");
    const bool tiny = e != std::string_view::npos && digits.size() > e + 1 && digits[e + 1] == '-';
    d = tiny ? 0.0 : HUGE_VAL;
    if (neg) d = -d;
  } else if (ec != std::errc()) {
    return false;
  }
  *out = static_cast<float>(d);
  return true;
}

struct TextLayout {
  uint64_t first_line = 1;   // number of the first vector line
  uint64_t count = 0, dim = 0;
  size_t data_begin = 0;     // byte offset of the first vector line
};

// Pass 1 over a text file: the keys, the layout, every line's value count.
Status ScanText(std::string_view text, WordVecFormat format, TextLayout* layout, KeyList* keys,
                const CancelToken* cancel) {
  Lines lines(text);
  std::string_view line;
  uint64_t count = 0, dim = 0;
  const bool header = format == WordVecFormat::kWord2VecText;
  if (header) {
    if (!lines.Next(&line)) return Status::Corruption("empty file: no header line");
    EMB_RETURN_IF_ERROR(ParseHeaderLine(line, &count, &dim));
    layout->first_line = 2;
  }
  layout->data_begin = lines.pos();
  uint64_t rows = 0;
  while (true) {
    const size_t at = lines.pos();
    if (!lines.Next(&line)) break;
    if (header && rows == count) {
      // Only blank lines may follow the rows the header promised.
      if (!RStrip(text.substr(at)).empty()) {
        return Status::Corruption("line " + std::to_string(lines.number()) + ": the header says " +
                                       std::to_string(count) + " vectors, but more lines follow");
      }
      break;
    }
    if ((rows & 0xFFFF) == 0 && IsCancelled(cancel)) return cancel->Error();
    const std::string_view s = RStrip(line);
    if (!header && s.empty() && RStrip(text.substr(at)).empty()) break;  // GloVe: blank lines at the end
    const size_t sp = s.find(' ');
    const std::string_view key = s.substr(0, sp);
    const uint64_t values = sp == std::string_view::npos ? 0 : std::count(s.begin() + sp, s.end(), ' ');
    if (!header && rows == 0) {
      if (values == 0) {
        return Status::Corruption("line 1: " + Quote(s) + " has no values (a GloVe line is 'key v1 v2 ...'; "
                                       "a word2vec file starts with 'COUNT DIM')");
      }
      dim = values;
    }
    if (values != dim) {
      return Status::Corruption("line " + std::to_string(lines.number()) + " (key " + Quote(key) + "): " +
                                     std::to_string(values) + " values, expected " + std::to_string(dim));
    }
    if (key.empty()) return Status::Corruption("line " + std::to_string(lines.number()) + ": the key is empty");
    if (!IsValidUtf8(key)) {
      return Status::Corruption("line " + std::to_string(lines.number()) + ": key " + Quote(key) +
                                     " is not valid UTF-8");
    }
    Status st = keys->Add(key);
    if (!st.ok()) return Status::Corruption("line " + std::to_string(lines.number()) + ": " + st.message());
    ++rows;
  }
  if (header && rows != count) {
    return Status::Corruption("the header says " + std::to_string(count) + " vectors, the file has " +
                                   std::to_string(rows));
  }
  if (rows == 0) return Status::Corruption("no vectors in the file");
  layout->count = rows;
  layout->dim = dim;
  return Status::OK();
}

struct BinaryLayout {
  uint64_t count = 0, dim = 0;
  std::vector<uint64_t> vector_at;  // byte offset of each record's values
};

// Pass 1 over a binary file: the keys and where each record's values are.
Status ScanBinary(std::span<const uint8_t> file, BinaryLayout* layout, KeyList* keys, const CancelToken* cancel) {
  const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  const size_t nl = text.find('\n');
  if (nl == std::string_view::npos || nl > 256) {
    return Status::Corruption("line 1: expected the header 'COUNT DIM' and a newline");
  }
  uint64_t count, dim;
  EMB_RETURN_IF_ERROR(ParseHeaderLine(text.substr(0, nl), &count, &dim));
  uint64_t row_bytes;
  if (!CheckedMul(dim, 4, &row_bytes) || count > file.size() || row_bytes > file.size()) {
    return Status::Corruption("the header says " + std::to_string(count) + " vectors of " + std::to_string(dim) +
                                   " values, more than the file's " + std::to_string(file.size()) + " bytes hold");
  }
  layout->count = count;
  layout->dim = dim;
  layout->vector_at.reserve(count);
  size_t pos = nl + 1;
  for (uint64_t r = 0; r < count; ++r) {
    if ((r & 0xFFFF) == 0 && IsCancelled(cancel)) return cancel->Error();
    // gensim strips newlines before a key (the original tool ends each
    // record with one).
    while (pos < text.size() && text[pos] == '\n') ++pos;
    if (pos >= text.size()) {
      return Status::Corruption("record " + std::to_string(r) + ": the file ends; the header says " +
                                     std::to_string(count) + " vectors");
    }
    const size_t limit = std::min<size_t>(text.size(), pos + kMaxKeySize + 1);
    const void* sp = std::memchr(text.data() + pos, ' ', limit - pos);
    if (sp == nullptr) {
      return Status::Corruption("record " + std::to_string(r) + " at byte " + std::to_string(pos) +
                                     ": no space ends a key within " + std::to_string(kMaxKeySize) +
                                     " bytes (truncated, or not a binary word2vec file)");
    }
    const size_t end = static_cast<size_t>(static_cast<const char*>(sp) - text.data());
    const std::string_view key = text.substr(pos, end - pos);
    if (key.empty()) return Status::Corruption("record " + std::to_string(r) + " at byte " + std::to_string(pos) + ": the key is empty");
    if (!IsValidUtf8(key)) {
      return Status::Corruption("record " + std::to_string(r) + ": key " + Quote(key) + " is not valid UTF-8");
    }
    if (file.size() - (end + 1) < row_bytes) {
      return Status::Corruption("record " + std::to_string(r) + " (key " + Quote(key) + "): truncated: its " +
                                     std::to_string(dim) + " values need " + std::to_string(row_bytes) +
                                     " bytes, the file has " + std::to_string(file.size() - (end + 1)) + " left");
    }
    Status st = keys->Add(key);
    if (!st.ok()) return Status::Corruption("record " + std::to_string(r) + ": " + st.message());
    layout->vector_at.push_back(end + 1);
    pos = end + 1 + row_bytes;
  }
  if (!RStrip(text.substr(pos)).empty()) {
    return Status::Corruption("byte " + std::to_string(pos) + ": the header says " + std::to_string(count) +
                                   " vectors, but more bytes follow");
  }
  return Status::OK();
}

}  // namespace

const char* WordVecFormatName(WordVecFormat format) {
  switch (format) {
    case WordVecFormat::kWord2VecText: return "word2vec text";
    case WordVecFormat::kWord2VecBinary: return "word2vec binary";
    case WordVecFormat::kGlove: return "GloVe text";
  }
  return "?";
}

Status ImportWordVectors(const std::string& source, const std::string& dst, WordVecFormat format,
                         const ImportOptions& options) {
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(source));
  const auto bytes = file.bytes();
  (void)file.Advise(AccessHint::kSequential, 0, bytes.size());
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const bool binary = format == WordVecFormat::kWord2VecBinary;
  KeyList keys;
  TextLayout tl;
  BinaryLayout bl;
  Status scanned = binary ? ScanBinary(bytes, &bl, &keys, options.cancel)
                          : ScanText(text, format, &tl, &keys, options.cancel);
  if (!scanned.ok()) return scanned.WithContext(source);
  const uint64_t rows = binary ? bl.count : tl.count, dim = binary ? bl.dim : tl.dim;
  auto encoded = EncodeKeys(keys, [&](uint64_t row) {
    return (binary ? "record " : "line ") + std::to_string(binary ? row : row + tl.first_line);
  });
  if (!encoded.ok()) return Status::Corruption(source + ": " + encoded.status().message());
  keys = KeyList();  // the section holds them now

  const Dtype target = options.dtype.value_or(Dtype::kFloat32);
  Metadata metadata;
  metadata["embstore.version"] = kEmbstoreVersion;
  metadata["import.source"] = std::filesystem::path(source).filename().string();
  metadata["import.format"] = WordVecFormatName(format);
  metadata["import.dtype"] = binary ? "<f4" : "decimal text";
  metadata["import.conversion"] =
      binary ? (target == Dtype::kFloat32 ? "none (float32 copied as it is)"
                                          : std::string("float32 to ") + DtypeName(target) +
                                                " (rounded to nearest even, as PyTorch's .to)")
             : std::string("decimal to float64 to float32 (as gensim and NumPy's float32(str))") +
                   (target == Dtype::kFloat32 ? ""
                                              : std::string("; float32 to ") + DtypeName(target) +
                                                    " (rounded to nearest even, as PyTorch's .to)");
  metadata["import.xxh3"] = Hex64(Hash64(bytes.data(), bytes.size()));  // of the whole file
  WriterOptions wo;
  wo.dtype = target;
  wo.metadata = metadata;
  wo.sync = options.sync;
  wo.replace = options.replace;
  wo.cancel = options.cancel;
  wo.keys = *encoded;
  auto created = TableWriter::Create(dst, rows, dim, wo);
  if (!created.ok()) {
    const Status& st = created.status();
    if (!st.IsInvalidArgument() || st.message().rfind(dst, 0) == 0) return st;
    return st.WithContext(source + ": " + std::to_string(rows) + " vectors of " + std::to_string(dim) +
                          " values cannot be a table");
  }
  auto writer = std::move(*created);
  encoded = std::vector<uint8_t>();

  const uint64_t block_rows = std::max<uint64_t>(1, kBlockBytes / (dim * 4));
  std::vector<float> block(block_rows * dim);
  if (binary) {
    for (uint64_t r0 = 0; r0 < rows; r0 += block_rows) {
      if (IsCancelled(options.cancel)) return options.cancel->Error();
      const uint64_t n = std::min(block_rows, rows - r0);
      for (uint64_t i = 0; i < n; ++i) std::memcpy(&block[i * dim], bytes.data() + bl.vector_at[r0 + i], dim * 4);
      EMB_RETURN_IF_ERROR(writer->Append(std::span<const float>(block.data(), n * dim)));
      if (options.progress) options.progress(bl.vector_at[r0 + n - 1] + dim * 4, bytes.size());
    }
  } else {
    Lines lines(text.substr(tl.data_begin));
    std::string_view line;
    uint64_t in_block = 0;
    for (uint64_t r = 0; r < rows; ++r) {
      lines.Next(&line);  // ScanText counted them
      const std::string_view s = RStrip(line);
      size_t pos = s.find(' ') + 1;
      float* out = &block[in_block * dim];
      for (uint64_t j = 0; j < dim; ++j) {
        size_t end = s.find(' ', pos);
        if (end == std::string_view::npos) end = s.size();
        const std::string_view tok = s.substr(pos, end - pos);
        if (!ParseValue(tok, &out[j])) {
          return Status::Corruption(source + ": line " + std::to_string(r + tl.first_line) + " (key " +
                                         Quote(s.substr(0, s.find(' '))) + "): value " + std::to_string(j + 1) +
                                         " " + Quote(tok) + " is not a number");
        }
        pos = end + 1;
      }
      if (++in_block == block_rows || r + 1 == rows) {
        if (IsCancelled(options.cancel)) return options.cancel->Error();
        EMB_RETURN_IF_ERROR(writer->Append(std::span<const float>(block.data(), in_block * dim)));
        in_block = 0;
        if (options.progress) options.progress(tl.data_begin + lines.pos(), bytes.size());
      }
    }
  }
  return writer->Finish();
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

Status ExportWord2Vec(const Table& table, const std::string& dst, bool binary, const ExportOptions& options) {
  const KeysView* keys = table.keys();
  if (keys == nullptr) {
    return Status::InvalidArgument(table.path() + ": the table has no keys, and a word2vec file needs one per row "
                                   "(add them with 'embstore keys attach')");
  }
  const uint64_t rows = table.rows(), dim = table.dim();
  // Every key first: nothing is written if one cannot be.
  for (uint64_t r = 0; r < rows; ++r) {
    EMB_ASSIGN_OR_RETURN(std::string_view key, keys->Key(r));
    if (key.find_first_of(" \n") != std::string_view::npos) {
      return Status::InvalidArgument(table.path() + ": the key of row " + std::to_string(r) + " (" + Quote(key) +
                                     ") holds a space or a newline, which word2vec cannot write");
    }
  }
  if (!table.checks_rows_on_read()) {
    VerifyOptions vo;
    vo.cancel = options.cancel;
    EMB_ASSIGN_OR_RETURN(VerifyReport report, table.Verify(vo));
    if (!report.ok()) {
      return Status::Corruption(table.path() + ": the table to export fails verification (" + report.Summary() +
                                "); nothing was written ('embstore verify' lists them all)");
    }
  }
  const std::string head = std::to_string(rows) + " " + std::to_string(dim) + "\n";
  AtomicFileOptions fo;
  fo.sync = options.sync;
  fo.no_replace = !options.replace;
  fo.cancel = options.cancel;
  const uint64_t estimate = head.size() + rows * (dim * 4 + 2) + keys->blob_size();
  EMB_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(dst, binary ? estimate : head.size(), fo));
  uint64_t offset = 0;
  std::string buf;
  buf.reserve(kBlockBytes + 64 * 1024);
  buf += head;
  const uint64_t block_rows = std::max<uint64_t>(1, kBlockBytes / (dim * 4));
  std::vector<float> values(block_rows * dim);
  for (uint64_t r0 = 0; r0 < rows; r0 += block_rows) {
    if (IsCancelled(options.cancel)) return options.cancel->Error();
    const uint64_t n = std::min(block_rows, rows - r0);
    EMB_RETURN_IF_ERROR(table.ReadRows(r0, n, std::span<float>(values.data(), n * dim)));
    for (uint64_t i = 0; i < n; ++i) {
      buf += *keys->Key(r0 + i);  // checked above
      buf += ' ';
      const float* v = &values[i * dim];
      if (binary) {
        buf.append(reinterpret_cast<const char*>(v), dim * 4);
      } else {
        char num[40];
        for (uint64_t j = 0; j < dim; ++j) {
          if (j) buf += ' ';
          buf.append(num, FormatFloat32(v[j], num));
        }
      }
      buf += '\n';
      if (buf.size() >= kBlockBytes) {
        EMB_RETURN_IF_ERROR(out->WriteAt(buf.data(), buf.size(), offset));
        offset += buf.size();
        buf.clear();
      }
    }
    if (options.progress) options.progress(r0 + n, rows);
  }
  EMB_RETURN_IF_ERROR(out->WriteAt(buf.data(), buf.size(), offset));
  offset += buf.size();
  EMB_RETURN_IF_ERROR(out->Resize(offset));
  return out->Commit();
}

Result<VocabFormat> ParseVocabFormat(const std::string& name) {
  if (name == "auto") return VocabFormat::kAuto;
  if (name == "tokenizer.json" || name == "tokenizer") return VocabFormat::kTokenizerJson;
  if (name == "vocab.json" || name == "vocab") return VocabFormat::kVocabJson;
  if (name == "lines" || name == "text") return VocabFormat::kLines;
  return Status::InvalidArgument("'" + name + "' is not auto, tokenizer.json, vocab.json or lines");
}

namespace {

// Keys by id from (key, id) pairs: each id of [0, rows) exactly once.
Result<KeyList> KeysById(const std::vector<std::pair<std::string, int64_t>>& pairs, uint64_t rows,
                         const std::string& what) {
  std::vector<int64_t> at(rows, -1);  // index into pairs
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto& [key, id] = pairs[i];
    if (id < 0 || static_cast<uint64_t>(id) >= rows) {
      return Status::Corruption(what + ": token " + Quote(key) + " has id " + std::to_string(id) +
                                     ", outside the table's rows [0, " + std::to_string(rows) + ")");
    }
    if (at[id] >= 0 && pairs[at[id]].first != key) {
      return Status::Corruption(what + ": id " + std::to_string(id) + " is given to " + Quote(pairs[at[id]].first) +
                                     " and to " + Quote(key));
    }
    at[id] = static_cast<int64_t>(i);
  }
  uint64_t missing = 0, first_missing = 0;
  for (uint64_t r = 0; r < rows; ++r) {
    if (at[r] < 0 && missing++ == 0) first_missing = r;
  }
  if (missing > 0) {
    return Status::Corruption(what + ": no token has id " + std::to_string(first_missing) +
                                   (missing > 1 ? " (nor " + std::to_string(missing - 1) + " other ids)" : "") +
                                   "; the ids must cover the table's rows 0 to " + std::to_string(rows - 1) +
                                   " exactly once");
  }
  KeyList keys;
  for (uint64_t r = 0; r < rows; ++r) {
    Status st = keys.Add(pairs[at[r]].first);
    if (!st.ok()) return Status::Corruption(what + ": " + st.message());
  }
  return keys;
}

}  // namespace

Result<KeyList> ReadVocabulary(const std::string& path, uint64_t rows, VocabFormat format) {
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  if (format == VocabFormat::kAuto) {
    const size_t first = text.find_first_not_of(" \t\r\n");
    format = first != std::string_view::npos && text[first] == '{' ? VocabFormat::kVocabJson : VocabFormat::kLines;
  }
  if (format == VocabFormat::kLines) {
    std::vector<std::pair<std::string, int64_t>> pairs;
    Lines lines(text);
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
    return KeysById(pairs, rows, path);
  }
  nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::Corruption(path + ": not a JSON object (a tokenizer.json or a vocab.json)");
  }
  if (format == VocabFormat::kAuto || doc.contains("model")) format = doc.contains("model") ? VocabFormat::kTokenizerJson : VocabFormat::kVocabJson;
  std::vector<std::pair<std::string, int64_t>> pairs;
  auto add_object = [&](const nlohmann::json& obj, const std::string& where) -> Status {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (!it.value().is_number_integer()) {
        return Status::Corruption(path + ": " + where + ": token " + Quote(it.key()) + " has id " +
                                       it.value().dump() + ", not an integer");
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
    if (added != doc.end() && added->is_array()) {
      for (const auto& t : *added) {
        if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["id"].is_number_integer() ||
            !t["content"].is_string()) {
          return Status::Corruption(path + ": an entry of added_tokens lacks an integer id or a content string");
        }
        pairs.emplace_back(t["content"].get<std::string>(), t["id"].get<int64_t>());
      }
    }
  }
  // The same token may be listed twice with the same id (a special token
  // in both lists); drop exact repeats.
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  return KeysById(pairs, rows, path);
}

Status AttachKeys(const Table& table, const KeyList& keys, const std::string& source_name, const std::string& dst,
                  const AttachOptions& options) {
  const Header& h = table.header();
  if (keys.size() != h.rows) {
    return Status::InvalidArgument(std::to_string(keys.size()) + " keys for a table of " + std::to_string(h.rows) +
                                   " rows");
  }
  auto encoded = EncodeKeys(keys, [](uint64_t id) { return "id " + std::to_string(id); });
  if (!encoded.ok()) return Status::Corruption(source_name + ": " + encoded.status().message());
  std::vector<uint8_t> section = std::move(*encoded);
  Metadata metadata = table.metadata();
  metadata["embstore.version"] = kEmbstoreVersion;
  metadata["keys.source"] = source_name;
  WriterOptions wo;
  wo.dtype = table.dtype();
  wo.metadata = metadata;
  wo.sync = options.sync;
  wo.replace = options.replace;
  wo.cancel = options.cancel;
  wo.keys = section;
  EMB_ASSIGN_OR_RETURN(auto writer, TableWriter::Create(dst, h.rows, h.dim, wo));
  section = std::vector<uint8_t>();
  if (!table.checks_rows_on_read()) {
    VerifyOptions vo;
    vo.cancel = options.cancel;
    EMB_ASSIGN_OR_RETURN(VerifyReport report, table.Verify(vo));
    if (report.bad_block_count > 0 || report.bad_frame_count > 0) {
      return Status::Corruption(table.path() + ": the table fails verification (" + report.Summary() +
                                "); nothing was written");
    }
  }
  const uint64_t row = table.row_size();
  const uint64_t block_rows = std::max<uint64_t>(1, kBlockBytes / row);
  std::vector<uint8_t> block(block_rows * row);
  for (uint64_t r0 = 0; r0 < h.rows; r0 += block_rows) {
    if (IsCancelled(options.cancel)) return options.cancel->Error();
    const uint64_t n = std::min(block_rows, h.rows - r0);
    const std::span<uint8_t> rows(block.data(), n * row);
    EMB_RETURN_IF_ERROR(table.ReadRows(r0, n, table.dtype(), rows));
    EMB_RETURN_IF_ERROR(writer->Append(rows, table.dtype()));
    if (options.progress) options.progress(r0 + n, h.rows);
  }
  return writer->Finish();
}

}  // namespace embstore
