#include "store/interop/convert.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include "format/checked_math.h"
#include "format/checksum.h"
#include "format/endian.h"
#include "format/npy.h"
#include "format/word_vectors.h"
#include "store/core/atomic_file.h"
#include "store/core/mapped_file.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "store/core/version.h"
#include "store/interop/wordvec.h"

namespace embstore {

namespace {

// Output blocks of about this many bytes: large enough for full-speed
// copies, small enough to stay in cache.
constexpr uint64_t kBlockBytes = uint64_t{4} << 20;

// float16 -> float32 bits, exactly as NumPy's npy_halfbits_to_floatbits
// (subnormals normalized, NaN payloads kept), for all 65,536 inputs.
const std::array<uint32_t, 65536>& HalfTable() {
  static const auto* table = [] {
    auto* t = new std::array<uint32_t, 65536>;
    for (uint32_t h = 0; h < 65536; ++h) {
      const uint32_t sign = (h & 0x8000u) << 16;
      uint32_t exp = h & 0x7c00u;
      uint32_t sig = h & 0x03ffu;
      if (exp == 0) {
        if (sig == 0) {
          (*t)[h] = sign;
          continue;
        }
        sig <<= 1;
        while ((sig & 0x0400u) == 0) {
          sig <<= 1;
          ++exp;
        }
        (*t)[h] = sign + ((127 - 15 - exp) << 23) + ((sig & 0x03ffu) << 13);
      } else if (exp == 0x7c00u) {
        (*t)[h] = sign + 0x7f800000u + (sig << 13);
      } else {
        (*t)[h] = sign + (((h & 0x7fffu) + 0x1c000u) << 13);
      }
    }
    return t;
  }();
  return *table;
}

// n elements of `type` at src (little- or big-endian) -> n float32 at out.
void Convert(const uint8_t* src, uint64_t n, SourceType type, bool big_endian, float* out) {
  switch (type) {
    case SourceType::kFloat32:
      if (!big_endian) {
        std::memcpy(out, src, n * 4);
      } else {
        for (uint64_t i = 0; i < n; ++i) {
          const uint32_t u = LoadBE32(src + 4 * i);
          std::memcpy(out + i, &u, 4);
        }
      }
      return;
    case SourceType::kFloat16: {
      const auto& t = HalfTable();
      for (uint64_t i = 0; i < n; ++i) {
        const uint16_t h = big_endian ? LoadBE16(src + 2 * i) : LoadLE16(src + 2 * i);
        std::memcpy(out + i, &t[h], 4);
      }
      return;
    }
    case SourceType::kBFloat16:
      for (uint64_t i = 0; i < n; ++i) {
        const uint32_t u = uint32_t{big_endian ? LoadBE16(src + 2 * i) : LoadLE16(src + 2 * i)} << 16;
        std::memcpy(out + i, &u, 4);
      }
      return;
    case SourceType::kFloat64:
      for (uint64_t i = 0; i < n; ++i) {
        const uint64_t u = big_endian ? LoadBE64(src + 8 * i) : LoadLE64(src + 8 * i);
        double d;
        std::memcpy(&d, &u, 8);
        out[i] = static_cast<float>(d);  // round to nearest even, as NumPy's astype
      }
      return;
  }
}

// A 2-D array somewhere in a mapped file, as the importer reads it.
struct Source {
  std::span<const uint8_t> data;  // the array's bytes as stored
  SourceType type = SourceType::kFloat32;
  bool big_endian = false;
  bool fortran = false;  // column-major: element (i, j) at j * rows + i
  uint64_t rows = 0, dim = 0;
  Metadata metadata;  // what to record about it
};

Status Need2D(const std::vector<uint64_t>& shape, const std::string& what) {
  if (shape.size() != 2) {
    return Status::NotSupported(what + " has shape " + ShapeText(shape) + ": a table needs a 2-D array (rows, dim)");
  }
  return Status::OK();
}

// The table dtype a source element type is kept as, if it can be.
std::optional<Dtype> SameDtype(SourceType type) {
  switch (type) {
    case SourceType::kFloat32: return Dtype::kFloat32;
    case SourceType::kFloat16: return Dtype::kFloat16;
    case SourceType::kBFloat16: return Dtype::kBFloat16;
    case SourceType::kFloat64: return std::nullopt;
  }
  return std::nullopt;
}

std::string ConversionText(SourceType type, Dtype to, bool big_endian, bool fortran) {
  std::vector<std::string> steps;
  const std::string from = SourceTypeName(type), target = DtypeName(to);
  if (big_endian) steps.push_back("byte-swapped from big-endian");
  if (type == SourceType::kFloat64) {
    steps.push_back("float64 to float32 (rounded to nearest)");
  } else if (SameDtype(type) != to) {
    steps.push_back(to == Dtype::kFloat32 ? from + " to float32 (exact)"
                                          : from + " to " + target + " (rounded to nearest even, as PyTorch's .to)");
  }
  if (fortran) steps.push_back("Fortran order transposed to rows");
  std::string s;
  for (const auto& step : steps) s += (s.empty() ? "" : "; ") + step;
  return s.empty() ? "none (" + target + " copied as it is)" : s;
}

// n elements of esize bytes at src, little-endian or big-endian, to out as
// little-endian.
void CopyLE(const uint8_t* src, uint64_t n, uint64_t esize, bool big_endian, uint8_t* out) {
  if (!big_endian || esize == 1) {
    std::memcpy(out, src, n * esize);
    return;
  }
  for (uint64_t i = 0; i < n; ++i)
    for (uint64_t b = 0; b < esize; ++b) out[i * esize + b] = src[i * esize + esize - 1 - b];
}

Result<Source> NpySource(std::span<const uint8_t> file, const std::string& path) {
  EMB_ASSIGN_OR_RETURN(NpyHeader h, ParseNpyHeader(file.first(std::min<uint64_t>(file.size(), kNpyMaxHeaderSize + 12)),
                                                    file.size()));
  EMB_RETURN_IF_ERROR(Need2D(h.shape, path));
  Source s;
  s.data = file.subspan(h.data_offset, h.data_size);
  s.type = h.type;
  s.big_endian = h.big_endian && SourceTypeSize(h.type) > 1;
  s.fortran = h.fortran_order;
  s.rows = h.shape[0];
  s.dim = h.shape[1];
  s.metadata["import.format"] = "npy " + std::to_string(h.major) + "." + std::to_string(h.minor);
  s.metadata["import.dtype"] = h.descr + (h.fortran_order ? ", fortran_order" : "");
  return s;
}

Result<SafetensorsHeader> ReadSafetensors(std::span<const uint8_t> file) {
  EMB_ASSIGN_OR_RETURN(uint64_t n, SafetensorsHeaderLength(file, file.size()));
  return ParseSafetensorsHeader(file.subspan(8, n), file.size() - 8 - n);
}

std::string Candidates(const SafetensorsHeader& h) {
  std::string s;
  for (const auto& t : h.tensors) {
    s += "\n  " + EscapeForDisplay(t.name) + "  " + EscapeForDisplay(t.dtype) + " " + ShapeText(t.shape);
  }
  return s.empty() ? " (none)" : s;
}

Result<Source> SafetensorsSource(std::span<const uint8_t> file, const std::string& path, const std::string& want) {
  EMB_ASSIGN_OR_RETURN(SafetensorsHeader h, ReadSafetensors(file));
  const SafetensorsTensor* pick = nullptr;
  if (!want.empty()) {
    for (const auto& t : h.tensors)
      if (t.name == want) pick = &t;
    if (pick == nullptr) {
      return Status::InvalidArgument(path + " has no tensor '" + EscapeForDisplay(want) + "'; it has:" + Candidates(h));
    }
  } else {
    std::vector<const SafetensorsTensor*> two_d;
    for (const auto& t : h.tensors)
      if (t.shape.size() == 2) two_d.push_back(&t);
    if (two_d.size() != 1) {
      return Status::InvalidArgument(path + " has " + std::to_string(two_d.size()) +
                                     " 2-D tensors; choose one with --tensor NAME:" + Candidates(h));
    }
    pick = two_d[0];
  }
  EMB_RETURN_IF_ERROR(Need2D(pick->shape, "tensor '" + EscapeForDisplay(pick->name) + "'"));
  Source s;
  if (pick->dtype == "F32") {
    s.type = SourceType::kFloat32;
  } else if (pick->dtype == "F16") {
    s.type = SourceType::kFloat16;
  } else if (pick->dtype == "BF16") {
    s.type = SourceType::kBFloat16;
  } else if (pick->dtype == "F64") {
    s.type = SourceType::kFloat64;
  } else {
    return Status::NotSupported("tensor '" + EscapeForDisplay(pick->name) + "' is " + pick->dtype +
                                ": a table is made from F32, F16, BF16 or F64");
  }
  s.data = file.subspan(h.data_offset + pick->begin, pick->end - pick->begin);
  s.rows = pick->shape[0];
  s.dim = pick->shape[1];
  s.metadata["import.format"] = "safetensors";
  s.metadata["import.tensor"] = pick->name;
  s.metadata["import.dtype"] = pick->dtype;
  return s;
}

Result<Source> RawSource(std::span<const uint8_t> file, const std::string& path, uint64_t rows, uint64_t dim) {
  if (rows == 0 || dim == 0) {
    return Status::InvalidArgument(path + ": raw float32 needs its shape (rows and dim)");
  }
  uint64_t want;
  if (!CheckedMul(rows, dim, &want) || !CheckedMul(want, 4, &want) || want != file.size()) {
    return Status::InvalidArgument(path + " is " + std::to_string(file.size()) + " bytes, not " + std::to_string(rows) +
                                   " x " + std::to_string(dim) + " x 4 bytes of float32");
  }
  Source s;
  s.data = file;
  s.rows = rows;
  s.dim = dim;
  s.metadata["import.format"] = "raw float32 little-endian";
  s.metadata["import.dtype"] = "<f4";
  return s;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Bytes that look like a safetensors file: a length that fits, then '{'.
bool LooksLikeSafetensors(std::span<const uint8_t> file) {
  if (file.size() < 10) return false;
  const uint64_t n = LoadLE64(file.data());
  return n >= 2 && n <= file.size() - 8 && file[8] == '{';
}

Result<Source> OpenSource(std::span<const uint8_t> file, const std::string& path, const ImportOptions& o) {
  SourceFormat f = o.format;
  const bool shape_given = o.rows != 0 || o.dim != 0;
  if (shape_given && f != SourceFormat::kAuto && f != SourceFormat::kRaw) {
    return Status::InvalidArgument("rows and dim describe raw float32; a " +
                                   std::string(f == SourceFormat::kNpy ? ".npy" : "safetensors") +
                                   " file carries its own shape");
  }
  if (f == SourceFormat::kAuto) {
    if (shape_given) {
      f = SourceFormat::kRaw;  // what was asked, whatever the bytes look like
    } else if (EndsWith(path, ".npy") || LooksLikeNpy(file)) {
      f = SourceFormat::kNpy;
    } else if (EndsWith(path, ".safetensors") || LooksLikeSafetensors(file)) {
      f = SourceFormat::kSafetensors;
    } else {
      return Status::InvalidArgument(path + ": not a .npy (no \\x93NUMPY magic), a safetensors file or word2vec "
                                     "(no 'COUNT DIM' line); for raw float32 give its rows and dim");
    }
  }
  switch (f) {
    case SourceFormat::kNpy: return NpySource(file, path);
    case SourceFormat::kSafetensors: return SafetensorsSource(file, path, o.tensor);
    default: return RawSource(file, path, o.rows, o.dim);
  }
}

}  // namespace

Result<SourceFormat> ParseSourceFormat(const std::string& name) {
  if (name == "auto") return SourceFormat::kAuto;
  if (name == "npy") return SourceFormat::kNpy;
  if (name == "safetensors") return SourceFormat::kSafetensors;
  if (name == "raw") return SourceFormat::kRaw;
  if (name == "word2vec" || name == "fasttext") return SourceFormat::kWord2Vec;
  if (name == "word2vec-binary") return SourceFormat::kWord2VecBinary;
  if (name == "glove") return SourceFormat::kGlove;
  return Status::InvalidArgument("'" + name +
                                 "' is not auto, npy, safetensors, raw, word2vec, word2vec-binary, fasttext or glove");
}

std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

Result<std::vector<SafetensorsTensor>> ListSafetensors(const std::string& source) {
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(source));
  auto h = ReadSafetensors(file.bytes());
  if (!h.ok()) return h.status().WithContext(source);
  return h->tensors;
}

namespace {

// The word-vector format a file is, if it is one (by name, or asked for).
Result<std::optional<WordVecFormat>> WordVectorFormat(const std::string& path, const ImportOptions& o) {
  const bool shape_given = o.rows != 0 || o.dim != 0;
  SourceFormat f = o.format;
  const bool bin = EndsWith(path, ".bin"), txt = EndsWith(path, ".txt");
  if (f == SourceFormat::kAuto && !shape_given && (bin || txt || EndsWith(path, ".vec"))) {
    f = SourceFormat::kWord2Vec;  // .vec: fastText
    if (bin || txt) {
      // word2vec (text or binary) starts with a "COUNT DIM" line; a .txt
      // without one is GloVe, a .bin without one is not word vectors
      // (raw float32 is named by its shape).
      EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
      const auto bytes = file.bytes();
      const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      LineReader lines(text.substr(0, std::min<size_t>(text.size(), 1 << 20)));
      std::string_view first, second;
      uint64_t count = 0, dim = 0;
      bool header = lines.Next(&first) && lines.pos() <= text.size() && first.size() < 256 &&
                    ParseWord2VecHeader(first, &count, &dim).ok();
      if (header && txt && lines.Next(&second)) {
        // "1999 5" may be a GloVe word of dim 1: a header is followed by a
        // line of DIM values.
        const std::string_view s = RStripAscii(second);
        header = static_cast<uint64_t>(std::count(s.begin(), s.end(), ' ')) == dim;
      }
      if (bin) f = header ? SourceFormat::kWord2VecBinary : SourceFormat::kAuto;
      if (txt) f = header ? SourceFormat::kWord2Vec : SourceFormat::kGlove;
    }
  }
  switch (f) {
    case SourceFormat::kWord2Vec: return std::optional(WordVecFormat::kWord2VecText);
    case SourceFormat::kWord2VecBinary: return std::optional(WordVecFormat::kWord2VecBinary);
    case SourceFormat::kGlove: return std::optional(WordVecFormat::kGlove);
    default: return std::optional<WordVecFormat>();
  }
}

}  // namespace

Status ImportTable(const std::string& source, const std::string& dst, const ImportOptions& options) {
  EMB_ASSIGN_OR_RETURN(std::optional<WordVecFormat> wordvec, WordVectorFormat(source, options));
  if (wordvec) {
    if (options.rows != 0 || options.dim != 0) {
      return Status::InvalidArgument("rows and dim describe raw float32; a word-vector file carries its own shape");
    }
    return ImportWordVectors(source, dst, *wordvec, options);
  }
  EMB_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(source));
  auto opened = OpenSource(file.bytes(), source, options);
  if (!opened.ok()) {
    const Status& st = opened.status();
    return st.message().rfind(source, 0) == 0 ? st : st.WithContext(source);
  }
  Source& src = *opened;
  const uint64_t esize = SourceTypeSize(src.type);
  const Dtype target = options.dtype ? *options.dtype : SameDtype(src.type).value_or(Dtype::kFloat32);
  if (src.type == SourceType::kFloat64 && target != Dtype::kFloat32) {
    return Status::InvalidArgument(source + ": a float64 array imports as float32; rounding it to " +
                                   DtypeName(target) + " through float32 would round twice ('embstore convert' "
                                   "rounds a float32 table as PyTorch's .to does)");
  }
  // float64, and widening to float32, go through the NumPy-exact Convert;
  // everything else is copied as stored elements and converted, if at all,
  // by the writer (PyTorch's rounding).
  const bool numpy_widen = target == Dtype::kFloat32 && src.type != SourceType::kFloat32;
  const Dtype append_as = numpy_widen ? Dtype::kFloat32 : *SameDtype(src.type);
  const uint64_t append_esize = DtypeSize(append_as);
  Metadata metadata = src.metadata;
  metadata["embstore.version"] = kEmbstoreVersion;
  metadata["import.source"] = std::filesystem::path(source).filename().string();
  metadata["import.conversion"] = ConversionText(src.type, target, src.big_endian, src.fortran);
  metadata["import.xxh3"] = std::string(16, '0');  // filled in at the end: same length, same layout
  WriterOptions wo;
  wo.dtype = target;
  wo.metadata = metadata;
  wo.sync = options.sync;
  wo.replace = options.replace;
  wo.cancel = options.cancel;
  auto created = TableWriter::Create(dst, src.rows, src.dim, wo);
  if (!created.ok()) {
    const Status& st = created.status();
    if (!st.IsInvalidArgument() || st.message().rfind(dst, 0) == 0) return st;  // about dst, and names it
    return st.WithContext(source + ": a " + std::to_string(src.rows) + " x " + std::to_string(src.dim) +
                          " array cannot be a table");
  }
  auto writer = std::move(*created);
  (void)file.Advise(src.fortran ? AccessHint::kNormal : AccessHint::kSequential,
                    static_cast<uint64_t>(src.data.data() - file.data()), src.data.size());

  const uint64_t block_rows = std::max<uint64_t>(1, kBlockBytes / (src.dim * 4));
  std::vector<uint8_t> block(block_rows * src.dim * append_esize);
  StreamingHash hash;
  uint64_t fortran_hash = 0;
  if (src.fortran) {  // stored order is column-major: the whole source, first
    auto h = Hash64Cancellable(src.data.data(), src.data.size(), options.cancel);
    if (!h) return options.cancel->Error();
    fortran_hash = *h;
  }
  // n elements at in (as stored) -> n elements of append_as at out.
  auto convert = [&](const uint8_t* in, uint64_t n, uint8_t* out) {
    if (numpy_widen) {
      Convert(in, n, src.type, src.big_endian, reinterpret_cast<float*>(out));
    } else {
      CopyLE(in, n, esize, src.big_endian, out);
    }
  };
  std::vector<uint8_t> column;
  for (uint64_t r0 = 0; r0 < src.rows; r0 += block_rows) {
    if (IsCancelled(options.cancel)) return options.cancel->Error();
    const uint64_t n = std::min(block_rows, src.rows - r0);
    if (!src.fortran) {
      const std::span<const uint8_t> in = src.data.subspan(r0 * src.dim * esize, n * src.dim * esize);
      hash.Update(in.data(), in.size());
      convert(in.data(), n * src.dim, block.data());
    } else {
      column.resize(n * append_esize);
      for (uint64_t j = 0; j < src.dim; ++j) {
        convert(src.data.data() + (j * src.rows + r0) * esize, n, column.data());
        for (uint64_t i = 0; i < n; ++i) {
          std::memcpy(&block[(i * src.dim + j) * append_esize], &column[i * append_esize], append_esize);
        }
      }
    }
    EMB_RETURN_IF_ERROR(writer->Append(std::span<const uint8_t>(block.data(), n * src.dim * append_esize), append_as));
    if (options.progress) options.progress((r0 + n) * src.dim * esize, src.data.size());
  }
  metadata["import.xxh3"] = Hex64(src.fortran ? fortran_hash : hash.Digest());
  EMB_RETURN_IF_ERROR(writer->ReplaceMetadata(metadata));
  return writer->Finish();
}

namespace {

// ExportTable, with a check of the source that runs once the destination
// is known to be writable (so a bad name fails before a long check), and
// before any row is written.
Status ExportRows(const std::string& dst, uint64_t rows, uint64_t dim, const Metadata& metadata,
                  const RowSource& rows_of, const ExportOptions& options, const std::function<Status()>& check_source) {
  const Dtype dtype = options.dtype.value_or(Dtype::kFloat32);
  const uint64_t esize = DtypeSize(dtype);
  std::string head;
  if (EndsWith(dst, ".npy")) {
    if (dtype == Dtype::kBFloat16) {
      return Status::InvalidArgument(dst + ": a .npy cannot hold bfloat16 (NumPy has no such type); export with "
                                     "--dtype float32 (exact), or to .safetensors (BF16)");
    }
    head = EncodeNpyHeader(rows, dim, dtype == Dtype::kFloat16 ? "<f2" : "<f4");
  } else if (EndsWith(dst, ".safetensors")) {
    std::map<std::string, std::string> text;
    for (const auto& [k, v] : metadata)
      if (EscapeForDisplay(v) == v) text[k] = v;  // UTF-8 without control characters only
    text["format"] = "pt";  // what PyTorch's save_file writes: the tensors are torch tensors
    const char* name = dtype == Dtype::kFloat16 ? "F16" : dtype == Dtype::kBFloat16 ? "BF16" : "F32";
    EMB_ASSIGN_OR_RETURN(head, EncodeSafetensorsHeader(options.tensor_name, rows, dim, text, name, esize));
  } else {
    return Status::InvalidArgument(dst + ": export writes .npy or .safetensors (name the file so)");
  }
  uint64_t data_size;
  if (!CheckedMul(rows, dim, &data_size) || !CheckedMul(data_size, esize, &data_size)) {
    return Status::InvalidArgument("table too large");
  }
  AtomicFileOptions fo;
  fo.sync = options.sync;
  fo.no_replace = !options.replace;
  fo.cancel = options.cancel;
  EMB_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(dst, head.size() + data_size, fo));
  if (check_source) EMB_RETURN_IF_ERROR(check_source());
  EMB_RETURN_IF_ERROR(out->WriteAt(head.data(), head.size(), 0));
  const uint64_t row_bytes = dim * esize;
  const uint64_t block_rows = std::max<uint64_t>(1, kBlockBytes / row_bytes);
  std::vector<uint8_t> block(block_rows * row_bytes);
  for (uint64_t r0 = 0; r0 < rows; r0 += block_rows) {
    if (IsCancelled(options.cancel)) return options.cancel->Error();
    const uint64_t n = std::min(block_rows, rows - r0);
    EMB_ASSIGN_OR_RETURN(const uint8_t* rows_here, rows_of(r0, n, block.data()));
    EMB_RETURN_IF_ERROR(out->WriteAt(rows_here, n * row_bytes, head.size() + r0 * row_bytes));
    if (options.progress) options.progress(r0 + n, rows);
  }
  return out->Commit();
}

// CheckBeforeCopy, deferred (ExportRows runs it once the destination is
// known to be writable); empty where there is nothing to check.
std::function<Status()> VerifyFirst(const Table& table, const CancelToken* cancel, const char* verb) {
  if (table.checks_rows_on_read()) return {};
  return [&table, cancel, verb]() { return CheckBeforeCopy(table, cancel, verb, false); };
}

}  // namespace

Status CheckBeforeCopy(const Table& table, const CancelToken* cancel, const char* verb, bool keys) {
  if (table.checks_rows_on_read()) return keys ? CheckTableKeys(table) : Status::OK();
  VerifyOptions vo;
  vo.cancel = cancel;
  EMB_ASSIGN_OR_RETURN(VerifyReport report, table.Verify(vo));
  if (report.ok()) return Status::OK();
  return Status::Corruption(table.path() + ": the table to " + verb + " fails verification (" + report.Summary() +
                            "); nothing was written ('embstore verify' lists them all)");
}

Status ExportTable(const std::string& dst, uint64_t rows, uint64_t dim, const Metadata& metadata,
                   const RowSource& rows_of, const ExportOptions& options) {
  return ExportRows(dst, rows, dim, metadata, rows_of, options, {});
}

Status ExportTable(const Table& table, const std::string& dst, const ExportOptions& options) {
  const Header& h = table.header();
  const TableReader* mapped = table.mapped();
  ExportOptions o = options;
  const Dtype dtype = options.dtype.value_or(table.dtype());
  o.dtype = dtype;
  const uint64_t row_bytes = h.dim * DtypeSize(dtype);
  return ExportRows(
      dst, h.rows, h.dim, table.metadata(),
      [&](uint64_t first, uint64_t count, uint8_t* scratch) -> Result<const uint8_t*> {
        if (mapped != nullptr && dtype == table.dtype() && h.row_stride == row_bytes) {
          return mapped->row_bytes(first, count).data();  // no copy
        }
        EMB_RETURN_IF_ERROR(table.ReadRows(first, count, dtype, std::span<uint8_t>(scratch, count * row_bytes)));
        return static_cast<const uint8_t*>(scratch);
      },
      o, VerifyFirst(table, options.cancel, "export"));
}

Status ConvertTable(const Table& table, const std::string& dst, const ConvertOptions& options) {
  const Header& h = table.header();
  const Dtype from = table.dtype(), to = options.dtype;
  Metadata metadata = table.metadata();
  metadata["embstore.version"] = kEmbstoreVersion;
  metadata["convert.source"] = std::filesystem::path(table.path()).filename().string();
  metadata["convert.dtype"] = DtypeName(from);
  metadata["convert.rounding"] =
      from == to ? "none (copied as it is)"
      : DtypeSize(to) >= DtypeSize(from) && to == Dtype::kFloat32
          ? std::string(DtypeName(from)) + " to float32 (exact)"
          : std::string(DtypeName(from)) + " to " + DtypeName(to) + " (rounded to nearest even, as PyTorch's .to)";
  metadata["convert.xxh3"] = std::string(16, '0');  // filled in at the end
  for (const auto& [k, v] : options.metadata_overrides) metadata[k] = v;
  WriterOptions wo;
  wo.dtype = to;
  wo.metadata = metadata;
  wo.sync = options.sync;
  wo.replace = options.replace;
  wo.cancel = options.cancel;
  if (const KeysView* keys = table.keys()) wo.keys = keys->bytes();  // the keys go along, byte for byte
  EMB_ASSIGN_OR_RETURN(auto writer, TableWriter::Create(dst, h.rows, h.dim, wo));
  EMB_RETURN_IF_ERROR(CheckBeforeCopy(table, options.cancel, "convert", true));  // the keys are copied too
  const uint64_t in_row = table.row_size();
  const uint64_t block_rows = std::max<uint64_t>(1, kBlockBytes / in_row);
  std::vector<uint8_t> block(block_rows * in_row);
  StreamingHash hash;  // of the source rows as stored (dense)
  for (uint64_t r0 = 0; r0 < h.rows; r0 += block_rows) {
    if (IsCancelled(options.cancel)) return options.cancel->Error();
    const uint64_t n = std::min(block_rows, h.rows - r0);
    const std::span<uint8_t> rows(block.data(), n * in_row);
    EMB_RETURN_IF_ERROR(table.ReadRows(r0, n, from, rows));
    hash.Update(rows.data(), rows.size());
    EMB_RETURN_IF_ERROR(writer->Append(rows, from));
    if (options.progress) options.progress(r0 + n, h.rows);
  }
  metadata["convert.xxh3"] = Hex64(hash.Digest());
  EMB_RETURN_IF_ERROR(writer->ReplaceMetadata(metadata));
  return writer->Finish();
}

}  // namespace embstore
