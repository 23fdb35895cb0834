// Seeded table generation: writes the table that
//   torch.manual_seed(seed); torch.nn.Embedding(rows, dim).weight
// (equivalently torch.randn(rows, dim), or normal_(mean, std)) holds, bit
// for bit, straight into a new table file, with provenance in its metadata.
//
// Stateless functions; safe to call from several threads on different paths.

#ifndef EMBSTORE_STORE_GENERATE_H_
#define EMBSTORE_STORE_GENERATE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "format/metadata.h"
#include "format/status.h"

namespace embstore {

// Which PyTorch CPU build's normal_ kernel to match (torch-rng.md, section 9).
enum class TorchKernel {
  kScalar,  // the DEFAULT capability: ATEN_CPU_CAPABILITY=default, ARM, ...
};

const char* TorchKernelName(TorchKernel kernel);  // "scalar"

struct GenerateSpec {
  uint64_t rows = 0;
  uint64_t dim = 0;
  uint64_t seed = 0;  // as torch.manual_seed reads it: only the low 32 bits matter
  double mean = 0.0;
  double std = 1.0;
  TorchKernel kernel = TorchKernel::kScalar;
  // Extra metadata (for example a creation time the user asked for).
  Metadata extra_metadata;
};

// The provenance pairs GenerateTable records (FORMAT.md, "Metadata keys").
Metadata GenerateMetadata(const GenerateSpec& spec);

// The Python lines that make the same rows x dim table; "" when the metadata
// does not describe a generated table.
std::string TorchReproduction(const Metadata& metadata, uint64_t rows, uint64_t dim);

// A double as Python's repr prints it (how metadata records mean and std).
std::string PythonRepr(double v);

// Checks the spec (sizes, std >= 0, finite parameters) with messages
// naming the field.
Status ValidateGenerateSpec(const GenerateSpec& spec);

// Generates and writes the table through TableWriter (temp file, fsync,
// rename). progress, if set, is called with rows done and rows total.
Status GenerateTable(const std::string& path, const GenerateSpec& spec,
                     const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace embstore

#endif  // EMBSTORE_STORE_GENERATE_H_
