// A .npy file: the header parser, then a whole import of what parses.
#include <cstdint>
#include <string>

#include "format/npy.h"
#include "store/interop/convert.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = embstore::ParseNpyHeader(std::span<const uint8_t>(data, size), size);
  if (!h.ok() || h->data_size > (uint64_t{1} << 20)) return 0;
  embstore::fuzz::MemFile file(data, size);
  embstore::ImportOptions o;
  o.format = embstore::SourceFormat::kNpy;
  o.sync = false;
  static const std::string dst = "/dev/shm/embstore-fuzz-npy-" + std::to_string(::getpid()) + ".emb";
  if (embstore::ImportTable(file.path(), dst, o).ok()) ::unlink(dst.c_str());
  return 0;
}
