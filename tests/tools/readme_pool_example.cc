// A pool of worker processes reading one table: open it once, then fork.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "store/interop/open_table.h"

int main(int argc, char** argv) {
  // A file, or a table placed in shared memory by `embstore share FILE --name wte`.
  const std::string where = argc > 1 ? argv[1] : "shm:wte";
  auto table = embstore::OpenMappedTable(where);  // rows in a mapping: a .emb or shm:NAME
  if (!table.ok()) {
    std::fprintf(stderr, "%s\n", table.status().ToString().c_str());
    return 1;
  }
  for (int w = 0; w < 4; ++w) {
    if (fork() == 0) {  // the child inherits the read-only mapping: no copy, no reopen
      std::printf("worker %d: row %d starts %.4f\n", w, w, table->row(w)[0]);
      std::fflush(stdout);
      _exit(0);
    }
  }
  int status, failed = 0;
  while (wait(&status) > 0) failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  return failed;
}
