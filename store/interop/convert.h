// Tables in and out: import from .npy (NumPy), .safetensors and raw float32;
// export to .npy and .safetensors.
//
// Import maps the source read-only and streams it into a new table (a
// TableWriter: temporary file, rename), a block of rows at a time, so a
// table larger than RAM imports without being loaded. A table keeps the
// source's element type: float32, float16 and bfloat16 are copied as they
// are; float64 becomes float32 (rounded to nearest, as NumPy's astype).
// Asked for another dtype, import converts: to float32 exactly as NumPy's
// astype widens (float16 NaN payloads kept as they are), to float16 or
// bfloat16 as PyTorch's .to(dtype) rounds (store/core/half.h). Big-endian
// data is byte-swapped; a Fortran-order .npy is transposed into rows. The
// table's metadata records the source (file name, format, tensor, dtype,
// what was converted) and the XXH3-64 of the source tensor's bytes as stored.
//
// Export writes the table's own element type (or the one asked for) as a
// file NumPy maps with numpy.load(mmap_mode='r') (data 64-byte aligned, as
// NumPy writes it; float32 or float16, since NumPy has no bfloat16) or a
// safetensors file with one F32, F16 or BF16 tensor (data 8-byte aligned),
// through the same temporary-file-and-rename.
//
// Convert makes a new table of another dtype from any table, rounding as
// PyTorch's Tensor.to(dtype) does.
//
// Stateless; safe from any thread.

#ifndef EMBSTORE_STORE_INTEROP_CONVERT_H_
#define EMBSTORE_STORE_INTEROP_CONVERT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "format/status.h"
#include "store/core/table.h"

namespace embstore {

// kWord2Vec (text; fastText .vec is the same), kWord2VecBinary and kGlove
// are word vectors with keys (store/interop/wordvec.h).
enum class SourceFormat { kAuto, kNpy, kSafetensors, kRaw, kWord2Vec, kWord2VecBinary, kGlove };

// "auto", "npy", "safetensors", "raw", "word2vec", "word2vec-binary",
// "fasttext" (word2vec text) or "glove"; anything else is an
// invalid-argument error listing them.
Result<SourceFormat> ParseSourceFormat(const std::string& name);

struct ImportOptions {
  // kAuto: raw float32 when rows or dim are given (a shape is only asked of
  // raw data, and raw bytes may look like anything); else by extension
  // (.npy, .safetensors; word vectors: .bin binary word2vec, .vec
  // fastText, .txt word2vec text when its first line is "COUNT DIM", else
  // GloVe), else by magic. rows and dim with another format are an
  // invalid-argument error.
  SourceFormat format = SourceFormat::kAuto;
  std::string tensor;         // safetensors: which tensor (empty: the only 2-D one)
  uint64_t rows = 0, dim = 0; // raw: the shape (the file must hold exactly that)
  // The table's element type; unset: the source's (float64: float32).
  std::optional<Dtype> dtype;
  bool sync = true;           // fsync before the rename
  // Replace a file at dst; false: an already-exists error if a file is there
  // when the table is put in place, however late it appeared.
  bool replace = true;
  // (bytes done, bytes total) of the source, from the calling thread.
  std::function<void(uint64_t, uint64_t)> progress;
  const CancelToken* cancel = nullptr;  // stops the work early (store/core/cancel.h)
};

// A shape as Python prints it: "(2, 3)", "(5,)".
std::string ShapeText(const std::vector<uint64_t>& shape);

// Imports `source` into a new table at `dst`.
Status ImportTable(const std::string& source, const std::string& dst, const ImportOptions& options = {});

// The tensors of a safetensors file, in offset order, checked as import
// checks them.
Result<std::vector<SafetensorsTensor>> ListSafetensors(const std::string& source);

struct ExportOptions {
  std::string tensor_name = "weight";  // safetensors only
  // The element type written; unset: the table's own. A .npy cannot hold
  // bfloat16 (NumPy has no such type): an invalid-argument error.
  std::optional<Dtype> dtype;
  bool sync = true;
  bool replace = true;  // as ImportOptions::replace
  std::function<void(uint64_t, uint64_t)> progress;  // (rows done, rows total)
  const CancelToken* cancel = nullptr;               // stops the work early (store/core/cancel.h)
};

// Rows [first, first + count) as elements of the dtype being written: a
// pointer to count x dim of them, either into the caller's own memory or
// into `scratch` (that many), which it fills.
using RowSource = std::function<Result<const uint8_t*>(uint64_t first, uint64_t count, uint8_t* scratch)>;

// Writes the rows x dim table that `rows_of` produces as a .npy (if dst
// ends in .npy) or a .safetensors (if it ends in .safetensors; the table's
// metadata goes into __metadata__ where it is UTF-8), with elements of
// options.dtype (unset: float32).
Status ExportTable(const std::string& dst, uint64_t rows, uint64_t dim, const Metadata& metadata,
                   const RowSource& rows_of, const ExportOptions& options = {});
// The same from any table: rows straight from the mapping when it has one,
// else read a block at a time. A table whose rows are not checked as they
// are read is verified first, and refused if corrupt: a .npy or
// safetensors file has no checksums to carry the damage, so it would be
// laundered.
Status ExportTable(const Table& table, const std::string& dst, const ExportOptions& options = {});

// What a writer checks before it copies a table's rows into a file: a
// table whose rows are not checked as they are read (a .emb, a shared
// table) is verified, keys included, since the copy would launder damage
// into bytes with new checksums or none; one whose rows are (a .embz) has
// its keys checked when `keys` says they are copied too. A corruption error
// names the table and what was to be done (`verb`: "export", "convert").
Status CheckBeforeCopy(const Table& table, const CancelToken* cancel, const char* verb, bool keys);

struct ConvertOptions {
  Dtype dtype = Dtype::kFloat32;  // the new table's element type
  Metadata metadata_overrides;    // pairs set last, over the source's (a shard's shard.* keys)
  bool sync = true;
  bool replace = true;  // as ImportOptions::replace
  std::function<void(uint64_t, uint64_t)> progress;  // (rows done, rows total)
  const CancelToken* cancel = nullptr;
};
// A new table at dst holding `table`'s rows as options.dtype, rounded as
// PyTorch's Tensor.to(dtype) rounds (the same dtype copies). Its metadata is
// the source's, plus convert.source (file name), convert.dtype (the
// source's dtype), convert.rounding and convert.xxh3 (the source rows'
// XXH3-64 as stored). A source whose rows are not checked as they are read
// is verified first, as export does.
Status ConvertTable(const Table& table, const std::string& dst, const ConvertOptions& options);

}  // namespace embstore

#endif  // EMBSTORE_STORE_INTEROP_CONVERT_H_
