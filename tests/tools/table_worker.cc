// A worker process for the sharing tests and benchmark (sharing_test.py,
// tests/bench/share_bench.py): one of a pool of processes that read one
// table, as an inference server's or a data loader's workers do.
//
//   table_worker gather TABLE   map TABLE (a path or shm:NAME), gather every
//                               row in a random order, print "ready
//                               <checksum>", then wait for stdin to close
//   table_worker private TABLE  the same from a private copy: read the whole
//                               file into this process's memory first
//   table_worker hold TABLE     map TABLE once and, until stdin closes, keep
//                               checking it: every block's checksum, and row
//                               0 unchanged since the open. Prints "passes
//                               N" and exits 0, or names what broke (exit 1)
//
// The parent reads each worker's /proc/PID/smaps_rollup while they wait.

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "format/checksum.h"
#include "store/core/table_reader.h"
#include "store/interop/shared_table.h"

namespace {

using embstore::TableReader;

TableReader OpenOrDie(const std::string& arg) {
  auto t = arg.rfind("shm:", 0) == 0 ? embstore::OpenSharedTable(arg.substr(4)) : TableReader::Open(arg);
  if (!t.ok()) {
    std::fprintf(stderr, "table_worker: %s\n", t.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(t).value();
}

void WaitForStdinToClose() {
  char buf[64];
  while (::read(0, buf, sizeof(buf)) > 0) {
  }
}

bool StdinClosed() {
  pollfd p{0, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char buf[64];
  return ::read(0, buf, sizeof(buf)) <= 0;
}

// Every row, in a random order, through a small buffer; returns a checksum
// of what was read so the work cannot be skipped.
uint64_t GatherAll(uint64_t rows, uint64_t dim, const std::function<const float*(uint64_t)>& row) {
  std::vector<uint64_t> ids(rows);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937_64(static_cast<uint64_t>(::getpid())));
  std::vector<float> buf(dim);
  uint64_t sum = 0;
  for (uint64_t id : ids) {
    std::memcpy(buf.data(), row(id), dim * sizeof(float));
    sum += embstore::Hash64(buf.data(), dim * sizeof(float));
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: table_worker gather|private|hold TABLE\n");
    return 2;
  }
  const std::string mode = argv[1];
  const TableReader table = OpenOrDie(argv[2]);
  const uint64_t rows = table.rows(), dim = table.dim();
  if (mode == "gather") {
    const uint64_t sum = GatherAll(rows, dim, [&](uint64_t id) { return table.row(id).data(); });
    std::printf("ready %016" PRIx64 "\n", sum);
    std::fflush(stdout);
    WaitForStdinToClose();
    return 0;
  }
  if (mode == "private") {
    // What a process does without embstore: load the file into its memory.
    std::vector<char> copy(table.file_size());
    FILE* in = std::fopen(table.path().c_str(), "rb");
    const size_t got = in ? std::fread(copy.data(), 1, copy.size(), in) : 0;
    if (in) std::fclose(in);
    if (got != copy.size()) {
      std::fprintf(stderr, "table_worker: read %zu of %zu bytes\n", got, copy.size());
      return 1;
    }
    const char* data = copy.data() + table.header().data_offset;
    const uint64_t stride = table.header().row_stride;
    const uint64_t sum =
        GatherAll(rows, dim, [&](uint64_t id) { return reinterpret_cast<const float*>(data + id * stride); });
    std::printf("ready %016" PRIx64 "\n", sum);
    std::fflush(stdout);
    WaitForStdinToClose();
    return 0;
  }
  if (mode == "hold") {
    std::printf("ready\n");
    std::fflush(stdout);
    const std::vector<float> first(table.row(0).begin(), table.row(0).end());
    uint64_t passes = 0;
    do {
      auto report = table.Verify({.threads = 1, .progress = {}});
      if (!report.ok() || !report->ok()) {
        std::printf("FAILED pass %" PRIu64 ": %s\n", passes,
                    report.ok() ? "a checksum mismatch: a torn or changed table" : report.status().ToString().c_str());
        return 1;
      }
      if (!std::equal(first.begin(), first.end(), table.row(0).begin())) {
        std::printf("FAILED pass %" PRIu64 ": row 0 changed under a live mapping\n", passes);
        return 1;
      }
      ++passes;
    } while (!StdinClosed());
    std::printf("passes %" PRIu64 "\n", passes);
    return 0;
  }
  std::fprintf(stderr, "table_worker: unknown mode %s\n", mode.c_str());
  return 2;
}
