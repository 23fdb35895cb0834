// Tables in and out: import from .npy (NumPy), .safetensors and raw float32;
// export to .npy and .safetensors.
//
// Import maps the source read-only and streams it into a new table (a
// TableWriter: temporary file, rename), a block of rows at a time, so a
// table larger than RAM imports without being loaded. float32 is copied as
// it is; float16, bfloat16 and float64 are converted to float32 (float16
// and bfloat16 exactly, float64 rounded to nearest, as NumPy's and
// PyTorch's casts do); big-endian data is byte-swapped; a Fortran-order
// .npy is transposed into rows. The table's metadata records the source
// (file name, format, tensor, dtype, what was converted) and the XXH3-64 of
// the source tensor's bytes as stored.
//
// Export writes a file NumPy maps with numpy.load(mmap_mode='r') (data
// 64-byte aligned, as NumPy writes it) or a safetensors file with one F32
// tensor (data 8-byte aligned), through the same temporary-file-and-rename.
//
// Stateless; safe from any thread.

#ifndef EMBSTORE_STORE_INTEROP_CONVERT_H_
#define EMBSTORE_STORE_INTEROP_CONVERT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "format/status.h"
#include "store/core/table.h"

namespace embstore {

enum class SourceFormat { kAuto, kNpy, kSafetensors, kRaw };

// "auto", "npy", "safetensors" or "raw"; anything else is an
// invalid-argument error listing them.
Result<SourceFormat> ParseSourceFormat(const std::string& name);

struct ImportOptions {
  // kAuto: raw float32 when rows or dim are given (a shape is only asked of
  // raw data, and raw bytes may look like anything); else by extension
  // (.npy, .safetensors), else by magic. rows and dim with kNpy or
  // kSafetensors are an invalid-argument error.
  SourceFormat format = SourceFormat::kAuto;
  std::string tensor;         // safetensors: which tensor (empty: the only 2-D one)
  uint64_t rows = 0, dim = 0; // raw: the shape (the file must hold exactly that)
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
  bool sync = true;
  bool replace = true;  // as ImportOptions::replace
  std::function<void(uint64_t, uint64_t)> progress;  // (rows done, rows total)
  const CancelToken* cancel = nullptr;               // stops the work early (store/core/cancel.h)
};

// Rows [first, first + count) as float32: a pointer to count x dim floats,
// either into the caller's own memory or into `scratch` (that many floats),
// which it fills.
using RowSource = std::function<Result<const float*>(uint64_t first, uint64_t count, float* scratch)>;

// Writes the rows x dim table that `rows_of` produces as a .npy (if dst
// ends in .npy) or a .safetensors (if it ends in .safetensors; the table's
// metadata goes into __metadata__ where it is UTF-8).
Status ExportTable(const std::string& dst, uint64_t rows, uint64_t dim, const Metadata& metadata,
                   const RowSource& rows_of, const ExportOptions& options = {});
// The same from any table: rows straight from the mapping when it has one,
// else read a block at a time. A table whose rows are not checked as they
// are read is verified first, and refused if corrupt: a .npy or
// safetensors file has no checksums to carry the damage, so it would be
// laundered.
Status ExportTable(const Table& table, const std::string& dst, const ExportOptions& options = {});

}  // namespace embstore

#endif  // EMBSTORE_STORE_INTEROP_CONVERT_H_
