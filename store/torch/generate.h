// Seeded table generation: the rows PyTorch makes with
//   torch.manual_seed(seed)
//   torch.nn.Embedding(rows, dim).weight    # = torch.randn(rows, dim)
// or Tensor.normal_(mean, std) / Tensor.uniform_(low, high) on a
// torch.empty(rows, dim), bit for bit, for PyTorch's AVX2 kernel (x86-64
// default) or its DEFAULT (scalar) kernel. Vectorized and multi-threaded
// with identical bits for any thread count: each worker starts from the
// MT19937 state jumped ahead to its first draw.
//
// Stateless functions; safe to call from several threads at once.

#ifndef EMBSTORE_STORE_TORCH_GENERATE_H_
#define EMBSTORE_STORE_TORCH_GENERATE_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "format/metadata.h"
#include "format/status.h"
#include "format/table_format.h"
#include "store/core/cancel.h"
#include "store/torch/torch_kernels.h"

namespace embstore {

enum class Init {
  kNormal,   // normal_(mean, std): nn.Embedding's init, torch.randn
  kUniform,  // uniform_(low, high): torch.rand, nn.init.uniform_
};
const char* InitName(Init init);  // "normal", "uniform"
// The inverse of InitName and TorchKernelName ("default", PyTorch's name for
// the scalar kernel, too), for the command's and the module's options: an
// unknown name is an invalid-argument error listing the known ones.
Result<Init> ParseInit(const std::string& name);
Result<TorchKernel> ParseTorchKernel(const std::string& name);

struct GenerateSpec {
  uint64_t rows = 0;
  uint64_t dim = 0;
  // Rows [first_row, first_row + row_count) of that table (row_count 0:
  // to its end), bit for bit the same rows: a shard of a table too large
  // for one file (rows up to kMaxShardedRows; a range up to kMaxRows), or
  // one worker's part. The MT19937 engine jumps ahead to the range's
  // first draw (store/torch/mt19937_jump.h).
  uint64_t first_row = 0;
  uint64_t row_count = 0;
  uint64_t count() const;  // the rows of the range
  uint64_t seed = 0;  // as torch.manual_seed reads it: only the low 32 bits matter
  Dtype dtype = Dtype::kFloat32;  // nn.Embedding(..., dtype=): float16 and bfloat16 take PyTorch's half paths
  Init init = Init::kNormal;
  double mean = 0.0, std = 1.0;   // kNormal
  double low = 0.0, high = 1.0;   // kUniform
  TorchKernel kernel = TorchKernel::kAvx2;
  unsigned threads = 0;  // 0: all cores; the bits never depend on it
  bool sync = true;      // GenerateTable: fsync before the rename (durable once it returns)
  Metadata extra_metadata;  // e.g. a creation time the user asked for
  const CancelToken* cancel = nullptr;  // stops the work early (store/core/cancel.h)
};

// Checks sizes and parameters as PyTorch would, with messages naming the
// option: rows and dim >= 1, finite parameters, std >= 0, low <= high,
// and a row range inside the table.
Status ValidateGenerateSpec(const GenerateSpec& spec);

// The creation time a user asked for with SOURCE_DATE_EPOCH
// (reproducible-builds.org), as "2026-11-30T04:09:30Z", or "" when it is
// not set: without it, equal specs write equal bytes. A value that is not a
// whole number of seconds is an invalid-argument error.
Result<std::string> CreatedFromEnvironment();

// The provenance pairs a generated table records (FORMAT.md, "Metadata
// keys"); a range of rows also records generator.rows and
// generator.first_row.
Metadata GenerateMetadata(const GenerateSpec& spec);

// The Python lines that make the same rows x dim table, or "" when the
// metadata does not describe a generated table (or its values do not parse
// as numbers: nothing from the file is echoed verbatim).
std::string TorchReproduction(const Metadata& metadata, uint64_t rows, uint64_t dim);

// A double as Python's repr prints it (how metadata records parameters).
std::string PythonRepr(double v);

// What the output memory is, which decides how it is best written.
enum class OutputMemory {
  kResident,  // pages already present (an allocated, touched buffer): non-temporal stores
  kFresh,     // pages not yet touched (a new file's mapping): faulted in 256 KiB at a time, cached stores
};

// Generates the table's rows (spec.count() of them, from spec.first_row)
// into out (count*dim floats). With
// block_hashes, also stores XXH3-64 of each checksum block of block_rows rows
// (FORMAT.md, "Checksum table"), computed by the workers while the rows are
// still in cache. progress, if set, gets (elements done, elements total)
// from the calling thread.
Status GenerateRows(const GenerateSpec& spec, std::span<float> out,
                    OutputMemory memory = OutputMemory::kResident, uint64_t block_rows = 0,
                    uint64_t* block_hashes = nullptr,
                    const std::function<void(uint64_t, uint64_t)>& progress = {});
// The same for any spec.dtype: out holds rows*dim elements of it (bytes).
Status GenerateRows(const GenerateSpec& spec, std::span<uint8_t> out, OutputMemory memory = OutputMemory::kResident,
                    uint64_t block_rows = 0, uint64_t* block_hashes = nullptr,
                    const std::function<void(uint64_t, uint64_t)>& progress = {});

// Where generated rows go when not into memory: write(first, bytes) puts
// elements [first, first + bytes.size() / element size) at their place,
// called from the worker threads at once, on distinct ranges, in any order;
// read_back(first, bytes) gives back elements written earlier (the checksum
// blocks that PyTorch's last 16 elements, written last, fall in).
struct RowSink {
  std::function<Status(uint64_t first, std::span<const uint8_t> bytes)> write;
  std::function<Status(uint64_t first, std::span<uint8_t> bytes)> read_back;
};
Status GenerateRowsTo(const GenerateSpec& spec, const RowSink& sink, uint64_t block_rows = 0,
                      uint64_t* block_hashes = nullptr, const std::function<void(uint64_t, uint64_t)>& progress = {});

// Generates straight into a new table file (TableWriter: reserved temp
// file, rows written in place by the workers, fsync, rename) with
// provenance in its metadata. progress gets (rows done, rows total).
Status GenerateTable(const std::string& path, const GenerateSpec& spec,
                     const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace embstore

#endif  // EMBSTORE_STORE_TORCH_GENERATE_H_
