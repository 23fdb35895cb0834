// A program of another project, built against an installed embstore (by
// find_package or pkg-config): prints the library's version and rows of a
// table of any kind (.emb, .embz, shm:NAME) as little-endian float32 bytes,
// as `embstore get TABLE ID... --raw` writes them.
//   consumer TABLE ID...
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "store/core/version.h"
#include "store/interop/open_table.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: consumer TABLE ID...\n");
    return 2;
  }
  auto table = embstore::OpenTable(argv[1]);
  if (!table.ok()) {
    std::fprintf(stderr, "%s\n", table.status().ToString().c_str());
    return 1;
  }
  std::vector<uint64_t> ids;
  for (int i = 2; i < argc; ++i) ids.push_back(std::strtoull(argv[i], nullptr, 10));
  const uint64_t dim = (*table)->dim();
  std::vector<float> rows(ids.size() * dim);
  if (auto st = (*table)->Gather(ids, rows); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "embstore %s\n", EMBSTORE_VERSION);
  return std::fwrite(rows.data(), sizeof(float), rows.size(), stdout) == rows.size() ? 0 : 1;
}
