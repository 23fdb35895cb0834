// A safetensors file: the length, the JSON header, then a whole import of
// the first 2-D tensor that parses.
#include <cstdint>
#include <string>

#include "format/safetensors.h"
#include "store/interop/convert.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto n = embstore::SafetensorsHeaderLength(bytes, size);
  if (!n.ok()) return 0;
  auto h = embstore::ParseSafetensorsHeader(bytes.subspan(8, *n), size - 8 - *n);
  if (!h.ok() || size > (1 << 20)) return 0;
  embstore::fuzz::MemFile file(data, size);
  embstore::ImportOptions o;
  o.format = embstore::SourceFormat::kSafetensors;
  o.sync = false;
  for (const auto& t : h->tensors) {
    if (t.shape.size() == 2) {
      o.tensor = t.name;
      break;
    }
  }
  static const std::string dst = "/dev/shm/embstore-fuzz-st-" + std::to_string(::getpid()) + ".emb";
  if (embstore::ImportTable(file.path(), dst, o).ok()) ::unlink(dst.c_str());
  return 0;
}
