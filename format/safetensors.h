// The safetensors format (huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON, then the tensors' bytes. The JSON maps
// each tensor's name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the byte after the header), plus an optional
// "__metadata__" object of strings.
//
// Parsed from untrusted bytes with nlohmann-json and checked as the
// reference implementation checks: N within the file and at most 100 MB;
// an object of objects; known dtypes; shapes of non-negative integers whose
// element count times the dtype's size equals end - begin; tensors that
// tile the data exactly (sorted by offset: the first begins at 0, each
// begins where the previous ends, the last ends at the end of the file),
// so none overlap or leave gaps. Written for export the same way.
//
// Pure functions.

#ifndef EMBSTORE_FORMAT_SAFETENSORS_H_
#define EMBSTORE_FORMAT_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "format/status.h"

namespace embstore {

// The reference implementation's limit on N.
inline constexpr uint64_t kSafetensorsMaxHeaderSize = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as written: "F32", "BF16", "I64", ...
  uint64_t element_size = 0;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;  // relative to the data section
};

struct SafetensorsHeader {
  uint64_t data_offset = 0;                 // 8 + N
  std::vector<SafetensorsTensor> tensors;   // in offset order
  std::map<std::string, std::string> metadata;
};

// Reads N from the first 8 bytes of a file of `file_size` bytes and checks
// it against the file and the 100 MB limit, before anything is read.
Result<uint64_t> SafetensorsHeaderLength(std::span<const uint8_t> first8, uint64_t file_size);

// Parses and checks the JSON header (exactly N bytes) of a file whose data
// section (after the header) is `data_size` bytes.
Result<SafetensorsHeader> ParseSafetensorsHeader(std::span<const uint8_t> json, uint64_t data_size);

// The 8 + N bytes before the data of a file holding one F32 tensor `name`
// of shape (rows, dim), with `metadata` as "__metadata__"; padded with
// spaces so the data starts on an 8-byte boundary.
// dtype_name: "F32", "F16" or "BF16"; element_size its bytes.
Result<std::string> EncodeSafetensorsHeader(const std::string& name, uint64_t rows, uint64_t dim,
                                            const std::map<std::string, std::string>& metadata,
                                            const std::string& dtype_name = "F32", uint64_t element_size = 4);

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_SAFETENSORS_H_
