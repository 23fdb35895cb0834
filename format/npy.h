// NumPy's .npy format (numpy.lib.format, versions 1.0, 2.0 and 3.0): the
// header parsed from untrusted bytes, and written for export.
//
// A .npy file is the magic "\x93NUMPY", a major and minor version byte, the
// header length (u16 in 1.0, u32 in 2.0 and 3.0, little-endian), the header
// (a Python dict literal: {'descr': '<f4', 'fortran_order': False,
// 'shape': (50257, 768), }, padded with spaces and ended by '\n'), then the
// array's bytes. The parser reads exactly that subset of Python literals
// (strings without escapes, True/False, integers and tuples of them) and
// nothing else: no evaluation, every length checked before use.
//
// Pure functions.

#ifndef EMBSTORE_FORMAT_NPY_H_
#define EMBSTORE_FORMAT_NPY_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "format/status.h"

namespace embstore {

inline constexpr uint8_t kNpyMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// Headers longer than this are refused (NumPy itself refuses more than
// 10,000 bytes unless told otherwise).
inline constexpr uint64_t kNpyMaxHeaderSize = 65536;

// The element types a table can be made from.
enum class SourceType { kFloat16, kBFloat16, kFloat32, kFloat64 };
const char* SourceTypeName(SourceType type);  // "float16", ...
uint64_t SourceTypeSize(SourceType type);

struct NpyHeader {
  uint8_t major = 1, minor = 0;
  uint64_t data_offset = 0;  // where the array's bytes start
  std::string descr;         // as written, e.g. "<f4"
  SourceType type = SourceType::kFloat32;
  bool big_endian = false;
  bool fortran_order = false;
  std::vector<uint64_t> shape;
  uint64_t data_size = 0;  // product of shape x element size (checked)
};

// True when the bytes start with the .npy magic.
bool LooksLikeNpy(std::span<const uint8_t> prefix);

// Parses the header of a .npy file of `file_size` bytes whose first bytes
// are `prefix` (at least min(file_size, kNpyMaxHeaderSize + 12) of them).
// Checks that the array's bytes end exactly at the end of the file. Errors
// name what is wrong: truncated, bad magic, unsupported version, a header
// that is not a dict, a missing or unknown key, an unsupported dtype
// (object arrays, integers, structured types), a bad shape.
Result<NpyHeader> ParseNpyHeader(std::span<const uint8_t> prefix, uint64_t file_size);

// The bytes before the data of a C-order little-endian float32 array of
// shape (rows, dim), version 1.0 (2.0 if the header needs it), padded as
// NumPy pads so the data starts on a 64-byte boundary.
// descr: "<f4" (float32) or "<f2" (float16).
std::string EncodeNpyHeader(uint64_t rows, uint64_t dim, const std::string& descr = "<f4");
// The same for any shape and a descr given as the Python literal to write
// (a quoted string, or a list of fields: "[('id', '<i8'), ('score', '<f4')]").
std::string EncodeNpyHeaderRaw(const std::string& descr_literal, const std::vector<uint64_t>& shape);

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_NPY_H_
