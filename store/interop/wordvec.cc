#include "store/interop/wordvec.h"

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "format/checked_math.h"
#include "format/checksum.h"
#include "format/word_vectors.h"
#include "store/core/atomic_file.h"
#include "store/core/mapped_file.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/core/version.h"

namespace embstore {

namespace {

constexpr uint64_t kBlockBytes = uint64_t{4} << 20;


struct TextLayout {
  uint64_t first_line = 1;   // number of the first vector line
  uint64_t count = 0, dim = 0;
  size_t data_begin = 0;     // byte offset of the first vector line
};

// Pass 1 over a text file: the keys, the layout, every line's value count.
Status ScanText(std::string_view text, WordVecFormat format, TextLayout* layout, KeyList* keys,
                const CancelToken* cancel) {
  LineReader lines(text);
  std::string_view line;
  uint64_t count = 0, dim = 0;
  const bool header = format == WordVecFormat::kWord2VecText;
  if (header) {
    if (!lines.Next(&line)) return Status::Corruption("empty file: no header line");
    EMB_RETURN_IF_ERROR(ParseWord2VecHeader(line, &count, &dim));
    layout->first_line = 2;
  }
  layout->data_begin = lines.pos();
  uint64_t rows = 0;
  while (true) {
    const size_t at = lines.pos();
    if (!lines.Next(&line)) break;
    if (header && rows == count) {
      // Only blank lines may follow the rows the header promised.
      if (!RStripAscii(text.substr(at)).empty()) {
        return Status::Corruption("line " + std::to_string(lines.number()) + ": the header says " +
                                  std::to_string(count) + " vectors, but more lines follow");
      }
      break;
    }
    if ((rows & 0xFFFF) == 0 && IsCancelled(cancel)) return cancel->Error();
    const std::string_view s = RStripAscii(line);
    if (!header && s.empty() && RStripAscii(text.substr(at)).empty()) break;  // GloVe: blank lines at the end
    const size_t sp = s.find(' ');
    const std::string_view key = s.substr(0, sp);
    const uint64_t values = sp == std::string_view::npos ? 0 : std::count(s.begin() + sp, s.end(), ' ');
    if (!header && rows == 0) {
      if (values == 0) {
        return Status::Corruption("line 1: " + QuoteKey(s) + " has no values (a GloVe line is 'key v1 v2 ...'; "
                                  "a word2vec file starts with 'COUNT DIM')");
      }
      dim = values;
    }
    if (values != dim) {
      return Status::Corruption("line " + std::to_string(lines.number()) + " (key " + QuoteKey(key) + "): " +
                                std::to_string(values) + " values, expected " + std::to_string(dim));
    }
    if (key.empty()) return Status::Corruption("line " + std::to_string(lines.number()) + ": the key is empty");
    if (!IsValidUtf8(key)) {
      return Status::Corruption("line " + std::to_string(lines.number()) + ": key " + QuoteKey(key) +
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
  EMB_RETURN_IF_ERROR(ParseWord2VecHeader(text.substr(0, nl), &count, &dim));
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
      return Status::Corruption("record " + std::to_string(r) + ": key " + QuoteKey(key) + " is not valid UTF-8");
    }
    if (file.size() - (end + 1) < row_bytes) {
      return Status::Corruption("record " + std::to_string(r) + " (key " + QuoteKey(key) + "): truncated: its " +
                                std::to_string(dim) + " values need " + std::to_string(row_bytes) +
                                " bytes, the file has " + std::to_string(file.size() - (end + 1)) + " left");
    }
    Status st = keys->Add(key);
    if (!st.ok()) return Status::Corruption("record " + std::to_string(r) + ": " + st.message());
    layout->vector_at.push_back(end + 1);
    pos = end + 1 + row_bytes;
  }
  if (!RStripAscii(text.substr(pos)).empty()) {
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
    LineReader lines(text.substr(tl.data_begin));
    std::string_view line;
    uint64_t in_block = 0;
    for (uint64_t r = 0; r < rows; ++r) {
      lines.Next(&line);  // ScanText counted them
      const std::string_view s = RStripAscii(line);
      size_t pos = s.find(' ') + 1;
      float* out = &block[in_block * dim];
      for (uint64_t j = 0; j < dim; ++j) {
        size_t end = s.find(' ', pos);
        if (end == std::string_view::npos) end = s.size();
        const std::string_view tok = s.substr(pos, end - pos);
        if (!ParseWordVectorValue(tok, &out[j])) {
          return Status::Corruption(source + ": line " + std::to_string(r + tl.first_line) + " (key " +
                                    QuoteKey(s.substr(0, s.find(' '))) + "): value " + std::to_string(j + 1) +
                                    " " + QuoteKey(tok) + " is not a number");
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

Status ExportWord2Vec(const Table& table, const std::string& dst, bool binary, const ExportOptions& options) {
  const KeysView* keys = table.keys();
  if (keys == nullptr) {
    return Status::InvalidArgument(table.path() + ": the table has no keys, and a word2vec file needs one per row "
                                   "(add them with 'embstore keys attach')");
  }
  const uint64_t rows = table.rows(), dim = table.dim();
  // Every key first: nothing is written if one cannot be.
  for (uint64_t r = 0; r < rows; ++r) {
    auto checked = keys->Key(r);
    if (!checked.ok()) return checked.status().WithContext(table.path());
    const std::string_view key = *checked;
    if (key.find_first_of(" \n") != std::string_view::npos) {
      return Status::InvalidArgument(table.path() + ": the key of row " + std::to_string(r) + " (" + QuoteKey(key) +
                                     ") holds a space or a newline, which word2vec cannot write");
    }
  }
  // Unique keys too, or gensim would read another table.
  EMB_RETURN_IF_ERROR(CheckBeforeCopy(table, options.cancel, "export", true));
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

Result<KeyList> ReadVocabulary(const std::string& path, uint64_t rows, VocabFormat format) {
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  return ParseVocabulary(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()), rows, format, path);
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
