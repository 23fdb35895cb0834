// A .embz container: header, table prefix, seek table, then every frame.
#include <cstdint>
#include <vector>

#include "store/embz/embz.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  embstore::fuzz::MemFile file(data, size);
  auto z = embstore::EmbzReader::Open(file.path(), uint64_t{1} << 20);
  if (!z.ok()) return 0;
  auto report = (*z)->Verify({.threads = 1, .progress = {}});
  (void)report;
  std::vector<float> row((*z)->dim());
  (void)(*z)->ReadRow(0, row);
  (void)(*z)->ReadRow((*z)->rows() - 1, row);
  return 0;
}
