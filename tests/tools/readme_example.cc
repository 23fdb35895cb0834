#include <cstdio>

#include "store/core/table_reader.h"

int main(int argc, char** argv) {
  auto table = embstore::TableReader::Open(argc > 1 ? argv[1] : "notebook.emb");
  if (!table.ok()) {
    std::fprintf(stderr, "%s\n", table.status().ToString().c_str());
    return 1;
  }
  std::span<const float> row = table->row(3);  // points into the mapping: no copy
  for (float x : row) std::printf("%.4f ", x);
  std::printf("\n");
}
